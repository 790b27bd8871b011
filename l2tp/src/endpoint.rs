//! The L2TP endpoint: every tunnel of one UDP port, demultiplexed by our Tunnel ID and the
//! peer's transport address; tunnel and session ID allocation; resource limits (RFC 2661 §3.1,
//! §5.1, §7).
//!
//! The LNS side accepts SCCRQs from anyone; [`Endpoint::connect`] opens a tunnel as LAC and
//! places a call over it (our own client).
//!
//! Drive it with [`Endpoint::handle_datagram`] and [`Endpoint::handle_timeout`]; after each call
//! drain [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`], then re-arm the timer from
//! [`Endpoint::poll_timeout`].

use crate::config::Config;
use crate::event::{Event, TunnelDownReason};
use crate::tunnel::{CallError, Discard, MAX_CONTROL_LEN, Role, Tunnel, TunnelState, random_u16};
use crate::wire::message::{CdnResult, ErrorCode, ResultCode, ResultError, StopCcn, StopCcnResult};
use crate::wire::{self, AttributeType, Avps, ControlMessage, MessageType, Packet, hidden};
use crate::{Seq, SessionId, TunnelId};
use core::cmp::Ordering;
use core::ops::Range;
use rand_core::CryptoRng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use timer::{ReadyQueue, TimerQueue};

/// Headroom [`DataPath::encapsulate`] needs before the PPP frame: the 6-byte data header
/// (T, L, S, O clear; RFC 2661 §3.1).
pub const DATA_HEADROOM: usize = wire::data_header_len(None);

/// What a datagram turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A control message, consumed (drain the outputs).
    Control,
    /// A data message of an established call: the PPP frame is `frame` within the datagram,
    /// which was neither copied nor moved.
    Data(DataMessage),
}

/// A data message (RFC 2661 §3.1) routed to its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMessage {
    /// Our tunnel ID.
    pub tunnel: TunnelId,
    /// Our session ID.
    pub session: SessionId,
    /// The PPP frame's bytes within the datagram.
    pub frame: Range<usize>,
}

/// A datagram [`Endpoint::poll_transmit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes.
    pub peer: SocketAddr,
    /// Its length at the start of the buffer.
    pub len: usize,
}

/// Where the data messages of one established call go; obtain once per call with
/// [`Endpoint::data_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPath {
    /// The peer's transport address.
    pub peer: SocketAddr,
    /// The peer's tunnel ID.
    pub peer_tunnel: TunnelId,
    /// The peer's session ID.
    pub peer_session: SessionId,
}

impl DataPath {
    /// Writes the data header into the [`DATA_HEADROOM`] bytes before `buf[frame]` and returns
    /// the range of the L2TP message. The frame is not moved.
    ///
    /// # Errors
    /// [`codec::NoSpace`] when `frame` is not inside `buf` or the headroom is too small.
    pub fn encapsulate(
        &self,
        buf: &mut [u8],
        frame: Range<usize>,
    ) -> Result<Range<usize>, codec::NoSpace> {
        wire::write_data_header(buf, frame, self.peer_tunnel, self.peer_session, None)
    }
}

/// Why [`Endpoint::connect`] did not open a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// `max_tunnels` or `max_tunnels_per_address` reached, or no tunnel ID was free.
    #[error("too many tunnels")]
    TooManyTunnels,
}

/// Endpoint counters, for the driver's rate-limited summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to [`Endpoint::handle_datagram`].
    pub datagrams: u64,
    /// Datagrams discarded.
    pub discarded: u64,
    /// SCCRQs refused with StopCCN at a tunnel limit.
    pub tunnels_refused: u64,
    /// SCCRQs ignored because our own SCCRQ to the peer won the tie breaker.
    pub tie_breaks_won: u64,
    /// Stateless replies dropped at their queue bound.
    pub replies_dropped: u64,
    /// Events dropped at their queue bound.
    pub events_dropped: u64,
}

