//! UDP segmentation offload, the arithmetic half: which queued datagrams can leave as one
//! `UDP_SEGMENT` send, and how a `UDP_GRO` buffer splits back into datagrams. No I/O here, so
//! both halves are tested (and counted for allocations) without a kernel.
//!
//! The kernel's rules (`udp_send_skb`, `udp_gro_receive`): one GSO send carries datagrams to
//! one destination, all `segment_size` bytes except the last, which may be shorter; at most
//! [`MAX_SEGMENTS`] of them and [`MAX_PAYLOAD`] bytes in all. A GRO buffer is the same shape: its
//! datagrams are `segment_size` bytes each, the last possibly shorter.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

/// Most datagrams one GSO send may carry (the kernel allows 64 on older releases, 128 now).
pub const MAX_SEGMENTS: usize = 64;
/// Most UDP payload bytes one GSO send may carry (an IPv4 datagram's limit less the IPv4 and
/// UDP headers).
pub const MAX_PAYLOAD: usize = 65_535 - 20 - 8;

/// One run of consecutive queued datagrams that can leave in one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Destination of every datagram in the run.
    pub to: SocketAddr,
    /// The local address every datagram of the run leaves from (`None`: the kernel's choice).
    pub from: Option<IpAddr>,
    /// Index of the run's first datagram in the queue.
    pub first: usize,
    /// How many datagrams (1 means a plain send).
    pub count: usize,
    /// Length of every datagram but the last (the `UDP_SEGMENT` value).
    pub segment_size: usize,
}

/// Groups a queue of datagrams, in order, into GSO runs. Holds at most `capacity` datagrams,
/// allocated once.
#[derive(Debug, Clone)]
pub struct GsoPlan {
    queued: Vec<(Option<IpAddr>, SocketAddr, usize)>,
    runs: Vec<Run>,
}

impl GsoPlan {
    /// Room for `capacity` datagrams.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            queued: Vec::with_capacity(capacity),
            runs: Vec::with_capacity(capacity),
        }
    }

    /// Datagrams queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Whether the plan is full (flush before pushing more).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.queued.len() == self.queued.capacity()
    }

    /// Forgets everything queued.
    pub fn clear(&mut self) {
        self.queued.clear();
        self.runs.clear();
    }

    /// Queues a datagram of `len` bytes for `to`; returns whether there was room.
    pub fn push(&mut self, to: SocketAddr, len: usize) -> bool {
        self.push_from(None, to, len)
    }

    /// Queues a datagram of `len` bytes from `from` (`None`: the kernel's choice) to `to`;
    /// returns whether there was room. A run has one source, as it has one destination.
    pub fn push_from(&mut self, from: Option<IpAddr>, to: SocketAddr, len: usize) -> bool {
        if self.is_full() {
            return false;
        }
        self.queued.push((from, to, len));
        let extends = self.runs.last().is_some_and(|run| {
            let last_len = self
                .queued
                .get(run.first + run.count - 1)
                .map_or(0, |q| q.2);
            run.to == to
                && run.from == from
                // Only the last datagram of a run may be shorter than the segment size.
                && last_len == run.segment_size
                && len <= run.segment_size
                && len > 0
                && run.count < MAX_SEGMENTS
                && run.segment_size * run.count + len <= MAX_PAYLOAD
        });
        match self.runs.last_mut() {
            Some(run) if extends => run.count += 1,
            _ => self.runs.push(Run {
                to,
                from,
                first: self.queued.len() - 1,
                count: 1,
                segment_size: len,
            }),
        }
        true
    }

    /// The runs, in queue order; together they cover every queued datagram once.
    #[must_use]
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }
}

