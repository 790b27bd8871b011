//! The RADIUS client: requests in, datagrams and verdicts out, with retransmission, failover
//! across servers and Identifier allocation (RFC 2865 §2.5, §3; RFC 2866 §2; RFC 5080 §2.2).
//!
//! Drive it like every l2sec machine (STYLE.md §5): submit with [`Client::authenticate`] or
//! [`Client::account`], feed answers to [`Client::handle_datagram`] and timer expiries to
//! [`Client::handle_timeout`]; after each call drain [`Client::poll_transmit`] and
//! [`Client::poll_event`], then re-arm the timer from [`Client::poll_timeout`].

use crate::crypto::Secret;
use crate::reply::{self, Accept, Reject};
use crate::request::{
    AccessRequest, AccountingRequest, AcctSessionId, AcctSessionIds, NasIdentity, Query,
};
use crate::verify::{self, MessageAuthenticatorPolicy, VerifyError};
use crate::wire::{self, Authenticator, Code, Identifier, Packet, WriteError};
use rand_core::CryptoRng;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Identifiers per destination: the Identifier is one octet (RFC 2865 §3).
const IDENTIFIERS: usize = 256;

/// One RADIUS server: a secret and the addresses of its authentication and accounting ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// A name for logs.
    pub name: String,
    /// The shared secret.
    pub secret: Secret,
    /// Where Access-Requests go (port 1812), if this server authenticates.
    pub auth: Option<SocketAddr>,
    /// Where Accounting-Requests go (port 1813), if this server does accounting.
    pub acct: Option<SocketAddr>,
    /// Whether answers must carry Message-Authenticator (default: required).
    pub message_authenticator: MessageAuthenticatorPolicy,
}

/// Settings of a [`Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Servers in order of preference. A request goes to the first live one and moves down the
    /// list when a server does not answer.
    pub servers: Vec<ServerConfig>,
    /// NAS-IP-Address and NAS-Identifier of every request.
    pub nas: NasIdentity,
    /// How long to wait for an answer before retransmitting (default 3 s).
    pub timeout: Duration,
    /// Retransmissions to one server before moving to the next (default 2, so 3 sends).
    pub retries: u32,
    /// How long a server that let a request go unanswered is skipped (default 30 s). When
    /// every server is skipped, all are tried again.
    pub dead_time: Duration,
    /// Requests held at once, queued and in flight, plus events not yet polled (default
    /// 4096). A request beyond it is refused with [`SubmitError::Full`].
    pub max_requests: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            nas: NasIdentity::default(),
            timeout: Duration::from_secs(3),
            retries: 2,
            dead_time: Duration::from_secs(30),
            max_requests: 4096,
        }
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No server is configured.
    #[error("no RADIUS server configured")]
    NoServer,
    /// Two servers, or a server's two ports, share one address: answers could not be told apart.
    #[error("address {0} configured twice")]
    DuplicateAddress(SocketAddr),
    /// A zero timeout or a zero request limit.
    #[error("timeout and max_requests must be positive")]
    Zero,
}

/// Which kind of request, and so which port of the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Access-Request (RFC 2865).
    Authentication,
    /// Accounting-Request (RFC 2866).
    Accounting,
}

/// A server's position in [`Config::servers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerIndex(pub usize);

/// The handle of a submitted request; its event carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A datagram [`Client::poll_transmit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The server it is for.
    pub server: ServerIndex,
    /// Its address (the server's auth or acct port).
    pub to: SocketAddr,
    /// Octets written at the start of the buffer.
    pub len: usize,
}

/// What the client tells the LNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An Access-Request was accepted.
    Accepted {
        /// The request.
        request: RequestId,
        /// The server that answered.
        server: ServerIndex,
        /// What the server granted.
        accept: Box<Accept>,
    },
    /// An Access-Request was rejected, challenged, or accepted in a way we cannot use.
    Rejected {
        /// The request.
        request: RequestId,
        /// The server that answered.
        server: ServerIndex,
        /// Why, and what to tell the user.
        reject: Reject,
    },
    /// An Accounting-Request was acknowledged.
    AccountingDone {
        /// The request.
        request: RequestId,
        /// The server that answered.
        server: ServerIndex,
    },
    /// No server answered a request: every live server was tried with every retransmission.
    Timeout {
        /// The request.
        request: RequestId,
        /// Its kind.
        service: Service,
    },
    /// A server let a request go unanswered and is skipped for [`Config::dead_time`].
    ServerDead {
        /// The server.
        server: ServerIndex,
        /// The port that went silent.
        service: Service,
    },
    /// A server marked dead answered again.
    ServerAlive {
        /// The server.
        server: ServerIndex,
        /// The port that answered.
        service: Service,
    },
}

