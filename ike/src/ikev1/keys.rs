//! The IKEv1 key schedule (RFC 2409 §5, §5.5 and Appendix B).
//!
//! ```text
//! SKEYID   = prf(pre-shared-key, Ni_b | Nr_b)                  (pre-shared keys, §5.4)
//!          = prf(Ni_b | Nr_b, g^xy)                            (signatures, §5.1)
//! SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
//! SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
//! SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
//! HASH_I   = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
//! HASH_R   = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
//! KEYMAT   = K1 | K2 | …,  K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//!                          Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
//! phase-1 IV = hash(g^xi | g^xr), per-exchange IV = hash(last phase-1 block | M-ID)
//! ```

use crate::crypto::{Hash, HashAlgorithm, Prf, PrfAlgorithm};
use crate::wire::Cookie;
use zeroize::Zeroizing;

/// Longest PRF or hash output (SHA-512).
pub const MAX_DIGEST_LEN: usize = 64;

/// Key material: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes.
    #[must_use]
    pub fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// The bytes. Do not log them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret({} bytes, <redacted>)", self.0.len())
    }
}

fn prf(alg: PrfAlgorithm, key: &[u8], parts: &[&[u8]]) -> Secret {
    let mut out = Zeroizing::new([0u8; MAX_DIGEST_LEN]);
    // The output buffer always holds MAX_DIGEST_LEN bytes, the longest PRF output.
    let n = Prf::compute(alg, key, parts, &mut out[..]).unwrap_or(0);
    Secret::new(&out[..n])
}

/// How phase 1 authenticates, which decides SKEYID.
#[derive(Debug, Clone, Copy)]
pub enum Phase1Auth<'a> {
    /// Pre-shared key (RFC 2409 §5.4).
    PreSharedKey(&'a [u8]),
    /// Signatures (RFC 2409 §5.1).
    Signature,
}

/// The keys of one ISAKMP SA.
#[derive(Debug, Clone)]
pub struct Phase1Keys {
    prf: PrfAlgorithm,
    skeyid: Secret,
    skeyid_d: Secret,
    skeyid_a: Secret,
    skeyid_e: Secret,
    encryption: Secret,
}

/// The inputs of the phase-1 key schedule.
#[derive(Debug, Clone, Copy)]
pub struct Phase1Inputs<'a> {
    /// The negotiated PRF (HMAC over the negotiated hash).
    pub prf: PrfAlgorithm,
    /// Authentication method.
    pub auth: Phase1Auth<'a>,
    /// Initiator nonce body.
    pub ni: &'a [u8],
    /// Responder nonce body.
    pub nr: &'a [u8],
    /// The Diffie-Hellman shared secret g^xy.
    pub gxy: &'a [u8],
    /// Initiator cookie.
    pub cky_i: Cookie,
    /// Responder cookie.
    pub cky_r: Cookie,
    /// Key length the negotiated cipher needs.
    pub cipher_key_len: usize,
}

impl Phase1Keys {
    /// Runs the key schedule.
    #[must_use]
    pub fn derive(i: &Phase1Inputs<'_>) -> Self {
        let skeyid = match i.auth {
            Phase1Auth::PreSharedKey(psk) => prf(i.prf, psk, &[i.ni, i.nr]),
            Phase1Auth::Signature => {
                let mut key = Zeroizing::new(Vec::with_capacity(i.ni.len() + i.nr.len()));
                key.extend_from_slice(i.ni);
                key.extend_from_slice(i.nr);
                prf(i.prf, &key, &[i.gxy])
            }
        };
        let (ci, cr) = (&i.cky_i.0[..], &i.cky_r.0[..]);
        let skeyid_d = prf(i.prf, skeyid.expose(), &[i.gxy, ci, cr, &[0]]);
        let skeyid_a = prf(
            i.prf,
            skeyid.expose(),
            &[skeyid_d.expose(), i.gxy, ci, cr, &[1]],
        );
        let skeyid_e = prf(
            i.prf,
            skeyid.expose(),
            &[skeyid_a.expose(), i.gxy, ci, cr, &[2]],
        );
        let encryption = expand_encryption_key(i.prf, &skeyid_e, i.cipher_key_len);
        Self {
            prf: i.prf,
            skeyid,
            skeyid_d,
            skeyid_a,
            skeyid_e,
            encryption,
        }
    }

    /// The PRF.
    #[must_use]
    pub const fn prf(&self) -> PrfAlgorithm {
        self.prf
    }

    /// SKEYID.
    #[must_use]
    pub const fn skeyid(&self) -> &Secret {
        &self.skeyid
    }

    /// SKEYID_d (derives phase-2 keys).
    #[must_use]
    pub const fn skeyid_d(&self) -> &Secret {
        &self.skeyid_d
    }

    /// SKEYID_a (authenticates phase-2 and informational messages).
    #[must_use]
    pub const fn skeyid_a(&self) -> &Secret {
        &self.skeyid_a
    }

    /// SKEYID_e.
    #[must_use]
    pub const fn skeyid_e(&self) -> &Secret {
        &self.skeyid_e
    }

