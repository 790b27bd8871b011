//! ESP seal/open per transform at 64 and 1400 bytes, beside the raw cipher + MAC cost of the
//! same bytes, and Diffie-Hellman cost per group (STYLE.md §10.7).
//!
//! `cargo bench -p l2sec-ike --bench esp`
//!
//! First a summary table, measured interleaved so that load from other processes hits ESP and
//! raw crypto alike: in each of [`ROUNDS`] rounds, a batch of packets is sealed by the SA, the
//! same bytes are encrypted and MACed by the bare primitives, the sealed packets are opened by
//! the SA, and the raw ciphertexts are verified and decrypted by the bare primitives. "The same
//! bytes" is what ESP has to process for that payload: the padded plaintext (payload, padding,
//! pad length, next header) and, for the ICV, SPI, sequence number and IV in front of it. The
//! table shows the median nanoseconds per packet of each and ESP's overhead over the raw cost;
//! `raw payload` is the older reference (the payload bytes alone, no framing). Then criterion
//! measures each case on its own (a filter, e.g. `-- esp/aes128gcm16`, skips the summary;
//! `-- summary` runs only the summary).

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]
#![expect(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a bench prints its figures; nanosecond figures are far below 2^52"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ike::crypto::{Cipher, CipherAlgorithm, DhGroup, DhKeyPair, Integrity, IntegrityAlgorithm};
use ike::esp::{IpProtocol, Sa, SaKeys, Spi, Transform};
use l2sec_ike as ike;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SIZES: [usize; 2] = [64, 1400];
/// Rounds of the interleaved summary; the median is over these.
const ROUNDS: usize = 501;
/// Most packets per batch in the summary (fewer for slow suites, see [`batch_len`]).
const MAX_BATCH: usize = 64;

