//! MS-CHAP-V2 (RFC 2759 §8) and the MPPE key derivation of RFC 3079 §3.
//!
//! Pure functions over fixed-size arrays: the session feeds them the values it parsed from the
//! CHAP packets, and the local user store or a RADIUS server supplies the NT password hash.

use des::Des;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};
use md4::Md4;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `NtPasswordHash`: MD4 of the password in UTF-16LE (RFC 2759 §8.3).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct NtHash(pub [u8; 16]);

impl core::fmt::Debug for NtHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NtHash(<redacted>)")
    }
}

impl NtHash {
    /// Hashes a password given as UTF-8 text.
    #[must_use]
    pub fn of_password(password: &str) -> Self {
        let mut md4 = Md4::new();
        for unit in password.encode_utf16() {
            md4.update(unit.to_le_bytes());
        }
        Self(md4.finalize().into())
    }

    /// `HashNtPasswordHash` (RFC 2759 §8.4): MD4 of the hash, used by the authenticator response
    /// and the MPPE master key.
    #[must_use]
    pub fn hash_hash(&self) -> [u8; 16] {
        Md4::digest(self.0).into()
    }
}

/// The user name as it enters `ChallengeHash`: without a Windows `DOMAIN\` prefix (RFC 2759 §8.2).
#[must_use]
pub fn hashed_user_name(user_name: &[u8]) -> &[u8] {
    match user_name.iter().rposition(|&b| b == b'\\') {
        Some(at) => &user_name[at + 1..],
        None => user_name,
    }
}

/// `ChallengeHash` (RFC 2759 §8.2): the 8-byte challenge both responses are computed over.
#[must_use]
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 8] {
    let digest = Sha1::new()
        .chain_update(peer_challenge)
        .chain_update(authenticator_challenge)
        .chain_update(hashed_user_name(user_name))
        .finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// Spreads 56 key bits over 8 bytes, leaving the DES parity bit (the lowest) clear
/// (RFC 2759 §8.6 `DesEncrypt`).
fn des_key(seven: &[u8]) -> [u8; 8] {
    let mut bits = 0u64;
    for &b in seven.iter().take(7) {
        bits = (bits << 8) | u64::from(b);
    }
    let mut key = [0; 8];
    for (i, k) in key.iter_mut().enumerate() {
        let seven_bits = ((bits >> (49 - 7 * i)) & 0x7f) as u8;
        *k = seven_bits << 1;
    }
    key
}

/// `ChallengeResponse` (RFC 2759 §8.5): three DES encryptions of the challenge under the
/// zero-padded 21-byte password hash.
#[must_use]
pub fn challenge_response(challenge: &[u8; 8], hash: &NtHash) -> [u8; 24] {
    let mut padded = [0u8; 21];
    padded[..16].copy_from_slice(&hash.0);
    let mut out = [0u8; 24];
    for (chunk, key_bytes) in out.chunks_exact_mut(8).zip(padded.chunks_exact(7)) {
        let mut key = des_key(key_bytes);
        let cipher = Des::new(&Array::from(key));
        let mut block = Array::from(*challenge);
        cipher.encrypt_block(&mut block);
        chunk.copy_from_slice(&block);
        key.zeroize();
    }
    padded.zeroize();
    out
}

/// `GenerateNTResponse` (RFC 2759 §8.1): what the peer sends to prove it knows the password.
#[must_use]
pub fn generate_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    hash: &NtHash,
) -> [u8; 24] {
    challenge_response(
        &challenge_hash(peer_challenge, authenticator_challenge, user_name),
        hash,
    )
}

/// Checks a peer's NT-Response in constant time.
#[must_use]
pub fn verify_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    hash: &NtHash,
    nt_response: &[u8; 24],
) -> bool {
    let expected = generate_nt_response(authenticator_challenge, peer_challenge, user_name, hash);
    expected.ct_eq(nt_response).into()
}

/// The authenticator response `S=<40 hex digits>` the server sends in Success and the peer must
/// verify (RFC 2759 §8.7).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatorResponse(pub [u8; 42]);

impl core::fmt::Debug for AuthenticatorResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AuthenticatorResponse(")?;
        f.write_str(core::str::from_utf8(&self.0).unwrap_or("?"))?;
        f.write_str(")")
    }
}