    /// The key that encrypts ISAKMP messages of this SA.
    #[must_use]
    pub const fn encryption_key(&self) -> &Secret {
        &self.encryption
    }

    /// HASH_I (`initiator = true`) or HASH_R of RFC 2409 §5: `own`/`peer` are the public values
    /// in the order the formula names them, `id_b` the ID payload body of the sender.
    #[must_use]
    pub fn phase1_hash(&self, inputs: &Phase1HashInputs<'_>) -> Secret {
        let (first, second, c1, c2) = if inputs.initiator {
            (inputs.gxi, inputs.gxr, &inputs.cky_i.0, &inputs.cky_r.0)
        } else {
            (inputs.gxr, inputs.gxi, &inputs.cky_r.0, &inputs.cky_i.0)
        };
        prf(
            self.prf,
            self.skeyid.expose(),
            &[first, second, c1, c2, inputs.sai_b, inputs.id_b],
        )
    }

    /// `prf(SKEYID_a, parts…)`: the HASH payloads of Quick Mode and Informational exchanges
    /// (RFC 2409 §5.5, §5.7).
    #[must_use]
    pub fn hash_a(&self, parts: &[&[u8]]) -> Secret {
        prf(self.prf, self.skeyid_a.expose(), parts)
    }

    /// KEYMAT for one direction of an IPsec SA (RFC 2409 §5.5): `spi` is the SPI of that SA
    /// (chosen by its receiver), `gqm` the Quick Mode DH secret when PFS was used.
    #[must_use]
    pub fn keymat(
        &self,
        gqm: Option<&[u8]>,
        protocol: u8,
        spi: [u8; 4],
        ni: &[u8],
        nr: &[u8],
        len: usize,
    ) -> Secret {
        let gqm = gqm.unwrap_or(&[]);
        let mut out = Zeroizing::new(Vec::with_capacity(len + MAX_DIGEST_LEN));
        let mut previous = Secret::new(&[]);
        while out.len() < len {
            let block = prf(
                self.prf,
                self.skeyid_d.expose(),
                &[previous.expose(), gqm, &[protocol], &spi, ni, nr],
            );
            if block.expose().is_empty() {
                break;
            }
            out.extend_from_slice(block.expose());
            previous = block;
        }
        out.truncate(len);
        Secret(out)
    }
}

/// The inputs of HASH_I / HASH_R.
#[derive(Debug, Clone, Copy)]
pub struct Phase1HashInputs<'a> {
    /// Compute HASH_I (true) or HASH_R (false).
    pub initiator: bool,
    /// The initiator's public value g^xi.
    pub gxi: &'a [u8],
    /// The responder's public value g^xr.
    pub gxr: &'a [u8],
    /// Initiator cookie.
    pub cky_i: Cookie,
    /// Responder cookie.
    pub cky_r: Cookie,
    /// The initiator's whole SA payload body (SAi_b).
    pub sai_b: &'a [u8],
    /// The sender's ID payload body (IDii_b or IDir_b).
    pub id_b: &'a [u8],
}

/// RFC 2409 Appendix B: SKEYID_e is stretched with `K1 = prf(SKEYID_e, 0)`,
/// `Kn = prf(SKEYID_e, Kn-1)` when it is shorter than the cipher key, else truncated.
fn expand_encryption_key(alg: PrfAlgorithm, skeyid_e: &Secret, len: usize) -> Secret {
    if skeyid_e.expose().len() >= len {
        return Secret::new(&skeyid_e.expose()[..len]);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + MAX_DIGEST_LEN));
    let mut block = prf(alg, skeyid_e.expose(), &[&[0]]);
    while out.len() < len && !block.expose().is_empty() {
        out.extend_from_slice(block.expose());
        block = prf(alg, skeyid_e.expose(), &[block.expose()]);
    }
    out.truncate(len);
    Secret(out)
}

/// The phase-1 IV: `hash(g^xi | g^xr)` cut to the cipher's block length (RFC 2409 Appendix B).
#[must_use]
pub fn phase1_iv(hash: HashAlgorithm, gxi: &[u8], gxr: &[u8], block_len: usize) -> Vec<u8> {
    digest_prefix(hash, &[gxi, gxr], block_len)
}

/// The first IV of a Quick Mode or Informational exchange: `hash(last phase-1 block | M-ID)`
/// (RFC 2409 Appendix B).
#[must_use]
pub fn exchange_iv(
    hash: HashAlgorithm,
    last_phase1_block: &[u8],
    message_id: u32,
    block_len: usize,
) -> Vec<u8> {
    digest_prefix(
        hash,
        &[last_phase1_block, &message_id.to_be_bytes()],
        block_len,
    )
}

