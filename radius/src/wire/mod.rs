//! RADIUS wire formats: the packet view ([`Packet`]), the attribute chain ([`Attributes`]),
//! typed attributes ([`Attr`]), Vendor-Specific sub-attributes ([`VendorAttributes`],
//! [`MsAttr`]) and the packet writer ([`PacketWriter`]).
//!
//! Everything here borrows the caller's bytes. [`Packet::new_checked`] proves that the header
//! and the whole attribute chain are in bounds; after it succeeds no accessor can panic.

pub mod attribute;
pub mod microsoft;
pub mod packet;
pub mod registry;
pub mod writer;

pub use attribute::{Attr, Attribute, Attributes, VendorAttribute, VendorAttributes};
pub use microsoft::{EncryptedKey, MsAttr, MsChap2Response};
pub use packet::{Authenticator, Identifier, Packet};
pub use registry::{
    AcctAuthentic, AcctStatusType, AcctTerminateCause, AttributeType, Code, ErrorCause,
    FramedProtocol, MsAttributeType, NasPortType, ServiceType, VendorId,
};
pub use writer::{PacketWriter, WriteError};

/// The RADIUS header: Code, Identifier, Length, Authenticator (RFC 2865 §3).
pub const HEADER_LEN: usize = 20;
/// The smallest Length a packet may carry (RFC 2865 §3).
pub const MIN_LEN: usize = HEADER_LEN;
/// The largest Length a packet may carry (RFC 2865 §3).
pub const MAX_LEN: usize = 4096;
/// An attribute's Type and Length octets (RFC 2865 §5).
pub const ATTRIBUTE_HEADER_LEN: usize = 2;
/// The longest attribute value: Length is one octet and counts the two header octets.
pub const MAX_VALUE_LEN: usize = 253;

/// Why bytes are not a well-formed RADIUS packet or attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the 20-byte header, or than the Length field says (RFC 2865 §3: silently
    /// discarded).
    #[error("truncated")]
    Truncated,
    /// The Length field is outside 20..=4096 (RFC 2865 §3).
    #[error("Length field {0} outside 20..=4096")]
    BadLength(u16),
    /// An attribute's Length octet is below 2 or runs past the packet (RFC 2865 §5).
    #[error("attribute at offset {0} has an invalid length")]
    AttributeLength(usize),
    /// A value does not have the size its attribute's type requires.
    #[error("{attribute} value of {len} bytes")]
    ValueLength {
        /// The attribute.
        attribute: AttributeType,
        /// The value's size.
        len: usize,
    },
    /// A Vendor-Specific attribute is shorter than its Vendor-Id, or a sub-attribute's length
    /// is below 2 or runs past the attribute (RFC 2865 §5.26).
    #[error("malformed Vendor-Specific attribute")]
    VendorSpecific,
    /// A Microsoft sub-attribute does not have the layout RFC 2548 gives it.
    #[error("{attribute} sub-attribute of {len} bytes")]
    MsValueLength {
        /// The sub-attribute.
        attribute: MsAttributeType,
        /// The value's size.
        len: usize,
    },
    /// A hidden or salt-encrypted value is malformed: wrong size, a salt without its high
    /// bit, or a decrypted length longer than the plaintext (RFC 2865 §5.2, RFC 2548 §2.4.2).
    #[error("malformed encrypted value")]
    Encrypted,
}

/// Result of parsing.
pub type Result<T, E = Error> = core::result::Result<T, E>;
