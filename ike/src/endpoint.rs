//! The IKE engine a driver owns: every ISAKMP SA of one host, both roles, as one sans-IO
//! object (STYLE.md §5).
//!
//! Feed it ISAKMP messages with [`Endpoint::handle_datagram`] (from UDP 500, or 4500 after the
//! non-ESP marker) and ticks with [`Endpoint::handle_timeout`]; drain [`Endpoint::poll_transmit`]
//! and [`Endpoint::poll_event`]; re-arm the timer at [`Endpoint::poll_timeout`]. ESP SAs come out
//! as [`Event::ChildSaUp`] for the driver's `esp::SaDb`.
//!
//! Unauthenticated state is small and bounded: a half-open responder exchange holds cookies, the
//! chosen suite and the initiator's SA payload until the initiator commits its KE; half-open
//! exchanges are capped in total and per source address and expire after
//! [`Config::exchange_timeout`].

use crate::ikev1::cert::Certificates;
use crate::ikev1::informational::{self, Deleted, Info};
use crate::ikev1::keys::Secret;
use crate::ikev1::main_mode::{
    self, AuthSent, Authentication, AwaitAgreement, AwaitAuth, AwaitKe, InitSent, KeSent, NatState,
    Path, PeerId, Phase1Config, Phase1Sa, Refusal,
};
use crate::ikev1::phase2::Phase2Policy;
use crate::ikev1::quick_mode::{self, ChildSa, QuickInitiator, QuickResponder};
use crate::wire::{
    Cookie, DOI_IPSEC, ExchangeType, Header, MessageId, MessageWriter, NotifyType, PayloadType,
    ProtocolId,
};
use rand_core::CryptoRng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use timer::TimerQueue;
use tracked::Tracked;

pub use offload::{DhDone, DhJob, KeyPairTarget};

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Phase-1 policy and authentication (pre-shared key or certificates).
    pub phase1: Phase1Config,
    /// ESP policy.
    pub phase2: Phase2Policy,
    /// Half-open responder exchanges in total; more are dropped.
    pub max_half_open: usize,
    /// Half-open responder exchanges per source address.
    pub max_half_open_per_address: usize,
    /// Established ISAKMP SAs in total.
    pub max_established: usize,
    /// An exchange that does not complete within this time is forgotten.
    pub exchange_timeout: Duration,
    /// First retransmission interval of our own requests (doubles each time, up to 4×).
    pub retransmit: Duration,
    /// Retransmissions before an exchange we started gives up.
    pub max_retransmits: u8,
    /// DPD (RFC 3706): idle time before R-U-THERE; `None` disables.
    pub dpd_interval: Option<Duration>,
    /// DPD: how long R-U-THERE may go unanswered before the peer is declared dead.
    pub dpd_timeout: Duration,
    /// Diffie-Hellman computations per second we do for peers that are not authenticated yet
    /// (Main Mode message 3, a bucket holding one second's worth); a message beyond it is
    /// dropped and counted, and the peer's retransmission gets its turn. `None`: no limit.
    pub max_dh_per_second: Option<u32>,
    /// Rekey before expiry: the ISAKMP and ESP SAs we initiated by [`rekey_margin`] of their
    /// lifetime, and an ISAKMP SA the peer initiated by half that margin if the peer has not
    /// replaced it by then. The peer's rekeys are always accepted.
    pub rekey: bool,
    /// The driver does the Diffie-Hellman work of the exchanges we answer, off the thread
    /// that feeds us datagrams: it drains [`Endpoint::poll_dh_job`], runs each [`DhJob`] on
    /// any thread and hands the result back with [`Endpoint::handle_dh_done`]. Off, the work
    /// is done in line, inside [`Endpoint::handle_datagram`].
    pub dh_offload: bool,
    /// With [`Config::dh_offload`]: key pairs kept ready for each group in use.
    pub dh_pool: usize,
}

/// How long before its expiry an SA we initiated is rekeyed: a tenth of its lifetime, at most
/// nine minutes (strongSwan's default margin), at least one second.
#[must_use]
pub fn rekey_margin(lifetime: Duration) -> Duration {
    (lifetime / 10)
        .min(Duration::from_secs(540))
        .max(Duration::from_secs(1))
        .min(lifetime / 2)
}

impl Config {
    /// Defaults around a pre-shared key.
    #[must_use]
    pub fn new(psk: &[u8]) -> Self {
        Self::with_authentication(Authentication::PreSharedKey(Secret::new(psk)))
    }

    /// Defaults around certificates (RSA signatures, RFC 2409 §5.1). The driver must also
    /// keep the endpoint's wall clock set ([`Endpoint::set_wall_clock`]): certificate validity
    /// is checked against it.
    #[must_use]
    pub fn with_certificates(certificates: Arc<Certificates>) -> Self {
        Self::with_authentication(Authentication::Certificates(certificates))
    }

    fn with_authentication(auth: Authentication) -> Self {
        Self {
            phase1: Phase1Config {
                policy: main_mode_default_policy(),
                auth,
            },
            phase2: Phase2Policy::default(),
            max_half_open: 1024,
            max_half_open_per_address: 32,
            max_established: 16_384,
            exchange_timeout: Duration::from_secs(60),
            retransmit: Duration::from_secs(2),
            max_retransmits: 8,
            dpd_interval: Some(Duration::from_secs(30)),
            dpd_timeout: Duration::from_secs(120),
            max_dh_per_second: Some(500),
            rekey: true,
            dh_offload: false,
            dh_pool: 16,
        }
    }
}

fn main_mode_default_policy() -> crate::ikev1::proposal::Phase1Policy {
    crate::ikev1::proposal::Phase1Policy::default()
}

/// A datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Our address to send from.
    pub local: SocketAddr,
    /// The destination.
    pub remote: SocketAddr,
    /// Length written into the caller's buffer (after the marker, if any).
    pub len: usize,
    /// Whether the driver must prefix the 4-byte non-ESP marker (port 4500, RFC 3948 §2.2).
    pub non_esp_marker: bool,
}

/// Why an ISAKMP SA ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// The peer deleted it.
    Deleted,
    /// DPD found the peer dead.
    DeadPeer,
    /// Its lifetime expired.
    Expired,
    /// [`Endpoint::close`] was called.
    Closed,
    /// A newer SA of the same identity sent INITIAL-CONTACT.
    Replaced,
}

/// What the endpoint tells its driver.
#[derive(Debug, Clone)]
pub enum Event {
    /// Main Mode completed.
    Phase1Up {
        /// Cookies identifying the SA.
        cookies: (Cookie, Cookie),
        /// The peer's transport address.
        peer: SocketAddr,
        /// The peer's authenticated identity.
        peer_id: PeerId,
        /// NAT detection.
        nat: NatState,
    },
    /// A pair of ESP SAs is ready: install both.
    ChildSaUp {
        /// The ISAKMP SA it belongs to.
        cookies: (Cookie, Cookie),
        /// The path ESP uses (UDP 4500 when encapsulated).
        path: Path,
        /// The SAs and keys.
        child: Box<ChildSa>,
    },
    /// ESP SAs to remove (the peer deleted them or their ISAKMP SA ended).
    ChildSaDown {
        /// Our inbound SPI.
        inbound_spi: u32,
        /// Our outbound SPI.
        outbound_spi: u32,
    },
    /// An ISAKMP SA was replaced by a newer one of the same peer (a phase-1 rekey by either
    /// side): its ESP SAs now belong to `new`, and nothing above IPsec needs to change.
    Phase1Rekeyed {
        /// The SA that ended.
        old: (Cookie, Cookie),
        /// Its successor.
        new: (Cookie, Cookie),
    },
    /// An ISAKMP SA ended.
    Phase1Down {
        /// Cookies.
        cookies: (Cookie, Cookie),
        /// Last known peer address.
        peer: SocketAddr,
        /// Why.
        reason: DownReason,
    },
    /// An authenticated message came from a new address (the peer's NAT mapping changed).
    PeerMoved {
        /// Cookies.
        cookies: (Cookie, Cookie),
        /// The new path.
        path: Path,
    },
    /// An exchange was refused (logged by the driver; rate-limit it).
    Refused {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        refusal: Refusal,
    },
}

