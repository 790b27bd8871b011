//! The PPP frame header as L2TP carries it (RFC 1661 §2, RFC 1662 §3.1, RFC 2661 §3.1).
//!
//! ```text
//! | FF | 03 | protocol (1 or 2 bytes) | information ...
//!  \ address/control, omitted under ACFC /
//! ```
//!
//! L2TP carries bare frames: no flag bytes, no FCS and no byte stuffing. A receiver must accept
//! frames with and without the address/control field and with one- or two-byte protocol fields
//! whatever was negotiated (RFC 1661 §6.5–6.6 only grant permission to compress), so parsing never
//! depends on negotiation state.

use super::Error;

codec::wire_enum! {
    /// PPP protocol numbers (RFC 1661 §2 and the IANA PPP DLL protocol registry).
    pub struct Protocol(u16) {
        /// Internet Protocol version 4 (RFC 1332).
        IPV4 = 0x0021,
        /// Novell IPX.
        IPX = 0x002b,
        /// Van Jacobson compressed TCP/IP.
        VJ_COMPRESSED = 0x002d,
        /// Van Jacobson uncompressed TCP/IP.
        VJ_UNCOMPRESSED = 0x002f,
        /// Multilink (RFC 1990).
        MULTILINK = 0x003d,
        /// Internet Protocol version 6 (RFC 5072).
        IPV6 = 0x0057,
        /// Compressed datagram (CCP, RFC 1962).
        COMPRESSED = 0x00fd,
        /// Internet Protocol Control Protocol (RFC 1332).
        IPCP = 0x8021,
        /// IPX Control Protocol.
        IPXCP = 0x802b,
        /// IPv6 Control Protocol (RFC 5072).
        IPV6CP = 0x8057,
        /// Encryption Control Protocol (RFC 1968).
        ECP = 0x8053,
        /// Compression Control Protocol (RFC 1962); Windows and macOS offer MPPC/MPPE here.
        CCP = 0x80fd,
        /// Bandwidth Allocation Control Protocol (RFC 2125).
        BACP = 0xc02b,
        /// Link Control Protocol (RFC 1661).
        LCP = 0xc021,
        /// Password Authentication Protocol (RFC 1334).
        PAP = 0xc023,
        /// Link Quality Report (RFC 1989).
        LQR = 0xc025,
        /// Challenge Handshake Authentication Protocol (RFC 1994).
        CHAP = 0xc223,
        /// Extensible Authentication Protocol (RFC 3748).
        EAP = 0xc227,
    }
}

impl Protocol {
    /// Whether this is a network-layer data protocol (0x0xxx–0x3xxx) rather than a control
    /// protocol (RFC 1661 §2).
    #[must_use]
    pub const fn is_network_data(self) -> bool {
        self.0 < 0x4000
    }
}

/// Length of the header we emit: address, control and a two-byte protocol field.
pub const HEADER_LEN: usize = 4;

/// A PPP frame borrowed from a datagram: its protocol and its information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The protocol field.
    pub protocol: Protocol,
    /// Everything after the protocol field (padding included; control packets carry their own
    /// length).
    pub information: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Parses the header of one frame.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the header does not fit, [`Error::BadAddressControl`] for `FF`
    /// not followed by `03`, [`Error::BadProtocol`] for a protocol field that breaks the
    /// odd/even rule of RFC 1661 §2.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        // RFC 1662 §3.1: the address field is always 0xff, the control field 0x03. Under ACFC
        // they are omitted; no valid protocol field starts with 0xff (its low bit would be set
        // in the high byte), so the two forms cannot be confused.
        let rest = match bytes {
            [0xff, 0x03, rest @ ..] => rest,
            [0xff, ..] if bytes.len() >= 2 => return Err(Error::BadAddressControl),
            [0xff] => return Err(Error::Truncated),
            rest => rest,
        };
        // RFC 1661 §2: protocol values are odd in the low byte and even in the high byte, so an
        // odd first byte is a compressed (one-byte) protocol field.
        let (protocol, information) = match rest {
            [] => return Err(Error::Truncated),
            [b0, information @ ..] if b0 & 1 == 1 => (u16::from(*b0), information),
            [_] => return Err(Error::Truncated),
            [b0, b1, information @ ..] => {
                if b1 & 1 == 0 {
                    return Err(Error::BadProtocol);
                }
                (u16::from_be_bytes([*b0, *b1]), information)
            }
        };
        Ok(Self {
            protocol: Protocol(protocol),
            information,
        })
    }
}

/// Writes `FF 03` and the two-byte `protocol` into the first [`HEADER_LEN`] bytes of `buf`.
///
/// We never compress our own headers: compression is a permission, not an obligation (RFC 1661
/// §6.5–6.6), and full headers keep the information field aligned for the IP stack.
///
/// # Errors
/// [`codec::NoSpace`] when `buf` is shorter than [`HEADER_LEN`].
pub fn write_header(buf: &mut [u8], protocol: Protocol) -> Result<(), codec::NoSpace> {
    let header = buf.get_mut(..HEADER_LEN).ok_or(codec::NoSpace)?;
    let [p0, p1] = protocol.to_be_bytes();
    header.copy_from_slice(&[0xff, 0x03, p0, p1]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_compressed_headers_parse_the_same() {
        let full = [0xff, 0x03, 0xc0, 0x21, 1, 2];
        let acfc = [0xc0, 0x21, 1, 2];
        let pfc = [0xff, 0x03, 0x21, 0x45];
        let both = [0x21, 0x45];
        assert_eq!(
            Frame::parse(&full),
            Ok(Frame {
                protocol: Protocol::LCP,
                information: &[1, 2]
            })
        );
        assert_eq!(Frame::parse(&acfc), Frame::parse(&full));
        assert_eq!(
            Frame::parse(&pfc),
            Ok(Frame {
                protocol: Protocol::IPV4,
                information: &[0x45]
            })
        );
        assert_eq!(Frame::parse(&both), Frame::parse(&pfc));
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(Frame::parse(&[]), Err(Error::Truncated));
        assert_eq!(Frame::parse(&[0xff]), Err(Error::Truncated));
        assert_eq!(Frame::parse(&[0xff, 0x03]), Err(Error::Truncated));
        assert_eq!(Frame::parse(&[0xff, 0x03, 0xc0]), Err(Error::Truncated));
        assert_eq!(
            Frame::parse(&[0xff, 0x04, 0xc0, 0x21]),
            Err(Error::BadAddressControl)
        );
        assert_eq!(Frame::parse(&[0xc0, 0x20]), Err(Error::BadProtocol));
    }

    #[test]
    fn written_header_parses_back() {
        let mut buf = [0u8; 6];
        write_header(&mut buf, Protocol::IPCP).unwrap();
        assert_eq!(buf[..4], [0xff, 0x03, 0x80, 0x21]);
        assert_eq!(Frame::parse(&buf).unwrap().protocol, Protocol::IPCP);
        assert_eq!(
            write_header(&mut buf[..3], Protocol::IPCP),
            Err(codec::NoSpace)
        );
    }

    #[test]
    fn protocol_classes() {
        assert!(Protocol::IPV4.is_network_data());
        assert!(!Protocol::CCP.is_network_data());
        assert_eq!(format!("{:?}", Protocol(0x80fd)), "CCP");
    }
}
