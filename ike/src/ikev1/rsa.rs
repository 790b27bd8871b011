//! Raw RSA for IKEv1 signature authentication (RFC 2409 §5.1).
//!
//! IKEv1 signs HASH_I / HASH_R directly: the hash is embedded in a PKCS#1 v1.5 block of type 1
//! (`00 01 FF… 00 || hash`, RFC 8017 §9.2 steps 3–5) *without* the DigestInfo that ordinary
//! PKCS#1 signatures wrap around the hash. This is what strongSwan calls
//! `SIGN_RSA_EMSA_PKCS1_NULL` and what Windows and macOS produce. `ring` only signs and verifies
//! with a DigestInfo, so the RSA operation itself is done here with `crypto-bigint`:
//!
//! - signing uses the CRT form of the private key, every step constant time (Montgomery
//!   exponentiation with a fixed-width exponent, constant-time reduction), and checks the result
//!   with the public exponent before releasing it (a faulty CRT result would leak a factor);
//! - verification recovers the block with the public exponent and compares it in constant time
//!   with the block we expect.
//!
//! Moduli of 2048 to 4096 bits are supported; `ring` validates the private key's consistency
//! when it is loaded.

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{NonZero, Odd, U1024, U1536, U2048, U3072, U4096, Uint};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Smallest modulus accepted, in bits.
pub const MIN_MODULUS_BITS: usize = 2048;
/// Largest modulus accepted, in bits.
pub const MAX_MODULUS_BITS: usize = 4096;
/// Longest public exponent accepted, in bytes (keys in use have 65537).
const MAX_EXPONENT_LEN: usize = 4;
/// Minimum padding of a type-1 block (RFC 8017 §9.2: at least eight 0xFF octets).
const MIN_PADDING: usize = 8;

/// Why a key could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    /// Not a DER PKCS#8 RSA private key, or not an RSA public key.
    #[error("malformed RSA key")]
    Malformed,
    /// A modulus outside 2048–4096 bits, an unusual public exponent or unbalanced primes.
    #[error("unsupported RSA key size or exponent")]
    Unsupported,
    /// The key's parts do not agree (ring rejected it, or a signature did not check out).
    #[error("inconsistent RSA key")]
    Inconsistent,
    /// The data to sign does not fit the modulus with the minimum padding.
    #[error("data too long for the modulus")]
    TooLong,
}

/// A minimal DER reader for the two structures we parse (PKCS#8 and RSAPrivateKey).
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// Reads one element with `tag` and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], RsaError> {
        let (&t, rest) = self.0.split_first().ok_or(RsaError::Malformed)?;
        let (&first, mut rest) = rest.split_first().ok_or(RsaError::Malformed)?;
        if t != tag {
            return Err(RsaError::Malformed);
        }
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            // Long form with one to three length octets is plenty for keys up to 4096 bits.
            let count = usize::from(first & 0x7f);
            if !(1..=3).contains(&count) || rest.len() < count {
                return Err(RsaError::Malformed);
            }
            let (octets, tail) = rest.split_at(count);
            rest = tail;
            octets
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return Err(RsaError::Malformed);
        }
        let (value, tail) = rest.split_at(len);
        self.0 = tail;
        Ok(value)
    }

    /// Reads a non-negative INTEGER and returns its magnitude without leading zeros.
    fn unsigned(&mut self) -> Result<&'a [u8], RsaError> {
        let v = self.read(0x02)?;
        match v.first() {
            None => Err(RsaError::Malformed),
            Some(b) if b & 0x80 != 0 => Err(RsaError::Malformed),
            Some(_) => {
                let zeros = v.iter().take_while(|&&b| b == 0).count();
                Ok(&v[zeros..])
            }
        }
    }
}

/// DER of the rsaEncryption algorithm OID (1.2.840.113549.1.1.1), contents only.
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Left-pads `bytes` into a `Uint`; `None` when it does not fit.
fn uint<const L: usize>(bytes: &[u8]) -> Option<Uint<L>> {
    let width = Uint::<L>::BYTES;
    let pad = width.checked_sub(bytes.len())?;
    let mut buf = Zeroizing::new(vec![0u8; width]);
    buf[pad..].copy_from_slice(bytes);
    Some(Uint::<L>::from_be_slice(&buf))
}

