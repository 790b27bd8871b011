//! UDP encapsulation of ESP for NAT traversal (RFC 3948 §2): on UDP port 4500 a datagram is a
//! NAT keepalive, an IKE message behind a non-ESP marker, or an ESP packet.
//!
//! ```text
//!   0xFF                              NAT-keepalive (§2.3)
//!   00 00 00 00 | ISAKMP header ...   IKE, behind the non-ESP marker (§2.2)
//!   SPI (≠ 0)   | sequence | ...      ESP (§2.1)
//! ```

use super::sa::HEADER_LEN;
use codec::NoSpace;

/// The non-ESP marker: four zero bytes where an SPI would be (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// A NAT-keepalive datagram (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];

/// What a UDP-4500 datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Udp4500 {
    /// A NAT keepalive: drop it.
    NatKeepalive,
    /// An IKE message starting at byte 4, after the non-ESP marker.
    Ike,
    /// An ESP packet starting at byte 0.
    Esp,
}

impl Udp4500 {
    /// Where the IKE message or ESP packet starts in the datagram (0 for a keepalive).
    #[must_use]
    pub const fn offset(self) -> usize {
        match self {
            Self::Ike => NON_ESP_MARKER.len(),
            Self::Esp | Self::NatKeepalive => 0,
        }
    }
}

/// A datagram on UDP port 4500 that is none of the three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("UDP-encapsulated datagram too short for IKE or ESP")]
pub struct Malformed;

/// Classifies a UDP-4500 payload (RFC 3948 §2).
///
/// # Errors
/// [`Malformed`] for an empty datagram, a marker with nothing after it, or an ESP packet
/// shorter than SPI and sequence number.
pub fn classify_udp4500(datagram: &[u8]) -> Result<Udp4500, Malformed> {
    match datagram {
        // RFC 3948 §2.3: a single 0xFF octet is a keepalive.
        [0xff] => Ok(Udp4500::NatKeepalive),
        // RFC 3948 §2.2: four zero octets (an impossible SPI) announce IKE.
        [0, 0, 0, 0, rest @ ..] if !rest.is_empty() => Ok(Udp4500::Ike),
        [0, 0, 0, 0, ..] => Err(Malformed),
        // RFC 3948 §2.1: anything else starts with a non-zero SPI.
        _ if datagram.len() >= HEADER_LEN => Ok(Udp4500::Esp),
        _ => Err(Malformed),
    }
}

/// Writes the non-ESP marker at the front of `buf` and returns its length (4).
///
/// # Errors
/// [`NoSpace`] if `buf` is shorter than 4 bytes.
pub fn write_non_esp_marker(buf: &mut [u8]) -> Result<usize, NoSpace> {
    let mut w = codec::Writer::new(buf);
    w.put_slice(&NON_ESP_MARKER)?;
    Ok(NON_ESP_MARKER.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_ike_and_esp_are_told_apart() {
        assert_eq!(classify_udp4500(&[0xff]), Ok(Udp4500::NatKeepalive));
        assert_eq!(classify_udp4500(&[0, 0, 0, 0, 1, 2]), Ok(Udp4500::Ike));
        assert_eq!(Udp4500::Ike.offset(), 4);
        assert_eq!(
            classify_udp4500(&[0, 0, 1, 0, 0, 0, 0, 1, 9]),
            Ok(Udp4500::Esp)
        );
        assert_eq!(Udp4500::Esp.offset(), 0);
    }

    #[test]
    fn short_or_empty_datagrams_are_malformed() {
        for bad in [
            &[][..],
            &[0],
            &[0, 0, 0, 0],
            &[0xff, 0xff],
            &[1, 2, 3, 4, 5, 6, 7],
        ] {
            assert_eq!(classify_udp4500(bad), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_marker_is_written_or_refused() {
        let mut buf = [9u8; 6];
        assert_eq!(write_non_esp_marker(&mut buf), Ok(4));
        assert_eq!(buf, [0, 0, 0, 0, 9, 9]);
        assert!(write_non_esp_marker(&mut buf[..3]).is_err());
    }
}
