//! PPP wire formats as carried in L2TP data messages: the frame header (RFC 1661 §2, RFC 2661
//! §3.1 and §5.1 of RFC 1662 for the address/control field), the control packet shared by LCP,
//! IPCP, IPV6CP, PAP and CHAP (RFC 1661 §5), and configuration options (RFC 1661 §6).
//!
//! Everything here borrows from the caller's buffer and never panics on hostile input.

mod control;
mod frame;
mod option;

pub use control::{Code, PACKET_HEADER_LEN, Packet, write_packet};
pub use frame::{Frame, HEADER_LEN, Protocol, write_header};
pub use option::{Options, RawOption, write_option};

/// Why bytes were not accepted as a PPP frame, packet or option list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes end before a field that must be present.
    #[error("truncated")]
    Truncated,
    /// A length field is smaller than its header or larger than the bytes that carry it.
    #[error("bad length {0}")]
    BadLength(usize),
    /// The protocol field is not a valid PPP protocol number (RFC 1661 §2: odd low byte, even
    /// high byte).
    #[error("invalid protocol field")]
    BadProtocol,
    /// The frame starts with 0xff but the control byte is not 0x03 (RFC 1662 §3.1).
    #[error("bad address/control field")]
    BadAddressControl,
}

impl From<codec::Truncated> for Error {
    fn from(_: codec::Truncated) -> Self {
        Self::Truncated
    }
}
