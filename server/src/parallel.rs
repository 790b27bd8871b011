//! The crypto pool: a few threads that share the ESP crypto of a packet batch with the packet
//! thread ([`Spread`] for [`crate::engine::ipsec::Engine::handle_tun_batch`] and
//! [`crate::engine::ipsec::Engine::handle_rx_batch`]).
//!
//! A `rayon` pool built once, on the packet thread, which becomes one of its workers: a batch
//! is split by `join` on stack jobs pushed to the packet thread's own deque and stolen by the
//! others, so nothing is allocated per batch, no job goes through a shared queue, and the
//! engine's state is only read (`&SaDb`) while the threads run. Small batches stay on the
//! packet thread: waking a sleeping worker costs more than it saves below
//! [`MIN_PARALLEL_BATCH`] packets.

use crate::engine::ipsec::Spread;
use rayon::iter::{IntoParallelRefMutIterator as _, ParallelIterator as _};
use std::num::NonZeroUsize;

/// The smallest batch whose crypto is spread over the pool. Measured with
/// `examples/crypto_threshold.rs` on the project's 2-core machine (loaded by other builds):
/// a 1400-byte AES-128-GCM packet costs 0.5 µs and a batch gains nothing from a second thread
/// below 64 packets; AES-128-CBC + HMAC-SHA1 (2.2 µs) gains 1.06–1.26× from 6 packets on. Under
/// 8 packets the wake-up of a sleeping thread costs about what it could save.
pub const MIN_PARALLEL_BATCH: usize = 8;

/// The ESP crypto threads; see the module docs.
#[derive(Debug)]
pub struct CryptoPool {
    /// `None` with one thread: everything on the packet thread.
    pool: Option<rayon::ThreadPool>,
    threads: usize,
    min_batch: usize,
}

impl CryptoPool {
    /// A pool of `threads` threads, the calling thread included (0: one per available core;
    /// 1: no other thread). Build it on the packet thread, after privileges were dropped (the
    /// new threads inherit what the calling thread has then), once per process: the calling
    /// thread stays registered as a worker.
    ///
    /// # Errors
    /// When the threads cannot be started.
    pub fn new(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            n => n,
        };
        let builder = || {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("l2sec-crypto-{i}"))
        };
        let pool = if threads > 1 {
            // A thread already working for a pool (a second pool built on it, in tests) gets
            // a pool of its own threads; its batches then reach it through rayon's queue.
            Some(
                builder()
                    .use_current_thread()
                    .build()
                    .or_else(|_| builder().build())?,
            )
        } else {
            None
        };
        // One look for work elsewhere, now: the first one registers this thread with the
        // work-stealing deques' memory reclamation (an allocation), which must not happen
        // later, on the packet path.
        let _ = rayon::yield_now();
        Ok(Self {
            pool,
            threads,
            min_batch: MIN_PARALLEL_BATCH,
        })
    }

    /// Everything on the calling thread.
    #[must_use]
    pub const fn serial() -> Self {
        Self {
            pool: None,
            threads: 1,
            min_batch: usize::MAX,
        }
    }

    /// Spreads batches of at least `min_batch` packets (default [`MIN_PARALLEL_BATCH`]).
    #[must_use]
    pub const fn with_min_batch(mut self, min_batch: usize) -> Self {
        self.min_batch = min_batch;
        self
    }

    /// Threads sharing the crypto, the calling thread included.
    #[must_use]
    pub const fn threads(&self) -> usize {
        self.threads
    }
}

impl Spread for CryptoPool {
    fn for_each<T: Send, F: Fn(&mut T) + Sync + Send>(&self, items: &mut [T], f: F) {
        match &self.pool {
            Some(pool) if items.len() >= self.min_batch => {
                pool.install(|| items.par_iter_mut().for_each(f));
            }
            Some(_) | None => items.iter_mut().for_each(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_is_visited_once_on_more_than_one_thread() {
        let pool = CryptoPool::new(2).unwrap().with_min_batch(2);
        assert_eq!(pool.threads(), 2);
        let here = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        let mut items: Vec<(u64, usize)> = (0..4096).map(|i| (i, 0)).collect();
        let before = items.clone();
        // Enough work per item that the other thread steals some.
        for _ in 0..50 {
            pool.for_each(&mut items, |(value, visits)| {
                *visits += 1;
                let mut x = *value;
                for _ in 0..2000 {
                    x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                }
                std::hint::black_box(x);
                if std::thread::current().id() != here {
                    elsewhere.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        assert!(items.iter().all(|&(_, visits)| visits == 50));
        assert!(items.iter().zip(&before).all(|(a, b)| a.0 == b.0));
        assert!(
            elsewhere.load(Ordering::Relaxed) > 0,
            "the other thread never took an item"
        );
    }

    #[test]
    fn small_batches_and_one_thread_stay_on_the_calling_thread() {
        let here = std::thread::current().id();
        let one = CryptoPool::new(1).unwrap();
        assert_eq!(one.threads(), 1);
        let two = CryptoPool::new(2).unwrap().with_min_batch(1000);
        for pool in [&one, &two, &CryptoPool::serial()] {
            let mut items = [0u32; 999];
            pool.for_each(&mut items, |x| {
                assert_eq!(std::thread::current().id(), here);
                *x += 1;
            });
            assert!(items.iter().all(|&x| x == 1));
        }
    }

    #[test]
    fn a_second_pool_on_one_thread_works_too() {
        let first = CryptoPool::new(2).unwrap().with_min_batch(1);
        let second = CryptoPool::new(3).unwrap().with_min_batch(1);
        for pool in [&first, &second] {
            let mut items = [1u32; 64];
            pool.for_each(&mut items, |x| *x *= 3);
            assert!(items.iter().all(|&x| x == 3));
        }
    }

    #[test]
    fn zero_threads_means_one_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(CryptoPool::new(0).unwrap().threads(), cores);
    }
}
