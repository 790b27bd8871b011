//! The engine's counters: connects by outcome, drops by reason, traffic each way, and the
//! handshake latency histogram (first IKE packet of a peer → PPP address assigned).
//!
//! Plain integers in fixed arrays: counting a packet allocates nothing and reads no clock
//! (the time comes in with the input). The driver copies [`EngineStats`] into a
//! [`Snapshot`] for the metrics endpoint and the rate-limited drop warnings.

use super::ipsec::Drop;
use super::lns::{Drop as LnsDrop, LnsEvent};
use ike::endpoint::{Discard as IkeDiscard, Event as IkeEvent};
use ike::esp::Discard as EspDiscard;
use ike::ikev1::main_mode::Refusal;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How a connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The user has an address.
    Ok,
    /// Main Mode message 5 did not decrypt or verify with the configured key.
    BadPsk,
    /// No offered IKE or ESP proposal was acceptable.
    NoProposal,
    /// PPP authentication failed (users file or RADIUS).
    AuthFailed,
    /// Authenticated, but no address could be given.
    PoolEmpty,
    /// Abandoned or timed out before an address was assigned.
    Other,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 6] = [
        Self::Ok,
        Self::BadPsk,
        Self::NoProposal,
        Self::AuthFailed,
        Self::PoolEmpty,
        Self::Other,
    ];

    /// The metric label.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::BadPsk => "bad_psk",
            Self::NoProposal => "no_proposal",
            Self::AuthFailed => "auth_failed",
            Self::PoolEmpty => "pool_empty",
            Self::Other => "other",
        }
    }
}

/// Why a packet was dropped, as counted and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// An ESP sequence number already seen or left of the window.
    Replay,
    /// An ESP ICV that did not verify.
    Integrity,
    /// No policy rule allows the flow.
    Policy,
    /// Does not parse (IKE, ESP framing, L2TP, PPP, inner IP).
    Malformed,
    /// No SA (ESP SPI or ISAKMP cookies) for it.
    NoSa,
    /// A client sent from an address it was not given.
    Spoofed,
    /// From TUN to an address no client has.
    NoRoute,
    /// Over a limit (half-open IKE exchanges, a full L2TP control queue).
    RateLimited,
    /// For an L2TP tunnel or session (or PPP) that does not exist or is not up.
    NoSession,
    /// ESP that does not carry L2TP (UDP to 1701).
    NotL2tp,
    /// L2TP outside IPsec while that is not allowed.
    PlainL2tp,
    /// An IKE exchange refused it (see the outcome counters and the `IKE refused` lines).
    Refused,
    /// No room for the headers (an over-long packet).
    TooLong,
    /// From TUN and not IPv4 (the kernel's own IPv6 chatter on the device): counted, never
    /// warned about.
    NotIpv4,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 14;
    /// Every reason, in label order.
    pub const ALL: [Self; Self::COUNT] = [
        Self::Replay,
        Self::Integrity,
        Self::Policy,
        Self::Malformed,
        Self::NoSa,
        Self::Spoofed,
        Self::NoRoute,
        Self::RateLimited,
        Self::NoSession,
        Self::NotL2tp,
        Self::PlainL2tp,
        Self::Refused,
        Self::TooLong,
        Self::NotIpv4,
    ];

    /// The metric label and log field.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Integrity => "integrity",
            Self::Policy => "policy",
            Self::Malformed => "malformed",
            Self::NoSa => "no_sa",
            Self::Spoofed => "spoofed",
            Self::NoRoute => "no_route",
            Self::RateLimited => "rate_limited",
            Self::NoSession => "no_session",
            Self::NotL2tp => "not_l2tp",
            Self::PlainL2tp => "plain_l2tp",
            Self::Refused => "refused",
            Self::TooLong => "too_long",
            Self::NotIpv4 => "not_ipv4",
        }
    }

    /// Whether a drop for this reason deserves a (rate-limited) warning.
    #[must_use]
    pub const fn warns(self) -> bool {
        !matches!(self, Self::NotIpv4)
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// The reason of a drop; `None` for what is not an error (a NAT keepalive, an ESP dummy
    /// packet).
    #[must_use]
    pub const fn of(drop: &Drop) -> Option<Self> {
        Some(match drop {
            Drop::Keepalive | Drop::Esp(EspDiscard::DummyPacket) => return None,
            Drop::Ike(IkeDiscard::Malformed)
            | Drop::Esp(EspDiscard::Truncated | EspDiscard::Misaligned | EspDiscard::Padding)
            | Drop::Lns(
                LnsDrop::Malformed
                | LnsDrop::Ppp(_)
                | LnsDrop::L2tp(
                    l2tp::Discard::Malformed(_)
                    | l2tp::Discard::NotControl
                    | l2tp::Discard::NotSccrq
                    | l2tp::Discard::OutOfWindow(_),
                ),
            ) => Self::Malformed,
            Drop::Ike(IkeDiscard::UnknownSa)
            | Drop::NoSa
            | Drop::Esp(
                EspDiscard::UnknownSpi(_) | EspDiscard::SpiMismatch(_) | EspDiscard::WrongDirection,
            ) => Self::NoSa,
            Drop::Ike(IkeDiscard::Limit) | Drop::Lns(LnsDrop::L2tp(l2tp::Discard::Busy)) => {
                Self::RateLimited
            }
            Drop::Ike(IkeDiscard::Refused(_)) => Self::Refused,
            Drop::Esp(EspDiscard::Replay | EspDiscard::TooOld) => Self::Replay,
            Drop::Esp(EspDiscard::Integrity) => Self::Integrity,
            Drop::NotL2tp => Self::NotL2tp,
            Drop::PlainL2tp => Self::PlainL2tp,
            Drop::NoRoom => Self::TooLong,
            Drop::Lns(LnsDrop::Policy) => Self::Policy,
            Drop::Lns(LnsDrop::Spoofed) => Self::Spoofed,
            Drop::Lns(LnsDrop::NoRoute) => Self::NoRoute,
            Drop::Lns(
                LnsDrop::NoSession
                | LnsDrop::L2tp(
                    l2tp::Discard::UnknownTunnel(_)
                    | l2tp::Discard::WrongPeer
                    | l2tp::Discard::UnknownSession(_)
                    | l2tp::Discard::SessionNotUp(_)
                    | l2tp::Discard::Closed,
                ),
            ) => Self::NoSession,
        })
    }
}

