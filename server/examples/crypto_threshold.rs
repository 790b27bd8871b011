//! Where spreading the ESP crypto of a batch over the crypto pool starts to pay: the
//! encryption of batches of 1 to 64 framed 1400-byte packets on the packet thread alone and on a
//! two-thread pool, in ns per batch, for AES-128-GCM and AES-128-CBC + HMAC-SHA1-96. Sets
//! `parallel::MIN_PARALLEL_BATCH`. Run:
//! `cargo run --release -p l2sec-server --example crypto_threshold [threads]`.

use ike::crypto::{CipherAlgorithm, IntegrityAlgorithm};
use ike::esp::{Framed, IpProtocol, Sa, SaKeys, Spi, Transform};
use l2sec_server::engine::ipsec::Spread;
use l2sec_server::parallel::CryptoPool;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 1400;
const BATCHES: [usize; 9] = [1, 2, 3, 4, 6, 8, 16, 32, 64];

#[expect(clippy::disallowed_methods, reason = "a benchmark reads the clock")]
fn now() -> Instant {
    Instant::now()
}

/// Mean time of one `for_each` over `jobs`, over about `budget`.
fn per_batch<S: Spread>(
    spread: &S,
    sa: &Sa,
    jobs: &mut [(Vec<u8>, Framed)],
    budget: Duration,
) -> f64 {
    let mut rounds = 0u32;
    let start = now();
    while start.elapsed() < budget {
        spread.for_each(jobs, |(buf, framed)| {
            let _ = sa.encrypt(buf, framed);
        });
        rounds += 1;
    }
    start.elapsed().as_secs_f64() * 1e9 / f64::from(rounds)
}

#[expect(clippy::print_stdout, reason = "a benchmark prints its figures")]
fn main() -> anyhow::Result<()> {
    let threads = std::env::args().nth(1).map_or(Ok(2), |t| t.parse())?;
    let pool = CryptoPool::new(threads)?.with_min_batch(1);
    let serial = CryptoPool::serial();
    let budget = Duration::from_millis(300);
    let transforms = [
        (
            "aes128gcm16",
            Transform::new(CipherAlgorithm::AesGcm16_128, None)?,
        ),
        (
            "aes128cbc-sha1",
            Transform::new(
                CipherAlgorithm::AesCbc128,
                Some(IntegrityAlgorithm::HmacSha1_96),
            )?,
        ),
    ];
    println!(
        "threads {}: ns per batch of {PAYLOAD}-byte packets, serial / pool",
        pool.threads()
    );
    for (name, t) in transforms {
        let enc = vec![0x42u8; t.encryption_key_len()];
        let auth = vec![0x24u8; t.integrity_key_len()];
        let keys = SaKeys {
            encryption: &enc,
            integrity: &auth,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut sa = Sa::outbound(Spi(0x1000), t, keys, &mut rng)?;
        let o = sa.overhead();
        for n in BATCHES {
            let mut jobs = Vec::new();
            for _ in 0..n {
                let mut buf = vec![0u8; o.head + PAYLOAD + o.tail];
                let framed = sa.frame(
                    &mut buf,
                    o.head..o.head + PAYLOAD,
                    IpProtocol::UDP,
                    &mut rng,
                )?;
                jobs.push((buf, framed));
            }
            let one = per_batch(&serial, &sa, &mut jobs, budget);
            let spread = per_batch(&pool, &sa, &mut jobs, budget);
            println!(
                "{name:>15} batch {n:>2}: {one:>9.0} / {spread:>9.0} ns  ({:.2}x)",
                one / spread
            );
        }
    }
    Ok(())
}
