//! Diffie-Hellman for IKEv1 key exchange: the MODP groups 2 (RFC 2409 §6.2), 5, 14, 15 and 16
//! (RFC 3526), and the ECP groups 19 and 20 (RFC 5903).
//!
//! MODP exponentiation is constant time in the private exponent (`crypto-bigint` Montgomery
//! ladder over a fixed exponent width); the exponent comes from the injected RNG. The ECP groups
//! use `ring::agreement`, whose key generation draws from ring's own system RNG because ring's
//! RNG trait is sealed (STYLE.md §5 rule 6): tests must never assert bytes derived from an ECP
//! private key, only agreement and encodings.
//!
//! Encodings: a MODP public value and shared secret are big-endian, left-padded with zeros to the
//! modulus length (RFC 2409 §5). An ECP public value is `x || y` without the SEC1 `0x04` prefix,
//! and the shared secret is the `x` coordinate only (RFC 5903 §7).

use core::fmt;
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U512, U1024, U1536, U2048, U3072, U4096, Uint};
use rand_core::CryptoRng;
use ring::agreement;
use zeroize::{Zeroize, Zeroizing};

/// The longest public value of any group (MODP group 16), in bytes.
pub const MAX_PUBLIC_LEN: usize = 512;
/// The longest shared secret of any group, in bytes.
pub const MAX_SHARED_LEN: usize = 512;
/// The widest private exponent we draw, in bytes.
const MAX_EXPONENT_LEN: usize = 64;

/// The Diffie-Hellman groups we implement, by their IKE group number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 2: 1024-bit MODP (RFC 2409 §6.2).
    Modp1024,
    /// Group 5: 1536-bit MODP (RFC 3526 §2).
    Modp1536,
    /// Group 14: 2048-bit MODP (RFC 3526 §3).
    Modp2048,
    /// Group 15: 3072-bit MODP (RFC 3526 §4).
    Modp3072,
    /// Group 16: 4096-bit MODP (RFC 3526 §5).
    Modp4096,
    /// Group 19: 256-bit random ECP group, NIST P-256 (RFC 5903 §3.1).
    Ecp256,
    /// Group 20: 384-bit random ECP group, NIST P-384 (RFC 5903 §3.2).
    Ecp384,
    /// Curve25519 (group 31, RFC 8031 encoding: the 32-byte u coordinate), strongSwan's default.
    Curve25519,
}

impl DhGroup {
    /// Every group.
    pub const ALL: [Self; 8] = [
        Self::Modp1024,
        Self::Modp1536,
        Self::Modp2048,
        Self::Modp3072,
        Self::Modp4096,
        Self::Ecp256,
        Self::Ecp384,
        Self::Curve25519,
    ];

    /// The group for an IKE group number, if we implement it.
    #[must_use]
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            2 => Some(Self::Modp1024),
            5 => Some(Self::Modp1536),
            14 => Some(Self::Modp2048),
            15 => Some(Self::Modp3072),
            16 => Some(Self::Modp4096),
            19 => Some(Self::Ecp256),
            20 => Some(Self::Ecp384),
            31 => Some(Self::Curve25519),
            _ => None,
        }
    }

    /// The IKE group number (IANA "Group Description").
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::Modp1024 => 2,
            Self::Modp1536 => 5,
            Self::Modp2048 => 14,
            Self::Modp3072 => 15,
            Self::Modp4096 => 16,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Curve25519 => 31,
        }
    }

    /// Length of a public value (the KE payload data) in bytes.
    #[must_use]
    pub const fn public_len(self) -> usize {
        match self {
            Self::Modp1024 => 128,
            Self::Modp1536 => 192,
            Self::Modp2048 => 256,
            Self::Modp3072 => 384,
            Self::Modp4096 => 512,
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
        }
    }

    /// Length of the shared secret in bytes.
    #[must_use]
    pub const fn shared_len(self) -> usize {
        match self {
            Self::Ecp256 => 32,
            Self::Ecp384 => 48,
            Self::Curve25519 => 32,
            Self::Modp1024 | Self::Modp1536 | Self::Modp2048 | Self::Modp3072 | Self::Modp4096 => {
                self.public_len()
            }
        }
    }

    /// Width of the private exponent drawn for a MODP group, in bits: at least twice the group's
    /// strength estimate (RFC 3526 §1, §8), or 0 for ECP groups.
    #[must_use]
    pub const fn exponent_bits(self) -> u32 {
        match self {
            Self::Modp1024 | Self::Modp1536 | Self::Modp2048 => 256,
            Self::Modp3072 => 384,
            Self::Modp4096 => 512,
            Self::Ecp256 | Self::Ecp384 | Self::Curve25519 => 0,
        }
    }

    /// Whether this is an elliptic-curve group.
    #[must_use]
    pub const fn is_ecp(self) -> bool {
        matches!(self, Self::Ecp256 | Self::Ecp384 | Self::Curve25519)
    }
}

