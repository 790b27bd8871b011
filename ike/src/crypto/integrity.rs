//! ESP integrity transforms: truncated HMACs over the packet from the SPI to the end of the
//! ciphertext (RFC 4303 §2.8, §3.3.4). HMAC-SHA1-96 (RFC 2404) and HMAC-SHA2 (RFC 4868).

use ::hmac::{KeyInit as _, Mac as _};
use core::fmt;
use ring::hmac;
use subtle::ConstantTimeEq;

/// The longest ICV any [`IntegrityAlgorithm`] produces, in bytes.
pub const MAX_ICV_LEN: usize = 32;

/// The integrity algorithms we implement: a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityAlgorithm {
    /// HMAC-SHA1 truncated to 96 bits (RFC 2404).
    HmacSha1_96,
    /// HMAC-SHA-256 truncated to 128 bits (RFC 4868).
    HmacSha256_128,
    /// HMAC-SHA-256 truncated to 96 bits.
    ///
    /// Interop (older Android and Linux kernels before 2.6.33): they truncate SHA-256 to 96 bits
    /// like SHA-1 instead of RFC 4868's 128, so this variant is offered for them only.
    HmacSha256_96,
    /// HMAC-SHA-384 truncated to 192 bits (RFC 4868).
    HmacSha384_192,
    /// HMAC-SHA-512 truncated to 256 bits (RFC 4868).
    HmacSha512_256,
}

impl IntegrityAlgorithm {
    /// Every algorithm, for tests and benches that cover the whole set.
    pub const ALL: [Self; 5] = [
        Self::HmacSha1_96,
        Self::HmacSha256_128,
        Self::HmacSha256_96,
        Self::HmacSha384_192,
        Self::HmacSha512_256,
    ];

    /// Key length in bytes: the hash output size (RFC 2404 §3, RFC 4868 §2.1.1).
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::HmacSha1_96 => 20,
            Self::HmacSha256_128 | Self::HmacSha256_96 => 32,
            Self::HmacSha384_192 => 48,
            Self::HmacSha512_256 => 64,
        }
    }

    /// ICV length in bytes.
    #[must_use]
    pub const fn icv_len(self) -> usize {
        match self {
            Self::HmacSha1_96 | Self::HmacSha256_96 => 12,
            Self::HmacSha256_128 => 16,
            Self::HmacSha384_192 => 24,
            Self::HmacSha512_256 => 32,
        }
    }

    fn ring_algorithm(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::HmacSha256_128 | Self::HmacSha256_96 => hmac::HMAC_SHA256,
            Self::HmacSha384_192 => hmac::HMAC_SHA384,
            Self::HmacSha512_256 => hmac::HMAC_SHA512,
        }
    }
}

/// Errors from [`Integrity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    /// The key has the wrong length for the algorithm.
    #[error("key length {got} does not match the algorithm's {want}")]
    KeyLength {
        /// Bytes given.
        got: usize,
        /// Bytes required.
        want: usize,
    },
    /// The ICV buffer has the wrong length.
    #[error("ICV length {0} does not match the algorithm")]
    IcvLength(usize),
    /// The ICV does not match the data.
    #[error("ICV mismatch")]
    Mismatch,
}

/// A keyed ESP integrity transform. `Debug` never shows the key.
///
/// Implementations are chosen by measurement (`l2sec-bench --only datapath`, rows
/// `datapath/crypto/hmac-sha1/*`, on the 2-core SHA-NI machine of the project): over what ESP
/// authenticates for a 1400-byte inner packet, RustCrypto's HMAC-SHA1 (`hmac` + `sha1`, SHA-NI
/// detected at run time) takes 833 ns where ring's (no SHA extensions for SHA-1) takes
/// 3,468 ns, and 178 ns against 689 ns at 64 bytes; so HMAC-SHA1 is RustCrypto's, and ring
/// keeps SHA-2, for which it has SHA-NI assembly. The key schedules live inside the
/// libraries; ring does not wipe its copy on drop.
pub struct Integrity {
    algorithm: IntegrityAlgorithm,
    key: Key,
}