fn suites() -> [(&'static str, Transform); 5] {
    let t = |c, i| Transform::new(c, i).expect("valid pair");
    [
        (
            "aes128cbc-sha1_96",
            t(
                CipherAlgorithm::AesCbc128,
                Some(IntegrityAlgorithm::HmacSha1_96),
            ),
        ),
        (
            "aes256cbc-sha256_128",
            t(
                CipherAlgorithm::AesCbc256,
                Some(IntegrityAlgorithm::HmacSha256_128),
            ),
        ),
        ("aes128gcm16", t(CipherAlgorithm::AesGcm16_128, None)),
        ("aes256gcm16", t(CipherAlgorithm::AesGcm16_256, None)),
        (
            "3des-sha1_96",
            t(
                CipherAlgorithm::TripleDesCbc,
                Some(IntegrityAlgorithm::HmacSha1_96),
            ),
        ),
    ]
}

fn keys(t: Transform) -> (Vec<u8>, Vec<u8>) {
    (
        vec![0x11; t.encryption_key_len()],
        vec![0x22; t.integrity_key_len()],
    )
}

/// The bare primitives of a transform, working on the bytes ESP processes for a payload.
struct Raw {
    cipher: Cipher,
    integrity: Option<Integrity>,
    /// Header (SPI, sequence number) and IV in front of the ciphertext.
    head: usize,
    /// Padded plaintext: payload, padding, pad length, next header.
    body: usize,
    icv: usize,
}

impl Raw {
    fn new(t: Transform, enc: &[u8], auth: &[u8], size: usize) -> Self {
        Self {
            cipher: Cipher::new(t.cipher(), enc).expect("cipher"),
            integrity: t
                .integrity()
                .map(|i| Integrity::new(i, auth).expect("integrity")),
            head: 8 + t.cipher().iv_len(),
            body: (size + 2).next_multiple_of(t.pad_alignment()),
            icv: t.icv_len(),
        }
    }

    fn len(&self) -> usize {
        self.head + self.body + self.icv
    }

    /// Encrypts the body and writes the ICV, as ESP must (fixed IV: only the cost matters).
    fn seal(&self, packet: &mut [u8]) {
        let (covered, icv) = packet.split_at_mut(self.head + self.body);
        let (head, body) = covered.split_at_mut(self.head);
        if let Some(integrity) = &self.integrity {
            self.cipher.encrypt_cbc(&head[8..], body).expect("cbc");
            integrity.compute(covered, icv).expect("icv");
        } else {
            let iv: [u8; 8] = head[8..16].try_into().expect("iv");
            self.cipher
                .seal_aead(&iv, &head[..8], body, icv)
                .expect("gcm");
        }
    }

    /// Verifies the ICV and decrypts the body, as ESP must.
    fn open(&self, packet: &mut [u8]) {
        let (covered, icv) = packet.split_at_mut(self.head + self.body);
        if let Some(integrity) = &self.integrity {
            integrity.verify(covered, icv).expect("icv");
            let (head, body) = covered.split_at_mut(self.head);
            self.cipher.decrypt_cbc(&head[8..], body).expect("cbc");
        } else {
            let (head, body) = covered.split_at_mut(self.head);
            let iv: [u8; 8] = head[8..16].try_into().expect("iv");
            self.cipher
                .open_aead(&iv, &head[..8], body, icv)
                .expect("gcm");
        }
    }

    /// The older reference: the payload bytes alone (CBC: rounded up to whole blocks).
    fn seal_payload_only(&self, data: &mut [u8], size: usize) {
        if let Some(integrity) = &self.integrity {
            let n = size.next_multiple_of(self.cipher.algorithm().block_len());
            self.cipher
                .encrypt_cbc(
                    &vec![0; self.cipher.algorithm().iv_len()][..],
                    &mut data[..n],
                )
                .expect("cbc");
            let mut icv = [0u8; 32];
            integrity
                .compute(&data[..n], &mut icv[..integrity.icv_len()])
                .expect("icv");
            black_box(icv);
        } else {
            let mut tag = [0u8; 16];
            self.cipher
                .seal_aead(&[0; 8], &[0; 8], &mut data[..size], &mut tag)
                .expect("gcm");
            black_box(tag);
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark reads the clock to time batches"
)]
fn time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Packets per batch: about 50 µs of work, at least 4, at most [`MAX_BATCH`].
fn batch_len(raw: &Raw, size: usize) -> usize {
    let mut p = vec![0u8; raw.len()];
    let once = time(|| raw.seal(&mut p));
    let per = once.as_nanos().max(1);
    usize::try_from(50_000 / per)
        .unwrap_or(MAX_BATCH)
        .clamp(4, MAX_BATCH)
        .min(if size > 1000 { 32 } else { MAX_BATCH })
}

/// Medians in ns per packet: ESP seal, raw seal, ESP open, raw open, raw payload-only seal.
fn paired(t: Transform, size: usize, rng: &mut ChaCha20Rng) -> [f64; 5] {
    let (enc, auth) = keys(t);
    let sa_keys = SaKeys {
        encryption: &enc,
        integrity: &auth,
    };
    let mut out = Sa::outbound(Spi(0x3000), t, sa_keys, rng).expect("sa");
    let mut inb = Sa::inbound(Spi(0x3000), t, sa_keys).expect("sa");
    let raw = Raw::new(t, &enc, &auth, size);
    let o = t.overhead();
    let payload = o.head..o.head + size;
    let k = batch_len(&raw, size);
    let mut esp: Vec<Vec<u8>> = vec![vec![0x5a; o.head + size + o.tail]; k];
    let mut ranges = vec![0..0; k];
    let mut raw_bufs: Vec<Vec<u8>> = vec![vec![0x5a; raw.len()]; k];
    let mut plain = vec![0x5a; size.next_multiple_of(16)];
    let mut samples: [Vec<f64>; 5] = Default::default();
    let per = |d: Duration| d.as_nanos() as f64 / k as f64;
    for round in 0..ROUNDS {
        for b in &mut esp {
            b.fill(0x5a);
        }
        let mut measure = |op: usize| match op {
            0 => per(time(|| {
                for (b, r) in esp.iter_mut().zip(&mut ranges) {
                    *r = out
                        .seal(b, payload.clone(), IpProtocol::UDP, rng)
                        .expect("seal");
                }
            })),
            1 => per(time(|| {
                for b in &mut raw_bufs {
                    raw.seal(b);
                }
            })),
            2 => per(time(|| {
                for (b, r) in esp.iter_mut().zip(&ranges) {
                    black_box(inb.open(&mut b[r.clone()]).expect("open"));
                }
            })),
            3 => per(time(|| {
                for b in &mut raw_bufs {
                    raw.open(b);
                }
            })),
            _ => per(time(|| {
                for _ in 0..k {
                    raw.seal_payload_only(&mut plain, size);
                }
            })),
        };
        // Seal before open (ESP and raw); alternate which of the pair goes first.
        let order: [usize; 5] = if round % 2 == 0 {
            [0, 1, 4, 2, 3]
        } else {
            [1, 0, 4, 3, 2]
        };
        for op in order {
            let v = measure(op);
            samples[op].push(v);
        }
    }
    samples.map(|mut s| median(&mut s))
}

/// Whether the command line names benchmarks (a filter) or asks for profiling: then the
/// summary, which is not a criterion benchmark, stays out of the way.
fn summary_wanted() -> bool {
    const WITH_VALUE: &[&str] = &[
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--profile-time" {
            return false;
        }
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') && !"summary".contains(a.as_str()) {
            return false;
        }
    }
    true
}

