//! The control packet shared by LCP, IPCP, IPV6CP, PAP and CHAP (RFC 1661 §5, RFC 1334 §2.2,
//! RFC 1994 §4).
//!
//! ```text
//! |  Code  | Identifier |     Length      | Data ...
//! ```
//!
//! Length counts the four header bytes. Bytes after Length are padding and are ignored
//! (RFC 1661 §5).

use super::{Error, Protocol};

codec::wire_enum! {
    /// LCP/IPCP/IPV6CP packet codes (RFC 1661 §5). PAP and CHAP reuse the number space with
    /// their own meanings; see [`crate::auth`].
    pub struct Code(u8) {
        /// Configure-Request.
        CONFIGURE_REQUEST = 1,
        /// Configure-Ack.
        CONFIGURE_ACK = 2,
        /// Configure-Nak.
        CONFIGURE_NAK = 3,
        /// Configure-Reject.
        CONFIGURE_REJECT = 4,
        /// Terminate-Request.
        TERMINATE_REQUEST = 5,
        /// Terminate-Ack.
        TERMINATE_ACK = 6,
        /// Code-Reject.
        CODE_REJECT = 7,
        /// Protocol-Reject (LCP only).
        PROTOCOL_REJECT = 8,
        /// Echo-Request (LCP only).
        ECHO_REQUEST = 9,
        /// Echo-Reply (LCP only).
        ECHO_REPLY = 10,
        /// Discard-Request (LCP only).
        DISCARD_REQUEST = 11,
    }
}

/// One control packet borrowed from a frame's information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The code (meaning depends on the protocol).
    pub code: u8,
    /// Matches requests with replies.
    pub identifier: u8,
    /// The data field, exactly `Length - 4` bytes.
    pub data: &'a [u8],
    /// The whole packet without padding (header and data), as Code-Reject and Protocol-Reject
    /// must quote it.
    pub raw: &'a [u8],
}

/// Length of the code, identifier and length fields.
pub const PACKET_HEADER_LEN: usize = 4;

impl<'a> Packet<'a> {
    /// Parses a control packet from a frame's information field.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than four bytes are present, [`Error::BadLength`] when
    /// Length is below four or beyond the information field.
    pub fn parse(information: &'a [u8]) -> Result<Self, Error> {
        let &[code, identifier, l0, l1, ..] = information else {
            return Err(Error::Truncated);
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        if length < PACKET_HEADER_LEN {
            return Err(Error::BadLength(length));
        }
        // RFC 1661 §5: a packet whose Length exceeds what was received is silently discarded.
        let raw = information.get(..length).ok_or(Error::BadLength(length))?;
        Ok(Self {
            code,
            identifier,
            data: &raw[PACKET_HEADER_LEN..],
            raw,
        })
    }
}

/// Writes a whole control frame (`FF 03`, protocol, code, identifier, length, then whatever
/// `body` writes) into `buf` and returns its length.
///
/// # Errors
/// [`codec::NoSpace`] when the frame does not fit in `buf` or its length overflows 16 bits.
pub fn write_packet(
    buf: &mut [u8],
    protocol: Protocol,
    code: u8,
    identifier: u8,
    body: impl FnOnce(&mut codec::Writer<'_>) -> Result<(), codec::NoSpace>,
) -> Result<usize, codec::NoSpace> {
    let mut w = codec::Writer::new(buf);
    w.put_slice(&[0xff, 0x03])?;
    w.put_u16(protocol.0)?;
    let start = w.len();
    w.put_u8(code)?;
    w.put_u8(identifier)?;
    let length = w.reserve_u16()?;
    body(&mut w)?;
    w.patch_len_u16(length, start)?;
    Ok(w.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_code_identifier_and_data_and_ignores_padding() {
        let bytes = [9, 7, 0, 8, 1, 2, 3, 4, 0xee, 0xee];
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!((p.code, p.identifier, p.data), (9, 7, &[1u8, 2, 3, 4][..]));
        assert_eq!(p.raw, &bytes[..8]);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(Packet::parse(&[1, 1, 0]), Err(Error::Truncated));
        assert_eq!(Packet::parse(&[1, 1, 0, 3]), Err(Error::BadLength(3)));
        assert_eq!(Packet::parse(&[1, 1, 0, 9, 0, 0]), Err(Error::BadLength(9)));
    }

    #[test]
    fn written_packet_parses_back() {
        let mut buf = [0u8; 32];
        let n = write_packet(&mut buf, Protocol::LCP, 5, 42, |w| w.put_slice(b"bye")).unwrap();
        assert_eq!(
            &buf[..n],
            &[0xff, 0x03, 0xc0, 0x21, 5, 42, 0, 7, b'b', b'y', b'e']
        );
        let p = Packet::parse(&buf[4..n]).unwrap();
        assert_eq!((p.code, p.identifier, p.data), (5, 42, &b"bye"[..]));
        assert_eq!(
            write_packet(&mut buf[..10], Protocol::LCP, 5, 1, |w| w.put_slice(b"bye")),
            Err(codec::NoSpace)
        );
    }
}