impl AuthenticatorResponse {
    /// Parses the 42 characters `S=` + 40 hexadecimal digits (either case).
    #[must_use]
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text: &[u8; 42] = text.get(..42)?.try_into().ok()?;
        if &text[..2] != b"S=" || !text[2..].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut out = *text;
        out[2..].make_ascii_uppercase();
        Some(Self(out))
    }

    /// Constant-time comparison with what we computed.
    #[must_use]
    pub fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// `GenerateAuthenticatorResponse` (RFC 2759 §8.7).
#[must_use]
pub fn authenticator_response(
    hash: &NtHash,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> AuthenticatorResponse {
    const MAGIC1: &[u8] = b"Magic server to client signing constant";
    const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";
    let digest = Sha1::new()
        .chain_update(hash.hash_hash())
        .chain_update(nt_response)
        .chain_update(MAGIC1)
        .finalize();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    let digest = Sha1::new()
        .chain_update(digest)
        .chain_update(challenge)
        .chain_update(MAGIC2)
        .finalize();
    let mut out = [0u8; 42];
    out[..2].copy_from_slice(b"S=");
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for (pair, byte) in out[2..].chunks_exact_mut(2).zip(digest.iter()) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    AuthenticatorResponse(out)
}

/// Which end of the link derives MPPE keys (the send key of one is the receive key of the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The authenticator (our LNS).
    Server,
    /// The peer (our client).
    Client,
}

/// 128-bit MPPE keys for one side (RFC 3079 §3.3–3.4): the master key and the start keys of each
/// direction, plus the initial session keys.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MppeKeys {
    /// `GetMasterKey`.
    pub master: [u8; 16],
    /// `GetAsymmetricStartKey(IsSend = true)` for this side.
    pub send_start: [u8; 16],
    /// `GetAsymmetricStartKey(IsSend = false)` for this side.
    pub receive_start: [u8; 16],
}

impl core::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MppeKeys(<redacted>)")
    }
}

const SHS_PAD1: [u8; 40] = [0; 40];
const SHS_PAD2: [u8; 40] = [0xf2; 40];

impl MppeKeys {
    /// Derives the keys from the password hash and the NT-Response of a successful exchange.
    #[must_use]
    pub fn derive(side: Side, hash: &NtHash, nt_response: &[u8; 24]) -> Self {
        const CLIENT_SEND: &[u8] =
            b"On the client side, this is the send key; on the server side, it is the receive key.";
        const CLIENT_RECEIVE: &[u8] =
            b"On the client side, this is the receive key; on the server side, it is the send key.";
        let master = master_key(hash, nt_response);
        let (send_magic, receive_magic) = match side {
            Side::Client => (CLIENT_SEND, CLIENT_RECEIVE),
            Side::Server => (CLIENT_RECEIVE, CLIENT_SEND),
        };
        Self {
            master,
            send_start: start_key(&master, send_magic),
            receive_start: start_key(&master, receive_magic),
        }
    }

    /// The first 128-bit session key of the send direction (`GetNewKeyFromSHA` of the start key
    /// with itself, RFC 3079 §3.1 and §2.4).
    #[must_use]
    pub fn send_session_key(&self) -> [u8; 16] {
        new_key_from_sha(&self.send_start, &self.send_start)
    }

    /// The first 128-bit session key of the receive direction.
    #[must_use]
    pub fn receive_session_key(&self) -> [u8; 16] {
        new_key_from_sha(&self.receive_start, &self.receive_start)
    }
}

/// `GetMasterKey` (RFC 3079 §3.4).
#[must_use]
pub fn master_key(hash: &NtHash, nt_response: &[u8; 24]) -> [u8; 16] {
    const MAGIC1: &[u8] = b"This is the MPPE Master Key";
    let digest = Sha1::new()
        .chain_update(hash.hash_hash())
        .chain_update(nt_response)
        .chain_update(MAGIC1)
        .finalize();
    first16(&digest)
}

fn start_key(master: &[u8; 16], magic: &[u8]) -> [u8; 16] {
    let digest = Sha1::new()
        .chain_update(master)
        .chain_update(SHS_PAD1)
        .chain_update(magic)
        .chain_update(SHS_PAD2)
        .finalize();
    first16(&digest)
}

/// `GetNewKeyFromSHA` for 128-bit keys (RFC 3079 §7.3).
#[must_use]
pub fn new_key_from_sha(start: &[u8; 16], session: &[u8; 16]) -> [u8; 16] {
    let digest = Sha1::new()
        .chain_update(start)
        .chain_update(SHS_PAD1)
        .chain_update(session)
        .chain_update(SHS_PAD2)
        .finalize();
    first16(&digest)
}