/// A datagram that changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// Not an ISAKMP message we can parse.
    #[error("malformed")]
    Malformed,
    /// Cookies or message ID of no exchange we know.
    #[error("unknown SA")]
    UnknownSa,
    /// A half-open limit was reached.
    #[error("half-open limit")]
    Limit,
    /// Refused by the exchange (an event says why).
    #[error("refused: {0}")]
    Refused(Refusal),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handled.
    pub datagrams: u64,
    /// Diffie-Hellman computations (the expensive part; a driver can rate-limit on it).
    pub dh_computations: u64,
    /// Retransmissions of our last answer on a duplicate request.
    pub answered_duplicates: u64,
    /// Datagrams dropped at a limit.
    pub limited: u64,
}

type Cookies = (Cookie, Cookie);

#[derive(Debug)]
enum Half {
    AwaitKe(AwaitKe),
    /// Message 3 received with no key pair ready: one is computed at the driver, then message 3
    /// is answered.
    AwaitKeyPair {
        state: AwaitKe,
        message3: (Path, Vec<u8>),
    },
    /// Message 5 read and the initiator authenticated; our RSA signature for message 6 is
    /// computed at the driver.
    AwaitSignature {
        state: Box<AwaitAuth>,
        checked: Box<main_mode::AuthChecked>,
        message5: (Path, Vec<u8>),
    },
    /// Message 4 sent; the Diffie-Hellman agreement runs at the driver. A message 5 that
    /// arrives meanwhile waits here (the latest one) and is read when the keys exist.
    AwaitAgreement {
        state: Box<AwaitAgreement>,
        early: Option<(Path, Vec<u8>)>,
    },
    AwaitAuth(Box<AwaitAuth>),
    InitSent(InitSent),
    KeSent(Box<KeSent>),
    AuthSent(Box<AuthSent>),
}

/// An exchange in progress with its retransmission state.
#[derive(Debug)]
struct Pending {
    state: Half,
    path: Path,
    /// The last message we received (a byte-identical copy is a retransmission) and our answer.
    last_in: Vec<u8>,
    last_out: Vec<u8>,
    expires: Instant,
    /// For exchanges we drive: when to resend `last_out`, and how often we did.
    resend_at: Option<Instant>,
    resends: u8,
    /// A Main Mode we started to rekey this established SA.
    replaces: Option<Cookies>,
}

#[derive(Debug)]
enum Quick {
    Responder(Box<QuickResponder>),
    Initiator(Box<QuickInitiator>),
    /// We answer with PFS and the pool of the group is empty: a key pair is computed at the
    /// driver, then message 1 (kept in `early`) is answered. Nothing is sent until then.
    AwaitKeyPair,
    /// We initiated and sent message 3: kept until it expires so a repeated message 2 (our
    /// message 3 was lost) gets message 3 again.
    Done,
}

#[derive(Debug)]
struct QuickPending {
    state: Quick,
    last_in: Vec<u8>,
    last_out: Vec<u8>,
    expires: Instant,
    resend_at: Option<Instant>,
    resends: u8,
    /// The message that waits for the driver's work, read when it is back: message 3 that
    /// came while our PFS agreement ran, or message 1 while our key pair is computed.
    early: Option<(Path, Vec<u8>)>,
}

/// A pair of ESP SAs negotiated under an ISAKMP SA.
#[derive(Debug, Clone, Copy)]
struct Child {
    inbound: u32,
    outbound: u32,
    /// Hard expiry: both SAs are removed (and the peer told).
    expires: Instant,
    /// When to start a Quick Mode that replaces it (pairs we initiated, until replaced).
    rekey_at: Option<Instant>,
}

#[derive(Debug)]
struct Established {
    sa: Phase1Sa,
    path: Path,
    /// Order of establishment (the newest SA of a peer succeeds the older ones).
    serial: u64,
    /// The last Main Mode message and our answer (the initiator may repeat message 5).
    last_in: Vec<u8>,
    last_out: Vec<u8>,
    quick: BTreeMap<u32, QuickPending>,
    children: Vec<Child>,
    expires: Instant,
    /// When to start a Main Mode that replaces this SA (SAs we initiated, until replaced).
    rekey_at: Option<Instant>,
    /// Past its lifetime but still holding live ESP SAs (RFC 2409 does not tie them to the
    /// ISAKMP SA): it negotiates nothing more and waits for a successor to adopt the ESP SAs,
    /// or for them to expire too.
    expired: bool,
    last_heard: Instant,
    dpd_seq: u32,
    /// An unanswered R-U-THERE: when the first went out and when to repeat it.
    dpd_probe: Option<(Instant, Instant)>,
}

impl Pending {
    /// When the exchange expires or is resent.
    fn deadline(&self) -> Instant {
        self.resend_at.map_or(self.expires, |r| r.min(self.expires))
    }
}