/// The keyed HMAC state of one implementation.
enum Key {
    /// RustCrypto, cloned per packet (two SHA-1 states, no allocation).
    Sha1(Box<HmacSha1>),
    Ring(hmac::Key),
}

impl fmt::Debug for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integrity")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Integrity {
    /// Keys `algorithm`.
    ///
    /// # Errors
    /// [`IntegrityError::KeyLength`] if `key` is not [`IntegrityAlgorithm::key_len`] bytes.
    pub fn new(algorithm: IntegrityAlgorithm, key: &[u8]) -> Result<Self, IntegrityError> {
        let want = algorithm.key_len();
        if key.len() != want {
            return Err(IntegrityError::KeyLength {
                got: key.len(),
                want,
            });
        }
        let key = match algorithm {
            IntegrityAlgorithm::HmacSha1_96 => {
                Key::Sha1(Box::new(HmacSha1::new_from_slice(key).map_err(|_| {
                    IntegrityError::KeyLength {
                        got: key.len(),
                        want,
                    }
                })?))
            }
            IntegrityAlgorithm::HmacSha256_128
            | IntegrityAlgorithm::HmacSha256_96
            | IntegrityAlgorithm::HmacSha384_192
            | IntegrityAlgorithm::HmacSha512_256 => {
                Key::Ring(hmac::Key::new(algorithm.ring_algorithm(), key))
            }
        };
        Ok(Self { algorithm, key })
    }

    /// The algorithm this transform was keyed for.
    #[must_use]
    pub const fn algorithm(&self) -> IntegrityAlgorithm {
        self.algorithm
    }

    /// ICV length in bytes.
    #[must_use]
    pub const fn icv_len(&self) -> usize {
        self.algorithm.icv_len()
    }

    /// The full HMAC of `data`.
    fn mac(&self, data: &[u8]) -> FullMac {
        match &self.key {
            Key::Sha1(key) => {
                let mut mac = (**key).clone();
                mac.update(data);
                FullMac::Sha1(mac.finalize().into_bytes().into())
            }
            Key::Ring(key) => FullMac::Ring(hmac::sign(key, data)),
        }
    }

    /// Computes the truncated ICV of `data` into `icv`, which must be exactly
    /// [`Integrity::icv_len`] bytes.
    ///
    /// # Errors
    /// [`IntegrityError::IcvLength`].
    pub fn compute(&self, data: &[u8], icv: &mut [u8]) -> Result<(), IntegrityError> {
        let full = self.mac(data);
        let truncated = full
            .as_ref()
            .get(..self.icv_len())
            .ok_or(IntegrityError::IcvLength(icv.len()))?;
        if icv.len() != truncated.len() {
            return Err(IntegrityError::IcvLength(icv.len()));
        }
        icv.copy_from_slice(truncated);
        Ok(())
    }

    /// Checks `icv` against `data` in constant time.
    ///
    /// # Errors
    /// [`IntegrityError::Mismatch`], or [`IntegrityError::IcvLength`] if `icv` has the wrong
    /// length (a public property of the packet).
    pub fn verify(&self, data: &[u8], icv: &[u8]) -> Result<(), IntegrityError> {
        if icv.len() != self.icv_len() {
            return Err(IntegrityError::IcvLength(icv.len()));
        }
        let full = self.mac(data);
        let expected = full
            .as_ref()
            .get(..self.icv_len())
            .ok_or(IntegrityError::IcvLength(icv.len()))?;
        // RFC 4303 §3.4.4.1: the receiver recomputes the ICV and compares; we compare in
        // constant time so the comparison leaks nothing about the expected value.
        if bool::from(expected.ct_eq(icv)) {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch)
        }
    }
}

type HmacSha1 = ::hmac::Hmac<sha1::Sha1>;

