//! The reliable control channel of one tunnel (RFC 2661 §5.8 and Appendix A).
//!
//! Every control message carries Ns (its own sequence number) and Nr (the next number we expect
//! from the peer). This module numbers and queues our messages, retransmits them with
//! exponential backoff until the peer's Nr acknowledges them, honours the peer's Receive Window
//! Size with slow start and congestion avoidance, delivers the peer's messages in order (holding
//! early ones inside our window), acknowledges duplicates again, and sends a ZLB when an
//! acknowledgement is owed and no message of ours will carry it.
//!
//! Messages are stored encoded, header included; Ns is written when a message is queued and Nr
//! is refreshed on every (re)transmission.

use crate::ids::Seq;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Timers, windows and bounds; `Default` follows RFC 2661 §5.8 and Appendix A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// First retransmission timeout (1 s).
    pub initial_rto: Duration,
    /// Cap of the doubling retransmission timeout (8 s, RFC 2661 §5.8 suggests at least 8).
    pub max_rto: Duration,
    /// Retransmissions of one message before the tunnel is given up (5).
    pub max_retransmits: u8,
    /// The window we advertise: how many of the peer's messages we hold out of order (RFC
    /// 2661 §4.4.3 Receive Window Size; default 16).
    pub receive_window: u16,
    /// How long an owed acknowledgement may wait for an outgoing message to carry it before a
    /// ZLB goes out (RFC 2661 §5.8 leaves it to us).
    pub ack_delay: Duration,
    /// Messages queued for sending beyond the peer's window; more are refused.
    pub max_queued: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            initial_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(8),
            max_retransmits: 5,
            receive_window: 16,
            ack_delay: Duration::from_millis(100),
            max_queued: 64,
        }
    }
}

/// How a received Ns relates to what we expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The next message in order.
    InOrder,
    /// Already received: acknowledge again, do not process (RFC 2661 §5.8).
    Duplicate,
    /// Ahead of the next expected one but inside our window: held until the gap fills.
    Ahead,
    /// Beyond our window: dropped.
    OutOfWindow,
}

/// What the retransmission timer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rto {
    /// Nothing was due.
    Idle,
    /// Messages were queued again for transmission.
    Retransmitted,
    /// A message exhausted its retransmissions: the peer is unresponsive.
    GiveUp,
}

/// The queue refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("control queue full")]
pub struct QueueFull;

#[derive(Debug)]
struct Outgoing {
    ns: Seq,
    bytes: Vec<u8>,
    /// Transmissions so far (0 = not yet sent).
    sent: u8,
    /// Due for (re)transmission.
    due: bool,
}

/// Offsets inside a control header (T, L, S set, O clear; RFC 2661 §3.1).
const NS_AT: usize = 8;
const NR_AT: usize = 10;
/// Length of a control header.
pub const CONTROL_HEADER_LEN: usize = 12;
/// Flags of a control header: T, L, S and version 2.
const CONTROL_FLAGS: u16 = 0xc802;

/// Sequencing state of one control connection.
#[derive(Debug)]
pub struct Reliable {
    config: Config,
    /// Ns of the next message we queue.
    next_ns: Seq,
    /// Nr: the next Ns we expect from the peer.
    next_nr: Seq,
    /// The peer's Receive Window Size (4 when it sent none, RFC 2661 §4.4.3).
    peer_window: u16,
    /// Congestion window and slow-start threshold (RFC 2661 Appendix A).
    cwnd: u16,
    ssthresh: u16,
    /// Acknowledgements counted towards the next congestion-avoidance increase.
    acks_in_round: u16,
    /// Sent and not yet acknowledged, oldest first, then queued and never sent. Bounded by
    /// `peer_window + max_queued`.
    outgoing: VecDeque<Outgoing>,
    rto: Duration,
    retransmit_at: Option<Instant>,
    /// The peer's messages received ahead of `next_nr`, bounded by our window.
    held: Vec<(Seq, Vec<u8>)>,
    /// When an owed acknowledgement turns into a ZLB.
    ack_at: Option<Instant>,
    zlb_due: bool,
    /// Tunnel ID the peer assigned (the header of everything we send carries it).
    peer_tunnel: u16,
}