/// The big-endian encoding of `x` in exactly `k` bytes (`x < 2^(8k)` is the caller's invariant).
fn be_bytes<const L: usize>(x: &Uint<L>, k: usize) -> Zeroizing<Vec<u8>> {
    let all = x.to_be_bytes();
    let all: &[u8] = all.as_ref();
    let start = all.len().saturating_sub(k);
    let mut out = Zeroizing::new(vec![0u8; k.saturating_sub(all.len())]);
    out.extend_from_slice(&all[start..]);
    out
}

fn bit_len(magnitude: &[u8]) -> usize {
    match magnitude.first() {
        None => 0,
        Some(&b) => magnitude.len() * 8 - b.leading_zeros() as usize,
    }
}

/// An RSA public key: modulus and exponent, big-endian without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaPublicKey {
    /// A key from its modulus and public exponent (big-endian, leading zeros allowed).
    ///
    /// # Errors
    /// [`RsaError::Unsupported`] for a modulus outside 2048–4096 bits, an even modulus, or an
    /// exponent that is even, below 3 or longer than 32 bits.
    pub fn new(n: &[u8], e: &[u8]) -> Result<Self, RsaError> {
        let n = &n[n.iter().take_while(|&&b| b == 0).count()..];
        let e = &e[e.iter().take_while(|&&b| b == 0).count()..];
        let bits = bit_len(n);
        let odd = |x: &[u8]| x.last().is_some_and(|b| b & 1 == 1);
        if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits)
            || !odd(n)
            || !odd(e)
            || e.len() > MAX_EXPONENT_LEN
            || e == [1]
        {
            return Err(RsaError::Unsupported);
        }
        Ok(Self {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// The modulus length in bytes: the length of every signature.
    #[must_use]
    pub fn len(&self) -> usize {
        self.n.len()
    }

    /// Always false: a key has a modulus.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n.is_empty()
    }

    /// `s^e mod n` as `k` bytes, or `None` when `s` is not a valid signature representative.
    fn public_op(&self, s: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        fn op<const L: usize>(n: &[u8], e: &[u8], s: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
            let n_int = Odd::new(uint::<L>(n)?).into_option()?;
            let e = uint::<L>(e)?;
            let s = uint::<L>(s)?;
            // RFC 8017 §5.2.2: the representative must be below the modulus.
            if s >= *n_int.as_ref() {
                return None;
            }
            let params = FixedMontyParams::new_vartime(n_int);
            let m = FixedMontyForm::new(&s, &params).pow_vartime(&e).retrieve();
            Some(be_bytes(&m, n.len()))
        }
        if s.len() != self.n.len() {
            return None;
        }
        match self.n.len() {
            0..=256 => op::<{ U2048::LIMBS }>(&self.n, &self.e, s),
            257..=384 => op::<{ U3072::LIMBS }>(&self.n, &self.e, s),
            _ => op::<{ U4096::LIMBS }>(&self.n, &self.e, s),
        }
    }

    /// Verifies an IKEv1 signature (PKCS#1 v1.5 type 1, no DigestInfo) over `hash`.
    #[must_use]
    pub fn verify_raw(&self, hash: &[u8], signature: &[u8]) -> bool {
        let Ok(expected) = type1_block(hash, self.n.len()) else {
            return false;
        };
        match self.public_op(signature) {
            Some(recovered) => bool::from(recovered.as_slice().ct_eq(expected.as_slice())),
            None => false,
        }
    }
}

/// `00 01 FF… 00 || data`, `k` bytes long (RFC 8017 §9.2 steps 3–5 with T = the bare hash).
fn type1_block(data: &[u8], k: usize) -> Result<Zeroizing<Vec<u8>>, RsaError> {
    let ps = k
        .checked_sub(data.len() + 3)
        .filter(|ps| *ps >= MIN_PADDING)
        .ok_or(RsaError::TooLong)?;
    let mut em = Zeroizing::new(Vec::with_capacity(k));
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(2 + ps, 0xff);
    em.push(0x00);
    em.extend_from_slice(data);
    Ok(em)
}