/// Why a request was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// No server has a port for this service.
    #[error("no RADIUS server configured for {0:?}")]
    NoServer(Service),
    /// [`Config::max_requests`] requests are held already.
    #[error("too many RADIUS requests pending")]
    Full,
    /// The request cannot be written (an attribute or the packet too long).
    #[error("request cannot be encoded: {0}")]
    Encode(WriteError),
}

/// Why an incoming datagram was dropped. Nothing changed apart from [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// Not a well-formed RADIUS packet.
    #[error("malformed: {0}")]
    Malformed(wire::Error),
    /// Not from a configured server address.
    #[error("not from a configured server")]
    UnknownSource,
    /// A code that does not answer what we send to that port.
    #[error("unexpected code {0}")]
    UnexpectedCode(Code),
    /// No request in flight with this Identifier: a duplicate, a late answer, or a guess.
    #[error("no request with this Identifier")]
    NoRequest,
    /// The authenticators do not verify: forged, corrupted, or the wrong secret.
    #[error("not authentic: {0}")]
    Unverified(VerifyError),
}

/// Counters for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Requests taken.
    pub requests: u64,
    /// Datagrams handed out, first sends and retransmissions.
    pub transmits: u64,
    /// Of which retransmissions.
    pub retransmits: u64,
    /// Moves of a request to the next server.
    pub failovers: u64,
    /// Requests that no server answered.
    pub timeouts: u64,
    /// Requests refused at [`Config::max_requests`].
    pub refused: u64,
    /// Verified answers.
    pub answers: u64,
    /// Dropped: malformed.
    pub malformed: u64,
    /// Dropped: unknown source.
    pub unknown_source: u64,
    /// Dropped: unexpected code.
    pub unexpected_code: u64,
    /// Dropped: no request with that Identifier (late or duplicate answers).
    pub no_request: u64,
    /// Dropped: failed verification.
    pub unverified: u64,
}

/// One (server, port) pair with its own Identifier space (RFC 2865 §3: the Identifier is
/// unique per source and destination address and port).
#[derive(Debug)]
struct Destination {
    server: usize,
    service: Service,
    addr: SocketAddr,
    /// The request holding each Identifier.
    slots: Box<[Option<RequestId>; IDENTIFIERS]>,
    in_use: usize,
    /// Where the next Identifier search starts, so that a freed Identifier is reused last.
    next_identifier: u8,
    /// Requests waiting for a free Identifier, oldest first (bounded by `max_requests`).
    waiting: VecDeque<RequestId>,
    dead_until: Option<Instant>,
    last_answer: Option<Instant>,
}

impl Destination {
    fn is_dead(&self, now: Instant) -> bool {
        self.dead_until.is_some_and(|t| now < t)
    }

    fn allocate(&mut self, request: RequestId) -> Option<Identifier> {
        if self.in_use >= IDENTIFIERS {
            return None;
        }
        let start = usize::from(self.next_identifier);
        for k in 0..IDENTIFIERS {
            let i = (start + k) % IDENTIFIERS;
            if self.slots[i].is_none() {
                self.slots[i] = Some(request);
                self.in_use += 1;
                let id = u8::try_from(i).ok()?;
                self.next_identifier = id.wrapping_add(1);
                return Some(Identifier(id));
            }
        }
        None
    }

    fn release(&mut self, identifier: Identifier, request: RequestId) {
        let slot = &mut self.slots[usize::from(identifier.0)];
        if *slot == Some(request) {
            *slot = None;
            self.in_use -= 1;
        }
    }
}

#[derive(Debug)]
enum State {
    /// Waiting in `destinations[dest].waiting` for an Identifier.
    Waiting { dest: usize },
    /// Sent (or about to be) to `destinations[dest]`.
    InFlight(Box<InFlight>),
}