/// Every tunnel of one L2TP port. See the module docs for the contract.
#[derive(Debug)]
pub struct Endpoint<R> {
    config: Arc<Config>,
    rng: R,
    /// By our tunnel ID; bounded by `limits.max_tunnels`.
    /// Boxed: B-tree nodes hold eleven values whether used or not.
    tunnels: BTreeMap<u16, Box<Tunnel>>,
    /// LNS tunnels by the peer's address and Assigned Tunnel ID, to recognise a retransmitted
    /// SCCRQ. At most one entry per tunnel.
    by_sccrq: BTreeMap<(SocketAddr, u16), u16>,
    /// Live tunnels per peer IP address; bounded by `limits.max_tunnels_per_address`.
    per_address: BTreeMap<IpAddr, usize>,
    /// Our LAC tunnels (those we opened) by peer IP address, for the Tie Breaker check of an
    /// arriving SCCRQ: O(log n) instead of a scan of every tunnel. One entry per LAC tunnel.
    lac_by_address: BTreeSet<(IpAddr, u16)>,
    /// StopCCNs to SCCRQs we refused without creating state; bounded by
    /// `limits.max_stateless_replies`.
    stateless: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Bounded by `limits.max_events`.
    events: VecDeque<Event>,
    /// Each tunnel's next deadline, so that timers cost O(tunnels due), not a scan.
    timers: TimerQueue<u16, Instant>,
    /// Tunnels that were given input or ran a timer since they last had nothing to send; what
    /// [`Endpoint::poll_transmit`] asks, oldest first.
    sending: ReadyQueue<u16>,
    /// Tunnels whose timers ran (a measure of the timer path's cost, for tests).
    #[cfg(test)]
    pub(crate) timer_visits: u64,
    stats: Stats,
}

impl<R: CryptoRng> Endpoint<R> {
    /// An endpoint with no tunnels. `rng` draws tunnel and session IDs, challenges and tie
    /// breakers.
    #[must_use]
    pub fn new(config: Arc<Config>, rng: R) -> Self {
        Self {
            config,
            rng,
            tunnels: BTreeMap::new(),
            by_sccrq: BTreeMap::new(),
            per_address: BTreeMap::new(),
            lac_by_address: BTreeSet::new(),
            stateless: VecDeque::new(),
            events: VecDeque::new(),
            timers: TimerQueue::new(),
            sending: ReadyQueue::new(),
            #[cfg(test)]
            timer_visits: 0,
            stats: Stats::default(),
        }
    }

    /// Counters.
    #[must_use]
    pub const fn stats(&self) -> Stats {
        self.stats
    }

    /// Tunnels held, closing ones included.
    #[must_use]
    pub fn tunnel_count(&self) -> usize {
        self.tunnels.len()
    }

    /// One tunnel, for inspection.
    #[must_use]
    pub fn tunnel(&self, id: TunnelId) -> Option<&Tunnel> {
        self.tunnels.get(&id.0).map(|t| &**t)
    }