impl Reliable {
    /// A fresh channel: Ns and Nr start at 0 (RFC 2661 §5.8).
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            next_ns: Seq(0),
            next_nr: Seq(0),
            peer_window: 4,
            cwnd: 1,
            ssthresh: 4,
            acks_in_round: 0,
            outgoing: VecDeque::new(),
            rto: config.initial_rto,
            retransmit_at: None,
            held: Vec::new(),
            ack_at: None,
            zlb_due: false,
            peer_tunnel: 0,
        }
    }

    /// Records the peer's Receive Window Size (from SCCRQ/SCCRP); zero is treated as one.
    pub fn set_peer_window(&mut self, window: u16) {
        self.peer_window = window.max(1);
        self.ssthresh = self.peer_window;
    }

    /// Records the tunnel ID the peer assigned.
    pub const fn set_peer_tunnel(&mut self, id: u16) {
        self.peer_tunnel = id;
    }

    /// Our Nr: the next sequence number expected from the peer.
    #[must_use]
    pub const fn next_nr(&self) -> Seq {
        self.next_nr
    }

    /// Messages sent and not yet acknowledged, plus queued ones.
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        self.outgoing.len()
    }

    /// The congestion window (for tests and statistics).
    #[must_use]
    pub const fn congestion_window(&self) -> u16 {
        self.cwnd
    }

    /// Queues an encoded control message (header included, Ns/Nr fields present). Ns is
    /// assigned now.
    ///
    /// # Errors
    /// [`QueueFull`] when `max_queued` messages already wait beyond the window, or the message
    /// is shorter than a control header.
    pub fn queue(&mut self, mut bytes: Vec<u8>) -> Result<Seq, QueueFull> {
        let waiting = self.outgoing.iter().filter(|m| m.sent == 0).count();
        if waiting >= self.config.max_queued || bytes.len() < CONTROL_HEADER_LEN {
            return Err(QueueFull);
        }
        let ns = self.next_ns;
        self.next_ns = ns.next();
        bytes[NS_AT..NS_AT + 2].copy_from_slice(&ns.0.to_be_bytes());
        self.outgoing.push_back(Outgoing {
            ns,
            bytes,
            sent: 0,
            due: false,
        });
        Ok(ns)
    }

    /// Whether [`Reliable::queue`] would accept one more message now.
    #[must_use]
    pub fn has_room(&self) -> bool {
        self.outgoing.iter().filter(|m| m.sent == 0).count() < self.config.max_queued
    }

    /// Queues a last message (StopCCN) whatever the bound. While there is room the messages
    /// waiting go out before it, in order (a CDN queued just before reaches the peer, which
    /// then learns why the call ended); in a full queue the ones not yet sent are dropped
    /// for it, so the queue never grows past `max_queued`.
    ///
    /// # Errors
    /// [`QueueFull`] only when the message is shorter than a control header.
    pub fn queue_final(&mut self, bytes: Vec<u8>) -> Result<Seq, QueueFull> {
        if bytes.len() < CONTROL_HEADER_LEN {
            return Err(QueueFull);
        }
        let unsent = self.outgoing.iter().filter(|m| m.sent == 0).count();
        if unsent >= self.config.max_queued {
            self.outgoing.retain(|m| m.sent > 0);
            // The dropped messages never left: their numbers are reused.
            let unsent = u16::try_from(unsent).unwrap_or(u16::MAX);
            self.next_ns = Seq(self.next_ns.0.wrapping_sub(unsent));
        }
        self.queue(bytes)
    }

    /// Classifies a received Ns (RFC 2661 §5.8).
    #[must_use]
    pub fn classify(&self, ns: Seq) -> Delivery {
        if ns == self.next_nr {
            Delivery::InOrder
        } else if ns.precedes(self.next_nr) {
            Delivery::Duplicate
        } else if Seq(ns.0.wrapping_sub(self.next_nr.0)).0 < self.config.receive_window {
            Delivery::Ahead
        } else {
            Delivery::OutOfWindow
        }
    }

    /// Processes the peer's Nr: frees acknowledged messages and opens the congestion window.
    pub fn on_ack(&mut self, now: Instant, nr: Seq) {
        let mut freed = 0u16;
        while let Some(front) = self.outgoing.front() {
            // Everything before Nr is acknowledged; never free what was not sent yet.
            if front.sent == 0 || !front.ns.precedes(nr) {
                break;
            }
            self.outgoing.pop_front();
            freed += 1;
        }
        if freed == 0 {
            return;
        }
        if self.outgoing.is_empty() {
            // Setup queues several messages at once; an idle tunnel must not keep that room.
            self.outgoing.shrink_to(1);
        }
        // RFC 2661 Appendix A: each acknowledgement opens the window by one during slow start,
        // by 1/CWND during congestion avoidance.
        if self.cwnd < self.ssthresh {
            self.cwnd += 1;
        } else {
            self.acks_in_round += 1;
            if self.acks_in_round >= self.cwnd {
                self.acks_in_round = 0;
                self.cwnd += 1;
            }
        }
        self.cwnd = self.cwnd.min(self.peer_window);
        self.rto = self.config.initial_rto;
        self.retransmit_at = self
            .outgoing
            .iter()
            .any(|m| m.sent > 0)
            .then(|| now + self.rto);
    }

    /// Takes a received message's Ns: returns whether it is to be processed now. In-order
    /// messages advance Nr; early ones are held (copied) for [`Reliable::take_ready`];
    /// duplicates and early ones make an acknowledgement owed.
    pub fn on_receive(&mut self, now: Instant, ns: Seq, message: &[u8], is_zlb: bool) -> Delivery {
        // RFC 2661 §5.8: a ZLB carries Ns without consuming it.
        if is_zlb {
            return Delivery::Duplicate;
        }
        let delivery = self.classify(ns);
        match delivery {
            Delivery::InOrder => {
                // A copy held earlier is now stale: the retransmission is being processed.
                self.held.retain(|(s, _)| *s != ns);
                self.next_nr = ns.next();
                self.owe_ack(now);
            }
            Delivery::Duplicate => {
                // Our acknowledgement was lost: send one at once.
                self.zlb_due = true;
                self.ack_at = Some(now);
            }
            Delivery::Ahead => {
                if !self.held.iter().any(|(s, _)| *s == ns)
                    && self.held.len() < usize::from(self.config.receive_window)
                {
                    self.held.push((ns, message.to_vec()));
                }
                self.owe_ack(now);
            }
            Delivery::OutOfWindow => {}
        }
        delivery
    }

    /// The next held message that is now in order, if any (call until `None` after each
    /// in-order message). Advances Nr.
    pub fn take_ready(&mut self) -> Option<Vec<u8>> {
        let at = self.held.iter().position(|(s, _)| *s == self.next_nr)?;
        let (ns, bytes) = self.held.swap_remove(at);
        self.next_nr = ns.next();
        Some(bytes)
    }

    /// Makes an acknowledgement owed (after `ack_delay`, unless a message carries it first):
    /// used after [`Reliable::take_ready`] advanced Nr.
    pub fn schedule_ack(&mut self, now: Instant) {
        self.owe_ack(now);
    }

    fn owe_ack(&mut self, now: Instant) {
        if self.ack_at.is_none() {
            self.ack_at = Some(now + self.config.ack_delay);
        }
    }

    /// The earliest deadline: retransmission or delayed acknowledgement.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit_at, self.ack_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Rto {
        if self.ack_at.is_some_and(|at| at <= now) {
            self.ack_at = None;
            self.zlb_due = true;
        }
        let Some(at) = self.retransmit_at.filter(|at| *at <= now) else {
            return Rto::Idle;
        };
        let _ = at;
        if self
            .outgoing
            .iter()
            .any(|m| m.sent > self.config.max_retransmits)
        {
            self.retransmit_at = None;
            return Rto::GiveUp;
        }
        // RFC 2661 Appendix A: a timeout halves the threshold and restarts slow start.
        self.ssthresh = (self.cwnd / 2).max(1);
        self.cwnd = 1;
        self.acks_in_round = 0;
        for m in self.outgoing.iter_mut().filter(|m| m.sent > 0) {
            m.due = true;
        }
        self.rto = (self.rto * 2).min(self.config.max_rto);
        self.retransmit_at = Some(now + self.rto);
        Rto::Retransmitted
    }

    /// Writes the next message to send into `buf` and returns its length: a due
    /// retransmission, else a new message inside the window, else an owed ZLB.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let in_flight = self.outgoing.iter().filter(|m| m.sent > 0).count();
        let window = usize::from(self.cwnd.min(self.peer_window));
        let nr = self.next_nr;
        let pick = self.outgoing.iter().position(|m| m.due).or_else(|| {
            (in_flight < window)
                .then(|| self.outgoing.iter().position(|m| m.sent == 0))
                .flatten()
        });
        if let Some(i) = pick {
            let m = &mut self.outgoing[i];
            let len = m.bytes.len();
            let dst = buf.get_mut(..len)?;
            m.bytes[NR_AT..NR_AT + 2].copy_from_slice(&nr.0.to_be_bytes());
            dst.copy_from_slice(&m.bytes);
            m.sent = m.sent.saturating_add(1);
            m.due = false;
            if self.retransmit_at.is_none() {
                self.retransmit_at = Some(now + self.rto);
            }
            // The message carries Nr: no separate acknowledgement is owed.
            self.ack_at = None;
            self.zlb_due = false;
            return Some(len);
        }
        if self.zlb_due {
            self.zlb_due = false;
            self.ack_at = None;
            return self.write_zlb(buf);
        }
        None
    }

    /// A zero-length body acknowledgement: header only, Ns = the next Ns (not consumed).
    fn write_zlb(&self, buf: &mut [u8]) -> Option<usize> {
        let dst = buf.get_mut(..CONTROL_HEADER_LEN)?;
        let fields = [
            CONTROL_FLAGS,
            12,
            self.peer_tunnel,
            0,
            self.next_ns.0,
            self.next_nr.0,
        ];
        for (chunk, v) in dst.chunks_exact_mut(2).zip(fields) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        Some(CONTROL_HEADER_LEN)
    }

    /// Whether everything we queued has been acknowledged.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.outgoing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(
        clippy::disallowed_methods,
        reason = "the script's epoch; every later instant derives from it"
    )]
    fn t0() -> Instant {
        Instant::now()
    }

    fn message(tag: u8) -> Vec<u8> {
        let mut m = vec![0xc8, 0x02, 0, 14, 0, 7, 0, 0, 0, 0, 0, 0, 0, tag];
        m[3] = 14;
        m
    }

    fn ns_nr(bytes: &[u8]) -> (u16, u16) {
        (
            u16::from_be_bytes([bytes[8], bytes[9]]),
            u16::from_be_bytes([bytes[10], bytes[11]]),
        )
    }

    fn drain(r: &mut Reliable, now: Instant) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 64];
        std::iter::from_fn(|| r.poll_transmit(now, &mut buf).map(|n| buf[..n].to_vec())).collect()
    }

    #[test]
    fn numbers_messages_and_retransmits_with_backoff_until_acked() {
        let t0 = t0();
        let mut r = Reliable::new(Config::default());
        r.queue(message(1)).unwrap();
        let sent = drain(&mut r, t0);
        assert_eq!(sent.len(), 1);
        assert_eq!(ns_nr(&sent[0]), (0, 0));
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(r.handle_timeout(t0 + Duration::from_millis(999)), Rto::Idle);
        let mut at = t0;
        for backoff in [1, 2, 4, 8, 8] {
            at += Duration::from_secs(backoff);
            assert_eq!(r.poll_timeout(), Some(at));
            assert_eq!(r.handle_timeout(at), Rto::Retransmitted);
            let again = drain(&mut r, at);
            assert_eq!(again.len(), 1);
            assert_eq!(ns_nr(&again[0]).0, 0, "a retransmission keeps its Ns");
        }
        at += Duration::from_secs(8);
        assert_eq!(r.handle_timeout(at), Rto::GiveUp, "after 5 retransmissions");
    }

    #[test]
    fn ack_frees_and_stops_the_timer() {
        let t0 = t0();
        let mut r = Reliable::new(Config::default());
        r.queue(message(1)).unwrap();
        drain(&mut r, t0);
        r.on_ack(t0, Seq(1));
        assert!(r.is_idle());
        assert_eq!(r.poll_timeout(), None);
        // An old Nr frees nothing.
        r.queue(message(2)).unwrap();
        drain(&mut r, t0);
        r.on_ack(t0, Seq(1));
        assert_eq!(r.unacknowledged(), 1);
    }

    #[test]
    fn window_slow_start_and_timeout_collapse() {
        let t0 = t0();
        let mut r = Reliable::new(Config::default());
        r.set_peer_window(8);
        for i in 0..10 {
            r.queue(message(i)).unwrap();
        }
        assert_eq!(
            drain(&mut r, t0).len(),
            1,
            "slow start begins with one message"
        );
        r.on_ack(t0, Seq(1));
        assert_eq!(r.congestion_window(), 2);
        assert_eq!(drain(&mut r, t0).len(), 2);
        r.on_ack(t0, Seq(3));
        assert_eq!(
            r.congestion_window(),
            3,
            "one more per acknowledgement, not per message"
        );
        assert_eq!(drain(&mut r, t0).len(), 3);
        // Loss: the timeout halves the threshold and drops the window to one.
        let at = t0 + Duration::from_secs(1);
        assert_eq!(r.handle_timeout(at), Rto::Retransmitted);
        assert_eq!(r.congestion_window(), 1);
        assert_eq!(
            drain(&mut r, at).len(),
            3,
            "every unacknowledged message goes again"
        );
        r.on_ack(at, Seq(6));
        assert_eq!(
            r.congestion_window(),
            2,
            "congestion avoidance: the threshold is 1"
        );
        let sent = drain(&mut r, at);
        assert_eq!(
            sent.iter().map(|m| ns_nr(m).0).collect::<Vec<_>>(),
            vec![6, 7]
        );
        // The window never exceeds the peer's Receive Window Size.
        for _ in 0..20 {
            let nr = Seq(r.next_ns.0);
            r.on_ack(at, nr);
        }
        assert!(r.congestion_window() <= 8);
    }

    #[test]
    fn in_order_duplicate_ahead_and_out_of_window() {
        let t0 = t0();
        let mut r = Reliable::new(Config {
            receive_window: 4,
            ..Config::default()
        });
        assert_eq!(r.on_receive(t0, Seq(0), b"a", false), Delivery::InOrder);
        assert_eq!(r.next_nr(), Seq(1));
        assert_eq!(r.on_receive(t0, Seq(0), b"a", false), Delivery::Duplicate);
        assert_eq!(r.on_receive(t0, Seq(3), b"d", false), Delivery::Ahead);
        assert_eq!(r.on_receive(t0, Seq(2), b"c", false), Delivery::Ahead);
        assert_eq!(r.on_receive(t0, Seq(5), b"f", false), Delivery::OutOfWindow);
        assert_eq!(r.take_ready(), None);
        assert_eq!(r.on_receive(t0, Seq(1), b"b", false), Delivery::InOrder);
        assert_eq!(r.take_ready(), Some(b"c".to_vec()));
        assert_eq!(r.take_ready(), Some(b"d".to_vec()));
        assert_eq!(r.take_ready(), None);
        assert_eq!(r.next_nr(), Seq(4));
        // The duplicate made a ZLB due at once, carrying Nr.
        let zlbs = drain(&mut r, t0);
        assert_eq!(zlbs.len(), 1);
        assert_eq!(zlbs[0].len(), 12);
        assert_eq!(ns_nr(&zlbs[0]), (0, 4));
    }

    #[test]
    fn delayed_ack_becomes_a_zlb_unless_a_message_carries_it() {
        let t0 = t0();
        let mut r = Reliable::new(Config::default());
        r.set_peer_tunnel(99);
        r.on_receive(t0, Seq(0), b"a", false);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        r.handle_timeout(t0 + Duration::from_millis(100));
        let zlb = drain(&mut r, t0 + Duration::from_millis(100));
        assert_eq!(zlb, vec![vec![0xc8, 0x02, 0, 12, 0, 99, 0, 0, 0, 0, 0, 1]]);
        // A reply within the delay carries Nr and no ZLB follows.
        r.on_receive(t0, Seq(1), b"b", false);
        r.queue(message(9)).unwrap();
        let sent = drain(&mut r, t0 + Duration::from_millis(150));
        assert_eq!(sent.len(), 1);
        assert_eq!(ns_nr(&sent[0]), (0, 2));
        r.handle_timeout(t0 + Duration::from_millis(300));
        assert!(drain(&mut r, t0 + Duration::from_millis(300)).is_empty());
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t0 = t0();
        let mut r = Reliable::new(Config::default());
        r.next_nr = Seq(65535);
        assert_eq!(r.on_receive(t0, Seq(65535), b"x", false), Delivery::InOrder);
        assert_eq!(r.next_nr(), Seq(0));
        assert_eq!(r.classify(Seq(65535)), Delivery::Duplicate);
        assert_eq!(r.classify(Seq(3)), Delivery::Ahead);
        r.next_ns = Seq(65535);
        r.queue(message(1)).unwrap();
        r.queue(message(2)).unwrap();
        r.set_peer_window(4);
        r.cwnd = 4;
        assert_eq!(
            drain(&mut r, t0)
                .iter()
                .map(|m| ns_nr(m).0)
                .collect::<Vec<_>>(),
            vec![65535, 0]
        );
        r.on_ack(t0, Seq(1));
        assert!(r.is_idle());
    }

    #[test]
    fn a_final_message_replaces_the_unsent_ones() {
        let t0 = t0();
        let mut r = Reliable::new(Config {
            max_queued: 2,
            ..Config::default()
        });
        r.queue(message(1)).unwrap();
        assert_eq!(drain(&mut r, t0).len(), 1, "one in flight (window 1)");
        r.queue(message(2)).unwrap();
        r.queue(message(3)).unwrap();
        assert!(!r.has_room());
        assert_eq!(
            r.queue_final(message(9)),
            Ok(Seq(1)),
            "takes the first unsent number"
        );
        assert_eq!(r.unacknowledged(), 2);
        r.on_ack(t0, Seq(1));
        let sent = drain(&mut r, t0);
        assert_eq!(sent.len(), 1);
        assert_eq!((ns_nr(&sent[0]).0, sent[0][13]), (1, 9));
    }

    #[test]
    fn a_final_message_goes_after_the_waiting_ones_while_there_is_room() {
        let t0 = t0();
        let mut r = Reliable::new(Config {
            max_queued: 2,
            ..Config::default()
        });
        r.queue(message(1)).unwrap();
        assert_eq!(drain(&mut r, t0).len(), 1, "one in flight (window 1)");
        r.queue(message(2)).unwrap();
        assert!(r.has_room());
        assert_eq!(
            r.queue_final(message(9)),
            Ok(Seq(2)),
            "after the waiting one"
        );
        assert_eq!(r.unacknowledged(), 3);
        r.on_ack(t0, Seq(1));
        let mut sent = drain(&mut r, t0);
        r.on_ack(t0, Seq(2));
        sent.extend(drain(&mut r, t0));
        let order: Vec<_> = sent.iter().map(|m| (ns_nr(m).0, m[13])).collect();
        assert_eq!(
            order,
            [(1, 2), (2, 9)],
            "the waiting one first, then the final one"
        );
    }

    #[test]
    fn an_in_order_retransmission_drops_the_held_copy() {
        let t0 = t0();
        let mut r = Reliable::new(Config::default());
        assert_eq!(r.on_receive(t0, Seq(1), b"b", false), Delivery::Ahead);
        assert_eq!(r.on_receive(t0, Seq(0), b"a", false), Delivery::InOrder);
        assert_eq!(r.on_receive(t0, Seq(1), b"b", false), Delivery::InOrder);
        assert_eq!(r.take_ready(), None, "the held copy of 1 is gone");
        assert_eq!(r.next_nr(), Seq(2));
    }

    #[test]
    fn queue_is_bounded() {
        let mut r = Reliable::new(Config {
            max_queued: 3,
            ..Config::default()
        });
        for i in 0..3 {
            r.queue(message(i)).unwrap();
        }
        assert_eq!(r.queue(message(4)), Err(QueueFull));
        assert_eq!(r.queue(vec![0; 4]), Err(QueueFull));
    }
}
