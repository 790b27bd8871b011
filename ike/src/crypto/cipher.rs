//! Block ciphers for ESP (RFC 4303 §2.3) and IKEv1 phase-1 encryption: AES-CBC (RFC 3602),
//! 3DES-CBC (RFC 2451) and AES-GCM with a 16-byte ICV (RFC 4106).
//!
//! Everything runs in place over the caller's buffer. CBC modes want block-aligned data and an
//! explicit IV; GCM takes the 8-byte explicit IV and combines it with the 4-byte salt that ends
//! its keying material (RFC 4106 §4, §8.1).

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::array::{Array, ArraySize};
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit,
    KeyInit,
};
use core::fmt;
use des::TdesEde3;
use ring::aead;
use zeroize::Zeroizing;

/// Length of the AES-GCM salt carried at the end of the keying material (RFC 4106 §8.1).
pub const GCM_SALT_LEN: usize = 4;
/// Length of the explicit GCM IV carried in each ESP packet (RFC 4106 §3.1).
pub const GCM_IV_LEN: usize = 8;
/// Length of the GCM ICV used here (the 16-octet variant, RFC 4106 §6).
pub const GCM_TAG_LEN: usize = 16;

/// The encryption transforms we implement: a closed set (STYLE.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherAlgorithm {
    /// AES-CBC with a 128-bit key (RFC 3602).
    AesCbc128,
    /// AES-CBC with a 192-bit key (RFC 3602).
    AesCbc192,
    /// AES-CBC with a 256-bit key (RFC 3602).
    AesCbc256,
    /// Triple DES (EDE, three keys) in CBC mode (RFC 2451).
    TripleDesCbc,
    /// AES-GCM, 128-bit key, 16-octet ICV (RFC 4106).
    AesGcm16_128,
    /// AES-GCM, 256-bit key, 16-octet ICV (RFC 4106).
    AesGcm16_256,
}

impl CipherAlgorithm {
    /// Every algorithm, for tests and benches that cover the whole set.
    pub const ALL: [Self; 6] = [
        Self::AesCbc128,
        Self::AesCbc192,
        Self::AesCbc256,
        Self::TripleDesCbc,
        Self::AesGcm16_128,
        Self::AesGcm16_256,
    ];

    /// Keying material this algorithm consumes, in bytes. For GCM this includes the 4-byte salt
    /// (RFC 4106 §8.1).
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::AesCbc128 => 16,
            Self::AesCbc192 | Self::TripleDesCbc => 24,
            Self::AesCbc256 => 32,
            Self::AesGcm16_128 => 16 + GCM_SALT_LEN,
            Self::AesGcm16_256 => 32 + GCM_SALT_LEN,
        }
    }

    /// The cipher's block size: CBC input must be a multiple of it.
    #[must_use]
    pub const fn block_len(self) -> usize {
        match self {
            Self::AesCbc128 | Self::AesCbc192 | Self::AesCbc256 => 16,
            Self::TripleDesCbc => 8,
            // GCM is a stream mode: any length.
            Self::AesGcm16_128 | Self::AesGcm16_256 => 1,
        }
    }

    /// The length of the explicit IV carried in each ESP packet.
    #[must_use]
    pub const fn iv_len(self) -> usize {
        match self {
            Self::AesCbc128 | Self::AesCbc192 | Self::AesCbc256 => 16,
            Self::TripleDesCbc => 8,
            Self::AesGcm16_128 | Self::AesGcm16_256 => GCM_IV_LEN,
        }
    }

    /// The AEAD tag length, or 0 for the CBC modes (they need a separate integrity transform).
    #[must_use]
    pub const fn tag_len(self) -> usize {
        if self.is_aead() { GCM_TAG_LEN } else { 0 }
    }

    /// Whether this is a combined-mode (AEAD) algorithm.
    #[must_use]
    pub const fn is_aead(self) -> bool {
        matches!(self, Self::AesGcm16_128 | Self::AesGcm16_256)
    }
}

/// Errors from [`Cipher`] operations. None of them carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The keying material has the wrong length for the algorithm.
    #[error("key length {got} does not match the algorithm's {want}")]
    KeyLength {
        /// Bytes given.
        got: usize,
        /// Bytes required.
        want: usize,
    },
    /// The IV has the wrong length for the algorithm.
    #[error("IV length {0} does not match the algorithm")]
    IvLength(usize),
    /// CBC data is not a whole number of blocks.
    #[error("data length {0} is not a multiple of the block size")]
    Misaligned(usize),
    /// A CBC operation was asked of an AEAD cipher, or the reverse.
    #[error("operation does not apply to this algorithm")]
    WrongMode,
    /// The AEAD tag buffer has the wrong length.
    #[error("tag length {0} does not match the algorithm")]
    TagLength(usize),
    /// AEAD authentication failed; the buffer contents are unspecified.
    #[error("authentication failed")]
    Authentication,
}

