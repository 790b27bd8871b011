//! The MD5 constructions of RADIUS: User-Password hiding (RFC 2865 §5.2), salt encryption of
//! MPPE keys (RFC 2548 §2.4.2), the Request and Response Authenticators (RFC 2865 §3,
//! RFC 2866 §3, RFC 5176 §2.3) and Message-Authenticator (RFC 3579 §3.2, HMAC-MD5).
//!
//! MD5 and HMAC-MD5 come from RustCrypto (`md-5`, `hmac`). Authenticators are compared in
//! constant time (`subtle`). Secrets, passwords and keys live in types that zeroize on drop and
//! never print their bytes.

use crate::wire::{Authenticator, EncryptedKey, Error, HEADER_LEN, WriteError};
use core::fmt;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The longest User-Password RFC 2865 §5.2 can carry.
pub const MAX_PASSWORD_LEN: usize = 128;

/// A shared secret between us and one RADIUS server (RFC 2865 §3): the workspace's one
/// secret type, zeroized on drop, compared in constant time, printed as `Secret(<redacted>)`.
pub use codec::Secret;

/// A clear-text password (PAP). Zeroized on drop; `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps password bytes.
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The bytes. Do not log them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A decrypted MS-MPPE-Send-Key or MS-MPPE-Recv-Key. Zeroized on drop; `Debug` prints
/// `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKey(Vec<u8>);

impl MppeKey {
    /// Wraps key bytes.
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key. RFC 2548 §2.4.2: the client truncates a longer key to what MPPE needs.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MppeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MppeKey(<{} bytes redacted>)", self.0.len())
    }
}

impl Drop for MppeKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// MD5 over the concatenation of `parts`.
#[must_use]
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// HMAC-MD5 (RFC 2104) keyed with `key` over the concatenation of `parts`.
#[must_use]
pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length (RFC 2104 §2); `new_from_slice` cannot fail for it.
    let Ok(mut mac) = <Hmac<Md5> as KeyInit>::new_from_slice(key) else {
        return [0; 16];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality of two 16-octet values.
#[must_use]
pub(crate) fn ct_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.ct_eq(b).into()
}

/// The chain of RFC 2865 §5.2 and RFC 2548 §2.4.2: `b(1) = MD5(S + first)`,
/// `b(i) = MD5(S + c(i-1))`, `c(i) = p(i) xor b(i)`, over `data` in place, which must be a
/// multiple of 16 octets.
fn md5_chain(secret: &Secret, first: &[&[u8]], data: &mut [u8], direction: Direction) {
    let mut previous = [0u8; 16];
    for (i, block) in data.chunks_exact_mut(16).enumerate() {
        let mut b = Zeroizing::new(if i == 0 {
            let mut h = Md5::new();
            h.update(secret.expose());
            for part in first {
                h.update(part);
            }
            <[u8; 16]>::from(h.finalize())
        } else {
            md5(&[secret.expose(), &previous])
        });
        if direction == Direction::Decrypt {
            previous.copy_from_slice(block);
        }
        for (x, k) in block.iter_mut().zip(b.iter()) {
            *x ^= k;
        }
        if direction == Direction::Encrypt {
            previous.copy_from_slice(block);
        }
        b.zeroize();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Encrypt,
    Decrypt,
}

/// The length of a hidden User-Password for a password of `len` octets: padded with zeros to
/// a multiple of 16, at least 16 (RFC 2865 §5.2).
#[must_use]
pub const fn hidden_password_len(len: usize) -> usize {
    if len == 0 { 16 } else { len.div_ceil(16) * 16 }
}

/// Hides a User-Password (RFC 2865 §5.2) into `out`, which must hold
/// [`hidden_password_len`] octets; returns that length.
///
/// # Errors
/// [`WriteError::PasswordTooLong`] past 128 octets, [`WriteError::NoSpace`] if `out` is short.
pub fn hide_user_password(
    password: &[u8],
    secret: &Secret,
    authenticator: &Authenticator,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(WriteError::PasswordTooLong(password.len()));
    }
    let len = hidden_password_len(password.len());
    let out = out.get_mut(..len).ok_or(WriteError::NoSpace)?;
    out.fill(0);
    out[..password.len()].copy_from_slice(password);
    md5_chain(secret, &[&authenticator.0], out, Direction::Encrypt);
    Ok(len)
}

