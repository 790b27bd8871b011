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
/// The batch path's halves (`verify` on a second SA, then `accept`) must agree with `open`.
pub fn esp_open(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let mut sa = inbound(transform(selector));
    let mut buf = [0u8; MAX_PACKET];
    let len = packet.len().min(MAX_PACKET);
    buf[..len].copy_from_slice(&packet[..len]);
    let mut halves = inbound(transform(selector));
    let mut split = buf;
    let verified = halves.verify(&mut split[..len]);
    let accepted = halves.accept(verified);
    let before = sa.replay_window().top();
    let opened = sa.open(&mut buf[..len]);
    assert_eq!(accepted, opened, "verify + accept disagrees with open");
    assert_eq!(halves.stats(), sa.stats());
    if opened.is_ok() {
        assert_eq!(split[..len], buf[..len]);
    }
    match opened {
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

/// `isakmp_message`: every ISAKMP parser over one message (header, payload chain, SA with
/// proposals, transforms and attributes decoded as phase-1 and phase-2 offers, ID, Notify,
/// Delete, NAT-OA). Must never panic.
pub fn isakmp_message(data: &[u8]) {
    use crate::wire::{
        Delete, Header, Identification, NatOa, Notification, PayloadType, Payloads,
        SecurityAssociation,
    };
    let Ok(h) = Header::new_checked(data) else {
        return;
    };
    for payload in Payloads::new(h.next_payload(), h.body()) {
        let Ok(p) = payload else { break };
        match p.kind {
            PayloadType::SA => {
                if let Ok(sa) = SecurityAssociation::parse(p.body) {
                    for proposal in sa.proposals() {
                        for t in proposal.transforms() {
                            let _ = crate::ikev1::proposal::decode(t.attributes());
                            let _ = crate::ikev1::phase2::decode(&t, false);
                        }
                    }
                    let _ = crate::ikev1::proposal::choose(
                        &crate::ikev1::proposal::Phase1Policy::default(),
                        &sa,
                    );
                    let _ = crate::ikev1::phase2::choose(
                        &crate::ikev1::phase2::Phase2Policy::default(),
                        &sa,
                        None,
                    );
                }
            }
            PayloadType::ID => {
                let _ = Identification::parse(p.body);
            }
            PayloadType::NOTIFY => {
                let _ = Notification::parse(p.body);
            }
            PayloadType::DELETE => {
                if let Ok(d) = Delete::parse(p.body) {
                    let _ = d.spis().count();
                }
            }
            PayloadType::NAT_OA | PayloadType::NAT_OA_DRAFT => {
                let _ = NatOa::parse(p.body);
            }
            _ => {}
        }
    }
}

/// `ike_responder`: arbitrary datagrams to a responder [`crate::endpoint::Endpoint`].
///
/// Input layout: repeated `[peer, len_hi, len_lo, message...]`; `peer` picks one of four source
/// addresses (bit 2 also advances time by 10 s first). Must never panic, and the half-open table
/// never exceeds its bound.
pub fn ike_responder(data: &[u8]) {
    use crate::endpoint::{Config, Endpoint};
    use crate::ikev1::main_mode::Path;
    use std::time::Duration;
    let mut endpoint = Endpoint::new(
        Config {
            max_half_open: 8,
            max_half_open_per_address: 3,
            ..Config::new(b"fuzz")
        },
        FuzzRng(7),
    );
    #[expect(
        clippy::disallowed_methods,
        reason = "fuzzing epoch; every later instant derives from it"
    )]
    let mut now = std::time::Instant::now();
    let mut rest = data;
    let mut out = [0u8; 4096];
    while let [peer, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (message, tail) = tail.split_at(len);
        rest = tail;
        if peer & 4 != 0 {
            now += Duration::from_secs(10);
            endpoint.handle_timeout(now);
        }
        let remote = std::net::SocketAddr::from(([10, 0, 0, peer & 3], 500));
        let path = Path {
            local: std::net::SocketAddr::from(([2, 2, 2, 2], 500)),
            remote,
        };
        let _ = endpoint.handle_datagram(now, path, message);
        while endpoint.poll_transmit(&mut out).is_some() {}
        while endpoint.poll_event().is_some() {}
        assert!(endpoint.half_open() <= 8);
    }
}

/// A deterministic generator for fuzzing only.
struct FuzzRng(u64);

impl rand_core::TryRng for FuzzRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()?.to_be_bytes()[0..4]
            .iter()
            .fold(0, |a, b| (a << 8) | u32::from(*b)))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let b = self.try_next_u64()?.to_be_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FuzzRng {}

#[cfg(test)]
mod tests {
    use super::*;
    codec::corpus_replay!();

    #[test]
    fn committed_corpus_replays() {
        replay("esp_open", esp_open);
        replay("isakmp_message", isakmp_message);
        replay("ike_responder", ike_responder);
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