enum Key {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
    TripleDes(TdesEde3),
    Gcm {
        key: aead::LessSafeKey,
        salt: Zeroizing<[u8; GCM_SALT_LEN]>,
    },
}

/// A keyed cipher. `Debug` never shows the key.
///
/// The salt we own is wiped on drop. The expanded key schedules live inside `aes`/`des` (built
/// without their `zeroize` feature) and `ring`, which do not wipe them; see the crate notes.
pub struct Cipher {
    algorithm: CipherAlgorithm,
    key: Key,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cipher")
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Cipher {
    /// Keys `algorithm` with `key` (for GCM: key followed by the 4-byte salt).
    ///
    /// # Errors
    /// [`CipherError::KeyLength`] if `key` is not [`CipherAlgorithm::key_len`] bytes.
    pub fn new(algorithm: CipherAlgorithm, key: &[u8]) -> Result<Self, CipherError> {
        let want = algorithm.key_len();
        if key.len() != want {
            return Err(CipherError::KeyLength {
                got: key.len(),
                want,
            });
        }
        let bad_len = CipherError::KeyLength {
            got: key.len(),
            want,
        };
        let key = match algorithm {
            CipherAlgorithm::AesCbc128 => {
                Key::Aes128(Aes128::new_from_slice(key).map_err(|_| bad_len)?)
            }
            CipherAlgorithm::AesCbc192 => {
                Key::Aes192(Aes192::new_from_slice(key).map_err(|_| bad_len)?)
            }
            CipherAlgorithm::AesCbc256 => {
                Key::Aes256(Aes256::new_from_slice(key).map_err(|_| bad_len)?)
            }
            CipherAlgorithm::TripleDesCbc => {
                Key::TripleDes(TdesEde3::new_from_slice(key).map_err(|_| bad_len)?)
            }
            CipherAlgorithm::AesGcm16_128 | CipherAlgorithm::AesGcm16_256 => {
                let ring_alg = if algorithm == CipherAlgorithm::AesGcm16_128 {
                    &aead::AES_128_GCM
                } else {
                    &aead::AES_256_GCM
                };
                let (aes_key, salt_bytes) =
                    key.split_at_checked(want - GCM_SALT_LEN).ok_or(bad_len)?;
                let unbound = aead::UnboundKey::new(ring_alg, aes_key).map_err(|_| bad_len)?;
                let mut salt = Zeroizing::new([0u8; GCM_SALT_LEN]);
                salt.copy_from_slice(salt_bytes);
                Key::Gcm {
                    key: aead::LessSafeKey::new(unbound),
                    salt,
                }
            }
        };
        Ok(Self { algorithm, key })
    }

    /// The algorithm this cipher was keyed for.
    #[must_use]
    pub const fn algorithm(&self) -> CipherAlgorithm {
        self.algorithm
    }

    /// Encrypts `data` in place in CBC mode starting from `iv`.
    ///
    /// # Errors
    /// [`CipherError::WrongMode`] for GCM, [`CipherError::IvLength`], or
    /// [`CipherError::Misaligned`] if `data` is not whole blocks. On error `data` is untouched.
    pub fn encrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CipherError> {
        self.check_cbc(iv, data)?;
        match &self.key {
            Key::Aes128(c) => cbc_encrypt(c, iv, data),
            Key::Aes192(c) => cbc_encrypt(c, iv, data),
            Key::Aes256(c) => cbc_encrypt(c, iv, data),
            Key::TripleDes(c) => cbc_encrypt(c, iv, data),
            Key::Gcm { .. } => Err(CipherError::WrongMode),
        }
    }

    /// Decrypts `data` in place in CBC mode starting from `iv`.
    ///
    /// # Errors
    /// As for [`Cipher::encrypt_cbc`].
    pub fn decrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CipherError> {
        self.check_cbc(iv, data)?;
        match &self.key {
            Key::Aes128(c) => cbc_decrypt(c, iv, data),
            Key::Aes192(c) => cbc_decrypt(c, iv, data),
            Key::Aes256(c) => cbc_decrypt(c, iv, data),
            Key::TripleDes(c) => cbc_decrypt(c, iv, data),
            Key::Gcm { .. } => Err(CipherError::WrongMode),
        }
    }

    fn check_cbc(&self, iv: &[u8], data: &[u8]) -> Result<(), CipherError> {
        if self.algorithm.is_aead() {
            return Err(CipherError::WrongMode);
        }
        if iv.len() != self.algorithm.iv_len() {
            return Err(CipherError::IvLength(iv.len()));
        }
        if !data.len().is_multiple_of(self.algorithm.block_len()) {
            return Err(CipherError::Misaligned(data.len()));
        }
        Ok(())
    }

    /// Seals `data` in place with AES-GCM and writes the 16-byte tag into `tag`.
    ///
    /// The nonce is the salt followed by `iv` (RFC 4106 §4); `iv` must never repeat under one key.
    ///
    /// # Errors
    /// [`CipherError::WrongMode`] for CBC, [`CipherError::TagLength`] if `tag` is not 16 bytes.
    pub fn seal_aead(
        &self,
        iv: &[u8; GCM_IV_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), CipherError> {
        let Key::Gcm { key, salt } = &self.key else {
            return Err(CipherError::WrongMode);
        };
        if tag.len() != GCM_TAG_LEN {
            return Err(CipherError::TagLength(tag.len()));
        }
        let nonce = gcm_nonce(salt, iv);
        let computed = key
            .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), data)
            .map_err(|_| CipherError::Authentication)?;
        tag.copy_from_slice(computed.as_ref());
        Ok(())
    }