/// Splits a `len`-byte GRO buffer of `segment_size`-byte datagrams (the last possibly shorter)
/// into the datagrams' ranges. A `segment_size` of 0 (no GRO) yields the whole buffer once.
pub fn segments(len: usize, segment_size: usize) -> impl Iterator<Item = Range<usize>> {
    let step = if segment_size == 0 {
        len.max(1)
    } else {
        segment_size
    };
    (0..len)
        .step_by(step)
        .map(move |start| start..(start + step).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn shape(plan: &GsoPlan) -> Vec<(u16, usize, usize, usize)> {
        plan.runs()
            .iter()
            .map(|r| (r.to.port(), r.first, r.count, r.segment_size))
            .collect()
    }

    #[test]
    fn equal_datagrams_to_one_peer_form_one_run_and_a_shorter_one_ends_it() {
        let mut plan = GsoPlan::new(16);
        for len in [1400, 1400, 1400, 900, 1400] {
            assert!(plan.push(addr(1), len));
        }
        assert_eq!(shape(&plan), [(1, 0, 4, 1400), (1, 4, 1, 1400)]);
    }

    #[test]
    fn a_longer_datagram_or_another_peer_starts_a_new_run() {
        let mut plan = GsoPlan::new(16);
        for (port, len) in [(1, 100), (1, 200), (2, 200), (2, 200), (1, 200)] {
            plan.push(addr(port), len);
        }
        assert_eq!(
            shape(&plan),
            [
                (1, 0, 1, 100),
                (1, 1, 1, 200),
                (2, 2, 2, 200),
                (1, 4, 1, 200)
            ]
        );
    }

    #[test]
    fn another_source_address_starts_a_new_run() {
        let mut plan = GsoPlan::new(16);
        let (a, b) = (
            Some(IpAddr::from([192, 0, 2, 10])),
            Some(IpAddr::from([192, 0, 2, 11])),
        );
        for from in [a, a, b, b, None] {
            assert!(plan.push_from(from, addr(1), 1400));
        }
        let sources: Vec<_> = plan.runs().iter().map(|r| (r.from, r.count)).collect();
        assert_eq!(sources, [(a, 2), (b, 2), (None, 1)]);
    }

    #[test]
    fn runs_stop_at_the_segment_and_byte_limits() {
        let mut plan = GsoPlan::new(200);
        for _ in 0..MAX_SEGMENTS + 1 {
            plan.push(addr(1), 64);
        }
        assert_eq!(
            shape(&plan),
            [(1, 0, MAX_SEGMENTS, 64), (1, MAX_SEGMENTS, 1, 64)]
        );
        let mut plan = GsoPlan::new(200);
        for _ in 0..50 {
            plan.push(addr(1), 1500);
        }
        let per_run = MAX_PAYLOAD / 1500;
        assert_eq!(plan.runs()[0].count, per_run);
        assert_eq!(plan.runs().iter().map(|r| r.count).sum::<usize>(), 50);
        assert!(
            plan.runs()
                .iter()
                .all(|r| r.count * r.segment_size <= MAX_PAYLOAD)
        );
    }

    #[test]
    fn a_full_plan_refuses_more_and_clear_empties_it() {
        let mut plan = GsoPlan::new(2);
        assert!(plan.push(addr(1), 10));
        assert!(plan.push(addr(1), 10));
        assert!(plan.is_full());
        assert!(!plan.push(addr(1), 10));
        assert_eq!(plan.len(), 2);
        plan.clear();
        assert!(plan.is_empty());
        assert!(plan.runs().is_empty());
    }

    #[test]
    fn gro_buffers_split_into_segments_with_a_short_tail() {
        assert_eq!(
            segments(3000, 1400).collect::<Vec<_>>(),
            [0..1400, 1400..2800, 2800..3000]
        );
        assert_eq!(
            segments(2800, 1400).collect::<Vec<_>>(),
            [0..1400, 1400..2800]
        );
        assert_eq!(segments(500, 0).collect::<Vec<_>>(), vec![0..500; 1]);
        assert_eq!(segments(500, 1400).collect::<Vec<_>>(), vec![0..500; 1]);
        assert_eq!(segments(0, 1400).count(), 0);
    }
}
