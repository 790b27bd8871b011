//! The shared-secret MD5 constructions of RFC 2661: hidden AVP values (§4.3) and the tunnel
//! authentication Challenge Response (§4.4.3, §5.1.1).
//!
//! A hidden value is the subformat
//!
//! ```text
//! | Original Length (2) | Original Attribute Value … | Padding … |
//! ```
//!
//! XORed, 16 octets at a time, with a keystream: the first block with
//! MD5(Attribute Type ‖ secret ‖ Random Vector), every later block with MD5(secret ‖ previous
//! ciphertext block). A final block shorter than 16 octets uses a prefix of its keystream block.
//! The Random Vector is the value of the most recent Random Vector AVP before the hidden AVP.
//!
//! Nothing here allocates: hiding writes straight into the output [`codec::Writer`], revealing
//! works in place on the received datagram.

use core::ops::Range;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::avp::{AVP_HEADER_LEN, AttributeType, Flags, MAX_AVP_LEN, VENDOR_IETF};

const BLOCK: usize = 16;
const HIDDEN_BIT: u16 = 0x4000;
const LENGTH_BITS: u16 = 0x03ff;

/// Why hidden AVPs could not be revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HiddenError {
    /// The AVP chain is malformed.
    #[error("malformed AVP: {0}")]
    Wire(#[from] super::Error),
    /// A hidden AVP comes before any Random Vector AVP (RFC 2661 §4.3).
    #[error("hidden {0} AVP without a preceding Random Vector")]
    NoRandomVector(AttributeType),
    /// The revealed Original Length runs past the hidden value (wrong secret or corruption).
    #[error("hidden {0} AVP does not reveal to a valid subformat")]
    BadSubformat(AttributeType),
    /// Message Type and Random Vector are never hidden (RFC 2661 §4.3, §4.4.1).
    #[error("{0} AVP cannot be hidden")]
    NotHideable(AttributeType),
}

/// XORs `data` in place with the §4.3 keystream. `data` holds plaintext when `hide` is
/// `Direction::Hide` and ciphertext when revealing; the chain always runs over ciphertext.
fn apply_keystream(
    attribute: AttributeType,
    secret: &[u8],
    random_vector: &[u8],
    data: &mut [u8],
    direction: Direction,
) {
    let mut previous = [0u8; BLOCK];
    let mut keystream = [0u8; BLOCK];
    for (i, block) in data.chunks_mut(BLOCK).enumerate() {
        let hasher = if i == 0 {
            Md5::new()
                .chain_update(attribute.to_be_bytes())
                .chain_update(secret)
                .chain_update(random_vector)
        } else {
            Md5::new().chain_update(secret).chain_update(previous)
        };
        keystream.copy_from_slice(&hasher.finalize());
        // Keep the ciphertext block for the next link of the chain. Only full blocks are ever
        // chained from, since a short block is the last one.
        if direction == Direction::Reveal {
            previous[..block.len()].copy_from_slice(block);
        }
        for (b, k) in block.iter_mut().zip(keystream) {
            *b ^= k;
        }
        if direction == Direction::Hide {
            previous[..block.len()].copy_from_slice(block);
        }
    }
    keystream.zeroize();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Hide,
    Reveal,
}

/// Writes one IETF AVP with the H bit set: `value` hidden with `secret` and `random_vector`,
/// followed by `padding` (caller-chosen, usually random, to hide the value's length).
///
/// The caller must have written the Random Vector AVP carrying `random_vector` earlier in the
/// same message (RFC 2661 §4.3).
///
/// # Errors
/// [`codec::NoSpace`] when the AVP does not fit in `w` or exceeds the 1023-byte AVP limit;
/// nothing is written then.
pub fn put_hidden(
    w: &mut codec::Writer<'_>,
    attribute: AttributeType,
    flags: Flags,
    value: &[u8],
    secret: &[u8],
    random_vector: &[u8],
    padding: &[u8],
) -> Result<(), codec::NoSpace> {
    let original_len = u16::try_from(value.len()).map_err(|_| codec::NoSpace)?;
    super::avp::put_with(w, attribute, flags | Flags::HIDDEN, |w| {
        let start = w.len();
        w.put_u16(original_len)?;
        w.put_slice(value)?;
        w.put_slice(padding)?;
        let subformat = w.written_mut().get_mut(start..).ok_or(codec::NoSpace)?;
        apply_keystream(attribute, secret, random_vector, subformat, Direction::Hide);
        Ok(())
    })
}

