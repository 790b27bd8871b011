//! LCP option negotiation (RFC 1661 §6, RFC 1994 §3, RFC 2759 §2): MRU, ACCM, authentication
//! protocol, magic number, PFC and ACFC.
//!
//! | option | type | we request | peer requests |
//! |---|---|---|---|
//! | MRU | 1 | our MRU | accepted if ≥ 128, else Nak'd up |
//! | ACCM | 2 | – | accepted and ignored (L2TP has no async framing, RFC 2661 §5.1 of RFC 1662) |
//! | Authentication-Protocol | 3 | server: preferred method | client: accepted if allowed, else Nak'd to ours; server: rejected |
//! | Magic-Number | 5 | random | Nak'd when zero or equal to ours (loop-back) |
//! | PFC / ACFC | 7 / 8 | – | accepted (we parse both forms always) |
//! | anything else | | – | Configure-Reject |

use crate::auth::Method;
use crate::fsm::{Negotiator, Reply, Unacceptable, write_be_option};
use crate::wire::{Options, Protocol, RawOption, write_option};

/// LCP option types (RFC 1661 §6 and the IANA LCP option registry).
pub mod option {
    /// Maximum-Receive-Unit.
    pub const MRU: u8 = 1;
    /// Async-Control-Character-Map (RFC 1662 §7.1).
    pub const ACCM: u8 = 2;
    /// Authentication-Protocol.
    pub const AUTH: u8 = 3;
    /// Quality-Protocol.
    pub const QUALITY: u8 = 4;
    /// Magic-Number.
    pub const MAGIC: u8 = 5;
    /// Protocol-Field-Compression.
    pub const PFC: u8 = 7;
    /// Address-and-Control-Field-Compression.
    pub const ACFC: u8 = 8;
}

/// The MRU a peer gets when it does not negotiate one (RFC 1661 §6.1).
pub const DEFAULT_MRU: u16 = 1500;
/// Smallest MRU we accept from a peer; below it we Nak (RFC 1661 §6.1 leaves the floor to us).
pub const MIN_MRU: u16 = 128;

/// Which end of the link this LCP is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LcpRole {
    /// Authenticator: requests one of `methods`, in preference order.
    Server { methods: Vec<Method> },
    /// Peer: accepts any of `methods`; Naks others to the first of them.
    Client { methods: Vec<Method> },
}

/// LCP judgement for one session.
#[derive(Debug)]
pub(crate) struct Lcp {
    role: LcpRole,
    /// The MRU we want to receive.
    mru: u16,
    /// What we put in our next request.
    request_mru: Option<u16>,
    auth_index: usize,
    /// As a client, whether we already asked the authenticator for our favourite method.
    auth_preference_asked: bool,
    request_auth: bool,
    magic: u32,
    request_magic: bool,
    /// A small generator for fresh magic numbers. Magic numbers only detect looped-back links
    /// (RFC 1661 §6.4); they protect nothing, so a seeded mixer is enough.
    magic_state: u64,
    /// Consecutive requests that carried our own magic number.
    loop_suspicions: u8,
    pending: Peer,
    peer: Peer,
}

/// What the peer asked for and we acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) mru: u16,
    pub(crate) magic: u32,
    pub(crate) auth: Option<Method>,
}

impl Default for Peer {
    fn default() -> Self {
        Self {
            mru: DEFAULT_MRU,
            magic: 0,
            auth: None,
        }
    }
}

/// Consecutive loop-back suspicions after which the link is declared looped back.
const LOOPBACK_LIMIT: u8 = 5;

impl Lcp {
    pub(crate) fn new(role: LcpRole, mru: u16, seed: u64) -> Self {
        let mut lcp = Self {
            role,
            mru,
            request_mru: None,
            auth_index: 0,
            auth_preference_asked: false,
            request_auth: false,
            magic: 0,
            request_magic: true,
            magic_state: seed,
            loop_suspicions: 0,
            pending: Peer::default(),
            peer: Peer::default(),
        };
        lcp.reset();
        lcp
    }

    fn fresh_magic(&mut self) -> u32 {
        loop {
            // splitmix64
            self.magic_state = self.magic_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.magic_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let magic = u32::try_from((z ^ (z >> 31)) >> 32).unwrap_or(1);
            if magic != 0 && magic != self.magic {
                return magic;
            }
        }
    }

    /// The method the server requested and the peer acknowledged, or the one the client
    /// agreed to use.
    pub(crate) fn auth_method(&self) -> Option<Method> {
        match &self.role {
            LcpRole::Server { methods } => self
                .request_auth
                .then(|| methods.get(self.auth_index).copied())
                .flatten(),
            LcpRole::Client { .. } => self.peer.auth,
        }
    }

    /// Our current magic number (0 when the peer rejected the option).
    pub(crate) const fn magic(&self) -> u32 {
        if self.request_magic { self.magic } else { 0 }
    }

    /// What the peer negotiated.
    pub(crate) const fn peer(&self) -> Peer {
        self.peer
    }

    /// Whether the last magic number the peer sent collided with ours.
    pub(crate) const fn loop_suspected(&self) -> bool {
        self.loop_suspicions > 0
    }

    /// Whether repeated magic-number collisions show the link is looped back.
    pub(crate) const fn looped_back(&self) -> bool {
        self.loop_suspicions >= LOOPBACK_LIMIT
    }

