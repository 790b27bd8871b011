//! The crypto limits, measured in-process with the `ike` crate's primitives: the bare cipher
//! and MAC cost of one tunnel packet (sealed once and opened once, as ESP must, without ESP's
//! framing — the approach of `ike/benches/esp.rs`), and the Diffie-Hellman cost per group.

use ike::crypto::{Cipher, CipherAlgorithm, DhGroup, DhKeyPair, Integrity, IntegrityAlgorithm};
use ike::esp::Transform;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// An ESP suite the bench measures.
#[derive(Debug, Clone, Copy)]
pub struct Suite {
    /// Short name for the table.
    pub name: &'static str,
    /// The transform pinned in the client's proposal.
    pub transform: Transform,
}

/// AES-GCM-128, AES-CBC-128 + HMAC-SHA1-96, AES-CBC-256 + HMAC-SHA2-256-128.
#[must_use]
pub fn suites() -> Vec<Suite> {
    [
        ("aes128gcm16", CipherAlgorithm::AesGcm16_128, None),
        (
            "aes128cbc-sha1",
            CipherAlgorithm::AesCbc128,
            Some(IntegrityAlgorithm::HmacSha1_96),
        ),
        (
            "aes256cbc-sha256",
            CipherAlgorithm::AesCbc256,
            Some(IntegrityAlgorithm::HmacSha256_128),
        ),
    ]
    .into_iter()
    .filter_map(|(name, c, i)| {
        Transform::new(c, i)
            .ok()
            .map(|transform| Suite { name, transform })
    })
    .collect()
}

/// Bytes around the inner IP packet inside ESP in this tunnel: UDP (8), L2TP data header with
/// length (8), PPP address/control and protocol (4).
pub const TUNNEL_HEADERS: usize = 20;

/// The bare primitives of a transform over the bytes ESP processes for one payload.
struct Raw {
    cipher: Cipher,
    integrity: Option<Integrity>,
    /// SPI, sequence number and IV in front of the ciphertext.
    head: usize,
    /// Padded plaintext: payload, padding, pad length, next header.
    body: usize,
    icv: usize,
}

impl Raw {
    fn new(t: Transform, payload: usize) -> anyhow::Result<Self> {
        let enc = vec![0x11; t.encryption_key_len()];
        let auth = vec![0x22; t.integrity_key_len()];
        Ok(Self {
            cipher: Cipher::new(t.cipher(), &enc).map_err(|e| anyhow::anyhow!("cipher: {e:?}"))?,
            integrity: match t.integrity() {
                Some(i) => Some(
                    Integrity::new(i, &auth).map_err(|e| anyhow::anyhow!("integrity: {e:?}"))?,
                ),
                None => None,
            },
            head: 8 + t.cipher().iv_len(),
            body: (payload + 2).next_multiple_of(t.pad_alignment()),
            icv: t.icv_len(),
        })
    }

    const fn len(&self) -> usize {
        self.head + self.body + self.icv
    }

    /// Encrypts the body and writes the ICV (fixed IV: only the cost matters).
    fn seal(&self, packet: &mut [u8]) -> anyhow::Result<()> {
        let (covered, icv) = packet.split_at_mut(self.head + self.body);
        let (head, body) = covered.split_at_mut(self.head);
        if let Some(integrity) = &self.integrity {
            self.cipher
                .encrypt_cbc(&head[8..], body)
                .map_err(|e| anyhow::anyhow!("cbc: {e:?}"))?;
            integrity
                .compute(covered, icv)
                .map_err(|e| anyhow::anyhow!("icv: {e:?}"))?;
        } else {
            let mut iv = [0u8; 8];
            iv.copy_from_slice(&head[8..16]);
            self.cipher
                .seal_aead(&iv, &head[..8], body, icv)
                .map_err(|e| anyhow::anyhow!("gcm: {e:?}"))?;
        }
        Ok(())
    }

    /// Verifies the ICV and decrypts the body.
    fn open(&self, packet: &mut [u8]) -> anyhow::Result<()> {
        let (covered, icv) = packet.split_at_mut(self.head + self.body);
        if let Some(integrity) = &self.integrity {
            integrity
                .verify(covered, icv)
                .map_err(|e| anyhow::anyhow!("icv: {e:?}"))?;
            let (head, body) = covered.split_at_mut(self.head);
            self.cipher
                .decrypt_cbc(&head[8..], body)
                .map_err(|e| anyhow::anyhow!("cbc: {e:?}"))?;
        } else {
            let (head, body) = covered.split_at_mut(self.head);
            let mut iv = [0u8; 8];
            iv.copy_from_slice(&head[8..16]);
            self.cipher
                .open_aead(&iv, &head[..8], body, icv)
                .map_err(|e| anyhow::anyhow!("gcm: {e:?}"))?;
        }
        Ok(())
    }
}

