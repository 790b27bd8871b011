//! CHAP packets (RFC 1994 §4) and the MS-CHAP-V2 values carried in them (RFC 2759 §4–6).
//!
//! ```text
//! Challenge (1) / Response (2): | Value-Size | Value ... | Name ... |
//! Success (3) / Failure (4):    | Message ... |
//! MS-CHAP-V2 Response value:    | Peer-Challenge (16) | Reserved (8) | NT-Response (24) | Flags |
//! ```

use super::Password;
use crate::wire::Error;
use codec::Reader;
use md5::{Digest, Md5};

/// Challenge.
pub const CHALLENGE: u8 = 1;
/// Response.
pub const RESPONSE: u8 = 2;
/// Success.
pub const SUCCESS: u8 = 3;
/// Failure.
pub const FAILURE: u8 = 4;

/// Length of the challenges we send for CHAP-MD5 (RFC 1994 §2.3 leaves it to us; 16 like pppd).
pub const MD5_CHALLENGE_LEN: usize = 16;
/// Length of an MS-CHAP-V2 challenge (RFC 2759 §4).
pub const MSCHAPV2_CHALLENGE_LEN: usize = 16;
/// Length of an MS-CHAP-V2 response value (RFC 2759 §4).
pub const MSCHAPV2_RESPONSE_LEN: usize = 49;

/// A Challenge or Response: the value and the sender's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueAndName<'a> {
    /// The challenge or response value.
    pub value: &'a [u8],
    /// The name of the system sending the packet.
    pub name: &'a [u8],
}

impl<'a> ValueAndName<'a> {
    /// Parses the data field of a Challenge or Response.
    ///
    /// # Errors
    /// [`Error::Truncated`] when Value-Size points past the data.
    pub fn parse(data: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(data);
        let size = r.u8()?;
        let value = r.take(usize::from(size))?;
        Ok(Self {
            value,
            name: r.rest(),
        })
    }

    /// Writes the data field.
    ///
    /// # Errors
    /// [`codec::NoSpace`] when it does not fit or the value is longer than 255 bytes.
    pub fn write(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        w.put_u8(u8::try_from(self.value.len()).map_err(|_| codec::NoSpace)?)?;
        w.put_slice(self.value)?;
        w.put_slice(self.name)
    }
}

/// The CHAP-MD5 response: MD5 over identifier, secret and challenge (RFC 1994 §4.1).
#[must_use]
pub fn md5_response(identifier: u8, secret: &Password, challenge: &[u8]) -> [u8; 16] {
    Md5::new()
        .chain_update([identifier])
        .chain_update(secret.expose())
        .chain_update(challenge)
        .finalize()
        .into()
}

/// The MS-CHAP-V2 response value (RFC 2759 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChapV2Response {
    /// The peer's challenge.
    pub peer_challenge: [u8; 16],
    /// The NT-Response.
    pub nt_response: [u8; 24],
    /// Flags; must be zero.
    pub flags: u8,
}

impl MsChapV2Response {
    /// Parses a 49-byte response value.
    ///
    /// # Errors
    /// [`Error::BadLength`] for any other length.
    pub fn parse(value: &[u8]) -> Result<Self, Error> {
        if value.len() != MSCHAPV2_RESPONSE_LEN {
            return Err(Error::BadLength(value.len()));
        }
        let mut r = Reader::new(value);
        let peer_challenge = r.array()?;
        r.skip(8)?; // Reserved: RFC 2759 §4 says zero; Windows sends zero, we do not insist.
        Ok(Self {
            peer_challenge,
            nt_response: r.array()?,
            flags: r.u8()?,
        })
    }

    /// The 49-byte value.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; MSCHAPV2_RESPONSE_LEN] {
        let mut out = [0u8; MSCHAPV2_RESPONSE_LEN];
        out[..16].copy_from_slice(&self.peer_challenge);
        out[24..48].copy_from_slice(&self.nt_response);
        out[48] = self.flags;
        out
    }
}

/// The error code we send in MS-CHAP-V2 failures: authentication failure (RFC 2759 §6).
pub const ERROR_AUTHENTICATION_FAILURE: u32 = 691;