fn summary(_: &mut Criterion) {
    if !summary_wanted() {
        return;
    }
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    println!(
        "\nESP vs raw crypto of the same bytes, median ns/packet over {ROUNDS} interleaved rounds"
    );
    println!(
        "{:<22} {:>5} | {:>9} {:>9} {:>7} | {:>9} {:>9} {:>7} | {:>11}",
        "suite", "bytes", "seal", "raw", "over", "open", "raw", "over", "raw payload"
    );
    for (name, t) in suites() {
        for size in SIZES {
            let [seal, raw_seal, open, raw_open, raw_payload] = paired(t, size, &mut rng);
            let over = |esp: f64, raw: f64| (esp / raw - 1.0) * 100.0;
            println!(
                "{name:<22} {size:>5} | {seal:>9.1} {raw_seal:>9.1} {:>6.1}% | {open:>9.1} {raw_open:>9.1} {:>6.1}% | {raw_payload:>11.1}",
                over(seal, raw_seal),
                over(open, raw_open),
            );
        }
    }
    println!();
}

fn esp(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (name, t) in suites() {
        let (enc, auth) = keys(t);
        let sa_keys = SaKeys {
            encryption: &enc,
            integrity: &auth,
        };
        let mut group = c.benchmark_group(format!("esp/{name}"));
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let o = t.overhead();
            let mut buf = vec![0u8; o.head + size + o.tail];
            let payload = o.head..o.head + size;

            // Seal: the counter would run out after 2^32 iterations; criterion does far fewer.
            let mut out = Sa::outbound(Spi(0x1000), t, sa_keys, &mut rng).expect("sa");
            group.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
                b.iter(|| {
                    let r = out
                        .seal(&mut buf, payload.clone(), IpProtocol::UDP, &mut rng)
                        .expect("seal");
                    black_box(r);
                });
            });

            // Open: replay protection refuses a repeat, so each iteration opens the packet with
            // a fresh inbound SA and a fresh copy, both built outside the measurement.
            let mut out = Sa::outbound(Spi(0x2000), t, sa_keys, &mut rng).expect("sa");
            let mut b = vec![0u8; o.head + size + o.tail];
            let r = out
                .seal(&mut b, payload.clone(), IpProtocol::UDP, &mut rng)
                .expect("seal");
            let sealed = b[r].to_vec();
            group.bench_with_input(BenchmarkId::new("open", size), &size, |b, _| {
                b.iter_batched_ref(
                    || {
                        (
                            Sa::inbound(Spi(0x2000), t, sa_keys).expect("sa"),
                            sealed.clone(),
                        )
                    },
                    |(sa, p)| {
                        let r = sa.open(p).expect("open");
                        black_box(r);
                    },
                    criterion::BatchSize::SmallInput,
                );
            });

            // The raw primitives over the bytes ESP processes, without the framing work.
            let raw = Raw::new(t, &enc, &auth, size);
            let mut packet = vec![0u8; raw.len()];
            group.bench_with_input(BenchmarkId::new("raw-seal", size), &size, |b, _| {
                b.iter(|| raw.seal(black_box(&mut packet)));
            });
            raw.seal(&mut packet);
            group.bench_with_input(BenchmarkId::new("raw-open", size), &size, |b, _| {
                b.iter_batched_ref(
                    || packet.clone(),
                    |p| raw.open(p),
                    criterion::BatchSize::SmallInput,
                );
            });
        }
        group.finish();
    }
}

fn dh(c: &mut Criterion) {
    let mut group = c.benchmark_group("dh");
    group.sample_size(10);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for g in DhGroup::ALL {
        let peer = DhKeyPair::generate(g, &mut rng).expect("peer");
        let peer_public = peer.public_value().to_vec();
        // One key generation plus one agreement: a full exchange for one side.
        group.bench_function(BenchmarkId::new("generate+agree", g.id()), |b| {
            b.iter(|| {
                let kp = DhKeyPair::generate(g, &mut rng).expect("generate");
                black_box(kp.agree(&peer_public).expect("agree"));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, summary, esp, dh);
criterion_main!(benches);
