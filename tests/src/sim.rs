//! A simulated network link with latency, loss, duplication and reordering from a seed.
//!
//! Two sides, `A` and `B`, hand datagrams to the link; the link delivers them later according to
//! its impairments, always in a way the seed fully determines. Used by in-memory client ↔
//! server pairs (STYLE.md §10.4): every failure prints the seed, and `L2SEC_SIM_SEED=<n>` reruns
//! one seed.

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The two ends of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Usually the client.
    A,
    /// Usually the server.
    B,
}

impl Side {
    /// The other end.
    #[must_use]
    pub fn peer(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// Impairments of a link, each applied independently per datagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairments {
    /// One-way delay of every datagram.
    pub latency: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back by up to `reorder_window` extra delay, so later
    /// ones overtake it.
    pub reorder: f64,
    /// The extra delay of a reordered datagram is uniform in `0..=reorder_window`.
    pub reorder_window: Duration,
}

impl Impairments {
    /// A perfect link with the given one-way latency.
    #[must_use]
    pub fn clean(latency: Duration) -> Self {
        Self {
            latency,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_window: Duration::ZERO,
        }
    }

    /// The same loss, duplication and reordering probability `p`, with a reorder window of
    /// three latencies.
    #[must_use]
    pub fn lossy(latency: Duration, p: f64) -> Self {
        Self {
            latency,
            loss: p,
            duplicate: p,
            reorder: p,
            reorder_window: latency * 3,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct InFlight {
    at: Instant,
    /// Tie-breaker: datagrams due at the same instant leave in sending order.
    order: u64,
    to: Side,
    bytes: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Counters of what the link did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams handed to the link.
    pub sent: u64,
    /// Datagrams dropped.
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Datagrams held back.
    pub reordered: u64,
    /// Datagrams delivered (copies included).
    pub delivered: u64,
}

/// A seeded, impaired, bidirectional link.
#[derive(Debug)]
pub struct Link {
    impairments: Impairments,
    rng: ChaCha8Rng,
    queue: BinaryHeap<InFlight>,
    order: u64,
    stats: LinkStats,
}

impl Link {
    /// A link whose every decision follows from `seed`.
    #[must_use]
    pub fn new(seed: u64, impairments: Impairments) -> Self {
        Self {
            impairments,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// Sends `bytes` from `from` at `now`.
    pub fn send(&mut self, now: Instant, from: Side, bytes: &[u8]) {
        self.stats.sent += 1;
        if self.chance(self.impairments.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.chance(self.impairments.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.impairments.latency;
            if self.chance(self.impairments.reorder) {
                self.stats.reordered += 1;
                let window =
                    u64::try_from(self.impairments.reorder_window.as_micros()).unwrap_or(u64::MAX);
                at += Duration::from_micros(self.rng.next_u64() % (window + 1));
            }
            self.order += 1;
            self.queue.push(InFlight {
                at,
                order: self.order,
                to: from.peer(),
                bytes: bytes.to_vec(),
            });
        }
    }

    /// The next datagram due at or before `now`, with the side it is for.
    pub fn deliver(&mut self, now: Instant) -> Option<(Side, Vec<u8>)> {
        if self.queue.peek().is_some_and(|d| d.at <= now) {
            let d = self.queue.pop()?;
            self.stats.delivered += 1;
            return Some((d.to, d.bytes));
        }
        None
    }

    /// When the next datagram arrives, if any is in flight.
    #[must_use]
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|d| d.at)
    }

    /// Datagrams in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// What the link did so far.
    #[must_use]
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits → uniform in [0, 1).
        #[expect(clippy::cast_precision_loss, reason = "53-bit value is exact in f64")]
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

/// The seeds a simulation test runs: `L2SEC_SIM_SEED=<n>` selects one, otherwise `0..count`.
#[must_use]
pub fn seeds(count: u64) -> Vec<u64> {
    match std::env::var("L2SEC_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..count).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_clean_link_delivers_in_order_after_the_latency() {
        let t = t0();
        let mut link = Link::new(1, Impairments::clean(Duration::from_millis(10)));
        link.send(t, Side::A, b"one");
        link.send(t, Side::A, b"two");
        assert_eq!(link.deliver(t + Duration::from_millis(9)), None);
        assert_eq!(link.next_arrival(), Some(t + Duration::from_millis(10)));
        let at = t + Duration::from_millis(10);
        assert_eq!(link.deliver(at), Some((Side::B, b"one".to_vec())));
        assert_eq!(link.deliver(at), Some((Side::B, b"two".to_vec())));
        assert_eq!(link.deliver(at), None);
    }

    #[test]
    fn the_same_seed_gives_the_same_run_and_impairments_happen_at_their_rate() {
        let run = |seed| {
            let t = t0();
            let mut link = Link::new(seed, Impairments::lossy(Duration::from_millis(5), 0.2));
            for i in 0..10_000u32 {
                link.send(t, Side::B, &i.to_be_bytes());
            }
            let mut out = Vec::new();
            while let Some((side, bytes)) = link.deliver(t + Duration::from_secs(1)) {
                assert_eq!(side, Side::A);
                out.push(bytes);
            }
            (out, link.stats())
        };
        let (a, stats) = run(7);
        assert_eq!(run(7).0, a);
        assert_ne!(run(8).0, a);
        // Loss applies to every datagram (2,000 expected), duplication to the survivors (1,600),
        // reordering to every copy in flight (1,920).
        for (name, n, expected) in [
            ("lost", stats.lost, 2_000),
            ("duplicated", stats.duplicated, 1_600),
            ("reordered", stats.reordered, 1_920),
        ] {
            assert!(
                n.abs_diff(expected) < 200,
                "{name}: {n} of 10,000, expected about {expected}"
            );
        }
        assert_eq!(stats.delivered, stats.sent - stats.lost + stats.duplicated);
    }
}