/// Writes an MS-CHAP-V2 Failure message `E=691 R=0 C=<new challenge> V=3 M=<text>`
/// (RFC 2759 §6). We never allow a retry: the link terminates after the failure delay.
///
/// # Errors
/// [`codec::NoSpace`] when it does not fit.
pub fn write_mschapv2_failure(
    w: &mut codec::Writer<'_>,
    code: u32,
    challenge: &[u8; 16],
    text: &str,
) -> Result<(), codec::NoSpace> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    w.put_slice(b"E=")?;
    let mut digits = [0u8; 10];
    let mut n = code;
    let mut at = digits.len();
    loop {
        at -= 1;
        let digit = (n % 10) as u8;
        digits[at] = b'0' + digit;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    w.put_slice(&digits[at..])?;
    w.put_slice(b" R=0 C=")?;
    for b in challenge {
        w.put_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])?;
    }
    w.put_slice(b" V=3 M=")?;
    w.put_slice(text.as_bytes())
}

/// The error code of an MS-CHAP-V2 Failure message (`E=` field), if present.
#[must_use]
pub fn mschapv2_failure_code(message: &[u8]) -> Option<u32> {
    let rest = message.strip_prefix(b"E=")?;
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    core::str::from_utf8(rest.get(..end)?).ok()?.parse().ok()
}

/// Splits an MS-CHAP-V2 Success message into the authenticator response and the rest
/// (`S=<40 hex> M=<text>`, RFC 2759 §5).
#[must_use]
pub fn mschapv2_success(message: &[u8]) -> Option<super::AuthenticatorResponse> {
    super::AuthenticatorResponse::parse(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn value_and_name_round_trip() {
        let mut buf = [0u8; 64];
        let mut w = codec::Writer::new(&mut buf);
        ValueAndName {
            value: &[1, 2, 3],
            name: b"l2sec",
        }
        .write(&mut w)
        .unwrap();
        assert_eq!(w.written(), &[3, 1, 2, 3, b'l', b'2', b's', b'e', b'c']);
        let parsed = ValueAndName::parse(w.written()).unwrap();
        assert_eq!(
            parsed,
            ValueAndName {
                value: &[1, 2, 3],
                name: b"l2sec"
            }
        );
        assert_eq!(ValueAndName::parse(&[4, 1, 2, 3]), Err(Error::Truncated));
        assert_eq!(ValueAndName::parse(&[]), Err(Error::Truncated));
    }

    #[test]
    fn md5_response_rfc1994_layout() {
        // MD5(0x01 || "secret" || 16 x 0x00), computed independently with coreutils md5sum.
        let got = md5_response(1, &Password::new("secret"), &[0u8; 16]);
        let mut manual = Vec::new();
        manual.push(1);
        manual.extend_from_slice(b"secret");
        manual.extend_from_slice(&[0; 16]);
        assert_eq!(got, <[u8; 16]>::from(Md5::digest(&manual)));
        assert_ne!(got, md5_response(2, &Password::new("secret"), &[0u8; 16]));
    }

    #[test]
    fn mschapv2_response_value_layout() {
        let value = hex!(
            "21402324255E262A28295F2B3A337C7E 0000000000000000"
            "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF 00"
        );
        let r = MsChapV2Response::parse(&value).unwrap();
        assert_eq!(r.peer_challenge, hex!("21402324255E262A28295F2B3A337C7E"));
        assert_eq!(r.nt_response[0], 0x82);
        assert_eq!(r.to_bytes(), value);
        assert_eq!(
            MsChapV2Response::parse(&value[..48]),
            Err(Error::BadLength(48))
        );
    }

    #[test]
    fn mschapv2_failure_message() {
        let mut buf = [0u8; 128];
        let mut w = codec::Writer::new(&mut buf);
        write_mschapv2_failure(&mut w, 691, &[0xab; 16], "Authentication failure").unwrap();
        let text = core::str::from_utf8(w.written()).unwrap();
        assert_eq!(
            text,
            "E=691 R=0 C=ABABABABABABABABABABABABABABABAB V=3 M=Authentication failure"
        );
        assert_eq!(mschapv2_failure_code(w.written()), Some(691));
        assert_eq!(mschapv2_failure_code(b"E=649 R=0"), Some(649));
        assert_eq!(mschapv2_failure_code(b"garbage"), None);
    }
}