#[derive(Debug)]
struct InFlight {
    dest: usize,
    identifier: Identifier,
    authenticator: Authenticator,
    datagram: Vec<u8>,
    /// Sends to this destination so far.
    sends: u32,
    /// Whether `transmit_queue` holds this request for this datagram.
    queued: bool,
    /// When the first send to this destination went out.
    first_sent: Instant,
    deadline: Instant,
}

#[derive(Debug)]
struct Request {
    query: Query,
    service: Service,
    submitted: Instant,
    /// Position in the service's destination list of the destination tried now.
    position: usize,
    state: State,
}

/// A RADIUS client for several servers, sans-IO.
///
/// Every request gets, per server, an Identifier that no other request to that server holds
/// (256 per server; more requests wait in order), a Request Authenticator drawn from the
/// injected RNG, and Message-Authenticator. Retransmissions resend the same bytes, so the
/// server's duplicate detection recognises them (RFC 5080 §2.2.1); moving to another server
/// builds a new packet with that server's secret. An answer is matched by its source address
/// and Identifier, and is believed only when its Response Authenticator and
/// Message-Authenticator verify; anything else is dropped with a [`Discard`] and counted.
#[derive(Debug)]
pub struct Client<R> {
    config: Config,
    rng: R,
    destinations: Vec<Destination>,
    /// Indices into `destinations` for each service, in preference order.
    auth: Vec<usize>,
    acct: Vec<usize>,
    requests: BTreeMap<RequestId, Request>,
    next_request: u64,
    /// Requests whose datagram is due to go out (each at most once).
    transmit_queue: VecDeque<RequestId>,
    events: VecDeque<Event>,
    session_ids: AcctSessionIds,
    stats: Stats,
}

impl<R: CryptoRng> Client<R> {
    /// A client for `config`. `boot` tags the Acct-Session-Ids of this run (see
    /// [`AcctSessionIds`]); `rng` draws the Request Authenticators.
    ///
    /// # Errors
    /// [`ConfigError`] for an unusable configuration.
    pub fn new(config: Config, boot: u64, rng: R) -> Result<Self, ConfigError> {
        if config.servers.is_empty() {
            return Err(ConfigError::NoServer);
        }
        if config.timeout.is_zero() || config.max_requests == 0 {
            return Err(ConfigError::Zero);
        }
        let mut destinations: Vec<Destination> = Vec::new();
        let (mut auth, mut acct) = (Vec::new(), Vec::new());
        for (server, s) in config.servers.iter().enumerate() {
            for (service, addr, list) in [
                (Service::Authentication, s.auth, &mut auth),
                (Service::Accounting, s.acct, &mut acct),
            ] {
                let Some(addr) = addr else { continue };
                if destinations.iter().any(|d| d.addr == addr) {
                    return Err(ConfigError::DuplicateAddress(addr));
                }
                list.push(destinations.len());
                destinations.push(Destination {
                    server,
                    service,
                    addr,
                    slots: Box::new([None; IDENTIFIERS]),
                    in_use: 0,
                    next_identifier: 0,
                    waiting: VecDeque::new(),
                    dead_until: None,
                    last_answer: None,
                });
            }
        }
        Ok(Self {
            config,
            rng,
            destinations,
            auth,
            acct,
            requests: BTreeMap::new(),
            next_request: 0,
            transmit_queue: VecDeque::new(),
            events: VecDeque::new(),
            session_ids: AcctSessionIds::new(boot),
            stats: Stats::default(),
        })
    }

    /// A fresh Acct-Session-Id, unique across restarts given distinct boot tags.
    pub fn next_acct_session_id(&mut self) -> AcctSessionId {
        self.session_ids.next_id()
    }

    /// Sends an Access-Request.
    ///
    /// # Errors
    /// [`SubmitError`]; nothing is queued then.
    pub fn authenticate(
        &mut self,
        now: Instant,
        request: AccessRequest,
    ) -> Result<RequestId, SubmitError> {
        self.submit(
            now,
            Query::Access(Box::new(request)),
            Service::Authentication,
        )
    }