/// Upper bounds of the handshake latency buckets, in seconds (a `+Inf` bucket follows).
pub const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// A latency histogram with the fixed [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    count: u64,
    sum: Duration,
}

impl Histogram {
    /// Records one observation.
    pub fn record(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(d);
    }

    /// Observations.
    #[must_use]
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations in seconds.
    #[must_use]
    pub fn sum_seconds(&self) -> f64 {
        self.sum.as_secs_f64()
    }

    /// `(upper bound, observations in that bucket)` for each finite bucket (not cumulative:
    /// the encoder adds them up; `+Inf` is [`Histogram::count`]).
    #[must_use]
    pub fn buckets(&self) -> [(f64, u64); LATENCY_BUCKETS.len()] {
        let mut out = [(0.0, 0); LATENCY_BUCKETS.len()];
        for ((o, bound), n) in out.iter_mut().zip(LATENCY_BUCKETS).zip(self.buckets) {
            *o = (bound, n);
        }
        out
    }
}

/// Connection attempts remembered at once (beyond that, new ones are not timed).
const MAX_ATTEMPTS: usize = 4096;
/// An attempt with no outcome after this long ends as [`Outcome::Other`].
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// How often expired attempts are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// A connection in progress: when its first IKE packet came and which ISAKMP SA it got.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    started: Instant,
    cookies: Option<(ike::wire::Cookie, ike::wire::Cookie)>,
}

/// Every counter of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    connects: [u64; Outcome::ALL.len()],
    drops: [u64; DropReason::COUNT],
    /// The source of the latest drop of each reason (an example for the warning).
    examples: [Option<IpAddr>; DropReason::COUNT],
    /// ESP packets opened (in) and sealed (out), and their bytes.
    packets: [u64; 2],
    bytes: [u64; 2],
    handshake: Histogram,
}

impl EngineStats {
    /// Connection attempts that ended with `outcome`.
    #[must_use]
    pub const fn connects(&self, outcome: Outcome) -> u64 {
        self.connects[outcome as usize]
    }

    /// Packets dropped for `reason`.
    #[must_use]
    pub const fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// The source of the latest packet dropped for `reason`, if it had one.
    #[must_use]
    pub const fn example(&self, reason: DropReason) -> Option<IpAddr> {
        self.examples[reason.index()]
    }

