//! The ISAKMP header (RFC 2408 §3.1).
//!
//! ```text
//! |                     Initiator Cookie (8)                      |
//! |                     Responder Cookie (8)                      |
//! | Next Payload | MjVer | MnVer | Exchange Type |     Flags      |
//! |                          Message ID                           |
//! |                            Length                             |
//! ```

use super::{Error, ExchangeType, PayloadType, Result};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 28;
/// Flag: the payloads after the header are encrypted.
pub const FLAG_ENCRYPTION: u8 = 0x01;
/// Flag: commit (RFC 2408 §3.1); honoured by ignoring it gracefully.
pub const FLAG_COMMIT: u8 = 0x02;
/// Flag: authentication only.
pub const FLAG_AUTH_ONLY: u8 = 0x04;

/// An 8-byte ISAKMP cookie (RFC 2408 §2.5.3). Ordered only so SAs can live in ordered maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Cookie(pub [u8; 8]);

impl Cookie {
    /// Whether the cookie is all zero (a responder cookie before the responder answered).
    #[must_use]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

/// A message ID (zero in phase 1, random per Quick Mode / Informational exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageId(pub u32);

/// A checked view of an ISAKMP message: accessors cannot panic once `new_checked` succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Header<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks the fixed header and that Length covers exactly the header plus what follows
    /// within `buf` (bytes after Length are ignored).
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Version`] for a major version other than 1,
    /// [`Error::BadLength`] when Length is below 28 or beyond the buffer.
    pub fn new_checked(buf: T) -> Result<Self> {
        let h = Self { buf };
        let bytes = h.buf.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        // RFC 2408 §3.1: a major version we do not speak is refused (IKEv2 is 2).
        if h.version() >> 4 != 1 {
            return Err(Error::Version(h.version()));
        }
        let length = h.length();
        if length < HEADER_LEN || length > bytes.len() {
            return Err(Error::BadLength(length));
        }
        Ok(h)
    }

    fn bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.bytes()[at..at + N]);
        out
    }

    /// Initiator cookie.
    pub fn initiator_cookie(&self) -> Cookie {
        Cookie(self.array(0))
    }

    /// Responder cookie.
    pub fn responder_cookie(&self) -> Cookie {
        Cookie(self.array(8))
    }

    /// Type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.bytes()[16])
    }

    /// Major and minor version (0x10 for ISAKMP 1.0).
    pub fn version(&self) -> u8 {
        self.bytes()[17]
    }

    /// Exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType(self.bytes()[18])
    }

    /// Flags.
    pub fn flags(&self) -> u8 {
        self.bytes()[19]
    }

    /// Whether the payloads are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.flags() & FLAG_ENCRYPTION != 0
    }

    /// Message ID.
    pub fn message_id(&self) -> MessageId {
        MessageId(u32::from_be_bytes(self.array(20)))
    }

    /// The Length field.
    pub fn length(&self) -> usize {
        usize::try_from(u32::from_be_bytes(self.array(24))).unwrap_or(usize::MAX)
    }

    /// Everything after the header up to Length: the payload chain, or ciphertext.
    pub fn body(&self) -> &[u8] {
        &self.bytes()[HEADER_LEN..self.length()]
    }

    /// The whole message up to Length.
    pub fn message(&self) -> &[u8] {
        &self.bytes()[..self.length()]
    }
}