impl Established {
    /// The earliest of the SA's deadlines: expiry, DPD, its Quick Modes, its ESP SAs, rekey.
    fn deadline(&self, config: &Config) -> Option<Instant> {
        if self.expired {
            let children = self.children.iter().map(|c| c.expires).min();
            return [children, self.rekey_at].into_iter().flatten().min();
        }
        let dpd = config.dpd_interval.map(|i| match self.dpd_probe {
            Some((first, again)) => again.min(first + config.dpd_timeout),
            None => self.last_heard + i,
        });
        let quick = self
            .quick
            .values()
            .flat_map(|q| [Some(q.expires), q.resend_at])
            .flatten()
            .min();
        let children = self
            .children
            .iter()
            .flat_map(|c| [Some(c.expires), c.rekey_at])
            .flatten()
            .min();
        [Some(self.expires), dpd, quick, children, self.rekey_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Exchanges per ISAKMP SA in progress at once (Quick Modes).
const MAX_QUICK: usize = 8;
/// Child SA pairs per ISAKMP SA (clients reconnect and rekey).
const MAX_CHILDREN: usize = 16;
/// Largest message we write.
const MAX_MESSAGE: usize = 4096;

/// The IKE engine. See the module docs for the contract.
#[derive(Debug)]
pub struct Endpoint<R> {
    config: Config,
    rng: R,
    pending: Tracked<Cookies, Pending>,
    /// Boxed: B-tree nodes hold eleven values whether used or not.
    established: Tracked<Cookies, Box<Established>>,
    /// Deadlines of the exchanges in `pending` and of the SAs in `established`, re-read for
    /// the entries that changed at the end of every input: timers cost O(entries due).
    pending_timers: TimerQueue<Cookies, Instant>,
    established_timers: TimerQueue<Cookies, Instant>,
    /// Established SAs by the peer's address, and the address each is filed under (kept by
    /// `rearm_changed`): finding a peer's other SAs costs O(its SAs), not a scan.
    by_remote: BTreeSet<(SocketAddr, Cookies)>,
    remote_of: BTreeMap<Cookies, SocketAddr>,
    /// Entries whose timers ran (the cost of the timer path, for tests).
    #[cfg(test)]
    timer_visits: u64,
    /// Inbound SPIs we handed out.
    spis: BTreeSet<u32>,
    out: VecDeque<(Transmit, Vec<u8>)>,
    events: VecDeque<Event>,
    stats: Stats,
    /// The driver's pairing of a monotonic instant with the time of day, from which the wall
    /// clock at any later `now` is derived (certificate validity). Unset, the wall clock reads
    /// as the Unix epoch, when no certificate is valid: certificate checks fail closed.
    wall_clock: Option<(Instant, SystemTime)>,
    serial: u64,
    /// Token bucket of [`Config::max_dh_per_second`]: tokens and when they were counted.
    dh_bucket: Option<(f64, Instant)>,
    /// With [`Config::dh_offload`]: work for the driver, and key pairs computed ahead.
    dh: offload::DhWork,
}

fn key_of(h: &Header<&[u8]>) -> Cookies {
    (h.initiator_cookie(), h.responder_cookie())
}

impl<R: CryptoRng> Endpoint<R> {
    /// An endpoint with no SAs.
    pub fn new(config: Config, rng: R) -> Self {
        Self {
            config,
            rng,
            pending: Tracked::new(),
            established: Tracked::new(),
            pending_timers: TimerQueue::new(),
            established_timers: TimerQueue::new(),
            by_remote: BTreeSet::new(),
            remote_of: BTreeMap::new(),
            #[cfg(test)]
            timer_visits: 0,
            spis: BTreeSet::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            wall_clock: None,
            serial: 0,
            dh_bucket: None,
            dh: offload::DhWork::default(),
        }
    }

    /// Tells the endpoint that the time of day was `wall` at `at`. Certificate validity is
    /// checked at `wall + (now - at)`; a driver re-anchors now and then so that adjustments of
    /// the system clock are followed.
    pub fn set_wall_clock(&mut self, at: Instant, wall: SystemTime) {
        self.wall_clock = Some((at, wall));
    }

    /// The time of day at `now`, as the driver last told it.
    fn wall_clock_at(&self, now: Instant) -> SystemTime {
        match self.wall_clock {
            None => UNIX_EPOCH,
            Some((at, wall)) if now >= at => wall.checked_add(now - at).unwrap_or(wall),
            Some((at, wall)) => wall.checked_sub(at - now).unwrap_or(wall),
        }
    }

    /// Counters.
    pub const fn stats(&self) -> Stats {
        self.stats
    }

    /// Established ISAKMP SAs.
    pub fn established(&self) -> usize {
        self.established.len()
    }

    /// Half-open exchanges.
    pub fn half_open(&self) -> usize {
        self.pending.len()
    }

    /// Whether a message with these cookies belongs to an exchange or SA of ours (a driver
    /// that only talks to one peer filters strays with it).
    pub fn knows(&self, cookies: Cookies) -> bool {
        self.established.contains_key(&cookies)
            || self.pending.contains_key(&cookies)
            || self.pending.contains_key(&(cookies.0, Cookie::default()))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Writes the next datagram into `buf`.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let (t, bytes) = self.out.pop_front()?;
            if let Some(dst) = buf.get_mut(..bytes.len()) {
                dst.copy_from_slice(&bytes);
                return Some(Transmit {
                    len: bytes.len(),
                    ..t
                });
            }
        }
    }

    fn send(&mut self, path: Path, bytes: &[u8]) {
        let t = Transmit {
            local: path.local,
            remote: path.remote,
            len: bytes.len(),
            non_esp_marker: path.local.port() == 4500,
        };
        if self.out.len() < 256 {
            self.out.push_back((t, bytes.to_vec()));
        }
    }

    fn allocate_spi(&mut self) -> u32 {
        loop {
            let spi = self.rng.next_u32();
            if spi >= 256 && self.spis.insert(spi) {
                return spi;
            }
        }
    }

    /// Starts Main Mode towards `remote` (the client side).
    ///
    /// # Errors
    /// [`Discard::Malformed`] if the message cannot be built.
    pub fn connect(&mut self, now: Instant, path: Path) -> Result<Cookies, Discard> {
        let result = self.start_main_mode(now, path, None);
        self.rearm_changed();
        result
    }

    /// Re-reads the deadlines of the exchanges and SAs that changed since the last call.
    fn rearm_changed(&mut self) {
        while let Some(key) = self.pending.take_changed() {
            let at = self.pending.get(&key).map(Pending::deadline);
            self.pending_timers.set(key, at);
        }
        while let Some(key) = self.established.take_changed() {
            let e = self.established.get(&key);
            let at = e.and_then(|e| e.deadline(&self.config));
            self.established_timers.set(key, at);
            let remote = e.map(|e| e.path.remote);
            let filed = self.remote_of.get(&key).copied();
            if filed != remote {
                if let Some(old) = filed {
                    self.by_remote.remove(&(old, key));
                    self.remote_of.remove(&key);
                }
                if let Some(new) = remote {
                    self.by_remote.insert((new, key));
                    self.remote_of.insert(key, new);
                }
            }
        }
    }

    /// The established SAs whose peer is at `remote`. An SA that moved during the current
    /// input is filed under its old address until the input ends; each candidate is checked
    /// against its current address.
    fn at_remote(&self, remote: SocketAddr) -> impl Iterator<Item = (Cookies, &Established)> {
        let from = (remote, (Cookie::default(), Cookie::default()));
        self.by_remote
            .range(from..)
            .take_while(move |(r, _)| *r == remote)
            .filter_map(move |(_, k)| {
                self.established
                    .get(k)
                    .filter(|e| e.path.remote == remote)
                    .map(|e| (*k, &**e))
            })
    }

    fn start_main_mode(
        &mut self,
        now: Instant,
        path: Path,
        replaces: Option<Cookies>,
    ) -> Result<Cookies, Discard> {
        let mut buf = [0u8; MAX_MESSAGE];
        let (mut state, n) =
            main_mode::initiate(&self.config.phase1, path, &mut self.rng, &mut buf)
                .map_err(Discard::Refused)?;
        state.set_initial_contact(replaces.is_none());
        let key = (state.cookie(), Cookie::default());
        let out = buf[..n].to_vec();
        self.send(path, &out);
        self.pending.insert(
            key,
            Pending {
                state: Half::InitSent(state),
                path,
                last_in: Vec::new(),
                last_out: out,
                expires: now + self.config.exchange_timeout,
                resend_at: Some(now + self.config.retransmit),
                resends: 0,
                replaces,
            },
        );
        Ok(key)
    }

    /// Feeds one ISAKMP message received on `path` (local and remote as the driver saw them).
    ///
    /// # Errors
    /// [`Discard`]; nothing changed apart from counters (and an event for refusals).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        path: Path,
        message: &[u8],
    ) -> Result<(), Discard> {
        let result = self.datagram(now, path, message);
        self.rearm_changed();
        result
    }

    fn datagram(&mut self, now: Instant, path: Path, message: &[u8]) -> Result<(), Discard> {
        self.stats.datagrams += 1;
        let h = Header::new_checked(message).map_err(|_| Discard::Malformed)?;
        let key = key_of(&h);
        if key.1.is_zero() {
            return self.on_first(now, path, &h, message);
        }
        // Our own initiator exchange is keyed by our cookie until the responder's is known.
        if let Some(p) = self.pending.remove(&(key.0, Cookie::default())) {
            if matches!(p.state, Half::InitSent(_)) {
                self.pending.insert(key, p);
            } else {
                self.pending.insert((key.0, Cookie::default()), p);
            }
        }
        if self.pending.contains_key(&key) {
            return self.on_pending(now, path, key, message);
        }
        if self.established.contains_key(&key) {
            return self.on_established(now, path, key, &h, message);
        }
        Err(Discard::UnknownSa)
    }

    /// Whether the DH rate allows one more computation for an unauthenticated peer now.
    fn take_dh_token(&mut self, now: Instant) -> bool {
        let Some(rate) = self.config.max_dh_per_second.map(f64::from) else {
            return true;
        };
        let (tokens, since) = self.dh_bucket.unwrap_or((rate, now));
        let refilled =
            (tokens + now.saturating_duration_since(since).as_secs_f64() * rate).min(rate);
        if refilled >= 1.0 {
            self.dh_bucket = Some((refilled - 1.0, now));
            true
        } else {
            self.dh_bucket = Some((refilled, now));
            false
        }
    }

    fn refuse(&mut self, peer: SocketAddr, refusal: Refusal) -> Discard {
        self.events.push_back(Event::Refused { peer, refusal });
        Discard::Refused(refusal)
    }

    fn on_first(
        &mut self,
        now: Instant,
        path: Path,
        h: &Header<&[u8]>,
        message: &[u8],
    ) -> Result<(), Discard> {
        // A repeated message 1 gets our message 2 again.
        if let Some((_, p)) = self.pending.iter().find(|(k, p)| {
            k.0 == h.initiator_cookie() && p.path.remote == path.remote && p.last_in == message
        }) {
            let out = p.last_out.clone();
            self.stats.answered_duplicates += 1;
            self.send(path, &out);
            return Ok(());
        }
        let per_address = self
            .pending
            .values()
            .filter(|p| p.path.remote.ip() == path.remote.ip())
            .count();
        if self.pending.len() >= self.config.max_half_open
            || per_address >= self.config.max_half_open_per_address
        {
            self.stats.limited += 1;
            return Err(Discard::Limit);
        }
        let mut buf = [0u8; MAX_MESSAGE];
        // Aggressive Mode is refused: its second message hands any initiator a hash of the
        // pre-shared key to crack offline.
        if h.exchange_type() == ExchangeType::AGGRESSIVE {
            if let Some(n) = write_clear_notify(
                h.initiator_cookie(),
                NotifyType::UNSUPPORTED_EXCHANGE_TYPE,
                &mut buf,
            ) {
                let out = buf[..n].to_vec();
                self.send(path, &out);
            }
            return Err(self.refuse(path.remote, Refusal::Unexpected));
        }
        match main_mode::respond(&self.config.phase1, path, message, &mut self.rng, &mut buf) {
            Ok((state, n)) => {
                let out = buf[..n].to_vec();
                self.send(path, &out);
                self.pending.insert(
                    state.cookies(),
                    Pending {
                        state: Half::AwaitKe(state),
                        path,
                        last_in: message.to_vec(),
                        last_out: out,
                        expires: now + self.config.exchange_timeout,
                        resend_at: None,
                        resends: 0,
                        replaces: None,
                    },
                );
                Ok(())
            }
            Err(Refusal::NoProposalChosen) => {
                // RFC 2408 §5.2: tell the initiator, in the clear (no keys exist yet).
                let n = write_clear_notify(
                    h.initiator_cookie(),
                    NotifyType::NO_PROPOSAL_CHOSEN,
                    &mut buf,
                );
                if let Some(n) = n {
                    let out = buf[..n].to_vec();
                    self.send(path, &out);
                }
                Err(self.refuse(path.remote, Refusal::NoProposalChosen))
            }
            Err(e) => Err(self.refuse(path.remote, e)),
        }
    }

    fn on_pending(
        &mut self,
        now: Instant,
        path: Path,
        key: Cookies,
        message: &[u8],
    ) -> Result<(), Discard> {
        self.on_pending_with(now, path, key, message, false)
    }

    /// `token_taken`: message 3 already passed the DH rate limit (it waited for a key pair).
    fn on_pending_with(
        &mut self,
        now: Instant,
        path: Path,
        key: Cookies,
        message: &[u8],
        token_taken: bool,
    ) -> Result<(), Discard> {
        let Some(mut p) = self.pending.remove(&key) else {
            return Err(Discard::UnknownSa);
        };
        if p.last_in == message {
            self.stats.answered_duplicates += 1;
            let out = p.last_out.clone();
            self.pending.insert(key, p);
            self.send(path, &out);
            return Ok(());
        }
        if let Half::AwaitAgreement { early, .. } = &mut p.state {
            *early = Some((path, message.to_vec()));
            self.pending.insert(key, p);
            return Ok(());
        }
        if let Half::AwaitKeyPair { .. } | Half::AwaitSignature { .. } = &p.state {
            // Message 3 again while its key pair is computed: answered when it is ready.
            self.pending.insert(key, p);
            return Ok(());
        }
        if matches!(p.state, Half::AwaitKe(_)) && !token_taken && !self.take_dh_token(now) {
            self.pending.insert(key, p);
            self.stats.limited += 1;
            return Err(Discard::Limit);
        }
        // With the pool of this group empty, a worker computes the key pair: message 4 waits
        // for it rather than the packet thread doing the work.
        if self.config.dh_offload
            && let Half::AwaitKe(s) = &p.state
            && self.dh.ready(s.suite().group) == 0
        {
            let drawn = crate::crypto::DhKeyPair::draw(s.suite().group, &mut self.rng);
            self.dh.key_pair_for(KeyPairTarget::MainMode(key), drawn);
            p.state = match p.state {
                Half::AwaitKe(state) => Half::AwaitKeyPair {
                    state,
                    message3: (path, message.to_vec()),
                },
                other => other,
            };
            self.pending.insert(key, p);
            return Ok(());
        }
        let mut buf = [0u8; MAX_MESSAGE];
        let wall_clock = self.wall_clock_at(now);
        // With certificates, our signature (an RSA private-key operation) is computed at the
        // driver; a message 5 that does not pass goes the usual way below and is refused there.
        if self.config.dh_offload
            && let Half::AwaitAuth(s) = &p.state
            && s.signs()
            && let Ok(checked) = s.check_auth(message, wall_clock)
            && let Some(signing) = s.signing(&checked)
        {
            self.dh.sign(key, signing);
            p.state = match p.state {
                Half::AwaitAuth(state) => Half::AwaitSignature {
                    state,
                    checked: Box::new(checked),
                    message5: (path, message.to_vec()),
                },
                other => other,
            };
            self.pending.insert(key, p);
            return Ok(());
        }
        let result: Result<Option<(Half, usize)>, Refusal> = match &mut p.state {
            Half::AwaitKe(s) if self.config.dh_offload => {
                // Not empty: message 3 waited for a key pair above if it was.
                let pair = self.dh.pooled(s.suite().group);
                pair.ok_or(Refusal::InvalidKeyInformation)
                    .and_then(|pair| s.answer_key_exchange(message, pair, &mut self.rng, &mut buf))
                    .map(|(state, agreement, len)| {
                        self.dh.agree(key, agreement);
                        let state = Box::new(state);
                        Some((Half::AwaitAgreement { state, early: None }, len))
                    })
            }
            Half::AwaitKe(s) => s
                .on_key_exchange(message, &mut self.rng, &mut buf)
                .map(|(n, len)| Some((Half::AwaitAuth(Box::new(n)), len))),
            // Handled above.
            Half::AwaitAgreement { .. }
            | Half::AwaitKeyPair { .. }
            | Half::AwaitSignature { .. } => Ok(None),
            Half::AwaitAuth(s) => match s.on_auth(message, &mut buf, wall_clock) {
                Ok((sa, len)) => {
                    let out = buf[..len].to_vec();
                    self.answer_message5(now, sa, (p.path, path), message.to_vec(), out);
                    return Ok(());
                }
                Err(e) => Err(e),
            },
            Half::InitSent(s) => s
                .on_choice(message, &mut self.rng, &mut buf)
                .map(|(n, len)| Some((Half::KeSent(Box::new(n)), len))),
            Half::KeSent(s) => s
                .on_key_exchange(message, &mut buf)
                .map(|(n, len)| Some((Half::AuthSent(Box::new(n)), len))),
            Half::AuthSent(s) => match s.on_auth(message, wall_clock) {
                Ok(sa) => {
                    self.establish(now, sa, p.path, message.to_vec(), Vec::new(), p.replaces);
                    return Ok(());
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(Some((state, len))) => {
                self.stats.dh_computations +=
                    u64::from(matches!(state, Half::AwaitAuth(_) | Half::KeSent(_)));
                let out = buf[..len].to_vec();
                // RFC 3947 §4: an initiator that detected a NAT moves to port 4500 for message 5
                // and everything after it (with the non-ESP marker).
                let path = match &state {
                    Half::AuthSent(s) if s.nat().encapsulate() && p.path.local.port() != 4500 => {
                        Path {
                            local: SocketAddr::new(p.path.local.ip(), 4500),
                            remote: SocketAddr::new(p.path.remote.ip(), 4500),
                        }
                    }
                    _ => p.path,
                };
                self.send(path, &out);
                let ours = matches!(state, Half::KeSent(_) | Half::AuthSent(_));
                self.pending.insert(
                    key,
                    Pending {
                        state,
                        path,
                        last_in: message.to_vec(),
                        last_out: out,
                        // Progress earns the next step a full timeout.
                        expires: now + self.config.exchange_timeout,
                        resend_at: ours.then(|| now + self.config.retransmit),
                        resends: 0,
                        replaces: p.replaces,
                    },
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                // A refused message 5 (wrong ID for the key, bad certificate...) is answered
                // with the error, encrypted, in place of message 6 (when it decrypted at all).
                if let Half::AwaitAuth(s) = &p.state
                    && let Some(n) = s.refusal_notify(message, e, &mut self.rng, &mut buf)
                {
                    let out = buf[..n].to_vec();
                    self.send(path, &out);
                }
                let fatal = matches!(
                    e,
                    Refusal::AuthenticationFailed
                        | Refusal::NoProposalChosen
                        | Refusal::InvalidKeyInformation
                        | Refusal::CertificateInvalid
                        | Refusal::CertificateExpired
                        | Refusal::UntrustedCertificate
                        | Refusal::IdMismatch
                        | Refusal::CertTypeUnsupported
                ) && matches!(
                    p.state,
                    Half::AwaitAuth(_) | Half::AuthSent(_) | Half::InitSent(_) | Half::KeSent(_)
                );
                let peer = p.path.remote;
                if !fatal {
                    self.pending.insert(key, p);
                }
                Err(self.refuse(peer, e))
            }
        }
    }

    /// As responder: sends message 6 and establishes the SA. It goes back the way message 5
    /// came (`known`, the exchange's path, unless the peer's address moved, then `arrived`).
    fn answer_message5(
        &mut self,
        now: Instant,
        sa: Phase1Sa,
        (known, arrived): (Path, Path),
        message5: Vec<u8>,
        message6: Vec<u8>,
    ) {
        let path = if known.remote == arrived.remote {
            known
        } else {
            arrived
        };
        self.send(path, &message6);
        self.establish(now, sa, path, message5, message6, None);
    }

    fn establish(
        &mut self,
        now: Instant,
        sa: Phase1Sa,
        path: Path,
        last_in: Vec<u8>,
        last_out: Vec<u8>,
        replaces: Option<Cookies>,
    ) {
        let cookies = (sa.cky_i, sa.cky_r);
        if self.established.len() >= self.config.max_established {
            self.stats.limited += 1;
            return;
        }
        // RFC 2407 §4.6.3.3: INITIAL-CONTACT means earlier SAs of this identity are gone. Road
        // warriors behind one NAT may share an identity and an address: only the same address
        // and port is the same peer.
        if sa.initial_contact && !sa.we_initiated {
            let stale: Vec<Cookies> = self
                .at_remote(path.remote)
                .filter(|(_, e)| e.sa.peer_id == sa.peer_id)
                .map(|(k, _)| k)
                .collect();
            for k in stale {
                self.drop_sa(k, DownReason::Replaced);
            }
        }
        self.events.push_back(Event::Phase1Up {
            cookies,
            peer: path.remote,
            peer_id: sa.peer_id.clone(),
            nat: sa.nat,
        });
        let we_initiated = sa.we_initiated;
        let expires = now + sa.lifetime;
        // The initiator rekeys a margin before expiry; the responder half a margin before, in
        // case the initiator does not (it may believe in a longer lifetime than our policy
        // allowed: IKEv1 has no way to tell it in Main Mode).
        let margin = rekey_margin(sa.lifetime);
        let rekey_at = self
            .config
            .rekey
            .then(|| expires.checked_sub(if we_initiated { margin } else { margin / 2 }))
            .flatten();
        self.serial += 1;
        self.established.insert(
            cookies,
            Box::new(Established {
                sa,
                path,
                serial: self.serial,
                last_in,
                last_out,
                quick: BTreeMap::new(),
                children: Vec::new(),
                expires,
                rekey_at,
                expired: false,
                last_heard: now,
                dpd_seq: 0,
                dpd_probe: None,
            }),
        );
        // A rekey we started: the old SA hands its ESP SAs over and is deleted (RFC 2409 leaves
        // phase-2 SAs alive when their ISAKMP SA goes; they are simply managed from here on).
        let mut adopted = false;
        if let Some(old) = replaces.filter(|old| self.established.contains_key(old)) {
            adopted = self
                .established
                .get(&old)
                .is_some_and(|e| !e.children.is_empty());
            if self.established.get(&old).is_some_and(|e| !e.expired) {
                self.delete_isakmp(old);
            }
            self.retire(old, cookies);
        }
        // Expired SAs of this peer still carrying ESP (its rekey came late) hand them over.
        let orphans: Vec<Cookies> = self
            .at_remote(path.remote)
            .filter(|(k, e)| {
                e.expired
                    && *k != cookies
                    && self
                        .established
                        .get(&cookies)
                        .is_some_and(|n| n.sa.peer_id == e.sa.peer_id)
            })
            .map(|(k, _)| k)
            .collect();
        for old in orphans {
            adopted = true;
            self.retire(old, cookies);
        }
        if adopted {
            return;
        }
        if we_initiated {
            let _ = self.start_quick(now, cookies);
        }
    }

    /// The newest other established SA of the same peer (identity and address), which takes
    /// over when `key` ends.
    fn successor(&self, key: Cookies) -> Option<Cookies> {
        let e = self.established.get(&key)?;
        self.at_remote(e.path.remote)
            .filter(|(k, o)| {
                *k != key && !o.expired && o.serial > e.serial && o.sa.peer_id == e.sa.peer_id
            })
            .max_by_key(|(_, o)| o.serial)
            .map(|(k, _)| k)
    }

    /// Ends `old` in favour of `new`: its ESP SAs move over, its exchanges are dropped.
    fn retire(&mut self, old: Cookies, new: Cookies) {
        let Some(gone) = self.established.remove(&old) else {
            return;
        };
        if let Some(e) = self.established.get_mut(&new) {
            e.children.extend(gone.children);
        }
        self.events.push_back(Event::Phase1Rekeyed { old, new });
    }

    /// Tells the peer that the ISAKMP SA `key` is deleted (it stays in our table).
    fn delete_isakmp(&mut self, key: Cookies) {
        let Some(e) = self.established.get(&key) else {
            return;
        };
        let mut buf = [0u8; MAX_MESSAGE];
        if let Ok(n) = informational::write_delete(&e.sa, Deleted::Isakmp, &mut self.rng, &mut buf)
        {
            let (path, out) = (e.path, buf[..n].to_vec());
            self.send(path, &out);
        }
    }

    fn start_quick(&mut self, now: Instant, key: Cookies) -> Result<(), Discard> {
        if self.established.get(&key).is_none_or(|e| e.expired) {
            return Err(Discard::UnknownSa);
        }
        let spi = self.allocate_spi();
        let Some(e) = self.established.get_mut(&key) else {
            return Err(Discard::UnknownSa);
        };
        let mut buf = [0u8; MAX_MESSAGE];
        let (state, n) = quick_mode::initiate(
            &e.sa,
            &self.config.phase2.for_peer(e.path.remote.ip()),
            e.path.local,
            e.path.remote,
            spi,
            &mut self.rng,
            &mut buf,
        )
        .map_err(Discard::Refused)?;
        let out = buf[..n].to_vec();
        let mid = state.message_id().0;
        e.quick.insert(
            mid,
            QuickPending {
                state: Quick::Initiator(Box::new(state)),
                last_in: Vec::new(),
                last_out: out.clone(),
                expires: now + self.config.exchange_timeout,
                resend_at: Some(now + self.config.retransmit),
                resends: 0,
                early: None,
            },
        );
        let path = e.path;
        self.send(path, &out);
        Ok(())
    }

    fn on_established(
        &mut self,
        now: Instant,
        path: Path,
        key: Cookies,
        h: &Header<&[u8]>,
        message: &[u8],
    ) -> Result<(), Discard> {
        let exchange = h.exchange_type();
        let mid = h.message_id();
        let Some(e) = self.established.get_mut(&key).filter(|e| !e.expired) else {
            return Err(Discard::UnknownSa);
        };
        if exchange == ExchangeType::MAIN_MODE {
            // The initiator repeats message 5 when our message 6 was lost.
            if e.last_in == message && !e.last_out.is_empty() {
                let out = e.last_out.clone();
                let p = e.path;
                self.stats.answered_duplicates += 1;
                self.send(p, &out);
                return Ok(());
            }
            return Err(Discard::UnknownSa);
        }
        let mut buf = [0u8; MAX_MESSAGE];
        match exchange {
            ExchangeType::INFORMATIONAL => {
                let infos = informational::read(&e.sa, message).map_err(Discard::Refused)?;
                e.last_heard = now;
                self.follow(key, path);
                for info in infos {
                    self.on_info(now, key, info, &mut buf);
                }
                Ok(())
            }
            ExchangeType::QUICK_MODE => {
                if let Some(q) = e.quick.get_mut(&mid.0) {
                    if matches!(q.state, Quick::AwaitKeyPair) {
                        // Message 1 again while our key pair is computed: answered when it is
                        // ready.
                        return Ok(());
                    }
                    if q.last_in == message {
                        let out = q.last_out.clone();
                        let p = e.path;
                        self.stats.answered_duplicates += 1;
                        self.send(p, &out);
                        return Ok(());
                    }
                    if let Quick::Responder(r) = &q.state
                        && r.awaiting_agreement()
                    {
                        q.early = Some((path, message.to_vec()));
                        return Ok(());
                    }
                    let result = match &mut q.state {
                        Quick::Responder(r) => r.on_final(&e.sa, message).map(|c| (c, None)),
                        Quick::Initiator(i) => i
                            .on_reply(&e.sa, message, &mut buf)
                            .map(|(c, n)| (c, Some(n))),
                        Quick::Done | Quick::AwaitKeyPair => return Err(Discard::UnknownSa),
                    };
                    let (child, reply) = result.map_err(Discard::Refused)?;
                    let we_initiated = reply.is_some();
                    let p = e.path;
                    e.last_heard = now;
                    if let Some(n) = reply {
                        let out = buf[..n].to_vec();
                        *q = QuickPending {
                            state: Quick::Done,
                            last_in: message.to_vec(),
                            last_out: out.clone(),
                            expires: now + self.config.exchange_timeout,
                            resend_at: None,
                            resends: 0,
                            early: None,
                        };
                        self.send(p, &out);
                    } else {
                        e.quick.remove(&mid.0);
                        release_if_empty(&mut e.quick);
                    }
                    self.child_up(now, key, child, we_initiated);
                    self.follow(key, path);
                    return Ok(());
                }
                if e.quick.len() >= MAX_QUICK {
                    self.stats.limited += 1;
                    return Err(Discard::Limit);
                }
                let spi = loop {
                    let spi = self.rng.next_u32();
                    if spi >= 256 && !self.spis.contains(&spi) {
                        break spi;
                    }
                };
                let Some(e) = self.established.get_mut(&key) else {
                    return Err(Discard::UnknownSa);
                };
                // Quick Mode under these keys proves the peer has our message 6: it will not
                // repeat message 5, and an established SA need not keep either.
                e.last_in = Vec::new();
                e.last_out = Vec::new();
                let answered = if self.config.dh_offload {
                    let dh = &mut self.dh;
                    // With PFS and the pool of the group empty, `respond_with` stops at the
                    // key pair (message 1 has been verified by then) and `missing` says so.
                    let mut missing = None;
                    let answered = quick_mode::respond_with(
                        &e.sa,
                        &self.config.phase2.for_peer(e.path.remote.ip()),
                        message,
                        spi,
                        &mut |group, _| {
                            dh.pooled(group).ok_or_else(|| {
                                missing = Some(group);
                                Refusal::InvalidKeyInformation
                            })
                        },
                        &mut self.rng,
                        &mut buf,
                    );
                    if let Some(group) = missing {
                        let drawn = crate::crypto::DhKeyPair::draw(group, &mut self.rng);
                        let target = KeyPairTarget::QuickMode {
                            cookies: key,
                            message_id: mid.0,
                        };
                        dh.key_pair_for(target, drawn);
                        // Counted against MAX_QUICK and expiring like any Quick Mode.
                        e.quick.insert(
                            mid.0,
                            QuickPending {
                                state: Quick::AwaitKeyPair,
                                last_in: Vec::new(),
                                last_out: Vec::new(),
                                expires: now + self.config.exchange_timeout,
                                resend_at: None,
                                resends: 0,
                                early: Some((path, message.to_vec())),
                            },
                        );
                        e.last_heard = now;
                        self.follow(key, path);
                        return Ok(());
                    }
                    answered.map(|(state, agreement, n)| {
                        if let Some(agreement) = agreement {
                            dh.agree_quick(key, mid.0, agreement);
                        }
                        (state, n)
                    })
                } else {
                    quick_mode::respond(
                        &e.sa,
                        &self.config.phase2.for_peer(e.path.remote.ip()),
                        message,
                        spi,
                        &mut self.rng,
                        &mut buf,
                    )
                };
                match answered {
                    Ok((state, n)) => {
                        self.spis.insert(spi);
                        let out = buf[..n].to_vec();
                        // The responder repeats message 2 until message 3 arrives (IKEv1 has no
                        // other way to learn that message 2 was lost).
                        e.quick.insert(
                            mid.0,
                            QuickPending {
                                state: Quick::Responder(Box::new(state)),
                                last_in: message.to_vec(),
                                last_out: out.clone(),
                                expires: now + self.config.exchange_timeout,
                                resend_at: Some(now + self.config.retransmit),
                                resends: 0,
                                early: None,
                            },
                        );
                        e.last_heard = now;
                        let p = e.path;
                        self.send(p, &out);
                        self.follow(key, path);
                        Ok(())
                    }
                    Err(refusal) => {
                        // Tell the peer why, protected by the phase-1 keys.
                        let kind = refusal.notify().filter(|_| refusal != Refusal::Malformed);
                        if let Some(kind) = kind
                            && let Ok(n) = informational::write_notify(
                                &e.sa,
                                kind,
                                &[],
                                &mut self.rng,
                                &mut buf,
                            )
                        {
                            let out = buf[..n].to_vec();
                            let p = e.path;
                            self.send(p, &out);
                        }
                        Err(self.refuse(path.remote, refusal))
                    }
                }
            }
            _ => Err(Discard::UnknownSa),
        }
    }

    /// The driver saw traffic of this SA's peer that proved itself (ESP that verified and was
    /// the newest) arrive from `remote`: IKE follows it as it would an authenticated IKE
    /// message, so DPD and rekeys reach the peer's new NAT mapping.
    pub fn peer_seen_at(&mut self, cookies: Cookies, remote: SocketAddr) {
        if let Some(e) = self.established.get(&cookies) {
            let path = Path {
                local: e.path.local,
                remote,
            };
            self.follow(cookies, path);
        }
        self.rearm_changed();
    }

    /// Follows a NAT mapping change after an authenticated message (RFC 3947 §4: the peer's
    /// address may change; the newest authenticated one wins).
    fn follow(&mut self, key: Cookies, path: Path) {
        let Some(e) = self.established.get_mut(&key) else {
            return;
        };
        if e.path.remote != path.remote {
            e.path = Path {
                local: e.path.local,
                remote: path.remote,
            };
            self.events.push_back(Event::PeerMoved {
                cookies: key,
                path: e.path,
            });
        }
    }

    fn child_up(&mut self, now: Instant, key: Cookies, child: ChildSa, we_initiated: bool) {
        let rekey = self.config.rekey;
        let Some(e) = self.established.get_mut(&key) else {
            return;
        };
        if e.children.len() >= MAX_CHILDREN {
            let old = e.children.remove(0);
            self.spis.remove(&old.inbound);
            self.events.push_back(Event::ChildSaDown {
                inbound_spi: old.inbound,
                outbound_spi: old.outbound,
            });
        }
        // The newest pair carries the traffic; older ones only drain until they expire.
        for older in &mut e.children {
            older.rekey_at = None;
        }
        let expires = now + child.lifetime;
        e.children.push(Child {
            inbound: child.inbound_spi,
            outbound: child.outbound_spi,
            expires,
            rekey_at: (we_initiated && rekey)
                .then(|| expires.checked_sub(rekey_margin(child.lifetime)))
                .flatten(),
        });
        let path = e.path;
        self.events.push_back(Event::ChildSaUp {
            cookies: key,
            path,
            child: Box::new(child),
        });
    }

    fn on_info(&mut self, now: Instant, key: Cookies, info: Info, buf: &mut [u8]) {
        match info {
            Info::RUThere(seq) => {
                let Some(e) = self.established.get(&key) else {
                    return;
                };
                if let Ok(n) = informational::write_dpd(&e.sa, true, seq, &mut self.rng, buf) {
                    let out = buf[..n].to_vec();
                    let p = e.path;
                    self.send(p, &out);
                }
            }
            Info::RUThereAck(seq) => {
                if let Some(e) = self.established.get_mut(&key)
                    && seq == e.dpd_seq
                {
                    e.dpd_probe = None;
                    e.last_heard = now;
                }
            }
            Info::DeleteIsakmp => self.drop_sa(key, DownReason::Deleted),
            Info::DeleteEsp(spis) => {
                let Some(e) = self.established.get_mut(&key) else {
                    return;
                };
                let (gone, kept): (Vec<_>, Vec<_>) =
                    e.children.iter().partition(|c| spis.contains(&c.outbound));
                e.children = kept;
                for c in gone {
                    self.spis.remove(&c.inbound);
                    self.events.push_back(Event::ChildSaDown {
                        inbound_spi: c.inbound,
                        outbound_spi: c.outbound,
                    });
                }
            }
            Info::Notify(_) => {}
        }
    }

    fn drop_sa(&mut self, key: Cookies, reason: DownReason) {
        // A newer SA of the same peer carries on (the peer rekeyed phase 1 and deleted or let
        // expire the old one): the ESP SAs and everything above them live on.
        if !matches!(reason, DownReason::Replaced | DownReason::Closed)
            && let Some(new) = self.successor(key)
        {
            self.retire(key, new);
            return;
        }
        let Some(e) = self.established.remove(&key) else {
            return;
        };
        for c in e.children {
            self.spis.remove(&c.inbound);
            self.events.push_back(Event::ChildSaDown {
                inbound_spi: c.inbound,
                outbound_spi: c.outbound,
            });
        }
        self.events.push_back(Event::Phase1Down {
            cookies: key,
            peer: e.path.remote,
            reason,
        });
    }

    /// Deletes an ISAKMP SA and its ESP SAs, telling the peer.
    pub fn close(&mut self, key: Cookies) {
        self.close_one(key);
        self.rearm_changed();
    }

    fn close_one(&mut self, key: Cookies) {
        let Some(e) = self.established.get(&key) else {
            return;
        };
        let mut buf = [0u8; MAX_MESSAGE];
        let spis: Vec<u32> = e.children.iter().map(|c| c.inbound).collect();
        let path = e.path;
        let mut messages = Vec::new();
        if !spis.is_empty()
            && let Ok(n) =
                informational::write_delete(&e.sa, Deleted::Esp(&spis), &mut self.rng, &mut buf)
        {
            messages.push(buf[..n].to_vec());
        }
        if let Ok(n) = informational::write_delete(&e.sa, Deleted::Isakmp, &mut self.rng, &mut buf)
        {
            messages.push(buf[..n].to_vec());
        }
        for m in messages {
            self.send(path, &m);
        }
        // A rekey of it in flight would only bring back what the caller is closing.
        self.pending.retain(|_, p| p.replaces != Some(key));
        self.drop_sa(key, DownReason::Closed);
    }

    /// Deletes every ISAKMP SA and its ESP SAs, telling each peer (a clean stop).
    pub fn close_all(&mut self) {
        let keys: Vec<Cookies> = self.established.keys().copied().collect();
        for key in keys {
            self.close_one(key);
        }
        self.rearm_changed();
    }

    /// Replaces the phase-1 authentication (pre-shared keys reloaded by the operator).
    /// Exchanges that start afterwards use it; established SAs keep the keys they derived.
    pub fn set_authentication(&mut self, auth: Authentication) {
        self.config.phase1.auth = auth;
    }

    /// Turns [`Config::dh_offload`] on or off. A driver that runs the jobs turns it on before
    /// the first datagram and leaves it on.
    pub const fn set_dh_offload(&mut self, on: bool) {
        self.config.dh_offload = on;
    }

    /// An established ISAKMP SA: suite, lifetime, peer identity (for logs and status).
    pub fn phase1(&self, cookies: Cookies) -> Option<&Phase1Sa> {
        self.established.get(&cookies).map(|e| &e.sa)
    }

    /// The key that encrypts the ISAKMP messages of an SA, for a debugging key log (Wireshark's
    /// `ikev1_decryption_table`: initiator cookie and this key). Whoever holds it can read
    /// the phase-1 and phase-2 negotiation of that SA.
    pub fn isakmp_encryption_key(&self, cookies: Cookies) -> Option<&Secret> {
        self.established
            .get(&cookies)
            .map(|e| e.sa.keys.encryption_key())
    }

    /// The earliest deadline. O(log n).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.pending_timers.earliest(),
            self.established_timers.earliest(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs every timer due at `now`.
    /// Only the exchanges and SAs whose deadline has come are visited.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_timers(now);
        self.rearm_changed();
    }

    fn run_timers(&mut self, now: Instant) {
        // Expired or exhausted exchanges are forgotten; due retransmissions go out again.
        let mut keys = Vec::new();
        while let Some(key) = self.pending_timers.pop_due(&now) {
            // Re-armed afterwards (or forgotten), whatever its timers did.
            self.pending.touch(key);
            keys.push(key);
        }
        for key in keys {
            #[cfg(test)]
            {
                self.timer_visits += 1;
            }
            let Some(p) = self.pending.get_mut(&key) else {
                continue;
            };
            if p.expires <= now
                || (p.resend_at.is_some_and(|t| t <= now)
                    && p.resends >= self.config.max_retransmits)
            {
                let peer = p.path.remote;
                let unanswered = matches!(p.state, Half::InitSent(_));
                let replaces = p.replaces;
                self.pending.remove(&key);
                self.events.push_back(Event::Refused {
                    peer,
                    refusal: Refusal::Unexpected,
                });
                // A rekey of an expired SA that the peer never answered: nobody is there to
                // use the ESP SAs it still holds.
                if let Some(old) = replaces
                    && unanswered
                    && self.established.get(&old).is_some_and(|e| e.expired)
                {
                    self.drop_sa(old, DownReason::DeadPeer);
                }
                continue;
            }
            if p.resend_at.is_some_and(|t| t <= now) {
                p.resends += 1;
                p.resend_at = Some(now + self.config.retransmit * (1 << p.resends.min(2)));
                let (path, out) = (p.path, p.last_out.clone());
                self.send(path, &out);
            }
        }
        let mut keys = Vec::new();
        while let Some(key) = self.established_timers.pop_due(&now) {
            self.established.touch(key);
            keys.push(key);
        }
        let mut buf = [0u8; MAX_MESSAGE];
        for key in keys {
            #[cfg(test)]
            {
                self.timer_visits += 1;
            }
            let Some(e) = self.established.get_mut(&key) else {
                continue;
            };
            if e.expires <= now && !e.expired {
                if e.children.is_empty() {
                    self.drop_sa(key, DownReason::Expired);
                    continue;
                }
                e.expired = true;
                e.quick.clear();
                e.dpd_probe = None;
            }
            // Expired ESP pairs go (the peer is told); pairs we initiated are replaced first.
            let (expired, kept): (Vec<Child>, Vec<Child>) =
                e.children.iter().partition(|c| c.expires <= now);
            e.children = kept;
            let mut rekey_child = false;
            let zombie = e.expired;
            for c in e.children.iter_mut().filter(|_| !zombie) {
                if c.rekey_at.is_some_and(|t| t <= now) {
                    // Tried again after an exchange timeout if the first attempt fails.
                    c.rekey_at =
                        Some(now + self.config.exchange_timeout).filter(|t| *t < c.expires);
                    rekey_child = true;
                }
            }
            let rekey_phase1 = e.rekey_at.is_some_and(|t| t <= now);
            if rekey_phase1 {
                e.rekey_at = Some(now + self.config.exchange_timeout);
            }
            if !expired.is_empty() {
                let spis: Vec<u32> = expired.iter().map(|c| c.inbound).collect();
                if let Ok(n) =
                    informational::write_delete(&e.sa, Deleted::Esp(&spis), &mut self.rng, &mut buf)
                {
                    let (path, out) = (e.path, buf[..n].to_vec());
                    self.send(path, &out);
                }
                for c in expired {
                    self.spis.remove(&c.inbound);
                    self.events.push_back(Event::ChildSaDown {
                        inbound_spi: c.inbound,
                        outbound_spi: c.outbound,
                    });
                }
            }
            if rekey_child {
                let _ = self.start_quick(now, key);
            }
            if rekey_phase1
                && self.successor(key).is_none()
                && !self.pending.values().any(|p| p.replaces == Some(key))
            {
                let path = self.established.get(&key).map(|e| e.path);
                if let Some(path) = path {
                    let _ = self.start_main_mode(now, path, Some(key));
                }
            }
            let Some(e) = self.established.get_mut(&key) else {
                continue;
            };
            if e.expired {
                if e.children.is_empty() {
                    self.drop_sa(key, DownReason::Expired);
                }
                continue;
            }
            let mut resend = Vec::new();
            e.quick.retain(|_, q| {
                if q.expires <= now {
                    return false;
                }
                if q.resend_at.is_some_and(|t| t <= now) {
                    if q.resends >= self.config.max_retransmits {
                        return false;
                    }
                    q.resends += 1;
                    q.resend_at = Some(now + self.config.retransmit * (1 << q.resends.min(2)));
                    resend.push(q.last_out.clone());
                }
                true
            });
            release_if_empty(&mut e.quick);
            let path = e.path;
            for m in resend {
                self.send(path, &m);
            }
            let Some(interval) = self.config.dpd_interval else {
                continue;
            };
            let Some(e) = self.established.get_mut(&key) else {
                continue;
            };
            let retry = (self.config.dpd_timeout / 4).max(Duration::from_secs(1));
            match e.dpd_probe {
                Some((first, _)) if now >= first + self.config.dpd_timeout => {
                    self.drop_sa(key, DownReason::DeadPeer);
                }
                Some((first, again)) if now >= again => {
                    // RFC 3706 §5.5: repeat R-U-THERE (same sequence number) until the timeout.
                    e.dpd_probe = Some((first, now + retry));
                    if let Ok(n) =
                        informational::write_dpd(&e.sa, false, e.dpd_seq, &mut self.rng, &mut buf)
                    {
                        let out = buf[..n].to_vec();
                        self.send(path, &out);
                    }
                }
                None if now >= e.last_heard + interval => {
                    e.dpd_seq = e.dpd_seq.wrapping_add(1);
                    e.dpd_probe = Some((now, now + retry));
                    let seq = e.dpd_seq;
                    if let Ok(n) =
                        informational::write_dpd(&e.sa, false, seq, &mut self.rng, &mut buf)
                    {
                        let out = buf[..n].to_vec();
                        self.send(path, &out);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Frees the node an emptied map keeps (a `BTreeMap` holds on to its root when its last entry
/// goes): an established SA's idle Quick Mode table would otherwise pin a kilobyte.
fn release_if_empty<K, V>(map: &mut BTreeMap<K, V>) {
    if map.is_empty() {
        *map = BTreeMap::new();
    }
}

/// A Notify in the clear, answering message 1 (no keys exist yet, RFC 2408 §5.2).
fn write_clear_notify(cky_i: Cookie, kind: NotifyType, buf: &mut [u8]) -> Option<usize> {
    let mut m = MessageWriter::new(
        buf,
        cky_i,
        Cookie::default(),
        ExchangeType::INFORMATIONAL,
        0,
        MessageId(0),
    )
    .ok()?;
    m.payload(PayloadType::NOTIFY, |w| {
        w.put_u32(DOI_IPSEC)?;
        w.put_slice(&[ProtocolId::ISAKMP.0, 0])?;
        w.put_u16(kind.0)
    })
    .ok()?;
    m.finish().ok().map(|b| b.len())
}

mod offload;
#[cfg(test)]
mod tests;
mod tracked;