    /// ESP packets received (authenticated and decrypted) and sent.
    #[must_use]
    pub const fn packets(&self) -> (u64, u64) {
        (self.packets[0], self.packets[1])
    }

    /// Bytes of those ESP packets, received and sent.
    #[must_use]
    pub const fn bytes(&self) -> (u64, u64) {
        (self.bytes[0], self.bytes[1])
    }

    /// First IKE packet → address assigned.
    #[must_use]
    pub const fn handshake(&self) -> &Histogram {
        &self.handshake
    }

    pub(super) const fn outcome(&mut self, outcome: Outcome) {
        self.connects[outcome as usize] += 1;
    }

    /// Counts the drop an input ended with, if it did.
    pub(super) fn result<T>(&mut self, result: &Result<T, Drop>, from: Option<IpAddr>) {
        if let Err(d) = result
            && let Some(reason) = DropReason::of(d)
        {
            self.drops[reason.index()] += 1;
            if from.is_some() {
                self.examples[reason.index()] = from;
            }
        }
    }

    /// Counts what a packet from TUN ended with: what does not parse there is not IPv4.
    pub(super) fn tun_result<T>(&mut self, result: &Result<T, Drop>) {
        match result {
            Err(Drop::Lns(LnsDrop::Malformed)) => {
                self.drops[DropReason::NotIpv4.index()] += 1;
            }
            other => self.result(other, None),
        }
    }

    pub(super) const fn received(&mut self, len: usize) {
        self.packets[0] += 1;
        self.bytes[0] += len as u64;
    }

    pub(super) const fn sent(&mut self, len: usize) {
        self.packets[1] += 1;
        self.bytes[1] += len as u64;
    }
}

/// Connection attempts in progress, keyed by the peer's IP address (a client's ports change
/// when NAT-T floats to 4500). Two clients behind one NAT address connecting at the same time
/// share a record: both outcomes are counted, one latency is.
#[derive(Debug, Default)]
pub(super) struct Attempts {
    /// At most [`MAX_ATTEMPTS`].
    open: BTreeMap<IpAddr, Attempt>,
    /// Peers whose Main Mode message 1 was refused, and when: its retransmissions are the
    /// same attempt (at most [`MAX_ATTEMPTS`]).
    refused: BTreeMap<IpAddr, Instant>,
    next_sweep: Option<Instant>,
}

impl Attempts {
    /// A Main Mode message 1 from `peer` was accepted: its attempt starts, unless one is open.
    pub(super) fn first_packet(&mut self, now: Instant, peer: IpAddr) {
        self.refused.remove(&peer);
        if self.open.len() < MAX_ATTEMPTS {
            self.open.entry(peer).or_insert(Attempt {
                started: now,
                cookies: None,
            });
        }
    }

    /// Main Mode message 1 from `peer` was refused: no proposal, or no key for the peer.
    /// Counted once, not once per retransmission.
    pub(super) fn refused_at_once(
        &mut self,
        stats: &mut EngineStats,
        now: Instant,
        peer: IpAddr,
        refusal: Refusal,
    ) {
        let outcome = match refusal {
            Refusal::NoProposalChosen => Outcome::NoProposal,
            Refusal::NoPreSharedKey => Outcome::BadPsk,
            _ => return,
        };
        if self.refused.contains_key(&peer) {
            return;
        }
        stats.outcome(outcome);
        // One line per attempt (per address and timeout), not per retransmission; with the
        // table full, none.
        if self.refused.len() < MAX_ATTEMPTS {
            self.refused.insert(peer, now);
            tracing::info!(%peer, %refusal, outcome = outcome.name(), "IKE refused");
        }
    }

