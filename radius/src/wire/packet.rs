//! The RADIUS packet (RFC 2865 §3).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |     Code      |  Identifier   |            Length             |
//! |                         Authenticator (16 octets)             |
//! |  Attributes ...
//! ```

use super::{Attributes, Code, Error, HEADER_LEN, MAX_LEN, MIN_LEN, Result};
use core::fmt;

/// The Identifier octet that matches an answer to its request (RFC 2865 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(pub u8);

/// The 16-octet Authenticator field (RFC 2865 §3): random in an Access-Request, computed in
/// everything else.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Authenticator(pub [u8; 16]);

impl Authenticator {
    /// Sixteen zero octets: the placeholder over which Accounting-Request (RFC 2866 §3) and
    /// Dynamic Authorization requests (RFC 5176 §2.3) compute theirs.
    pub const ZERO: Self = Self([0; 16]);

    /// The octets.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authenticator(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A RADIUS packet over any byte container. Accessors are panic-free once
/// [`Packet::new_checked`] succeeded.
///
/// Octets past the Length field are padding and are ignored (RFC 2865 §3).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a datagram received from the network: checks the header, that Length is within
    /// 20..=4096 and no longer than the datagram, and that every attribute lies within Length
    /// with a Length octet of at least 2.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadLength`] or [`Error::AttributeLength`].
    pub fn new_checked(buf: T) -> Result<Self> {
        let packet = Self { buf };
        packet.check()?;
        Ok(packet)
    }

