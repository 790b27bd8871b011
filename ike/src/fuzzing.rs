//! Bodies of the fuzz targets (STYLE.md §10.6), shared by `ike/fuzz` and the corpus replay test.

use crate::crypto::{CipherAlgorithm, IntegrityAlgorithm};
use crate::esp::{Discard, IpProtocol, Sa, SaKeys, Spi, Transform};

/// The SPI of the fixed fuzzing SAs.
const FUZZ_SPI: Spi = Spi(0x0000_4500);
/// Largest packet the target copies into its buffer.
const MAX_PACKET: usize = 2048;

const TRANSFORMS: [(CipherAlgorithm, Option<IntegrityAlgorithm>); 5] = [
    (
        CipherAlgorithm::AesCbc128,
        Some(IntegrityAlgorithm::HmacSha1_96),
    ),
    (
        CipherAlgorithm::AesCbc256,
        Some(IntegrityAlgorithm::HmacSha256_128),
    ),
    (
        CipherAlgorithm::TripleDesCbc,
        Some(IntegrityAlgorithm::HmacSha1_96),
    ),
    (CipherAlgorithm::AesGcm16_128, None),
    (CipherAlgorithm::AesGcm16_256, None),
];

fn transform(selector: u8) -> Transform {
    let (cipher, integrity) = TRANSFORMS[usize::from(selector) % TRANSFORMS.len()];
    Transform::new(cipher, integrity).expect("invariant: the fuzz transforms are valid pairs")
}

const KEY_BYTES: [u8; 64] = [0x3c; 64];
const AUTH_BYTES: [u8; 64] = [0xa5; 64];

fn keys(t: Transform) -> SaKeys<'static> {
    SaKeys {
        encryption: &KEY_BYTES[..t.encryption_key_len()],
        integrity: &AUTH_BYTES[..t.integrity_key_len()],
    }
}

fn inbound(t: Transform) -> Sa {
    Sa::inbound(FUZZ_SPI, t, keys(t)).expect("invariant: the fuzz keys fit their transforms")
}

/// `esp_open`: the first byte picks one of five fixed inbound SAs (AES-CBC-128/HMAC-SHA1-96,
/// AES-CBC-256/HMAC-SHA-256-128, 3DES/HMAC-SHA1-96, AES-GCM-128, AES-GCM-256, all with SPI
/// 0x4500 and fixed keys); the rest is opened as an ESP packet. Must never panic. A packet
/// that opens must point inside the buffer, and opening it a second time must be a replay.
pub fn esp_open(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let mut sa = inbound(transform(selector));
    let mut buf = [0u8; MAX_PACKET];
    let len = packet.len().min(MAX_PACKET);
    buf[..len].copy_from_slice(&packet[..len]);
    let before = sa.replay_window().top();
    match sa.open(&mut buf[..len]) {
        Ok(opened) => {
            assert!(opened.payload.end <= len && opened.payload.start <= opened.payload.end);
            let mut again = [0u8; MAX_PACKET];
            again[..len].copy_from_slice(&packet[..len]);
            assert_eq!(sa.open(&mut again[..len]), Err(Discard::Replay));
        }
        // The Discard contract: a dropped packet leaves the window where it was.
        Err(_) => assert_eq!(sa.replay_window().top(), before),
    }
}

/// Packets sealed with the fuzzing SAs, prefixed with their selector byte: the seed corpus.
#[cfg(test)]
pub(crate) fn seed_inputs() -> Vec<Vec<u8>> {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    let mut rng = ChaCha20Rng::seed_from_u64(3948);
    let mut out = Vec::new();
    for selector in 0..u8::try_from(TRANSFORMS.len()).unwrap() {
        let t = transform(selector);
        let mut sa = Sa::outbound(FUZZ_SPI, t, keys(t), &mut rng).unwrap();
        for payload in [
            &b""[..],
            b"\x06\xa5\x06\xa5\x00\x10\x00\x00l2tp hello",
            &[0x55; 100],
        ] {
            let o = sa.overhead();
            let mut buf = vec![0u8; o.head + payload.len() + o.tail];
            buf[o.head..o.head + payload.len()].copy_from_slice(payload);
            let r = sa
                .seal(
                    &mut buf,
                    o.head..o.head + payload.len(),
                    IpProtocol::UDP,
                    &mut rng,
                )
                .unwrap();
            let mut input = vec![selector];
            input.extend_from_slice(&buf[r]);
            out.push(input);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn corpus(target: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
    }

    #[test]
    fn committed_corpus_replays() {
        let dir = corpus("esp_open");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            esp_open(&data);
            count += 1;
        }
        assert!(count > 0, "{} is empty", dir.display());
    }

    #[test]
    fn seed_inputs_open_with_the_fuzzing_sas() {
        for input in seed_inputs() {
            let mut sa = inbound(transform(input[0]));
            let mut packet = input[1..].to_vec();
            assert!(sa.open(&mut packet).is_ok());
            esp_open(&input);
        }
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        esp_open(&[]);
        esp_open(&[0]);
        esp_open(&[3; 5000]);
        esp_open(&[1, 0, 0, 0x45, 0, 0, 0, 0, 1]);
    }

    /// Regenerates `fuzz/corpus/esp_open` from [`seed_inputs`]:
    /// `cargo test -p l2sec-ike --lib write_seed_corpus -- --ignored`.
    #[test]
    #[ignore = "writes the committed seed corpus"]
    fn write_seed_corpus() {
        let dir = corpus("esp_open");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in seed_inputs().iter().enumerate() {
            std::fs::write(dir.join(format!("sealed-{i:02}")), input).unwrap();
        }
    }
}
