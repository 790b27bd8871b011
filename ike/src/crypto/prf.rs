//! Pseudo-random functions and hashes for IKEv1: the negotiated PRF is HMAC over the negotiated
//! hash (RFC 2409 §5, Appendix A); plain hashes feed phase-1 IVs (RFC 2409 Appendix B) and
//! NAT-D payloads (RFC 3947 §3.2).
//!
//! HMAC-MD5 and MD5 come from RustCrypto (`hmac`, `md-5`); the SHA family from `ring`.

use core::fmt;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use ring::{digest, hmac as ring_hmac};

/// The longest output of any [`PrfAlgorithm`] or [`HashAlgorithm`], in bytes.
pub const MAX_OUTPUT_LEN: usize = 64;

/// The output buffer given to `finish` is shorter than the algorithm's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output buffer of {got} bytes is shorter than the {want}-byte output")]
pub struct OutputTooShort {
    /// Bytes available.
    pub got: usize,
    /// Bytes needed.
    pub want: usize,
}

/// Hash functions negotiated in IKEv1 (RFC 2409 Appendix A, hash algorithm attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// MD5 (RFC 1321).
    Md5,
    /// SHA-1 (FIPS 180-4).
    Sha1,
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-384 (FIPS 180-4).
    Sha384,
    /// SHA-512 (FIPS 180-4).
    Sha512,
}

impl HashAlgorithm {
    /// Output length in bytes.
    #[must_use]
    pub const fn output_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    const fn ring_digest(self) -> Option<&'static digest::Algorithm> {
        match self {
            Self::Md5 => None,
            Self::Sha1 => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
            Self::Sha256 => Some(&digest::SHA256),
            Self::Sha384 => Some(&digest::SHA384),
            Self::Sha512 => Some(&digest::SHA512),
        }
    }
}

fn copy_out(bytes: &[u8], out: &mut [u8]) -> Result<usize, OutputTooShort> {
    let got = out.len();
    let dst = out.get_mut(..bytes.len()).ok_or(OutputTooShort {
        got,
        want: bytes.len(),
    })?;
    dst.copy_from_slice(bytes);
    Ok(bytes.len())
}

enum HashState {
    Md5(Md5),
    Ring(digest::Context),
}

/// An incremental hash.
pub struct Hash {
    algorithm: HashAlgorithm,
    state: HashState,
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hash")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Hash {
    /// Starts a hash.
    #[must_use]
    pub fn new(algorithm: HashAlgorithm) -> Self {
        let state = match algorithm.ring_digest() {
            None => HashState::Md5(Md5::new()),
            Some(alg) => HashState::Ring(digest::Context::new(alg)),
        };
        Self { algorithm, state }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            HashState::Md5(h) => Digest::update(h, data),
            HashState::Ring(h) => h.update(data),
        }
    }

    /// Writes the digest to the front of `out` and returns its length.
    ///
    /// # Errors
    /// [`OutputTooShort`] if `out` is shorter than [`HashAlgorithm::output_len`].
    pub fn finish(self, out: &mut [u8]) -> Result<usize, OutputTooShort> {
        match self.state {
            HashState::Md5(h) => copy_out(&h.finalize(), out),
            HashState::Ring(h) => copy_out(h.finish().as_ref(), out),
        }
    }

    /// One-shot digest of the concatenation of `parts`.
    ///
    /// # Errors
    /// As for [`Hash::finish`].
    pub fn compute(
        algorithm: HashAlgorithm,
        parts: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, OutputTooShort> {
        let mut h = Self::new(algorithm);
        for part in parts {
            h.update(part);
        }
        h.finish(out)
    }
}

/// PRFs negotiated in IKEv1: HMAC over the negotiated hash (RFC 2409 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrfAlgorithm {
    /// HMAC-MD5 (RFC 2104).
    HmacMd5,
    /// HMAC-SHA1 (RFC 2104).
    HmacSha1,
    /// HMAC-SHA-256 (RFC 4868).
    HmacSha256,
    /// HMAC-SHA-384 (RFC 4868).
    HmacSha384,
    /// HMAC-SHA-512 (RFC 4868).
    HmacSha512,
}

impl PrfAlgorithm {
    /// Every algorithm.
    pub const ALL: [Self; 5] = [
        Self::HmacMd5,
        Self::HmacSha1,
        Self::HmacSha256,
        Self::HmacSha384,
        Self::HmacSha512,
    ];