/// Reveals a hidden User-Password (RFC 2865 §5.2) and strips the zero padding.
///
/// # Errors
/// [`Error::Encrypted`] unless `hidden` is 16 to 128 octets in multiples of 16.
pub fn reveal_user_password(
    hidden: &[u8],
    secret: &Secret,
    authenticator: &Authenticator,
) -> Result<Password, Error> {
    if hidden.is_empty() || hidden.len() > MAX_PASSWORD_LEN || !hidden.len().is_multiple_of(16) {
        return Err(Error::Encrypted);
    }
    let mut plain = hidden.to_vec();
    md5_chain(secret, &[&authenticator.0], &mut plain, Direction::Decrypt);
    let end = plain.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    plain[end..].zeroize();
    plain.truncate(end);
    Ok(Password(plain))
}

/// The length of a salt-encrypted value for a key of `key_len` octets: Salt, then Key-Length
/// and Key padded to a multiple of 16 (RFC 2548 §2.4.2).
#[must_use]
pub const fn salted_len(key_len: usize) -> usize {
    2 + (key_len + 1).div_ceil(16) * 16
}

/// Salt-encrypts a key (RFC 2548 §2.4.2) into `out` as Salt + String; returns the length,
/// [`salted_len`]. `request_authenticator` is the one of the Access-Request being answered.
///
/// # Errors
/// [`WriteError::KeyTooLong`] for a key of more than 255 octets, [`WriteError::BadSalt`]
/// for a salt without its high bit, [`WriteError::NoSpace`] if `out` is short.
pub fn encrypt_salted(
    key: &[u8],
    salt: [u8; 2],
    secret: &Secret,
    request_authenticator: &Authenticator,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    let key_len = u8::try_from(key.len()).map_err(|_| WriteError::KeyTooLong(key.len()))?;
    if salt[0] & 0x80 == 0 {
        return Err(WriteError::BadSalt);
    }
    let len = salted_len(key.len());
    let out = out.get_mut(..len).ok_or(WriteError::NoSpace)?;
    out.fill(0);
    out[..2].copy_from_slice(&salt);
    out[2] = key_len;
    out[3..3 + key.len()].copy_from_slice(key);
    let (salt_field, string) = out.split_at_mut(2);
    md5_chain(
        secret,
        &[&request_authenticator.0, salt_field],
        string,
        Direction::Encrypt,
    );
    Ok(len)
}

/// Decrypts MS-MPPE-Send-Key or MS-MPPE-Recv-Key (RFC 2548 §2.4.2, §2.4.3) with the Request
/// Authenticator of the Access-Request it answers.
///
/// # Errors
/// [`Error::Encrypted`] when the decrypted Key-Length exceeds the String.
pub fn decrypt_salted(
    key: &EncryptedKey<'_>,
    secret: &Secret,
    request_authenticator: &Authenticator,
) -> Result<MppeKey, Error> {
    let mut plain = Zeroizing::new(key.string.to_vec());
    md5_chain(
        secret,
        &[&request_authenticator.0, &key.salt],
        &mut plain,
        Direction::Decrypt,
    );
    let (&key_len, rest) = plain.split_first().ok_or(Error::Encrypted)?;
    let bytes = rest.get(..usize::from(key_len)).ok_or(Error::Encrypted)?;
    Ok(MppeKey(bytes.to_vec()))
}

/// MD5(Code + Identifier + Length + `authenticator` + Attributes + Secret): the Response
/// Authenticator when `authenticator` is the request's (RFC 2865 §3), the Accounting-Request
/// and Dynamic Authorization Request Authenticator when it is zero (RFC 2866 §3,
/// RFC 5176 §2.3). `packet` is the whole packet up to Length.
#[must_use]
pub fn packet_authenticator(
    packet: &[u8],
    authenticator: &Authenticator,
    secret: &Secret,
) -> [u8; 16] {
    let head = packet.get(..4).unwrap_or_default();
    let attributes = packet.get(HEADER_LEN..).unwrap_or_default();
    md5(&[head, &authenticator.0, attributes, secret.expose()])
}

/// HMAC-MD5 keyed with the secret over the packet with `authenticator` in the Authenticator
/// field and the Message-Authenticator value (16 octets at `value_at`) zeroed (RFC 3579 §3.2).
#[must_use]
pub fn message_authenticator(
    packet: &[u8],
    authenticator: &Authenticator,
    value_at: usize,
    secret: &Secret,
) -> [u8; 16] {
    let head = packet.get(..4).unwrap_or_default();
    let before = packet.get(HEADER_LEN..value_at).unwrap_or_default();
    let after = packet.get(value_at + 16..).unwrap_or_default();
    hmac_md5(
        secret.expose(),
        &[head, &authenticator.0, before, &[0; 16], after],
    )
}

#[cfg(test)]
mod tests;