    /// Verifies `tag` and decrypts `data` in place with AES-GCM.
    ///
    /// # Errors
    /// [`CipherError::Authentication`] if the tag does not verify (then `data` holds no
    /// plaintext), [`CipherError::WrongMode`] for CBC, [`CipherError::TagLength`].
    pub fn open_aead(
        &self,
        iv: &[u8; GCM_IV_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CipherError> {
        let Key::Gcm { key, salt } = &self.key else {
            return Err(CipherError::WrongMode);
        };
        let tag = aead::Tag::try_from(tag).map_err(|_| CipherError::TagLength(tag.len()))?;
        let nonce = gcm_nonce(salt, iv);
        key.open_in_place_separate_tag(nonce, aead::Aad::from(aad), tag, data, 0..)
            .map(|_| ())
            .map_err(|_| CipherError::Authentication)
    }
}

/// RFC 4106 §4: the GCM nonce is the 4-byte salt followed by the 8-byte explicit IV.
fn gcm_nonce(salt: &[u8; GCM_SALT_LEN], iv: &[u8; GCM_IV_LEN]) -> aead::Nonce {
    let mut nonce = [0u8; aead::NONCE_LEN];
    let (front, back) = nonce.split_at_mut(GCM_SALT_LEN);
    front.copy_from_slice(salt);
    back.copy_from_slice(iv);
    aead::Nonce::assume_unique_for_key(nonce)
}

// The modes borrow the key schedule: cloning it per packet (and wiping the clone on drop)
// cost about 9% of a 64-byte AES-256-CBC + HMAC-SHA-256 ESP packet.
fn cbc_encrypt<C>(cipher: &C, iv: &[u8], data: &mut [u8]) -> Result<(), CipherError>
where
    C: BlockCipherEncrypt,
{
    let mut mode = cbc::Encryptor::<&C>::inner_iv_slice_init(cipher, iv)
        .map_err(|_| CipherError::IvLength(iv.len()))?;
    let blocks = whole_blocks(data)?;
    mode.encrypt_blocks(blocks);
    Ok(())
}

fn cbc_decrypt<C>(cipher: &C, iv: &[u8], data: &mut [u8]) -> Result<(), CipherError>
where
    C: BlockCipherDecrypt,
{
    let mut mode = cbc::Decryptor::<&C>::inner_iv_slice_init(cipher, iv)
        .map_err(|_| CipherError::IvLength(iv.len()))?;
    let blocks = whole_blocks(data)?;
    mode.decrypt_blocks(blocks);
    Ok(())
}

fn whole_blocks<N: ArraySize>(data: &mut [u8]) -> Result<&mut [Array<u8, N>], CipherError> {
    let len = data.len();
    let (blocks, rest) = Array::<u8, N>::slice_as_chunks_mut(data);
    if rest.is_empty() {
        Ok(blocks)
    } else {
        Err(CipherError::Misaligned(len))
    }
}

impl fmt::Display for CipherAlgorithm {
    /// strongSwan's proposal keywords (`aes256`, `3des`, `aes128gcm16`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AesCbc128 => "aes128",
            Self::AesCbc192 => "aes192",
            Self::AesCbc256 => "aes256",
            Self::TripleDesCbc => "3des",
            Self::AesGcm16_128 => "aes128gcm16",
            Self::AesGcm16_256 => "aes256gcm16",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn key_lengths_are_enforced() {
        for alg in CipherAlgorithm::ALL {
            let key = [7u8; 64];
            assert!(Cipher::new(alg, &key[..alg.key_len()]).is_ok());
            assert_eq!(
                Cipher::new(alg, &key[..alg.key_len() - 1]).unwrap_err(),
                CipherError::KeyLength {
                    got: alg.key_len() - 1,
                    want: alg.key_len()
                }
            );
        }
    }

    #[test]
    fn debug_never_prints_the_key() {
        let c = Cipher::new(CipherAlgorithm::AesCbc128, &[0x41; 16]).unwrap();
        let s = format!("{c:?}");
        assert!(s.contains("<redacted>"), "{s}");
        assert!(!s.contains("65") && !s.contains("41"), "{s}");
    }

    // RFC 3602 §4, case #1 (AES-128-CBC, one block).
    #[test]
    fn rfc3602_case_1_single_block() {
        let c = Cipher::new(
            CipherAlgorithm::AesCbc128,
            &hex!("06a9214036b8a15b512e03d534120006"),
        )
        .unwrap();
        let iv = hex!("3dafba429d9eb430b422da802c9fac41");
        let mut data = *b"Single block msg";
        c.encrypt_cbc(&iv, &mut data).unwrap();
        assert_eq!(data, hex!("e353779c1079aeb82708942dbe77181a"));
        c.decrypt_cbc(&iv, &mut data).unwrap();
        assert_eq!(&data, b"Single block msg");
    }

    #[test]
    fn cbc_rejects_partial_blocks_and_bad_ivs_without_touching_data() {
        let c = Cipher::new(CipherAlgorithm::TripleDesCbc, &[1u8; 24]).unwrap();
        let mut data = [9u8; 12];
        assert_eq!(
            c.encrypt_cbc(&[0; 8], &mut data),
            Err(CipherError::Misaligned(12))
        );
        assert_eq!(data, [9u8; 12]);
        assert_eq!(
            c.encrypt_cbc(&[0; 16], &mut data[..8]),
            Err(CipherError::IvLength(16))
        );
        assert_eq!(
            c.seal_aead(&[0; 8], &[], &mut data, &mut [0; 16]),
            Err(CipherError::WrongMode)
        );
    }

    #[test]
    fn cbc_round_trips_for_every_cbc_algorithm() {
        for alg in CipherAlgorithm::ALL.into_iter().filter(|a| !a.is_aead()) {
            let key: Vec<u8> = (0..alg.key_len())
                .map(|i| u8::try_from(i).unwrap() ^ 0x5a)
                .collect();
            let c = Cipher::new(alg, &key).unwrap();
            let iv = vec![3u8; alg.iv_len()];
            let plain: Vec<u8> = (0..64u8).collect();
            let mut data = plain.clone();
            c.encrypt_cbc(&iv, &mut data).unwrap();
            assert_ne!(data, plain, "{alg:?}");
            c.decrypt_cbc(&iv, &mut data).unwrap();
            assert_eq!(data, plain, "{alg:?}");
        }
    }

    // draft-mcgrew-gcm-test-01 §2, the AES-256 case with a 32-bit sequence number, through the
    // wrapper: key||salt, explicit IV, AAD = SPI || sequence number.
    #[test]
    fn gcm_known_answer_through_the_wrapper() {
        let mut keymat = [0u8; 36];
        keymat[..32].copy_from_slice(&hex!(
            "abbccddef00112233445566778899aab abbccddef00112233445566778899aab"
        ));
        keymat[32..].copy_from_slice(&hex!("11223344"));
        let c = Cipher::new(CipherAlgorithm::AesGcm16_256, &keymat).unwrap();
        let iv = hex!("0102030405060708");
        let aad = hex!("4a2cbfe3 00000002");
        let plain = hex!(
            "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
            "7002400020bf0000020405b40101040201020201"
        );
        let mut data = plain;
        let mut tag = [0u8; 16];
        c.seal_aead(&iv, &aad, &mut data, &mut tag).unwrap();
        assert_eq!(
            data,
            hex!(
                "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763"
                "748a637985771d347f0545659f14e99def842d8e"
            )
        );
        assert_eq!(tag, hex!("b335f4eecfdbf831824b4c4915956c96"));
        c.open_aead(&iv, &aad, &mut data, &tag).unwrap();
        assert_eq!(data, plain);
        // A flipped tag bit is refused.
        c.seal_aead(&iv, &aad, &mut data, &mut tag).unwrap();
        tag[0] ^= 1;
        assert_eq!(
            c.open_aead(&iv, &aad, &mut data, &tag),
            Err(CipherError::Authentication)
        );
    }
}