/// Reveals one hidden value in place and returns the range of the original value within it.
///
/// # Errors
/// [`HiddenError::BadSubformat`] when the revealed Original Length runs past the value.
pub fn reveal_in_place(
    attribute: AttributeType,
    secret: &[u8],
    random_vector: &[u8],
    value: &mut [u8],
) -> Result<Range<usize>, HiddenError> {
    apply_keystream(attribute, secret, random_vector, value, Direction::Reveal);
    let &[hi, lo, ..] = &*value else {
        return Err(HiddenError::BadSubformat(attribute));
    };
    let end = 2 + usize::from(u16::from_be_bytes([hi, lo]));
    if end > value.len() {
        return Err(HiddenError::BadSubformat(attribute));
    }
    Ok(2..end)
}

/// Reveals every hidden AVP of a control message body in place and returns the new body
/// length: each hidden AVP is rewritten as a plain one (H clear, Length = 6 + original length,
/// padding dropped) and the following AVPs move up to close the gap. The result can be handed
/// to [`super::ControlMessage::parse`].
///
/// One pass, no allocation. Each hidden AVP is keyed by the latest Random Vector before it.
///
/// # Errors
/// [`HiddenError`]; the body is left partly rewritten then and must be dropped.
pub fn reveal_body(body: &mut [u8], secret: &[u8]) -> Result<usize, HiddenError> {
    let mut read = 0;
    let mut write = 0;
    // The latest Random Vector value, as a range of the already rewritten part of `body`.
    let mut random_vector: Option<Range<usize>> = None;
    while read < body.len() {
        let rest = body.get(read..).unwrap_or_default();
        let &[f0, f1, v0, v1, a0, a1, ..] = rest else {
            return Err(super::Error::Truncated.into());
        };
        let bits = u16::from_be_bytes([f0, f1]);
        let len = usize::from(bits & LENGTH_BITS);
        // RFC 2661 §4.1: Length covers the six header octets.
        if len < AVP_HEADER_LEN {
            return Err(super::Error::AvpLength(len).into());
        }
        if len > rest.len() {
            return Err(super::Error::Truncated.into());
        }
        let attribute = AttributeType(u16::from_be_bytes([a0, a1]));
        let is_ietf = u16::from_be_bytes([v0, v1]) == VENDOR_IETF;
        let hidden = bits & HIDDEN_BIT != 0;
        let never_hidden = [AttributeType::MESSAGE_TYPE, AttributeType::RANDOM_VECTOR];
        if hidden && is_ietf && never_hidden.contains(&attribute) {
            return Err(HiddenError::NotHideable(attribute));
        }
        if hidden {
            let rv = random_vector
                .clone()
                .ok_or(HiddenError::NoRandomVector(attribute))?;
            // The Random Vector lies in the rewritten part, before `write <= read`.
            let (done, pending) = body.split_at_mut(read);
            let rv = done.get(rv).ok_or(super::Error::Truncated)?;
            let value = pending
                .get_mut(AVP_HEADER_LEN..len)
                .ok_or(super::Error::Truncated)?;
            let original = reveal_in_place(attribute, secret, rv, value)?;
            let new_len = AVP_HEADER_LEN + original.len();
            body.copy_within(read..read + AVP_HEADER_LEN, write);
            let from = read + AVP_HEADER_LEN + original.start;
            body.copy_within(from..from + original.len(), write + AVP_HEADER_LEN);
            let word = (bits & !HIDDEN_BIT & !LENGTH_BITS)
                | u16::try_from(new_len.min(MAX_AVP_LEN)).unwrap_or(0);
            if let Some(field) = body.get_mut(write..write + 2) {
                field.copy_from_slice(&word.to_be_bytes());
            }
            write += new_len;
        } else {
            body.copy_within(read..read + len, write);
            if is_ietf && attribute == AttributeType::RANDOM_VECTOR {
                random_vector = Some(write + AVP_HEADER_LEN..write + len);
            }
            write += len;
        }
        read += len;
    }
    Ok(write)
}

