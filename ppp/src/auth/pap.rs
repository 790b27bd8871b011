//! PAP packets (RFC 1334 §2.2).
//!
//! ```text
//! Authenticate-Request (1): | Peer-ID Length | Peer-ID ... | Passwd-Length | Password ... |
//! Authenticate-Ack (2) / Authenticate-Nak (3): | Msg-Length | Message ... |
//! ```

use crate::wire::Error;
use codec::Reader;

/// Authenticate-Request.
pub const REQUEST: u8 = 1;
/// Authenticate-Ack.
pub const ACK: u8 = 2;
/// Authenticate-Nak.
pub const NAK: u8 = 3;

/// The fields of an Authenticate-Request, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The user name.
    pub peer_id: &'a [u8],
    /// The password, in clear text.
    pub password: &'a [u8],
}

impl<'a> Request<'a> {
    /// Parses the data field of an Authenticate-Request.
    ///
    /// # Errors
    /// [`Error::Truncated`] when a length byte points past the data.
    pub fn parse(data: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(data);
        let peer_id_len = r.u8()?;
        let peer_id = r.take(usize::from(peer_id_len))?;
        let password_len = r.u8()?;
        let password = r.take(usize::from(password_len))?;
        Ok(Self { peer_id, password })
    }

    /// Writes the data field.
    ///
    /// # Errors
    /// [`codec::NoSpace`] when it does not fit or a field is longer than 255 bytes.
    pub fn write(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        for field in [self.peer_id, self.password] {
            w.put_u8(u8::try_from(field.len()).map_err(|_| codec::NoSpace)?)?;
            w.put_slice(field)?;
        }
        Ok(())
    }
}

/// Parses the message of an Authenticate-Ack or -Nak (lenient: a missing length means empty).
#[must_use]
pub fn parse_message(data: &[u8]) -> &[u8] {
    let mut r = Reader::new(data);
    let Ok(len) = r.u8() else { return &[] };
    r.take(usize::from(len)).unwrap_or_else(|_| r.rest())
}

/// Writes the data field of an Authenticate-Ack or -Nak.
///
/// # Errors
/// [`codec::NoSpace`] when it does not fit.
pub fn write_message(w: &mut codec::Writer<'_>, message: &[u8]) -> Result<(), codec::NoSpace> {
    let message = message.get(..255).unwrap_or(message);
    w.put_u8(u8::try_from(message.len()).map_err(|_| codec::NoSpace)?)?;
    w.put_slice(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_truncation() {
        let mut buf = [0u8; 64];
        let mut w = codec::Writer::new(&mut buf);
        Request {
            peer_id: b"hb@hb",
            password: b"admin@123",
        }
        .write(&mut w)
        .unwrap();
        let bytes = w.written().to_vec();
        assert_eq!(bytes[0], 5);
        assert_eq!(
            Request::parse(&bytes),
            Ok(Request {
                peer_id: b"hb@hb",
                password: b"admin@123"
            })
        );
        for len in 0..bytes.len() {
            assert!(
                Request::parse(&bytes[..len]).is_err(),
                "accepted {len} bytes"
            );
        }
    }

    #[test]
    fn messages() {
        let mut buf = [0u8; 16];
        let mut w = codec::Writer::new(&mut buf);
        write_message(&mut w, b"ok").unwrap();
        assert_eq!(w.written(), &[2, b'o', b'k']);
        assert_eq!(parse_message(&[2, b'o', b'k']), b"ok");
        assert_eq!(parse_message(&[9, b'o', b'k']), b"ok");
        assert_eq!(parse_message(&[]), b"");
    }
}