    /// Sends an Accounting-Request.
    ///
    /// # Errors
    /// [`SubmitError`]; nothing is queued then.
    pub fn account(
        &mut self,
        now: Instant,
        request: AccountingRequest,
    ) -> Result<RequestId, SubmitError> {
        self.submit(
            now,
            Query::Accounting(Box::new(request)),
            Service::Accounting,
        )
    }

    /// Forgets a request (its user went away). No event follows; a late answer is dropped.
    pub fn cancel(&mut self, now: Instant, id: RequestId) {
        if let Some(request) = self.requests.remove(&id)
            && let Some(dest) = self.vacate(&request, id)
        {
            self.pump(now, dest);
        }
    }

    /// Feeds one datagram received from `from` on the client's socket.
    ///
    /// # Errors
    /// [`Discard`] when the datagram is dropped; the client is then unchanged apart from
    /// [`Stats`].
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), Discard> {
        let found = Packet::new_checked(datagram)
            .map_err(Discard::Malformed)
            .and_then(|packet| self.classify(from, &packet).map(|found| (packet, found)));
        let (packet, (dest, id)) = match found {
            Ok(found) => found,
            Err(discard) => {
                let counter = match discard {
                    Discard::Malformed(_) => &mut self.stats.malformed,
                    Discard::UnknownSource => &mut self.stats.unknown_source,
                    Discard::UnexpectedCode(_) => &mut self.stats.unexpected_code,
                    Discard::NoRequest => &mut self.stats.no_request,
                    Discard::Unverified(_) => &mut self.stats.unverified,
                };
                *counter += 1;
                return Err(discard);
            }
        };
        // Verified: from here on the answer is acted upon.
        self.stats.answers += 1;
        let Some(request) = self.requests.remove(&id) else {
            return Ok(());
        };
        let State::InFlight(flight) = &request.state else {
            return Ok(());
        };
        let server = ServerIndex(self.destinations[dest].server);
        let d = &mut self.destinations[dest];
        d.last_answer = Some(now);
        if d.dead_until.take().is_some_and(|t| now < t) {
            self.events.push_back(Event::ServerAlive {
                server,
                service: d.service,
            });
        }
        d.release(flight.identifier, id);
        let event = match &request.query {
            Query::Access(access) => {
                let secret = &self.config.servers[server.0].secret;
                match reply::verdict(&packet, &access.credentials, &flight.authenticator, secret) {
                    reply::Verdict::Accept(accept) => Event::Accepted {
                        request: id,
                        server,
                        accept,
                    },
                    reply::Verdict::Reject(reject) => Event::Rejected {
                        request: id,
                        server,
                        reject,
                    },
                }
            }
            Query::Accounting(_) => Event::AccountingDone {
                request: id,
                server,
            },
        };
        self.events.push_back(event);
        self.pump(now, dest);
        Ok(())
    }

    /// Finds the request an answer belongs to and verifies it, changing nothing.
    fn classify(
        &self,
        from: SocketAddr,
        packet: &Packet<&[u8]>,
    ) -> Result<(usize, RequestId), Discard> {
        let dest = self
            .destinations
            .iter()
            .position(|d| d.addr == from)
            .ok_or(Discard::UnknownSource)?;
        let d = &self.destinations[dest];
        let expected = matches!(
            (d.service, packet.code()),
            (
                Service::Authentication,
                Code::ACCESS_ACCEPT | Code::ACCESS_REJECT | Code::ACCESS_CHALLENGE,
            ) | (Service::Accounting, Code::ACCOUNTING_RESPONSE)
        );
        if !expected {
            return Err(Discard::UnexpectedCode(packet.code()));
        }
        let id = d.slots[usize::from(packet.identifier().0)].ok_or(Discard::NoRequest)?;
        let Some(Request {
            state: State::InFlight(flight),
            ..
        }) = self.requests.get(&id)
        else {
            return Err(Discard::NoRequest);
        };
        let server = &self.config.servers[d.server];
        // The policy guards Access-Accept against forgery (BlastRADIUS); an
        // Accounting-Response grants nothing and servers rarely sign it (RFC 3579 §3.2 asks
        // for Message-Authenticator only with EAP), so there it is checked when present.
        let policy = match d.service {
            Service::Authentication => server.message_authenticator,
            Service::Accounting => MessageAuthenticatorPolicy::IfPresent,
        };
        verify::verify_response(packet, &flight.authenticator, &server.secret, policy)
            .map_err(Discard::Unverified)?;
        Ok((dest, id))
    }

    /// Retransmits what is due and moves requests on from silent servers. Harmless when
    /// nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| matches!(&r.state, State::InFlight(f) if f.deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let retries = self.config.retries;
            let timeout = self.config.timeout;
            let Some(request) = self.requests.get_mut(&id) else {
                continue;
            };
            let State::InFlight(flight) = &mut request.state else {
                continue;
            };
            if flight.sends <= retries {
                flight.sends += 1;
                flight.deadline = now + timeout;
                self.stats.retransmits += 1;
                self.queue_transmit(id);
                continue;
            }
            // This server had its chances.
            let dest = flight.dest;
            let identifier = flight.identifier;
            let first_sent = flight.first_sent;
            let service = request.service;
            let d = &mut self.destinations[dest];
            d.release(identifier, id);
            let silent = d.last_answer.is_none_or(|t| t < first_sent);
            if silent && !d.is_dead(now) {
                d.dead_until = Some(now + self.config.dead_time);
                self.events.push_back(Event::ServerDead {
                    server: ServerIndex(d.server),
                    service: d.service,
                });
            }
            self.stats.failovers += 1;
            if !self.advance(now, id) {
                self.requests.remove(&id);
                self.stats.timeouts += 1;
                self.events.push_back(Event::Timeout {
                    request: id,
                    service,
                });
            }
            self.pump(now, dest);
        }
    }

    /// Writes the next datagram into `buf` (which should hold 4096 octets). A datagram that
    /// does not fit is skipped; it goes out again at its next retransmission.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(id) = self.transmit_queue.pop_front() {
            let Some(Request {
                state: State::InFlight(flight),
                ..
            }) = self.requests.get_mut(&id)
            else {
                continue;
            };
            if !flight.queued {
                continue; // a stale entry: this datagram was already handed out
            }
            flight.queued = false;
            let Some(out) = buf.get_mut(..flight.datagram.len()) else {
                continue;
            };
            out.copy_from_slice(&flight.datagram);
            let d = &self.destinations[flight.dest];
            self.stats.transmits += 1;
            return Some(Transmit {
                server: ServerIndex(d.server),
                to: d.addr,
                len: flight.datagram.len(),
            });
        }
        None
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`Client::handle_timeout`] must run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.requests
            .values()
            .filter_map(|r| match &r.state {
                State::InFlight(f) => Some(f.deadline),
                State::Waiting { .. } => None,
            })
            .min()
    }

    /// Counters.
    #[must_use]
    pub const fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests held, queued or in flight.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.requests.len()
    }

    /// Whether the server's port for `service` is currently skipped.
    #[must_use]
    pub fn is_dead(&self, now: Instant, server: ServerIndex, service: Service) -> bool {
        self.destinations
            .iter()
            .any(|d| d.server == server.0 && d.service == service && d.is_dead(now))
    }

    fn list(&self, service: Service) -> &[usize] {
        match service {
            Service::Authentication => &self.auth,
            Service::Accounting => &self.acct,
        }
    }

    fn submit(
        &mut self,
        now: Instant,
        query: Query,
        service: Service,
    ) -> Result<RequestId, SubmitError> {
        let list = self.list(service).to_vec();
        let Some(&first_dest) = list.first() else {
            return Err(SubmitError::NoServer(service));
        };
        if self.requests.len() + self.events.len() >= self.config.max_requests {
            self.stats.refused += 1;
            return Err(SubmitError::Full);
        }
        // Refuse what cannot be written before taking it.
        let secret = &self.config.servers[self.destinations[first_dest].server].secret;
        query
            .encode(
                &self.config.nas,
                Identifier(0),
                &Authenticator::ZERO,
                secret,
                Duration::ZERO,
            )
            .map_err(SubmitError::Encode)?;
        // When every server is skipped, nothing is lost by trying them all again.
        if list.iter().all(|&d| self.destinations[d].is_dead(now)) {
            for &d in &list {
                self.destinations[d].dead_until = None;
            }
        }
        let position = list
            .iter()
            .position(|&d| !self.destinations[d].is_dead(now))
            .unwrap_or(0);
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.stats.requests += 1;
        self.requests.insert(
            id,
            Request {
                query,
                service,
                submitted: now,
                position,
                state: State::Waiting { dest: usize::MAX },
            },
        );
        self.assign(now, id, list[position]);
        Ok(id)
    }

    /// Moves a request to the next live destination of its service. False when none is left.
    fn advance(&mut self, now: Instant, id: RequestId) -> bool {
        let Some(request) = self.requests.get(&id) else {
            return false;
        };
        let list = self.list(request.service);
        let next =
            (request.position + 1..list.len()).find(|&p| !self.destinations[list[p]].is_dead(now));
        let Some(position) = next else {
            return false;
        };
        let dest = list[position];
        if let Some(request) = self.requests.get_mut(&id) {
            request.position = position;
        }
        self.assign(now, id, dest);
        true
    }

    /// Gives a request an Identifier at `dest` and queues its datagram, or queues the request
    /// behind the others waiting there.
    fn assign(&mut self, now: Instant, id: RequestId, dest: usize) {
        let Some(identifier) = self.destinations[dest].allocate(id) else {
            self.destinations[dest].waiting.push_back(id);
            if let Some(r) = self.requests.get_mut(&id) {
                r.state = State::Waiting { dest };
            }
            return;
        };
        let mut authenticator = Authenticator::ZERO;
        let Some(request) = self.requests.get_mut(&id) else {
            self.destinations[dest].release(identifier, id);
            return;
        };
        if request.query.code() == Code::ACCESS_REQUEST {
            // RFC 2865 §3: unpredictable and unique over the secret's lifetime.
            self.rng.fill_bytes(&mut authenticator.0);
        }
        let secret = &self.config.servers[self.destinations[dest].server].secret;
        let delay = now.saturating_duration_since(request.submitted);
        let encoded =
            request
                .query
                .encode(&self.config.nas, identifier, &authenticator, secret, delay);
        let Ok(datagram) = encoded else {
            // Checked at submission; cannot fail for another server with the same data.
            self.destinations[dest].release(identifier, id);
            self.requests.remove(&id);
            return;
        };
        if request.query.code() != Code::ACCESS_REQUEST {
            authenticator
                .0
                .copy_from_slice(&datagram[4..wire::HEADER_LEN]);
        }
        request.state = State::InFlight(Box::new(InFlight {
            dest,
            identifier,
            authenticator,
            datagram,
            sends: 1,
            queued: false,
            first_sent: now,
            deadline: now + self.config.timeout,
        }));
        self.queue_transmit(id);
    }

    fn queue_transmit(&mut self, id: RequestId) {
        if let Some(Request {
            state: State::InFlight(flight),
            ..
        }) = self.requests.get_mut(&id)
            && !flight.queued
        {
            flight.queued = true;
            self.transmit_queue.push_back(id);
        }
    }

    /// Lets requests waiting at `dest` take freed Identifiers; those waiting at a destination
    /// that died move on.
    fn pump(&mut self, now: Instant, dest: usize) {
        while self.destinations[dest].in_use < IDENTIFIERS {
            let Some(id) = self.destinations[dest].waiting.pop_front() else {
                return;
            };
            if !self.requests.contains_key(&id) {
                continue;
            }
            if self.destinations[dest].is_dead(now) {
                if !self.advance(now, id) {
                    let service = self
                        .requests
                        .remove(&id)
                        .map_or(Service::Authentication, |r| r.service);
                    self.stats.timeouts += 1;
                    self.events.push_back(Event::Timeout {
                        request: id,
                        service,
                    });
                }
                continue;
            }
            self.assign(now, id, dest);
        }
    }

    /// Frees what a removed request held; returns the destination whose Identifier it freed.
    fn vacate(&mut self, request: &Request, id: RequestId) -> Option<usize> {
        match &request.state {
            State::InFlight(flight) => {
                let dest = flight.dest;
                self.destinations[dest].release(flight.identifier, id);
                Some(dest)
            }
            State::Waiting { dest } => {
                if let Some(d) = self.destinations.get_mut(*dest) {
                    d.waiting.retain(|w| *w != id);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