    /// What IKE reported about a peer.
    pub(super) fn ike(&mut self, stats: &mut EngineStats, event: &IkeEvent) {
        match event {
            IkeEvent::Phase1Up { cookies, peer, .. } => {
                if let Some(a) = self.open.get_mut(&peer.ip()) {
                    a.cookies.get_or_insert(*cookies);
                }
            }
            IkeEvent::Refused { peer, refusal } => {
                let outcome = match refusal {
                    Refusal::AuthenticationFailed => Outcome::BadPsk,
                    Refusal::NoProposalChosen => Outcome::NoProposal,
                    _ => return,
                };
                // A wrong HASH(3) of an authenticated peer is no key problem.
                let before_phase1 = outcome == Outcome::NoProposal
                    || self
                        .open
                        .get(&peer.ip())
                        .is_some_and(|a| a.cookies.is_none());
                if before_phase1 && self.open.remove(&peer.ip()).is_some() {
                    stats.outcome(outcome);
                    tracing::info!(%peer, %refusal, outcome = outcome.name(), "IKE refused");
                }
            }
            IkeEvent::Phase1Down { cookies, peer, .. } => {
                if self
                    .open
                    .get(&peer.ip())
                    .is_some_and(|a| a.cookies == Some(*cookies))
                {
                    self.open.remove(&peer.ip());
                    stats.outcome(Outcome::Other);
                }
            }
            // A rekey, not a connection.
            IkeEvent::Phase1Rekeyed { new, .. } => {
                self.open.retain(|_, a| a.cookies != Some(*new));
            }
            IkeEvent::ChildSaUp { .. }
            | IkeEvent::ChildSaDown { .. }
            | IkeEvent::PeerMoved { .. } => {}
        }
    }

    /// What the LNS layer reported (as the event leaves the engine at `now`).
    pub(super) fn lns(&mut self, stats: &mut EngineStats, now: Instant, event: &LnsEvent) {
        let (peer, outcome) = match event {
            LnsEvent::Connected { peer, .. } => (peer, Outcome::Ok),
            LnsEvent::AuthFailed { peer, .. } => (peer, Outcome::AuthFailed),
            LnsEvent::AddressRefused { peer, .. } => (peer, Outcome::PoolEmpty),
            LnsEvent::Disconnected {
                peer,
                address: None,
                ..
            } => {
                if self.open.remove(&peer.ip()).is_some() {
                    stats.outcome(Outcome::Other);
                }
                return;
            }
            LnsEvent::Disconnected { .. } | LnsEvent::Radius { .. } => return,
        };
        stats.outcome(outcome);
        if let Some(a) = self.open.remove(&peer.ip())
            && outcome == Outcome::Ok
        {
            stats
                .handshake
                .record(now.saturating_duration_since(a.started));
        }
    }

    /// Ends attempts older than [`ATTEMPT_TIMEOUT`] as [`Outcome::Other`] (looks at most once
    /// per [`SWEEP_INTERVAL`]).
    pub(super) fn expire(&mut self, stats: &mut EngineStats, now: Instant) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = Some(now + SWEEP_INTERVAL);
        self.refused
            .retain(|_, t| now.saturating_duration_since(*t) < ATTEMPT_TIMEOUT);
        let before = self.open.len();
        self.open
            .retain(|_, a| now.saturating_duration_since(a.started) < ATTEMPT_TIMEOUT);
        for _ in self.open.len()..before {
            stats.outcome(Outcome::Other);
        }
    }

    /// Attempts in progress.
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }
}

/// The engine's counters and gauges at one instant, for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The counters.
    pub stats: EngineStats,
    /// Established ISAKMP SAs.
    pub ike_sas: usize,
    /// IKE exchanges in progress.
    pub ike_half_open: usize,
    /// Installed ESP SA pairs.
    pub child_sas: usize,
    /// L2TP tunnels.
    pub tunnels: usize,
    /// L2TP sessions with PPP.
    pub sessions: usize,
    /// Pool addresses in use.
    pub pool_in_use: usize,
    /// Connection attempts not yet ended.
    pub connecting: usize,
}

/// Counters with a few values in them, for tests of what reads them.
#[cfg(test)]
pub(crate) fn sample() -> EngineStats {
    let mut s = EngineStats::default();
    s.outcome(Outcome::Ok);
    s.outcome(Outcome::AuthFailed);
    s.outcome(Outcome::AuthFailed);
    for _ in 0..3 {
        s.result::<()>(
            &Err(Drop::Ike(IkeDiscard::Malformed)),
            Some(IpAddr::from([198, 51, 100, 7])),
        );
    }
    s.received(100);
    s.sent(120);
    s.handshake.record(Duration::from_millis(300));
    s
}

/// [`sample`] and one replayed ESP packet.
#[cfg(test)]
pub(crate) fn sample_with_replay() -> EngineStats {
    let mut s = sample();
    s.result::<()>(&Err(Drop::Esp(EspDiscard::Replay)), None);
    s
}

#[cfg(test)]
mod tests;