    fn review_option(&mut self, opt: RawOption<'_>, reply: &mut Reply) {
        match (opt.kind, opt.data) {
            (option::MRU, &[a, b]) => {
                let mru = u16::from_be_bytes([a, b]);
                if mru < MIN_MRU {
                    reply.nak(opt.raw, option::MRU, &MIN_MRU.to_be_bytes());
                } else {
                    self.pending.mru = mru;
                }
            }
            // RFC 1662 §7.1: ACCM only matters on asynchronous links; L2TP carries no async
            // framing, so any value is acknowledged and ignored.
            (option::ACCM, &[_, _, _, _]) | (option::PFC | option::ACFC, &[]) => {}
            (option::AUTH, data) => match &self.role {
                // We authenticate the peer; we do not authenticate ourselves to it.
                LcpRole::Server { .. } => reply.reject(opt.raw),
                LcpRole::Client { methods } => match Method::from_option_data(data) {
                    // An acceptable method that is not our favourite: ask once for the
                    // favourite (as Windows does: MS-CHAPv2 over CHAP-MD5), then take what the
                    // authenticator insists on.
                    Some(m)
                        if methods.contains(&m)
                            && methods.first() != Some(&m)
                            && !self.auth_preference_asked =>
                    {
                        self.auth_preference_asked = true;
                        if let Some(first) = methods.first() {
                            reply.nak(opt.raw, option::AUTH, first.option_data());
                        }
                    }
                    Some(m) if methods.contains(&m) => self.pending.auth = Some(m),
                    // RFC 1661 §6.2: Nak with the protocol we would rather use.
                    _ => match methods.first() {
                        Some(&m) => reply.nak(opt.raw, option::AUTH, m.option_data()),
                        None => reply.reject(opt.raw),
                    },
                },
            },
            (option::MAGIC, &[a, b, c, d]) => {
                let magic = u32::from_be_bytes([a, b, c, d]);
                if magic == 0 || (self.request_magic && magic == self.magic) {
                    // RFC 1661 §6.4: equal magic numbers suggest a looped-back link; both
                    // sides pick new numbers.
                    if magic != 0 {
                        self.loop_suspicions = self.loop_suspicions.saturating_add(1);
                        self.magic = self.fresh_magic();
                    }
                    let suggestion = self.fresh_magic();
                    reply.nak(opt.raw, option::MAGIC, &suggestion.to_be_bytes());
                } else {
                    self.loop_suspicions = 0;
                    self.pending.magic = magic;
                }
            }
            // Unknown options, and known ones with a wrong length (RFC 1661 §5.4).
            _ => reply.reject(opt.raw),
        }
    }
}

impl Negotiator for Lcp {
    const PROTOCOL: Protocol = Protocol::LCP;

    fn write_request(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        if let Some(mru) = self.request_mru {
            write_be_option(w, option::MRU, mru.to_be_bytes())?;
        }
        if let (true, LcpRole::Server { methods }) = (self.request_auth, &self.role)
            && let Some(m) = methods.get(self.auth_index)
        {
            write_option(w, option::AUTH, m.option_data())?;
        }
        if self.request_magic {
            write_be_option(w, option::MAGIC, self.magic.to_be_bytes())?;
        }
        Ok(())
    }

    fn review(&mut self, request: Options<'_>, reply: &mut Reply) {
        self.pending = Peer::default();
        for opt in request.flatten() {
            self.review_option(opt, reply);
        }
    }

    fn commit_peer(&mut self) {
        self.peer = self.pending;
    }

    fn apply_nak(&mut self, suggested: Options<'_>) -> Result<(), Unacceptable> {
        for opt in suggested.flatten() {
            match (opt.kind, opt.data) {
                (option::MRU, &[a, b]) => {
                    let mru = u16::from_be_bytes([a, b]);
                    self.request_mru = (MIN_MRU..=self.mru.max(DEFAULT_MRU))
                        .contains(&mru)
                        .then_some(mru);
                }
                (option::AUTH, data) => {
                    let LcpRole::Server { methods } = &self.role else {
                        continue;
                    };
                    // RFC 1994 §3: switch to the peer's suggestion if we allow it, else to
                    // our next choice; with none left the link cannot be authenticated.
                    self.auth_index = match Method::from_option_data(data)
                        .and_then(|m| methods.iter().position(|&x| x == m))
                    {
                        Some(at) => at,
                        None if self.auth_index + 1 < methods.len() => self.auth_index + 1,
                        // Nothing else to offer: ask again for the last one, which the peer
                        // may accept after all (it Naks at most Max-Failure times).
                        None => self.auth_index,
                    };
                }
                (option::MAGIC, _) => {
                    self.loop_suspicions = self.loop_suspicions.saturating_add(1);
                    self.magic = self.fresh_magic();
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_reject(&mut self, rejected: Options<'_>) -> Result<(), Unacceptable> {
        for opt in rejected.flatten() {
            match opt.kind {
                option::MRU => self.request_mru = None,
                // The authenticator must authenticate; a peer refusing that cannot connect.
                option::AUTH if matches!(self.role, LcpRole::Server { .. }) => {
                    return Err(Unacceptable);
                }
                option::MAGIC => self.request_magic = false,
                _ => {}
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.request_mru = Some(self.mru);
        self.auth_index = 0;
        self.request_auth =
            matches!(&self.role, LcpRole::Server { methods } if !methods.is_empty());
        self.request_magic = true;
        if self.magic == 0 {
            self.magic = self.fresh_magic();
        }
        // `pending` belongs to the request under review, which may be acknowledged right after
        // this reset (Opened + RCR+: tld, scr, sca).
        self.peer = Peer::default();
    }
}