/// Errors from Diffie-Hellman operations. None carries secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    /// The peer's public value has the wrong length for the group.
    #[error("public value of {got} bytes, the group needs {want}")]
    PublicLength {
        /// Bytes received.
        got: usize,
        /// Bytes required.
        want: usize,
    },
    /// The peer's public value is out of range or not on the curve.
    #[error("invalid public value")]
    InvalidPublicValue,
    /// Key generation inside ring failed.
    #[error("key generation failed")]
    KeyGeneration,
}

// The primes, transcribed from the isakmpd group table (independent of the RFC text, which the
// tests embed and compare against).
const G2_HEX: &str = concat!(
    "ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74",
    "020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f1437",
    "4fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed",
    "ee386bfb5a899fa5ae9f24117c4b1fe649286651ece65381ffffffffffffffff",
);
const G5_HEX: &str = concat!(
    "ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74",
    "020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f1437",
    "4fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed",
    "ee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf05",
    "98da48361c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb",
    "9ed529077096966d670c354e4abc9804f1746c08ca237327ffffffffffffffff",
);
const G14_HEX: &str = concat!(
    "ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74",
    "020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f1437",
    "4fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed",
    "ee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf05",
    "98da48361c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb",
    "9ed529077096966d670c354e4abc9804f1746c08ca18217c32905e462e36ce3b",
    "e39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf695581718",
    "3995497cea956ae515d2261898fa051015728e5a8aacaa68ffffffffffffffff",
);
const G15_HEX: &str = concat!(
    "ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74",
    "020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f1437",
    "4fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed",
    "ee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf05",
    "98da48361c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb",
    "9ed529077096966d670c354e4abc9804f1746c08ca18217c32905e462e36ce3b",
    "e39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf695581718",
    "3995497cea956ae515d2261898fa051015728e5a8aaac42dad33170d04507a33",
    "a85521abdf1cba64ecfb850458dbef0a8aea71575d060c7db3970f85a6e1e4c7",
    "abf5ae8cdb0933d71e8c94e04a25619dcee3d2261ad2ee6bf12ffa06d98a0864",
    "d87602733ec86a64521f2b18177b200cbbe117577a615d6c770988c0bad946e2",
    "08e24fa074e5ab3143db5bfce0fd108e4b82d120a93ad2caffffffffffffffff",
);
const G16_HEX: &str = concat!(
    "ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74",
    "020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f1437",
    "4fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed",
    "ee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf05",
    "98da48361c55d39a69163fa8fd24cf5f83655d23dca3ad961c62f356208552bb",
    "9ed529077096966d670c354e4abc9804f1746c08ca18217c32905e462e36ce3b",
    "e39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf695581718",
    "3995497cea956ae515d2261898fa051015728e5a8aaac42dad33170d04507a33",
    "a85521abdf1cba64ecfb850458dbef0a8aea71575d060c7db3970f85a6e1e4c7",
    "abf5ae8cdb0933d71e8c94e04a25619dcee3d2261ad2ee6bf12ffa06d98a0864",
    "d87602733ec86a64521f2b18177b200cbbe117577a615d6c770988c0bad946e2",
    "08e24fa074e5ab3143db5bfce0fd108e4b82d120a92108011a723c12a787e6d7",
    "88719a10bdba5b2699c327186af4e23c1a946834b6150bda2583e9ca2ad44ce8",
    "dbbbc2db04de8ef92e8efc141fbecaa6287c59474e6bc05d99b2964fa090c3a2",
    "233ba186515be7ed1f612970cee2d7afb81bdd762170481cd0069127d5b05aa9",
    "93b4ea988d8fddc186ffb7dc90a6c08f4df435c934063199ffffffffffffffff",
);

const P2: Odd<U1024> = Odd::<U1024>::from_be_hex(G2_HEX);
const P5: Odd<U1536> = Odd::<U1536>::from_be_hex(G5_HEX);
const P14: Odd<U2048> = Odd::<U2048>::from_be_hex(G14_HEX);
const P15: Odd<U3072> = Odd::<U3072>::from_be_hex(G15_HEX);
const P16: Odd<U4096> = Odd::<U4096>::from_be_hex(G16_HEX);

