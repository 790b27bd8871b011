//! ESP seal/open per transform at 64 and 1400 bytes, beside the raw cipher + MAC cost of the
//! same bytes, and Diffie-Hellman cost per group (STYLE.md §10.7).
//!
//! `cargo bench -p l2sec-ike --bench esp`

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ike::crypto::{Cipher, CipherAlgorithm, DhGroup, DhKeyPair, Integrity, IntegrityAlgorithm};
use ike::esp::{IpProtocol, Sa, SaKeys, Spi, Transform};
use l2sec_ike as ike;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

const SIZES: [usize; 2] = [64, 1400];

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

            // The raw primitives over the same bytes, without ESP framing.
            let cipher = Cipher::new(t.cipher(), &enc).expect("cipher");
            let integrity = t
                .integrity()
                .map(|i| Integrity::new(i, &auth).expect("integrity"));
            let mut data = vec![0u8; size.next_multiple_of(16)];
            let iv = vec![0u8; t.cipher().iv_len()];
            group.bench_with_input(BenchmarkId::new("raw", size), &size, |b, _| {
                b.iter(|| {
                    if let Some(integrity) = &integrity {
                        cipher.encrypt_cbc(&iv, &mut data).expect("cbc");
                        let mut icv = [0u8; 32];
                        integrity
                            .compute(&data, &mut icv[..integrity.icv_len()])
                            .expect("icv");
                        black_box(icv);
                    } else {
                        let mut tag = [0u8; 16];
                        cipher
                            .seal_aead(&[0; 8], &[0; 8], &mut data[..size], &mut tag)
                            .expect("gcm");
                        black_box(tag);
                    }
                });
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

criterion_group!(benches, esp, dh);
criterion_main!(benches);