/// A full (untruncated) HMAC value.
enum FullMac {
    Sha1([u8; 20]),
    Ring(hmac::Tag),
}

impl AsRef<[u8]> for FullMac {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Sha1(tag) => tag,
            Self::Ring(tag) => tag.as_ref(),
        }
    }
}

impl fmt::Display for IntegrityAlgorithm {
    /// strongSwan's proposal keywords (`sha1`, `sha256`, `sha256_96`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HmacSha1_96 => "sha1",
            Self::HmacSha256_128 => "sha256",
            Self::HmacSha256_96 => "sha256_96",
            Self::HmacSha384_192 => "sha384",
            Self::HmacSha512_256 => "sha512",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prf::{Prf, PrfAlgorithm};
    use hex_literal::hex;

    // RFC 4231 §4.6 (test case 5) publishes 128-bit truncations; every ICV must be the prefix
    // of the full HMAC.
    #[test]
    fn icvs_are_truncated_hmacs() {
        let key = [0x20u8; 32];
        // The RFC's 20-byte key cannot key the fixed-length ESP transform, so this checks the
        // truncation against the PRF over the same inputs instead, and the PRF against the RFC.
        let data = b"Test With Truncation";
        let mut full = [0u8; 64];
        let n = Prf::compute(PrfAlgorithm::HmacSha256, &[0x0c; 20], &[data], &mut full).unwrap();
        assert_eq!(&full[..16], hex!("a3b6167473100ee06e0c796c2955552b"));
        assert_eq!(n, 32);

        for alg in IntegrityAlgorithm::ALL {
            let prf_alg = match alg {
                IntegrityAlgorithm::HmacSha1_96 => PrfAlgorithm::HmacSha1,
                IntegrityAlgorithm::HmacSha256_128 | IntegrityAlgorithm::HmacSha256_96 => {
                    PrfAlgorithm::HmacSha256
                }
                IntegrityAlgorithm::HmacSha384_192 => PrfAlgorithm::HmacSha384,
                IntegrityAlgorithm::HmacSha512_256 => PrfAlgorithm::HmacSha512,
            };
            let key = &key[..alg.key_len().min(32)];
            let key: Vec<u8> = key.iter().copied().cycle().take(alg.key_len()).collect();
            let integ = Integrity::new(alg, &key).unwrap();
            let mut icv = vec![0u8; alg.icv_len()];
            integ.compute(data, &mut icv).unwrap();
            let mut full = [0u8; 64];
            Prf::compute(prf_alg, &key, &[data], &mut full).unwrap();
            assert_eq!(icv, full[..alg.icv_len()], "{alg:?}");
            integ.verify(data, &icv).unwrap();
        }
    }

    #[test]
    fn verify_refuses_any_changed_byte_or_length() {
        let integ = Integrity::new(IntegrityAlgorithm::HmacSha1_96, &[1u8; 20]).unwrap();
        let mut icv = [0u8; 12];
        integ.compute(b"payload", &mut icv).unwrap();
        for i in 0..icv.len() {
            let mut bad = icv;
            bad[i] ^= 0x80;
            assert_eq!(
                integ.verify(b"payload", &bad),
                Err(IntegrityError::Mismatch)
            );
        }
        assert_eq!(
            integ.verify(b"payloaD", &icv),
            Err(IntegrityError::Mismatch)
        );
        assert_eq!(
            integ.verify(b"payload", &icv[..11]),
            Err(IntegrityError::IcvLength(11))
        );
    }

    #[test]
    fn wrong_key_lengths_are_refused_and_debug_is_redacted() {
        assert!(Integrity::new(IntegrityAlgorithm::HmacSha256_128, &[0; 20]).is_err());
        let integ = Integrity::new(IntegrityAlgorithm::HmacSha256_96, &[0x33; 32]).unwrap();
        assert!(format!("{integ:?}").contains("<redacted>"));
    }
}