/// `base^exponent mod p`, constant time in the exponent for a given `exponent_bits`, written
/// big-endian into `out` (exactly the modulus length).
///
/// Returns `None` if `base` or `out` has the wrong length.
fn modp_pow<const L: usize>(
    p: &Odd<Uint<L>>,
    base: &[u8],
    exponent: &U512,
    exponent_bits: u32,
    out: &mut [u8],
) -> Option<()> {
    let len = Uint::<L>::BYTES;
    if base.len() != len || out.len() != len {
        return None;
    }
    let base = Uint::<L>::from_be_slice(base);
    let params = FixedMontyParams::new_vartime(*p);
    let mut result = FixedMontyForm::new(&base, &params)
        .pow_bounded_exp(exponent, exponent_bits)
        .retrieve();
    let bytes = result.to_be_bytes();
    out.copy_from_slice(bytes.as_ref());
    result.as_mut_words().zeroize();
    Some(())
}

/// Whether `1 < y < p - 1` for the big-endian `y` (RFC 2631 §2.1.5 style range check, also
/// required of IKE peers by RFC 6989 §2.1). Public data, so variable time is fine.
fn modp_in_range<const L: usize>(p: &Odd<Uint<L>>, y: &[u8]) -> bool {
    if y.len() != Uint::<L>::BYTES {
        return false;
    }
    let y = Uint::<L>::from_be_slice(y);
    let p_minus_1 = p.as_ref().wrapping_sub(&Uint::ONE);
    y > Uint::ONE && y < p_minus_1
}

fn modp_dispatch(
    group: DhGroup,
    base: &[u8],
    exponent: &U512,
    out: &mut [u8],
) -> Result<(), DhError> {
    let bits = group.exponent_bits();
    let done = match group {
        DhGroup::Modp1024 => modp_pow(&P2, base, exponent, bits, out),
        DhGroup::Modp1536 => modp_pow(&P5, base, exponent, bits, out),
        DhGroup::Modp2048 => modp_pow(&P14, base, exponent, bits, out),
        DhGroup::Modp3072 => modp_pow(&P15, base, exponent, bits, out),
        DhGroup::Modp4096 => modp_pow(&P16, base, exponent, bits, out),
        DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Curve25519 => None,
    };
    done.ok_or(DhError::InvalidPublicValue)
}

fn modp_valid(group: DhGroup, y: &[u8]) -> bool {
    match group {
        DhGroup::Modp1024 => modp_in_range(&P2, y),
        DhGroup::Modp1536 => modp_in_range(&P5, y),
        DhGroup::Modp2048 => modp_in_range(&P14, y),
        DhGroup::Modp3072 => modp_in_range(&P15, y),
        DhGroup::Modp4096 => modp_in_range(&P16, y),
        DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Curve25519 => false,
    }
}

/// Checks a peer's public value without using a private key: its length, and for MODP groups
/// `1 < y < p - 1` (RFC 6989 §2.1). Cheap; an ECP point is checked by [`DhKeyPair::agree`].
///
/// # Errors
/// [`DhError::PublicLength`] or [`DhError::InvalidPublicValue`].
pub fn check_public(group: DhGroup, peer: &[u8]) -> Result<(), DhError> {
    let want = group.public_len();
    if peer.len() != want {
        return Err(DhError::PublicLength {
            got: peer.len(),
            want,
        });
    }
    if !group.is_ecp() && !modp_valid(group, peer) {
        return Err(DhError::InvalidPublicValue);
    }
    Ok(())
}

enum Private {
    Modp(Zeroizing<[u8; MAX_EXPONENT_LEN]>),
    Ecp(agreement::EphemeralPrivateKey),
}

/// An ephemeral Diffie-Hellman private key with its public value. Used once: [`DhKeyPair::agree`]
/// consumes it. `Debug` never shows the private part.
pub struct DhKeyPair {
    group: DhGroup,
    private: Private,
    public: [u8; MAX_PUBLIC_LEN],
}

/// A private key drawn by [`DhKeyPair::draw`] whose public value is not computed yet. It owns
/// what it needs (wiped on drop) and can move to another thread. ECP groups draw inside ring
/// when computed (see the module docs).
pub struct DrawnKey {
    group: DhGroup,
    exponent: Option<Zeroizing<[u8; MAX_EXPONENT_LEN]>>,
}