/// The CRT private key in fixed-width integers: `N` limbs for the modulus, `H` for the primes.
struct Crt<const N: usize, const H: usize> {
    p: Uint<H>,
    q: Uint<H>,
    dp: Uint<H>,
    dq: Uint<H>,
    qinv: Uint<H>,
}

impl<const N: usize, const H: usize> Drop for Crt<N, H> {
    fn drop(&mut self) {
        self.dp.as_mut_words().zeroize();
        self.dq.as_mut_words().zeroize();
        self.qinv.as_mut_words().zeroize();
        self.p.as_mut_words().zeroize();
        self.q.as_mut_words().zeroize();
    }
}

impl<const N: usize, const H: usize> Crt<N, H> {
    fn new(parts: &Pkcs1Parts<'_>) -> Result<Self, RsaError> {
        let get = |b: &[u8]| uint::<H>(b).ok_or(RsaError::Unsupported);
        let odd = |b: &[u8]| {
            let x = get(b)?;
            if Odd::new(x).into_option().is_none() {
                return Err(RsaError::Inconsistent);
            }
            Ok(x)
        };
        Ok(Self {
            p: odd(parts.p)?,
            q: odd(parts.q)?,
            dp: get(parts.dp)?,
            dq: get(parts.dq)?,
            qinv: get(parts.qinv)?,
        })
    }

    /// `c^d mod n` by Garner's recombination, constant time in the secret values.
    fn private_op(&self, c: &[u8], k: usize) -> Option<Zeroizing<Vec<u8>>> {
        let mut c = uint::<N>(c)?;
        // Both primes were checked to be odd when the key was loaded.
        let p = Odd::new(self.p).into_option()?;
        let q = Odd::new(self.q).into_option()?;
        let p_nz: &NonZero<Uint<H>> = p.as_nz_ref();
        let q_nz: &NonZero<Uint<H>> = q.as_nz_ref();
        let pp = FixedMontyParams::new(p);
        let qp = FixedMontyParams::new(q);
        let mut cp = c.rem(p_nz);
        let mut cq = c.rem(q_nz);
        let mut m1 = FixedMontyForm::new(&cp, &pp).pow(&self.dp).retrieve();
        let mut m2 = FixedMontyForm::new(&cq, &qp).pow(&self.dq).retrieve();
        // h = qInv · (m1 − m2) mod p; m = m2 + h · q (RFC 8017 §5.1.2 step 2.b).
        let mut m2p = m2.rem(p_nz);
        let mut h = FixedMontyForm::new(&m1, &pp)
            .sub(&FixedMontyForm::new(&m2p, &pp))
            .mul(&FixedMontyForm::new(&self.qinv, &pp))
            .retrieve();
        let mut m = h
            .resize::<N>()
            .wrapping_mul(&self.q.resize::<N>())
            .wrapping_add(&m2.resize::<N>());
        let out = be_bytes(&m, k);
        for x in [&mut cp, &mut cq, &mut m1, &mut m2, &mut m2p, &mut h] {
            x.as_mut_words().zeroize();
        }
        c.as_mut_words().zeroize();
        m.as_mut_words().zeroize();
        Some(out)
    }
}

enum CrtKey {
    Rsa2048(Box<Crt<{ U2048::LIMBS }, { U1024::LIMBS }>>),
    Rsa3072(Box<Crt<{ U3072::LIMBS }, { U1536::LIMBS }>>),
    Rsa4096(Box<Crt<{ U4096::LIMBS }, { U2048::LIMBS }>>),
}

struct Pkcs1Parts<'a> {
    n: &'a [u8],
    e: &'a [u8],
    p: &'a [u8],
    q: &'a [u8],
    dp: &'a [u8],
    dq: &'a [u8],
    qinv: &'a [u8],
}