    /// The underlying hash.
    #[must_use]
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            Self::HmacMd5 => HashAlgorithm::Md5,
            Self::HmacSha1 => HashAlgorithm::Sha1,
            Self::HmacSha256 => HashAlgorithm::Sha256,
            Self::HmacSha384 => HashAlgorithm::Sha384,
            Self::HmacSha512 => HashAlgorithm::Sha512,
        }
    }

    /// Output length in bytes.
    #[must_use]
    pub const fn output_len(self) -> usize {
        self.hash().output_len()
    }

    fn ring_hmac(self) -> Option<ring_hmac::Algorithm> {
        match self {
            Self::HmacMd5 => None,
            Self::HmacSha1 => Some(ring_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            Self::HmacSha256 => Some(ring_hmac::HMAC_SHA256),
            Self::HmacSha384 => Some(ring_hmac::HMAC_SHA384),
            Self::HmacSha512 => Some(ring_hmac::HMAC_SHA512),
        }
    }
}

enum PrfState {
    Md5(Hmac<Md5>),
    Ring(ring_hmac::Context),
}

/// A keyed PRF computation in progress. `Debug` never shows the key or state.
///
/// The keyed state lives inside `hmac`/`ring`, which do not wipe it on drop; callers keep their
/// own copies of key material in zeroizing types.
pub struct Prf {
    algorithm: PrfAlgorithm,
    state: PrfState,
}

impl fmt::Debug for Prf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prf")
            .field("algorithm", &self.algorithm)
            .field("state", &"<redacted>")
            .finish()
    }
}

impl Prf {
    /// Starts `prf(key, ...)`. HMAC takes keys of any length (RFC 2104 §2).
    #[must_use]
    pub fn new(algorithm: PrfAlgorithm, key: &[u8]) -> Self {
        let state = match algorithm.ring_hmac() {
            None => PrfState::Md5(
                <Hmac<Md5> as KeyInit>::new_from_slice(key)
                    .expect("invariant: HMAC accepts keys of any length"),
            ),
            Some(alg) => {
                PrfState::Ring(ring_hmac::Context::with_key(&ring_hmac::Key::new(alg, key)))
            }
        };
        Self { algorithm, state }
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> PrfAlgorithm {
        self.algorithm
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            PrfState::Md5(m) => Mac::update(m, data),
            PrfState::Ring(c) => c.update(data),
        }
    }

    /// Writes the output to the front of `out` and returns its length.
    ///
    /// # Errors
    /// [`OutputTooShort`] if `out` is shorter than [`PrfAlgorithm::output_len`].
    pub fn finish(self, out: &mut [u8]) -> Result<usize, OutputTooShort> {
        match self.state {
            PrfState::Md5(m) => copy_out(&m.finalize().into_bytes(), out),
            PrfState::Ring(c) => copy_out(c.sign().as_ref(), out),
        }
    }

    /// One-shot `prf(key, parts[0] | parts[1] | ...)`.
    ///
    /// # Errors
    /// As for [`Prf::finish`].
    pub fn compute(
        algorithm: PrfAlgorithm,
        key: &[u8],
        parts: &[&[u8]],
        out: &mut [u8],
    ) -> Result<usize, OutputTooShort> {
        let mut prf = Self::new(algorithm, key);
        for part in parts {
            prf.update(part);
        }
        prf.finish(out)
    }
}