    /// The tunnels a peer opened to us (LNS side), without a scan of every tunnel.
    pub fn tunnels_of(&self, peer: SocketAddr) -> impl Iterator<Item = TunnelId> + '_ {
        self.by_sccrq
            .range((peer, 0)..=(peer, u16::MAX))
            .map(|(_, id)| TunnelId(*id))
    }

    /// Whether the endpoint holds nothing: no tunnel, no pending reply, no pending event.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.tunnels.is_empty() && self.stateless.is_empty() && self.events.is_empty()
    }

    /// Feeds one UDP payload received from `peer`. Control messages are consumed; a data
    /// message of an established call comes back as [`Received::Data`], pointing into
    /// `datagram`. Hidden AVPs are revealed in place.
    ///
    /// # Errors
    /// [`Discard`]: the datagram was dropped and nothing changed.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Received, Discard> {
        self.stats.datagrams += 1;
        let result = self.route(now, peer, datagram);
        if result.is_err() {
            self.stats.discarded += 1;
        }
        result
    }

    fn route(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Received, Discard> {
        let packet = Packet::new_checked(&*datagram)?;
        let id = packet.tunnel_id();
        if !packet.is_control() {
            let tunnel = self.owned(id, peer)?;
            let session = packet.session_id();
            tunnel.check_data(session)?;
            return Ok(Received::Data(DataMessage {
                tunnel: id,
                session,
                frame: packet.payload_range(),
            }));
        }
        if id.0 == 0 {
            return self.handle_sccrq(now, peer, datagram);
        }
        self.owned(id, peer)?;
        let tunnel = self
            .tunnels
            .get_mut(&id.0)
            .ok_or(Discard::UnknownTunnel(id))?;
        let result = tunnel.handle_datagram(now, datagram, &mut self.rng);
        self.settle(id.0);
        result.map(|()| Received::Control)
    }

    /// The tunnel `id`, if it belongs to `peer`: clients behind one NAT share an address but
    /// never a tunnel.
    fn owned(&self, id: TunnelId, peer: SocketAddr) -> Result<&Tunnel, Discard> {
        let tunnel = self.tunnels.get(&id.0).ok_or(Discard::UnknownTunnel(id))?;
        if tunnel.peer() != peer {
            return Err(Discard::WrongPeer);
        }
        Ok(tunnel)
    }

    /// Header tunnel 0: an SCCRQ (RFC 2661 §3.1), new or retransmitted.
    fn handle_sccrq(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Received, Discard> {
        let packet = Packet::new_checked(&*datagram)?;
        let (ns, nr) = packet.sequence().ok_or(Discard::NotSccrq)?;
        // RFC 2661 §5.8: the SCCRQ opens the channel with Ns 0.
        if ns != Seq(0) || packet.is_zlb() {
            return Err(Discard::NotSccrq);
        }
        let config = Arc::clone(&self.config);
        let mut revealed;
        let mut body = packet.payload();
        if let Some(secret) = &config.secret {
            // Parse a revealed copy; the tunnel reveals the datagram itself later.
            revealed = body.to_vec();
            let len = hidden::reveal_body(&mut revealed, secret.expose())
                .map_err(|_| Discard::NotSccrq)?;
            body = revealed.get(..len).unwrap_or_default();
        }
        let sccrq = match ControlMessage::parse(Avps::new(body)) {
            Ok(ControlMessage::Sccrq(sccrq)) => sccrq,
            Ok(_) => return Err(Discard::NotSccrq),
            Err(error) => {
                let code = match error {
                    wire::MessageError::UnknownMandatory { .. } => ErrorCode::UNKNOWN_MANDATORY_AVP,
                    _ => ErrorCode::BAD_VALUE,
                };
                let peer_tunnel = peek_u16(body, AttributeType::ASSIGNED_TUNNEL_ID);
                return match (ControlMessage::peek_type(body), peer_tunnel) {
                    // RFC 2661 §4.1: a broken SCCRQ clears the tunnel it asks for; we answer
                    // without creating one.
                    (Some(MessageType::SCCRQ), Some(peer_tunnel)) if peer_tunnel != 0 => {
                        self.refuse(peer, peer_tunnel, StopCcnResult::GENERAL_ERROR, code);
                        Ok(Received::Control)
                    }
                    _ => Err(Discard::NotSccrq),
                };
            }
        };
        let peer_tunnel = sccrq.assigned_tunnel_id.0;
        // RFC 2661 §4.4.3: the Assigned Tunnel ID is non-zero; 0 could not be answered.
        if peer_tunnel == 0 {
            return Err(Discard::NotSccrq);
        }
        if let Some(&local) = self.by_sccrq.get(&(peer, peer_tunnel)) {
            match self.tunnels.get_mut(&local) {
                Some(tunnel) if tunnel.owns_sccrq_retransmissions() => {
                    tunnel.handle_sccrq_again(now, nr);
                    self.settle(local);
                    return Ok(Received::Control);
                }
                // A new control connection that reuses the ID of a finished one.
                _ => {
                    self.by_sccrq.remove(&(peer, peer_tunnel));
                }
            }
        }
        if let Some(theirs) = sccrq.tie_breaker {
            let ip = peer.ip();
            let ours = self
                .lac_by_address
                .range((ip, 0)..=(ip, u16::MAX))
                .find_map(|&(_, id)| {
                    let tb = self.tunnels.get(&id)?.pending_tie_breaker()?;
                    Some((id, tb))
                });
            if let Some((ours_id, ours)) = ours {
                // RFC 2661 §4.4.3: between two SCCRQs of the same pair the lower Tie Breaker
                // wins; equal values make both sides give up.
                match theirs.cmp(&ours) {
                    Ordering::Greater => {
                        self.stats.tie_breaks_won += 1;
                        return Ok(Received::Control);
                    }
                    Ordering::Less | Ordering::Equal => {
                        if let Some(tunnel) = self.tunnels.get_mut(&ours_id) {
                            tunnel.abandon(TunnelDownReason::TieBreakerLost);
                        }
                        self.settle(ours_id);
                        if theirs == ours {
                            return Ok(Received::Control);
                        }
                    }
                }
            }
        }
        let limits = config.limits;
        let from_address = self.per_address.get(&peer.ip()).copied().unwrap_or(0);
        let local = if self.tunnels.len() < limits.max_tunnels
            && from_address < limits.max_tunnels_per_address
        {
            self.allocate_tunnel()
        } else {
            None
        };
        let Some(local) = local else {
            // Over a limit: refuse without state (RFC 2661 §4.4.2, error 4).
            self.stats.tunnels_refused += 1;
            self.refuse(
                peer,
                peer_tunnel,
                StopCcnResult::GENERAL_ERROR,
                ErrorCode::INSUFFICIENT_RESOURCES,
            );
            return Ok(Received::Control);
        };
        let mut tunnel = Tunnel::accept(config, now, peer, local);
        tunnel.handle_datagram(now, datagram, &mut self.rng)?;
        self.by_sccrq.insert((peer, peer_tunnel), local.0);
        self.insert(tunnel);
        self.settle(local.0);
        Ok(Received::Control)
    }

    /// Queues a StopCCN answering an SCCRQ, keeping no state.
    fn refuse(
        &mut self,
        peer: SocketAddr,
        peer_tunnel: u16,
        result: StopCcnResult,
        code: ErrorCode,
    ) {
        if self.stateless.len() >= self.config.limits.max_stateless_replies {
            self.stats.replies_dropped += 1;
            return;
        }
        let stop = StopCcn {
            assigned_tunnel_id: TunnelId(0),
            result_code: ResultCode {
                result: result.0,
                error: Some(ResultError { code, message: &[] }),
            },
        };
        let mut buf = vec![0u8; MAX_CONTROL_LEN];
        // Ns 0, Nr 1: acknowledges the SCCRQ.
        let written = wire::write_control(
            &mut buf,
            TunnelId(peer_tunnel),
            SessionId(0),
            Seq(0),
            Seq(1),
            |w| ControlMessage::from(stop).emit(w),
        );
        if let Ok(len) = written {
            buf.truncate(len);
            self.stateless.push_back((peer, buf));
        }
    }

    /// A random non-zero tunnel ID not in use.
    fn allocate_tunnel(&mut self) -> Option<TunnelId> {
        (0..64)
            .map(|_| random_u16(&mut self.rng))
            .find(|id| *id != 0 && !self.tunnels.contains_key(id))
            .map(TunnelId)
    }

    fn insert(&mut self, tunnel: Tunnel) {
        *self.per_address.entry(tunnel.peer().ip()).or_insert(0) += 1;
        let id = tunnel.local_id().0;
        if tunnel.role() == Role::Lac {
            self.lac_by_address.insert((tunnel.peer().ip(), id));
        }
        self.timers.set(id, tunnel.poll_timeout());
        self.sending.push(id);
        self.tunnels.insert(id, Box::new(tunnel));
    }

    /// Moves a tunnel's events out and forgets it once closed.
    fn settle(&mut self, id: u16) {
        let Some(tunnel) = self.tunnels.get_mut(&id) else {
            return;
        };
        while let Some(event) = tunnel.poll_event() {
            if self.events.len() < self.config.limits.max_events {
                self.events.push_back(event);
            } else {
                self.stats.events_dropped += 1;
            }
        }
        if !tunnel.is_closed() {
            // Anything may have changed: the deadline is read again, and the tunnel asked for
            // output at the next poll.
            self.timers.set(id, tunnel.poll_timeout());
            self.sending.push(id);
            return;
        }
        let peer = tunnel.peer();
        let key = (peer, tunnel.peer_id().0);
        self.lac_by_address.remove(&(peer.ip(), id));
        self.tunnels.remove(&id);
        self.timers.remove(id);
        if self.by_sccrq.get(&key) == Some(&id) {
            self.by_sccrq.remove(&key);
        }
        if let Some(count) = self.per_address.get_mut(&peer.ip()) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_address.remove(&peer.ip());
            }
        }
    }

    /// Runs every timer due at `now`. Harmless when nothing is due.
    /// Only the tunnels whose deadline has come are visited.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Taken out first: a tunnel re-armed at or before `now` runs at the next call.
        let mut due = Vec::new();
        while let Some(id) = self.timers.pop_due(&now) {
            due.push(id);
        }
        for id in due {
            #[cfg(test)]
            {
                self.timer_visits += 1;
            }
            if let Some(tunnel) = self.tunnels.get_mut(&id) {
                tunnel.handle_timeout(now, &mut self.rng);
            }
            self.settle(id);
        }
    }

    /// The earliest instant at which [`Endpoint::handle_timeout`] must run. O(log n).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    /// Writes the next datagram into `buf` (at least [`MAX_CONTROL_LEN`] bytes) and says where
    /// it goes.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some((peer, bytes)) = self.stateless.pop_front() {
            if let Some(dst) = buf.get_mut(..bytes.len()) {
                dst.copy_from_slice(&bytes);
                return Some(Transmit {
                    peer,
                    len: bytes.len(),
                });
            }
        }
        // Only tunnels that had input or a timer since they last ran dry are asked.
        while let Some(id) = self.sending.front() {
            if let Some(t) = self.tunnels.get_mut(&id)
                && let Some(len) = t.poll_transmit(now, buf)
            {
                // Sending arms the retransmission timer.
                let (peer, at) = (t.peer(), t.poll_timeout());
                self.timers.set(id, at);
                return Some(Transmit { peer, len });
            }
            self.sending.pop();
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// LAC: opens a tunnel to `peer` (SCCRQ) and places one incoming call in it; the ICRQ
    /// follows once the tunnel is up. [`Event::TunnelUp`] and [`Event::SessionUp`] report
    /// progress.
    ///
    /// # Errors
    /// [`ConnectError::TooManyTunnels`] at a tunnel limit.
    pub fn connect(
        &mut self,
        now: Instant,
        peer: SocketAddr,
    ) -> Result<(TunnelId, SessionId), ConnectError> {
        let limits = self.config.limits;
        let from_address = self.per_address.get(&peer.ip()).copied().unwrap_or(0);
        if self.tunnels.len() >= limits.max_tunnels
            || from_address >= limits.max_tunnels_per_address
        {
            return Err(ConnectError::TooManyTunnels);
        }
        let local = self.allocate_tunnel().ok_or(ConnectError::TooManyTunnels)?;
        let mut tunnel = Tunnel::connect(Arc::clone(&self.config), now, peer, local, &mut self.rng);
        let session = tunnel
            .place_call(now, &mut self.rng)
            .map_err(|_| ConnectError::TooManyTunnels)?;
        self.insert(tunnel);
        Ok((local, session))
    }

    /// LAC: places another call in a tunnel we opened.
    ///
    /// # Errors
    /// [`CallError`].
    pub fn place_call(&mut self, now: Instant, tunnel: TunnelId) -> Result<SessionId, CallError> {
        let t = self
            .tunnels
            .get_mut(&tunnel.0)
            .ok_or(CallError::TunnelNotUsable)?;
        let result = t.place_call(now, &mut self.rng);
        self.settle(tunnel.0);
        result
    }

    /// Ends a call with CDN carrying `result` (and `error`).
    ///
    /// # Errors
    /// [`CallError::UnknownSession`] or [`CallError::QueueFull`] (nothing changed then).
    pub fn close_session(
        &mut self,
        now: Instant,
        tunnel: TunnelId,
        session: SessionId,
        result: CdnResult,
        error: Option<ErrorCode>,
    ) -> Result<(), CallError> {
        let t = self
            .tunnels
            .get_mut(&tunnel.0)
            .ok_or(CallError::UnknownSession)?;
        let outcome = t.close_session(now, session, result, error);
        self.settle(tunnel.0);
        outcome
    }

    /// Ends a tunnel with StopCCN carrying `result` (and `error`); every call in it goes down.
    /// The tunnel is forgotten after the hold period.
    ///
    /// # Errors
    /// [`CallError::TunnelNotUsable`] when there is no such tunnel.
    pub fn close_tunnel(
        &mut self,
        now: Instant,
        tunnel: TunnelId,
        result: StopCcnResult,
        error: Option<ErrorCode>,
    ) -> Result<(), CallError> {
        let t = self
            .tunnels
            .get_mut(&tunnel.0)
            .ok_or(CallError::TunnelNotUsable)?;
        t.close(now, result, error);
        self.settle(tunnel.0);
        Ok(())
    }

    /// Ends every tunnel with StopCCN (Shutting Down), for a clean stop.
    pub fn close_all(&mut self, now: Instant) {
        let ids: Vec<u16> = self.tunnels.keys().copied().collect();
        for id in ids {
            if let Some(tunnel) = self.tunnels.get_mut(&id) {
                tunnel.close(now, StopCcnResult::SHUTTING_DOWN, None);
            }
            self.settle(id);
        }
    }

    /// Where the data messages of an established call go.
    #[must_use]
    pub fn data_path(&self, tunnel: TunnelId, session: SessionId) -> Option<DataPath> {
        let t = self
            .tunnels
            .get(&tunnel.0)
            .filter(|t| t.state() == TunnelState::Established)?;
        Some(DataPath {
            peer: t.peer(),
            peer_tunnel: t.peer_id(),
            peer_session: t.peer_session(session)?,
        })
    }

    /// What must not change when a datagram is discarded (fuzzing and tests).
    #[cfg(any(test, fuzzing))]
    pub(crate) fn digest(&self) -> Vec<(u16, (TunnelState, Seq, usize, usize))> {
        self.tunnels
            .iter()
            .map(|(id, t)| (*id, t.digest()))
            .collect()
    }

    /// Stateless replies waiting (fuzzing and tests).
    #[cfg(any(test, fuzzing))]
    #[allow(dead_code, reason = "used by the fuzz body only")]
    pub(crate) fn pending_replies(&self) -> usize {
        self.stateless.len()
    }
}

/// The value of a plain two-octet IETF AVP of a body, if present.
fn peek_u16(body: &[u8], attribute: AttributeType) -> Option<u16> {
    Avps::new(body)
        .map_while(Result::ok)
        .find(|avp| avp.is_ietf() && !avp.hidden && avp.attribute == attribute)
        .and_then(|avp| <[u8; 2]>::try_from(avp.value).ok())
        .map(u16::from_be_bytes)
}

#[cfg(test)]
mod tests;