fn first16(digest: &[u8]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // RFC 2759 §9.2, verbatim.
    const USER: &[u8] = b"User";
    const PASSWORD: &str = "clientPass";
    const AUTH_CHALLENGE: [u8; 16] = hex!("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28");
    const PEER_CHALLENGE: [u8; 16] = hex!("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E");
    const CHALLENGE: [u8; 8] = hex!("D0 2E 43 86 BC E9 12 26");
    const NT_RESPONSE: [u8; 24] =
        hex!("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF");
    const PASSWORD_HASH: [u8; 16] = hex!("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE");
    const PASSWORD_HASH_HASH: [u8; 16] = hex!("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F");
    const AUTHENTICATOR_RESPONSE: &[u8] = b"S=407A5589115FD0D6209F510FE9C04566932CDA56";

    #[test]
    fn rfc2759_section_9_2_vectors() {
        let hash = NtHash::of_password(PASSWORD);
        assert_eq!(hash.0, PASSWORD_HASH);
        assert_eq!(hash.hash_hash(), PASSWORD_HASH_HASH);
        assert_eq!(
            challenge_hash(&PEER_CHALLENGE, &AUTH_CHALLENGE, USER),
            CHALLENGE
        );
        assert_eq!(
            generate_nt_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, USER, &hash),
            NT_RESPONSE
        );
        assert!(verify_nt_response(
            &AUTH_CHALLENGE,
            &PEER_CHALLENGE,
            USER,
            &hash,
            &NT_RESPONSE
        ));
        let response =
            authenticator_response(&hash, &NT_RESPONSE, &PEER_CHALLENGE, &AUTH_CHALLENGE, USER);
        assert_eq!(&response.0[..], AUTHENTICATOR_RESPONSE);
        assert!(response.matches(&AuthenticatorResponse::parse(AUTHENTICATOR_RESPONSE).unwrap()));
    }

    #[test]
    fn rfc3079_section_3_5_3_vectors() {
        let hash = NtHash::of_password(PASSWORD);
        assert_eq!(
            master_key(&hash, &NT_RESPONSE),
            hex!("FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31")
        );
        let server = MppeKeys::derive(Side::Server, &hash, &NT_RESPONSE);
        assert_eq!(
            server.send_start,
            hex!("8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB")
        );
        assert_eq!(
            server.send_session_key(),
            hex!("40 5C B2 24 7A 79 56 E6 E2 11 00 7A E2 7B 22 D4")
        );
        let client = MppeKeys::derive(Side::Client, &hash, &NT_RESPONSE);
        assert_eq!(
            client.receive_start, server.send_start,
            "one side's send key is the other's receive key"
        );
        assert_eq!(client.send_start, server.receive_start);
        assert_ne!(client.send_start, client.receive_start);
    }

    #[test]
    fn wrong_password_or_altered_response_fails() {
        let hash = NtHash::of_password("clientPasss");
        assert!(!verify_nt_response(
            &AUTH_CHALLENGE,
            &PEER_CHALLENGE,
            USER,
            &hash,
            &NT_RESPONSE
        ));
        let mut altered = NT_RESPONSE;
        altered[23] ^= 1;
        assert!(!verify_nt_response(
            &AUTH_CHALLENGE,
            &PEER_CHALLENGE,
            USER,
            &NtHash::of_password(PASSWORD),
            &altered
        ));
    }

    #[test]
    fn domain_prefix_is_not_hashed() {
        assert_eq!(hashed_user_name(b"CORP\\User"), b"User");
        assert_eq!(
            challenge_hash(&PEER_CHALLENGE, &AUTH_CHALLENGE, b"CORP\\User"),
            CHALLENGE
        );
        assert_eq!(hashed_user_name(b"hb@hb"), b"hb@hb");
    }

    #[test]
    fn authenticator_response_parsing() {
        let lower = b"S=407a5589115fd0d6209f510fe9c04566932cda56";
        assert_eq!(
            AuthenticatorResponse::parse(lower).unwrap().0[..],
            AUTHENTICATOR_RESPONSE[..]
        );
        assert!(AuthenticatorResponse::parse(&AUTHENTICATOR_RESPONSE[..41]).is_none());
        assert!(
            AuthenticatorResponse::parse(b"X=407A5589115FD0D6209F510FE9C04566932CDA56").is_none()
        );
        assert!(
            AuthenticatorResponse::parse(b"S=407A5589115FD0D6209F510FE9C04566932CDAZ6").is_none()
        );
        assert!(!format!("{:?}", NtHash::of_password(PASSWORD)).contains("44"));
    }
}