impl DrawnKey {
    /// The group.
    #[must_use]
    pub const fn group(&self) -> DhGroup {
        self.group
    }

    /// Computes the public value: the key pair.
    ///
    /// # Errors
    /// [`DhError::KeyGeneration`] if ring fails to generate an ECP key.
    pub fn compute(self) -> Result<DhKeyPair, DhError> {
        match self.exponent {
            Some(exponent) => DhKeyPair::from_modp_exponent(self.group, exponent),
            None => DhKeyPair::generate_ecp(self.group),
        }
    }
}

impl fmt::Debug for DrawnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrawnKey")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for DhKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhKeyPair")
            .field("group", &self.group)
            .field("private", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl DhKeyPair {
    /// Generates a key pair for `group`.
    ///
    /// MODP groups draw [`DhGroup::exponent_bits`] bits from `rng` (top bit forced, so the
    /// exponent has its full width); ECP groups use ring's own RNG (see the module docs).
    ///
    /// # Errors
    /// [`DhError::KeyGeneration`] if ring fails to generate an ECP key.
    pub fn generate<R: CryptoRng + ?Sized>(group: DhGroup, rng: &mut R) -> Result<Self, DhError> {
        Self::draw(group, rng).compute()
    }

    /// Draws a private key for `group` from `rng` (cheap) and leaves the public value, the
    /// expensive part for MODP groups, to [`DrawnKey::compute`], which may run on another
    /// thread. `generate` is `draw` then `compute`, with the same use of `rng`.
    pub fn draw<R: CryptoRng + ?Sized>(group: DhGroup, rng: &mut R) -> DrawnKey {
        if group.is_ecp() {
            return DrawnKey {
                group,
                exponent: None,
            };
        }
        let mut exponent = Zeroizing::new([0u8; MAX_EXPONENT_LEN]);
        let width = usize::try_from(group.exponent_bits() / 8).unwrap_or(MAX_EXPONENT_LEN);
        let start = MAX_EXPONENT_LEN.saturating_sub(width);
        if let Some(tail) = exponent.get_mut(start..) {
            rng.fill_bytes(tail);
        }
        if let Some(top) = exponent.get_mut(start) {
            *top |= 0x80;
        }
        DrawnKey {
            group,
            exponent: Some(exponent),
        }
    }

    fn from_modp_exponent(
        group: DhGroup,
        exponent: Zeroizing<[u8; MAX_EXPONENT_LEN]>,
    ) -> Result<Self, DhError> {
        let len = group.public_len();
        let mut generator = [0u8; MAX_PUBLIC_LEN];
        // The generator is 2 for every MODP group here (RFC 2409 §6.2, RFC 3526).
        *generator.get_mut(len - 1).ok_or(DhError::KeyGeneration)? = 2;
        let mut x = U512::from_be_slice(exponent.as_ref());
        let mut public = [0u8; MAX_PUBLIC_LEN];
        let result = modp_dispatch(
            group,
            generator.get(..len).ok_or(DhError::KeyGeneration)?,
            &x,
            public.get_mut(..len).ok_or(DhError::KeyGeneration)?,
        );
        x.as_mut_words().zeroize();
        result.map_err(|_| DhError::KeyGeneration)?;
        Ok(Self {
            group,
            private: Private::Modp(exponent),
            public,
        })
    }

    fn generate_ecp(group: DhGroup) -> Result<Self, DhError> {
        let alg = match group {
            DhGroup::Ecp256 => &agreement::ECDH_P256,
            DhGroup::Curve25519 => &agreement::X25519,
            _ => &agreement::ECDH_P384,
        };
        let rng = ring::rand::SystemRandom::new();
        let key = agreement::EphemeralPrivateKey::generate(alg, &rng)
            .map_err(|_| DhError::KeyGeneration)?;
        let sec1 = key
            .compute_public_key()
            .map_err(|_| DhError::KeyGeneration)?;
        // RFC 5903 §7: the KE payload carries x || y, without SEC1's 0x04 prefix; RFC 8031 §2:
        // Curve25519 carries the 32-byte u coordinate as is.
        let xy = match (group, sec1.as_ref().split_first()) {
            (DhGroup::Curve25519, _) if sec1.as_ref().len() == group.public_len() => sec1.as_ref(),
            (_, Some((0x04, xy))) if xy.len() == group.public_len() => xy,
            _ => return Err(DhError::KeyGeneration),
        };
        let mut public = [0u8; MAX_PUBLIC_LEN];
        public
            .get_mut(..xy.len())
            .ok_or(DhError::KeyGeneration)?
            .copy_from_slice(xy);
        Ok(Self {
            group,
            private: Private::Ecp(key),
            public,
        })
    }

    /// A MODP key pair with a chosen exponent, for known-answer tests.
    #[cfg(test)]
    fn with_modp_exponent(group: DhGroup, exponent_be: &[u8]) -> Self {
        let mut exponent = Zeroizing::new([0u8; MAX_EXPONENT_LEN]);
        exponent[MAX_EXPONENT_LEN - exponent_be.len()..].copy_from_slice(exponent_be);
        Self::from_modp_exponent(group, exponent).unwrap()
    }

    /// The group.
    #[must_use]
    pub const fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value, exactly [`DhGroup::public_len`] bytes, ready for a KE payload.
    #[must_use]
    pub fn public_value(&self) -> &[u8] {
        self.public.get(..self.group.public_len()).unwrap_or(&[])
    }

    /// Computes the shared secret with the peer's public value, consuming the private key.
    ///
    /// # Errors
    /// [`DhError::PublicLength`] if `peer` is not exactly [`DhGroup::public_len`] bytes (RFC 2409
    /// §5: KE data is zero-padded to the group's length); [`DhError::InvalidPublicValue`] if a
    /// MODP value is not in `2..=p-2` or an ECP value is not a point on the curve.
    pub fn agree(self, peer: &[u8]) -> Result<SharedSecret, DhError> {
        let want = self.group.public_len();
        if peer.len() != want {
            return Err(DhError::PublicLength {
                got: peer.len(),
                want,
            });
        }
        let mut secret = SharedSecret {
            bytes: Zeroizing::new([0u8; MAX_SHARED_LEN]),
            len: self.group.shared_len(),
        };
        match self.private {
            Private::Modp(exponent) => {
                // RFC 6989 §2.1: check 1 < y < p-1 before using a peer's MODP value.
                if !modp_valid(self.group, peer) {
                    return Err(DhError::InvalidPublicValue);
                }
                let mut x = U512::from_be_slice(exponent.as_ref());
                let out = secret
                    .bytes
                    .get_mut(..want)
                    .ok_or(DhError::InvalidPublicValue)?;
                let result = modp_dispatch(self.group, peer, &x, out);
                x.as_mut_words().zeroize();
                result?;
            }
            Private::Ecp(key) => {
                let alg = key.algorithm();
                let mut sec1 = [0u8; 1 + 96];
                let encoded = if self.group == DhGroup::Curve25519 {
                    peer
                } else {
                    sec1[0] = 0x04;
                    sec1.get_mut(1..=want)
                        .ok_or(DhError::InvalidPublicValue)?
                        .copy_from_slice(peer);
                    sec1.get(..=want).unwrap_or(&[])
                };
                let peer_key = agreement::UnparsedPublicKey::new(alg, encoded);
                let len = secret.len;
                let out = secret
                    .bytes
                    .get_mut(..len)
                    .ok_or(DhError::InvalidPublicValue)?;
                // ring validates the point and returns the x coordinate (RFC 5903 §7).
                agreement::agree_ephemeral(key, &peer_key, |z| {
                    if z.len() == out.len() {
                        out.copy_from_slice(z);
                        true
                    } else {
                        false
                    }
                })
                .ok()
                .filter(|copied| *copied)
                .ok_or(DhError::InvalidPublicValue)?;
            }
        }
        Ok(secret)
    }
}

/// A Diffie-Hellman shared secret (`g^xy`), wiped on drop; `Debug` never shows it.
pub struct SharedSecret {
    bytes: Zeroizing<[u8; MAX_SHARED_LEN]>,
    len: usize,
}

impl SharedSecret {
    /// The secret: for MODP left-padded to the modulus length, for ECP the x coordinate.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

impl fmt::Display for DhGroup {
    /// strongSwan's proposal keywords (`modp1024`, `ecp256`, `curve25519`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Modp1024 => "modp1024",
            Self::Modp1536 => "modp1536",
            Self::Modp2048 => "modp2048",
            Self::Modp3072 => "modp3072",
            Self::Modp4096 => "modp4096",
            Self::Ecp256 => "ecp256",
            Self::Ecp384 => "ecp384",
            Self::Curve25519 => "curve25519",
        })
    }
}

#[cfg(test)]
mod tests;
