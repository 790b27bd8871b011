//! L2TPv2 wire formats (RFC 2661): the header (§3.1), AVPs (§4.1), the AVP registries (§4.4),
//! hidden AVPs and tunnel authentication (§4.3, §5.1.1), and typed control messages (§6).
//!
//! Everything here borrows from the caller's buffer, allocates nothing and never panics on
//! hostile input.

pub mod avp;
pub mod header;
pub mod hidden;
pub mod message;

pub use avp::{AttributeType, Avp, Avps, Flags, MessageType, Scope};
pub use header::{CONTROL_HEADER_LEN, Packet, data_header_len, write_control, write_data_header};
pub use message::{ControlMessage, MessageError};

/// Why bytes were not accepted as an L2TP header or AVP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes end before a field that must be present.
    #[error("truncated")]
    Truncated,
    /// The Length field ends inside the header or past the datagram.
    #[error("length field disagrees with the datagram")]
    BadLength,
    /// The Ver field is not 2 (1 is L2F, 3 is L2TPv3).
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A control message without L or S, or with O (RFC 2661 §3.1).
    #[error("control message without Length or Ns/Nr, or with an offset")]
    ControlFlags,
    /// Ns/Nr were to be rewritten in a header that has none.
    #[error("header has no Ns/Nr fields")]
    NoSequence,
    /// An AVP Length below the six-byte AVP header (RFC 2661 §4.1).
    #[error("AVP length {0} is below the 6-byte header")]
    AvpLength(usize),
}

impl From<codec::Truncated> for Error {
    fn from(_: codec::Truncated) -> Self {
        Self::Truncated
    }
}