fn digest_prefix(alg: HashAlgorithm, parts: &[&[u8]], len: usize) -> Vec<u8> {
    let mut h = Hash::new(alg);
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; MAX_DIGEST_LEN];
    let n = h.finish(&mut out).unwrap_or(0);
    out[..n.min(len)].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(alg: PrfAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        prf(alg, key, parts).expose().to_vec()
    }

    #[test]
    fn schedule_follows_the_rfc_formulas() {
        let (ni, nr, gxy) = ([1u8; 16], [2u8; 20], [3u8; 128]);
        let (ci, cr) = (Cookie([4; 8]), Cookie([5; 8]));
        let alg = PrfAlgorithm::HmacSha1;
        let keys = Phase1Keys::derive(&Phase1Inputs {
            prf: alg,
            auth: Phase1Auth::PreSharedKey(b"interop-test-psk"),
            ni: &ni,
            nr: &nr,
            gxy: &gxy,
            cky_i: ci,
            cky_r: cr,
            cipher_key_len: 32,
        });
        let skeyid = p(alg, b"interop-test-psk", &[&ni, &nr]);
        assert_eq!(keys.skeyid().expose(), &skeyid[..]);
        let d = p(alg, &skeyid, &[&gxy, &ci.0, &cr.0, &[0]]);
        let a = p(alg, &skeyid, &[&d, &gxy, &ci.0, &cr.0, &[1]]);
        let e = p(alg, &skeyid, &[&a, &gxy, &ci.0, &cr.0, &[2]]);
        assert_eq!(
            (
                keys.skeyid_d().expose(),
                keys.skeyid_a().expose(),
                keys.skeyid_e().expose()
            ),
            (&d[..], &a[..], &e[..])
        );
        // SHA-1 gives 20 bytes; AES-256 needs 32: Appendix B expansion.
        let k1 = p(alg, &e, &[&[0]]);
        let k2 = p(alg, &e, &[&k1]);
        assert_eq!(
            keys.encryption_key().expose(),
            &[&k1[..], &k2[..12]].concat()[..]
        );
        // SHA-256 gives 32 bytes: AES-128 takes the first 16 of SKEYID_e.
        let keys = Phase1Keys::derive(&Phase1Inputs {
            prf: PrfAlgorithm::HmacSha256,
            cipher_key_len: 16,
            ..Phase1Inputs {
                prf: alg,
                auth: Phase1Auth::Signature,
                ni: &ni,
                nr: &nr,
                gxy: &gxy,
                cky_i: ci,
                cky_r: cr,
                cipher_key_len: 0,
            }
        });
        let skeyid = p(
            PrfAlgorithm::HmacSha256,
            &[&ni[..], &nr[..]].concat(),
            &[&gxy],
        );
        assert_eq!(
            keys.skeyid().expose(),
            &skeyid[..],
            "signature SKEYID keys the PRF with the nonces"
        );
        assert_eq!(
            keys.encryption_key().expose(),
            &keys.skeyid_e().expose()[..16]
        );
        assert!(
            !format!("{keys:?}").contains(&format!("{}", skeyid[0]))
                || format!("{keys:?}").contains("redacted")
        );
    }

    #[test]
    fn keymat_expands_with_the_previous_block() {
        let keys = Phase1Keys::derive(&Phase1Inputs {
            prf: PrfAlgorithm::HmacMd5,
            auth: Phase1Auth::PreSharedKey(b"k"),
            ni: &[1; 8],
            nr: &[2; 8],
            gxy: &[3; 96],
            cky_i: Cookie([4; 8]),
            cky_r: Cookie([5; 8]),
            cipher_key_len: 24,
        });
        let spi = [0xc0, 0x01, 0x02, 0x03];
        let km = keys.keymat(None, 3, spi, b"ni", b"nr", 52);
        let d = keys.skeyid_d().expose();
        let k1 = p(PrfAlgorithm::HmacMd5, d, &[&[3], &spi, b"ni", b"nr"]);
        let k2 = p(PrfAlgorithm::HmacMd5, d, &[&k1, &[3], &spi, b"ni", b"nr"]);
        let k3 = p(PrfAlgorithm::HmacMd5, d, &[&k2, &[3], &spi, b"ni", b"nr"]);
        let k4 = p(PrfAlgorithm::HmacMd5, d, &[&k3, &[3], &spi, b"ni", b"nr"]);
        assert_eq!(
            km.expose(),
            &[&k1[..], &k2[..], &k3[..], &k4[..4]].concat()[..]
        );
        let with_pfs = keys.keymat(Some(b"gqm"), 3, spi, b"ni", b"nr", 16);
        assert_eq!(
            with_pfs.expose(),
            &p(
                PrfAlgorithm::HmacMd5,
                d,
                &[b"gqm", &[3], &spi, b"ni", b"nr"]
            )[..]
        );
    }

    #[test]
    fn ivs_are_hash_prefixes() {
        let iv = phase1_iv(HashAlgorithm::Sha1, b"gxi", b"gxr", 16);
        let mut h = Hash::new(HashAlgorithm::Sha1);
        h.update(b"gxigxr");
        let mut full = [0u8; 64];
        let n = h.finish(&mut full).unwrap();
        assert_eq!(n, 20);
        assert_eq!(iv, full[..16].to_vec());
        let qm = exchange_iv(HashAlgorithm::Md5, &[9; 16], 0x0102_0304, 8);
        assert_eq!(qm.len(), 8);
    }
}