/// The message that carries a Challenge Response, which fixes the first octet hashed
/// (RFC 2661 §4.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseIn {
    /// The LNS answers the SCCRQ's challenge in SCCRP (octet 2).
    Sccrp,
    /// The LAC answers the SCCRP's challenge in SCCCN (octet 3).
    Scccn,
}

impl ResponseIn {
    const fn octet(self) -> u8 {
        match self {
            Self::Sccrp => 2,
            Self::Scccn => 3,
        }
    }
}

/// The Challenge Response: MD5 over the message type octet, the tunnel secret and the peer's
/// challenge, as in CHAP (RFC 2661 §4.4.3, §5.1.1).
#[must_use]
pub fn challenge_response(carrier: ResponseIn, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    Md5::new()
        .chain_update([carrier.octet()])
        .chain_update(secret)
        .chain_update(challenge)
        .finalize()
        .into()
}

/// Checks a received Challenge Response in constant time (RFC 2661 §5.1.1).
#[must_use]
pub fn verify_challenge_response(
    carrier: ResponseIn,
    secret: &[u8],
    challenge: &[u8],
    response: &[u8; 16],
) -> bool {
    let mut expected = challenge_response(carrier, secret, challenge);
    let ok = expected.ct_eq(response).into();
    expected.zeroize();
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::avp::{self, Avps};
    use hex_literal::hex;
    use proptest::prelude::*;

    fn md5(parts: &[&[u8]]) -> [u8; 16] {
        let mut h = Md5::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    /// RFC 2661 §4.3 computed step by step for a 20-byte value with 3 bytes of padding: the
    /// 25-byte subformat is one full block and one 9-byte block.
    #[test]
    fn hiding_matches_the_rfc_2661_algorithm_step_by_step() {
        let secret = b"tunnel-secret";
        let rv = hex!("0102030405060708090a0b0c0d0e0f10");
        let value = *b"proxy-authen-respons";
        let padding = [0xaa, 0xbb, 0xcc];
        let attribute = AttributeType::PROXY_AUTHEN_RESPONSE; // 33 = 0x0021

        let mut subformat = Vec::new();
        subformat.extend_from_slice(&[0x00, 20]);
        subformat.extend_from_slice(&value);
        subformat.extend_from_slice(&padding);
        assert_eq!(subformat.len(), 25);
        let (p1, p2) = subformat.split_at(16);

        let b1 = md5(&[&[0x00, 0x21], secret, &rv]);
        let c1: Vec<u8> = p1.iter().zip(b1).map(|(p, b)| p ^ b).collect();
        let b2 = md5(&[secret, &c1]);
        let c2: Vec<u8> = p2.iter().zip(b2).map(|(p, b)| p ^ b).collect();

        let mut expected = vec![0x80 | 0x40, 6 + 25, 0x00, 0x00, 0x00, 0x21];
        expected.extend_from_slice(&c1);
        expected.extend_from_slice(&c2);

        let mut buf = [0u8; 64];
        let mut w = codec::Writer::new(&mut buf);
        put_hidden(
            &mut w,
            attribute,
            Flags::MANDATORY,
            &value,
            secret,
            &rv,
            &padding,
        )
        .unwrap();
        assert_eq!(w.written(), &expected[..]);

        let mut hidden_value = expected[6..].to_vec();
        let range = reveal_in_place(attribute, secret, &rv, &mut hidden_value).unwrap();
        assert_eq!(&hidden_value[range], &value);
    }

    #[test]
    fn a_wrong_secret_reveals_an_impossible_original_length() {
        let mut buf = [0u8; 64];
        let mut w = codec::Writer::new(&mut buf);
        let rv = [7u8; 16];
        put_hidden(
            &mut w,
            AttributeType::CALLING_NUMBER,
            Flags::MANDATORY,
            b"12",
            b"right",
            &rv,
            &[],
        )
        .unwrap();
        let mut value = w.written()[6..].to_vec();
        assert_eq!(
            reveal_in_place(AttributeType::CALLING_NUMBER, b"wrong", &rv, &mut value),
            Err(HiddenError::BadSubformat(AttributeType::CALLING_NUMBER))
        );
    }

    fn body_with_hidden(secret: &[u8], rv: &[u8], padding: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut w = codec::Writer::new(&mut buf);
        avp::put(
            &mut w,
            AttributeType::MESSAGE_TYPE,
            Flags::MANDATORY,
            &[0, 12],
        )
        .unwrap();
        avp::put(
            &mut w,
            AttributeType::TX_CONNECT_SPEED,
            Flags::MANDATORY,
            &[0, 0, 0, 9],
        )
        .unwrap();
        avp::put(&mut w, AttributeType::RANDOM_VECTOR, Flags::MANDATORY, rv).unwrap();
        put_hidden(
            &mut w,
            AttributeType::PROXY_AUTHEN_NAME,
            Flags::NONE,
            b"alice",
            secret,
            rv,
            padding,
        )
        .unwrap();
        avp::put(
            &mut w,
            AttributeType::FRAMING_TYPE,
            Flags::MANDATORY,
            &[0, 0, 0, 1],
        )
        .unwrap();
        put_hidden(
            &mut w,
            AttributeType::PROXY_AUTHEN_RESPONSE,
            Flags::NONE,
            &[0x5a; 40],
            secret,
            rv,
            padding,
        )
        .unwrap();
        w.written().to_vec()
    }

    #[test]
    fn reveal_body_rewrites_hidden_avps_as_plain_ones() {
        let mut body = body_with_hidden(b"s3cret", &[1, 2, 3, 4], &[0; 7]);
        let n = reveal_body(&mut body, b"s3cret").unwrap();
        let message = crate::wire::ControlMessage::parse(Avps::new(&body[..n])).unwrap();
        let crate::wire::ControlMessage::Iccn(iccn) = message else {
            panic!("not an ICCN: {message:?}");
        };
        assert_eq!(iccn.proxy_authen_name, Some(&b"alice"[..]));
        assert_eq!(iccn.proxy_authen_response, Some(&[0x5a; 40][..]));
        assert_eq!(iccn.tx_connect_speed, 9);
    }

    #[test]
    fn unrevealed_hidden_avps_are_refused_by_the_message_parser() {
        let body = body_with_hidden(b"s3cret", &[1, 2, 3, 4], &[]);
        assert_eq!(
            crate::wire::ControlMessage::parse(Avps::new(&body)),
            Err(crate::wire::MessageError::Hidden(
                AttributeType::PROXY_AUTHEN_NAME
            ))
        );
    }

    #[test]
    fn a_hidden_avp_needs_a_random_vector_before_it() {
        let mut buf = [0u8; 128];
        let mut w = codec::Writer::new(&mut buf);
        avp::put(
            &mut w,
            AttributeType::MESSAGE_TYPE,
            Flags::MANDATORY,
            &[0, 12],
        )
        .unwrap();
        put_hidden(
            &mut w,
            AttributeType::PROXY_AUTHEN_NAME,
            Flags::NONE,
            b"x",
            b"s",
            &[1],
            &[],
        )
        .unwrap();
        avp::put(&mut w, AttributeType::RANDOM_VECTOR, Flags::MANDATORY, &[1]).unwrap();
        let mut body = w.written().to_vec();
        assert_eq!(
            reveal_body(&mut body, b"s"),
            Err(HiddenError::NoRandomVector(
                AttributeType::PROXY_AUTHEN_NAME
            ))
        );
        // A hidden Message Type is refused outright.
        let mut body = hex!("c008 0000 0000 0001").to_vec();
        assert_eq!(
            reveal_body(&mut body, b"s"),
            Err(HiddenError::NotHideable(AttributeType::MESSAGE_TYPE))
        );
        // Malformed chains are reported, not panicked on.
        assert_eq!(
            reveal_body(&mut hex!("8005 0000 0000").to_vec(), b"s"),
            Err(HiddenError::Wire(crate::wire::Error::AvpLength(5)))
        );
        assert_eq!(
            reveal_body(&mut hex!("8009 0000 0000 01").to_vec(), b"s"),
            Err(HiddenError::Wire(crate::wire::Error::Truncated))
        );
    }

    #[test]
    fn challenge_response_is_md5_of_type_octet_secret_and_challenge() {
        let challenge = hex!("00112233445566778899aabbccddeeff");
        let sccrp = challenge_response(ResponseIn::Sccrp, b"secret", &challenge);
        assert_eq!(sccrp, md5(&[&[2], b"secret", &challenge]));
        let scccn = challenge_response(ResponseIn::Scccn, b"secret", &challenge);
        assert_eq!(scccn, md5(&[&[3], b"secret", &challenge]));
        assert!(verify_challenge_response(
            ResponseIn::Sccrp,
            b"secret",
            &challenge,
            &sccrp
        ));
        assert!(!verify_challenge_response(
            ResponseIn::Scccn,
            b"secret",
            &challenge,
            &sccrp
        ));
        assert!(!verify_challenge_response(
            ResponseIn::Sccrp,
            b"Secret",
            &challenge,
            &sccrp
        ));
    }

    proptest! {
        #[test]
        fn hide_then_reveal_round_trips(
            attribute: u16,
            value in proptest::collection::vec(any::<u8>(), 0..300),
            secret in proptest::collection::vec(any::<u8>(), 0..40),
            rv in proptest::collection::vec(any::<u8>(), 1..40),
            padding in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let attribute = AttributeType(attribute);
            let mut buf = [0u8; 512];
            let mut w = codec::Writer::new(&mut buf);
            put_hidden(&mut w, attribute, Flags::NONE, &value, &secret, &rv, &padding).unwrap();
            let avp = Avps::new(w.written()).next().unwrap().unwrap();
            prop_assert!(avp.hidden);
            prop_assert_eq!(avp.value.len(), 2 + value.len() + padding.len());
            let mut hidden_value = avp.value.to_vec();
            let range = reveal_in_place(attribute, &secret, &rv, &mut hidden_value).unwrap();
            prop_assert_eq!(&hidden_value[range], &value[..]);
        }

        #[test]
        fn reveal_body_equals_the_plain_body(
            secret in proptest::collection::vec(any::<u8>(), 0..24),
            rv in proptest::collection::vec(any::<u8>(), 1..24),
            padding in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let mut body = body_with_hidden(&secret, &rv, &padding);
            let n = reveal_body(&mut body, &secret).unwrap();
            let mut plain = [0u8; 512];
            let mut w = codec::Writer::new(&mut plain);
            avp::put(&mut w, AttributeType::MESSAGE_TYPE, Flags::MANDATORY, &[0, 12]).unwrap();
            avp::put(&mut w, AttributeType::TX_CONNECT_SPEED, Flags::MANDATORY, &[0, 0, 0, 9]).unwrap();
            avp::put(&mut w, AttributeType::RANDOM_VECTOR, Flags::MANDATORY, &rv).unwrap();
            avp::put(&mut w, AttributeType::PROXY_AUTHEN_NAME, Flags::NONE, b"alice").unwrap();
            avp::put(&mut w, AttributeType::FRAMING_TYPE, Flags::MANDATORY, &[0, 0, 0, 1]).unwrap();
            avp::put(&mut w, AttributeType::PROXY_AUTHEN_RESPONSE, Flags::NONE, &[0x5a; 40]).unwrap();
            prop_assert_eq!(&body[..n], w.written());
        }

        #[test]
        fn reveal_body_never_panics(
            mut body in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            if let Ok(n) = reveal_body(&mut body, b"k") {
                prop_assert!(n <= body.len());
            }
        }
    }
}