/// Parses PKCS#8 PrivateKeyInfo (RFC 5208 §5) holding an RSAPrivateKey (RFC 8017 A.1.2).
fn parse_pkcs8(der: &[u8]) -> Result<Pkcs1Parts<'_>, RsaError> {
    let mut outer = Der(der);
    let mut info = Der(outer.read(0x30)?);
    if !outer.0.is_empty() {
        return Err(RsaError::Malformed);
    }
    let _version = info.unsigned()?;
    let mut algorithm = Der(info.read(0x30)?);
    if algorithm.read(0x06)? != RSA_ENCRYPTION_OID {
        return Err(RsaError::Malformed);
    }
    let mut key = Der(info.read(0x04)?);
    let mut rsa = Der(key.read(0x30)?);
    // Two-prime keys only: version 0 (RFC 8017 A.1.2).
    if !rsa.unsigned()?.is_empty() {
        return Err(RsaError::Unsupported);
    }
    let n = rsa.unsigned()?;
    let e = rsa.unsigned()?;
    let _d = rsa.unsigned()?;
    Ok(Pkcs1Parts {
        n,
        e,
        p: rsa.unsigned()?,
        q: rsa.unsigned()?,
        dp: rsa.unsigned()?,
        dq: rsa.unsigned()?,
        qinv: rsa.unsigned()?,
    })
}

/// An RSA private key for IKEv1 signatures. Its `Debug` output shows only the public half; the
/// private values are zeroized on drop.
pub struct RsaPrivateKey {
    crt: CrtKey,
    public: RsaPublicKey,
}

impl core::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "RsaPrivateKey({} bits, <redacted>)",
            bit_len(&self.public.n)
        )
    }
}

impl RsaPrivateKey {
    /// Loads a PKCS#8 DER RSA private key; `ring` checks that its parts are consistent.
    ///
    /// # Errors
    /// [`RsaError`] for anything but a consistent two-prime RSA key of 2048–4096 bits.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, RsaError> {
        ring::signature::RsaKeyPair::from_pkcs8(der).map_err(|_| RsaError::Inconsistent)?;
        let parts = parse_pkcs8(der)?;
        let public = RsaPublicKey::new(parts.n, parts.e)?;
        let crt = match public.n.len() {
            0..=256 => CrtKey::Rsa2048(Box::new(Crt::new(&parts)?)),
            257..=384 => CrtKey::Rsa3072(Box::new(Crt::new(&parts)?)),
            _ => CrtKey::Rsa4096(Box::new(Crt::new(&parts)?)),
        };
        let key = Self { crt, public };
        // A trial signature proves the CRT parts and the public key agree.
        let probe = [0x5a; 20];
        let sig = key.sign_raw(&probe)?;
        if !key.public.verify_raw(&probe, &sig) {
            return Err(RsaError::Inconsistent);
        }
        Ok(key)
    }

    /// The public half.
    #[must_use]
    pub const fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// Signs `hash` the IKEv1 way (PKCS#1 v1.5 type 1 without DigestInfo).
    ///
    /// # Errors
    /// [`RsaError::TooLong`] when `hash` does not fit; [`RsaError::Inconsistent`] when the
    /// result fails its check with the public exponent (nothing is released then).
    pub fn sign_raw(&self, hash: &[u8]) -> Result<Vec<u8>, RsaError> {
        let k = self.public.n.len();
        let em = type1_block(hash, k)?;
        let s = match &self.crt {
            CrtKey::Rsa2048(c) => c.private_op(&em, k),
            CrtKey::Rsa3072(c) => c.private_op(&em, k),
            CrtKey::Rsa4096(c) => c.private_op(&em, k),
        }
        .ok_or(RsaError::Inconsistent)?;
        // Fault check: a wrong CRT half would otherwise give away a prime factor.
        match self.public.public_op(&s) {
            Some(back) if bool::from(back.as_slice().ct_eq(em.as_slice())) => Ok(s.to_vec()),
            _ => Err(RsaError::Inconsistent),
        }
    }
}

#[cfg(test)]
mod tests;
