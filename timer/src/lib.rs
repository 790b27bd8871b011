//! Deadline and ready queues for engines that hold many sessions.
//!
//! An engine with 50,000 sessions cannot afford to ask every session for its next deadline or
//! its next datagram on every call. Two structures make that cost proportional to the work due:
//!
//! - [`TimerQueue`] keeps one deadline per key, ordered by time: the earliest is read in
//!   O(log n) and [`TimerQueue::pop_due`] hands out only the keys whose deadline has come.
//! - [`ReadyQueue`] is a FIFO of keys without duplicates: the sessions that were given input
//!   or ran a timer and so may have something to send or report.
//!
//! Both are plain data (no clock, no I/O): they fit the sans-IO engines. The owner keeps them
//! in step with its sessions: after touching a session it re-reads the session's deadline
//! ([`TimerQueue::set`]) and marks it ready ([`ReadyQueue::push`]); when a session goes, it is
//! removed from both. A deadline that is earlier than the session's real one is harmless (the
//! session finds nothing due and is re-armed); one that is later would lose a timer, which is
//! why every change to a session must be followed by `set`.
//!
//! ```
//! # use l2sec_timer::{TimerQueue, ReadyQueue};
//! let mut timers = TimerQueue::new();
//! timers.set(7u16, Some(30u64));
//! timers.set(9u16, Some(10u64));
//! timers.set(7u16, Some(5u64)); // moved earlier
//! assert_eq!(timers.earliest(), Some(5));
//! assert_eq!(timers.pop_due(&20), Some(7));
//! assert_eq!(timers.pop_due(&20), Some(9));
//! assert_eq!(timers.pop_due(&20), None);
//!
//! let mut ready = ReadyQueue::new();
//! ready.push(3u16);
//! ready.push(3u16);
//! assert_eq!(ready.pop(), Some(3));
//! assert_eq!(ready.pop(), None);
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One deadline per key, ordered by time (`T` is an instant; any `Ord` works for tests).
///
/// Bounded by the number of keys the owner holds: each key has at most one entry.
#[derive(Debug, Clone)]
pub struct TimerQueue<K, T> {
    /// Entries in deadline order.
    by_time: BTreeSet<(T, K)>,
    /// Each key's current deadline, to find its entry in `by_time`.
    by_key: BTreeMap<K, T>,
}

impl<K, T> Default for TimerQueue<K, T> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            by_key: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, T: Ord + Copy> TimerQueue<K, T> {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`'s deadline to `at`, or removes it (`None`). O(log n); nothing is done when
    /// the deadline did not change.
    pub fn set(&mut self, key: K, at: Option<T>) {
        let old = self.by_key.get(&key).copied();
        if old == at {
            return;
        }
        if let Some(old) = old {
            self.by_time.remove(&(old, key));
        }
        match at {
            Some(at) => {
                self.by_time.insert((at, key));
                self.by_key.insert(key, at);
            }
            None => {
                self.by_key.remove(&key);
            }
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: K) {
        self.set(key, None);
    }

    /// `key`'s deadline.
    #[must_use]
    pub fn get(&self, key: K) -> Option<T> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline of all keys.
    #[must_use]
    pub fn earliest(&self) -> Option<T> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns a key whose deadline is at or before `now`, earliest first. The
    /// caller runs that key's timers and sets its next deadline.
    pub fn pop_due(&mut self, now: &T) -> Option<K> {
        let (at, _) = self.by_time.first()?;
        if at > now {
            return None;
        }
        let (_, key) = self.by_time.pop_first()?;
        self.by_key.remove(&key);
        Some(key)
    }

    /// Keys with a deadline.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key has a deadline.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// A FIFO of keys, each at most once: the sessions that may have output or events.
///
/// Bounded by the number of keys the owner holds.
#[derive(Debug, Clone)]
pub struct ReadyQueue<K> {
    order: VecDeque<K>,
    queued: BTreeSet<K>,
}

impl<K> Default for ReadyQueue<K> {
    fn default() -> Self {
        Self {
            order: VecDeque::new(),
            queued: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Copy> ReadyQueue<K> {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `key` at the back unless it is already queued.
    pub fn push(&mut self, key: K) {
        if self.queued.insert(key) {
            self.order.push_back(key);
        }
    }

    /// The key at the front, left in place (it may have more to give).
    #[must_use]
    pub fn front(&self) -> Option<K> {
        self.order.front().copied()
    }

    /// Takes the key at the front.
    pub fn pop(&mut self) -> Option<K> {
        let key = self.order.pop_front()?;
        self.queued.remove(&key);
        if self.order.is_empty() {
            // A burst (thousands of sessions set up at once) must not pin its peak capacity.
            self.order.shrink_to(64);
        }
        Some(key)
    }

    /// Keys queued.
    #[must_use]
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_due_hands_out_only_expired_keys_in_deadline_order() {
        let mut q = TimerQueue::new();
        for (k, t) in [(1u32, 50u64), (2, 10), (3, 30), (4, 10), (5, 70)] {
            q.set(k, Some(t));
        }
        let mut due = Vec::new();
        while let Some(k) = q.pop_due(&30) {
            due.push(k);
        }
        assert_eq!(due, [2, 4, 3]);
        assert_eq!(q.earliest(), Some(50));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn moving_or_clearing_a_deadline_leaves_no_stale_entry() {
        let mut q = TimerQueue::new();
        q.set(1u32, Some(10u64));
        q.set(1, Some(40));
        assert_eq!(q.pop_due(&20), None);
        assert_eq!(q.get(1), Some(40));
        q.set(1, Some(5));
        assert_eq!(q.earliest(), Some(5));
        q.remove(1);
        assert!(q.is_empty());
        assert_eq!(q.earliest(), None);
        assert_eq!(q.pop_due(&u64::MAX), None);
    }

    #[test]
    fn a_ready_key_is_queued_once_and_comes_out_in_order() {
        let mut r = ReadyQueue::new();
        for k in [4u8, 2, 4, 9, 2] {
            r.push(k);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.front(), Some(4));
        assert_eq!(
            [r.pop(), r.pop(), r.pop(), r.pop()],
            [Some(4), Some(2), Some(9), None]
        );
        r.push(4);
        assert_eq!(r.pop(), Some(4));
    }

    #[test]
    fn matches_a_scan_over_random_operations() {
        // A naive model (a map scanned in full) against the queue, over a seeded sequence.
        let mut q = TimerQueue::new();
        let mut model: BTreeMap<u16, u32> = BTreeMap::new();
        let mut x = 0x2545_f491_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut now = 0u32;
        for _ in 0..20_000 {
            let key = u16::try_from(next() % 64).unwrap();
            match next() % 4 {
                0 => {
                    q.remove(key);
                    model.remove(&key);
                }
                1 => {
                    now += next() % 8;
                    let mut got: Vec<u16> = Vec::new();
                    while let Some(k) = q.pop_due(&now) {
                        got.push(k);
                    }
                    let mut want: Vec<u16> = model
                        .iter()
                        .filter(|(_, t)| **t <= now)
                        .map(|(k, _)| *k)
                        .collect();
                    model.retain(|_, t| *t > now);
                    got.sort_unstable();
                    want.sort_unstable();
                    assert_eq!(got, want);
                }
                _ => {
                    let at = now + next() % 100;
                    q.set(key, Some(at));
                    model.insert(key, at);
                }
            }
            assert_eq!(q.earliest(), model.values().min().copied());
        }
    }
}