/// Median nanoseconds to seal and open one tunnel packet carrying an inner IP packet of
/// `size` bytes with the bare primitives of `t`, over batches for about `budget`.
///
/// # Errors
/// When the primitives refuse the keys (not for the suites above).
pub fn packet_cost(t: Transform, size: usize, budget: Duration) -> anyhow::Result<f64> {
    let raw = Raw::new(t, size + TUNNEL_HEADERS)?;
    let batch = if size > 1000 { 32 } else { 128 };
    let mut bufs = vec![vec![0x5au8; raw.len()]; batch];
    let mut samples = crate::report::Samples::default();
    let start = Instant::now();
    while start.elapsed() < budget || samples.values().len() < 5 {
        let t0 = Instant::now();
        for b in &mut bufs {
            raw.seal(b)?;
        }
        for b in &mut bufs {
            raw.open(b)?;
        }
        black_box(&bufs);
        #[expect(clippy::cast_precision_loss, reason = "small counts")]
        samples.push(t0.elapsed().as_nanos() as f64 / batch as f64);
    }
    Ok(samples.median())
}

/// Median nanoseconds of one side's share of a Diffie-Hellman exchange in `group` (one key
/// generation and one agreement, what the server pays per connect), over about `budget`.
///
/// # Errors
/// When the group fails to generate or agree.
pub fn dh_cost(group: DhGroup, budget: Duration) -> anyhow::Result<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let peer = DhKeyPair::generate(group, &mut rng).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let peer_public = peer.public_value().to_vec();
    let mut samples = crate::report::Samples::default();
    let start = Instant::now();
    while start.elapsed() < budget || samples.values().len() < 3 {
        let t0 = Instant::now();
        let kp = DhKeyPair::generate(group, &mut rng).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        black_box(
            kp.agree(&peer_public)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
        #[expect(clippy::cast_precision_loss, reason = "nanoseconds of one exchange")]
        samples.push(t0.elapsed().as_nanos() as f64);
    }
    Ok(samples.median())
}

/// The HMAC-SHA1 implementations `ike` could use for ESP's HMAC-SHA1-96.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha1Impl {
    /// `ring::hmac` (pure Rust SHA-1, no SHA extensions).
    Ring,
    /// RustCrypto `hmac` + `sha1` (SHA-NI when the CPU has it, detected at run time).
    RustCrypto,
}

impl Sha1Impl {
    /// Name for the table.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::RustCrypto => "rustcrypto",
        }
    }
}

/// Median nanoseconds of one HMAC-SHA1 over what ESP authenticates for an inner packet of
/// `size` bytes with AES-CBC (SPI, sequence number, IV and the padded ciphertext), with
/// `which`, over about `budget`; the choice in `ike::crypto::Integrity` follows these figures.
#[must_use]
pub fn hmac_sha1_cost(which: Sha1Impl, size: usize, budget: Duration) -> f64 {
    use hmac::{KeyInit as _, Mac as _};
    let len = 8 + 16 + (size + TUNNEL_HEADERS + 2).next_multiple_of(16);
    let data = vec![0x5au8; len];
    let key = [0x22u8; 20];
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let Ok(rc_key) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&key) else {
        return f64::NAN;
    };
    let batch = 64;
    let mut samples = crate::report::Samples::default();
    let start = Instant::now();
    while start.elapsed() < budget || samples.values().len() < 5 {
        let t0 = Instant::now();
        for _ in 0..batch {
            match which {
                Sha1Impl::Ring => {
                    black_box(ring::hmac::sign(&ring_key, black_box(&data)));
                }
                Sha1Impl::RustCrypto => {
                    let mut mac = rc_key.clone();
                    mac.update(black_box(&data));
                    black_box(mac.finalize().into_bytes());
                }
            }
        }
        #[expect(clippy::cast_precision_loss, reason = "small counts")]
        samples.push(t0.elapsed().as_nanos() as f64 / f64::from(batch));
    }
    samples.median()
}

/// Median nanoseconds of AES-128-CBC encryption and decryption of the padded payload for an
/// inner packet of `size` bytes (RustCrypto `aes` with AES-NI detected at run time: ring has
/// no CBC, and no other candidate without OpenSSL), over about `budget`.
///
/// # Errors
/// When the cipher refuses the key (never for a 16-byte key).
pub fn aes_cbc_cost(size: usize, budget: Duration) -> anyhow::Result<(f64, f64)> {
    let cipher = Cipher::new(CipherAlgorithm::AesCbc128, &[0x11; 16])
        .map_err(|e| anyhow::anyhow!("cipher: {e:?}"))?;
    let mut body = vec![0x5au8; (size + TUNNEL_HEADERS + 2).next_multiple_of(16)];
    let iv = [7u8; 16];
    let batch = 64;
    let (mut enc, mut dec) = (
        crate::report::Samples::default(),
        crate::report::Samples::default(),
    );
    let start = Instant::now();
    while start.elapsed() < budget || enc.values().len() < 5 {
        let t0 = Instant::now();
        for _ in 0..batch {
            cipher
                .encrypt_cbc(&iv, black_box(&mut body))
                .map_err(|e| anyhow::anyhow!("cbc: {e:?}"))?;
        }
        let t1 = Instant::now();
        for _ in 0..batch {
            cipher
                .decrypt_cbc(&iv, black_box(&mut body))
                .map_err(|e| anyhow::anyhow!("cbc: {e:?}"))?;
        }
        #[expect(clippy::cast_precision_loss, reason = "small counts")]
        {
            enc.push((t1 - t0).as_nanos() as f64 / f64::from(batch));
            dec.push(t1.elapsed().as_nanos() as f64 / f64::from(batch));
        }
    }
    Ok((enc.median(), dec.median()))
}