    /// Wraps a buffer about to be written. Performs no checks; accessors may panic until the
    /// header and Length are written.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    fn check(&self) -> Result<()> {
        let bytes = self.buf.as_ref();
        let Some(&[_, _, l0, l1]) = bytes.first_chunk::<4>() else {
            return Err(Error::Truncated);
        };
        let length = u16::from_be_bytes([l0, l1]);
        if !(MIN_LEN..=MAX_LEN).contains(&usize::from(length)) {
            return Err(Error::BadLength(length));
        }
        // RFC 2865 §3: shorter than Length is silently discarded.
        let packet = bytes.get(..usize::from(length)).ok_or(Error::Truncated)?;
        let attributes = packet.get(HEADER_LEN..).ok_or(Error::Truncated)?;
        for attribute in Attributes::new(attributes) {
            attribute.map_err(|e| match e {
                Error::AttributeLength(at) => Error::AttributeLength(at + HEADER_LEN),
                other => other,
            })?;
        }
        Ok(())
    }

    /// The Code field.
    pub fn code(&self) -> Code {
        Code(self.buf.as_ref()[0])
    }

    /// The Identifier field.
    pub fn identifier(&self) -> Identifier {
        Identifier(self.buf.as_ref()[1])
    }

    /// The Length field: the packet's size, header included.
    pub fn length(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// The Authenticator field.
    pub fn authenticator(&self) -> Authenticator {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.buf.as_ref()[4..HEADER_LEN]);
        Authenticator(out)
    }

    /// The packet up to Length, without padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf.as_ref()[..usize::from(self.length())]
    }

    /// The attribute chain, up to Length.
    pub fn attribute_bytes(&self) -> &[u8] {
        &self.as_bytes()[HEADER_LEN..]
    }

    /// Walks the attributes. After `new_checked`, it yields no error.
    pub fn attributes(&self) -> Attributes<'_> {
        Attributes::new(self.attribute_bytes())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Code field.
    pub fn set_code(&mut self, code: Code) {
        self.buf.as_mut()[0] = code.0;
    }

    /// Sets the Identifier field.
    pub fn set_identifier(&mut self, identifier: Identifier) {
        self.buf.as_mut()[1] = identifier.0;
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, length: u16) {
        self.buf.as_mut()[2..4].copy_from_slice(&length.to_be_bytes());
    }

    /// Sets the Authenticator field.
    pub fn set_authenticator(&mut self, authenticator: &Authenticator) {
        self.buf.as_mut()[4..HEADER_LEN].copy_from_slice(&authenticator.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AttributeType;
    use hex_literal::hex;

    /// RFC 2865 §7.1: the Access-Request for `nemo`.
    const RFC2865_7_1_REQUEST: [u8; 56] = hex!(
        "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb"
        "98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
        "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8"
        "01 10 05 06 00 00 00 03"
    );

    #[test]
    fn the_rfc_2865_example_request_reads_field_by_field() {
        let p = Packet::new_checked(&RFC2865_7_1_REQUEST[..]).unwrap();
        assert_eq!(p.code(), Code::ACCESS_REQUEST);
        assert_eq!(p.identifier(), Identifier(0));
        assert_eq!(p.length(), 56);
        assert_eq!(
            p.authenticator(),
            Authenticator(hex!("0f403f9473978057bd83d5cb98f4227a"))
        );
        let types: Vec<_> = p.attributes().map(|a| a.unwrap().kind).collect();
        assert_eq!(
            types,
            [
                AttributeType::USER_NAME,
                AttributeType::USER_PASSWORD,
                AttributeType::NAS_IP_ADDRESS,
                AttributeType::NAS_PORT
            ]
        );
    }

    #[test]
    fn every_truncation_of_the_rfc_example_is_rejected() {
        for len in 0..RFC2865_7_1_REQUEST.len() {
            assert!(
                Packet::new_checked(&RFC2865_7_1_REQUEST[..len]).is_err(),
                "accepted a {len}-byte prefix"
            );
        }
    }

    #[test]
    fn padding_past_length_is_ignored() {
        let mut padded = RFC2865_7_1_REQUEST.to_vec();
        padded.extend_from_slice(&[0xff; 7]);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.as_bytes(), &RFC2865_7_1_REQUEST[..]);
        assert_eq!(p.attributes().count(), 4);
    }

    #[test]
    fn length_outside_the_rfc_bounds_is_rejected() {
        let mut bytes = [0u8; 20];
        bytes[0] = 1;
        for (length, expected) in [
            (19u16, Err(Error::BadLength(19))),
            (0, Err(Error::BadLength(0))),
            (4097, Err(Error::BadLength(4097))),
            (21, Err(Error::Truncated)),
            (20, Ok(())),
        ] {
            bytes[2..4].copy_from_slice(&length.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&bytes[..]).map(|_| ()),
                expected,
                "{length}"
            );
        }
        let mut big = vec![0u8; 4096];
        big[2..4].copy_from_slice(&4096u16.to_be_bytes());
        // 4076 bytes of attributes: one long chain of 2-byte empty attributes.
        for pair in big[20..].chunks_mut(2) {
            pair.copy_from_slice(&[18, 2]);
        }
        assert!(Packet::new_checked(&big[..]).is_ok());
    }

    #[test]
    fn malformed_attribute_lengths_are_rejected_with_their_offset() {
        let mut bytes = RFC2865_7_1_REQUEST;
        bytes[21] = 1; // User-Name length 1
        assert_eq!(
            Packet::new_checked(&bytes[..]).map(|_| ()),
            Err(Error::AttributeLength(20))
        );
        let mut bytes = RFC2865_7_1_REQUEST;
        bytes[51] = 7; // NAS-Port runs one past Length
        assert_eq!(
            Packet::new_checked(&bytes[..]).map(|_| ()),
            Err(Error::AttributeLength(50))
        );
    }

    #[test]
    fn setters_write_the_header() {
        let mut buf = [0u8; 20];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_code(Code::ACCOUNTING_REQUEST);
        p.set_identifier(Identifier(7));
        p.set_length(20);
        p.set_authenticator(&Authenticator([9; 16]));
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.code(), p.identifier(), p.authenticator()),
            (
                Code::ACCOUNTING_REQUEST,
                Identifier(7),
                Authenticator([9; 16])
            )
        );
    }
}