impl fmt::Display for HashAlgorithm {
    /// strongSwan's proposal keywords (`md5`, `sha1`, `sha256`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn prf(alg: PrfAlgorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = [0u8; MAX_OUTPUT_LEN];
        let n = Prf::compute(alg, key, &[data], &mut out).unwrap();
        assert_eq!(n, alg.output_len());
        out[..n].to_vec()
    }

    // RFC 2202 §2: HMAC-MD5 test cases 1, 2, 3, 6 and 7.
    #[test]
    fn rfc2202_hmac_md5() {
        use PrfAlgorithm::HmacMd5;
        assert_eq!(
            prf(HmacMd5, &[0x0b; 16], b"Hi There"),
            hex!("9294727a3638bb1c13f48ef8158bfc9d")
        );
        assert_eq!(
            prf(HmacMd5, b"Jefe", b"what do ya want for nothing?"),
            hex!("750c783e6ab0b503eaa86e310a5db738")
        );
        assert_eq!(
            prf(HmacMd5, &[0xaa; 16], &[0xdd; 50]),
            hex!("56be34521d144c88dbb8c733f0e8b3f6")
        );
        assert_eq!(
            prf(
                HmacMd5,
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            hex!("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")
        );
        assert_eq!(
            prf(
                HmacMd5,
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
            ),
            hex!("6f630fad67cda0ee1fb1f562db3aa53e")
        );
    }

    // RFC 2202 §3: HMAC-SHA1 test cases 1, 2, 3 and 6.
    #[test]
    fn rfc2202_hmac_sha1() {
        use PrfAlgorithm::HmacSha1;
        assert_eq!(
            prf(HmacSha1, &[0x0b; 20], b"Hi There"),
            hex!("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        assert_eq!(
            prf(HmacSha1, b"Jefe", b"what do ya want for nothing?"),
            hex!("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        assert_eq!(
            prf(HmacSha1, &[0xaa; 20], &[0xdd; 50]),
            hex!("125d7342b9ac11cd91a39af48aa17b4f63f175d3")
        );
        assert_eq!(
            prf(
                HmacSha1,
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            hex!("aa4ae5e15272d00e95705637ce8a3b55ed402112")
        );
    }

    // RFC 4231 §4.2 and §4.3: test cases 1 and 2 for SHA-256/384/512.
    #[test]
    fn rfc4231_hmac_sha2() {
        use PrfAlgorithm::{HmacSha256, HmacSha384, HmacSha512};
        assert_eq!(
            prf(HmacSha256, &[0x0b; 20], b"Hi There"),
            hex!("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            prf(HmacSha384, &[0x0b; 20], b"Hi There"),
            hex!(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
                "faea9ea9076ede7f4af152e8b2fa9cb6"
            )
        );
        assert_eq!(
            prf(HmacSha512, &[0x0b; 20], b"Hi There"),
            hex!(
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
                "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
            )
        );
        let jefe = b"what do ya want for nothing?";
        assert_eq!(
            prf(HmacSha256, b"Jefe", jefe),
            hex!("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(
            prf(HmacSha384, b"Jefe", jefe),
            hex!(
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
                "8e2240ca5e69e2c78b3239ecfab21649"
            )
        );
        assert_eq!(
            prf(HmacSha512, b"Jefe", jefe),
            hex!(
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
            )
        );
    }

    #[test]
    fn incremental_equals_one_shot_for_every_prf() {
        for alg in PrfAlgorithm::ALL {
            let mut p = Prf::new(alg, b"key");
            p.update(b"hello ");
            p.update(b"world");
            let mut a = [0u8; MAX_OUTPUT_LEN];
            let n = p.finish(&mut a).unwrap();
            assert_eq!(a[..n], prf(alg, b"key", b"hello world")[..], "{alg:?}");
        }
    }

    #[test]
    fn short_output_buffers_are_an_error() {
        let p = Prf::new(PrfAlgorithm::HmacSha256, b"k");
        assert_eq!(
            p.finish(&mut [0u8; 31]),
            Err(OutputTooShort { got: 31, want: 32 })
        );
        assert!(format!("{:?}", Prf::new(PrfAlgorithm::HmacMd5, b"k")).contains("<redacted>"));
    }

    // FIPS 180 / RFC 1321 "abc" digests.
    #[test]
    fn plain_hashes_of_abc() {
        let cases: [(HashAlgorithm, &[u8]); 5] = [
            (
                HashAlgorithm::Md5,
                &hex!("900150983cd24fb0d6963f7d28e17f72"),
            ),
            (
                HashAlgorithm::Sha1,
                &hex!("a9993e364706816aba3e25717850c26c9cd0d89d"),
            ),
            (
                HashAlgorithm::Sha256,
                &hex!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ),
            (
                HashAlgorithm::Sha384,
                &hex!(
                    "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                    "8086072ba1e7cc2358baeca134c825a7"
                ),
            ),
            (
                HashAlgorithm::Sha512,
                &hex!(
                    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
                ),
            ),
        ];
        for (alg, want) in cases {
            let mut out = [0u8; MAX_OUTPUT_LEN];
            let n = Hash::compute(alg, &[b"a", b"bc"], &mut out).unwrap();
            assert_eq!(&out[..n], want, "{alg:?}");
        }
    }
}
