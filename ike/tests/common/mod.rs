//! An in-memory network for one responder [`Endpoint`] and many initiators, some behind a
//! translating NAT, in simulated time.

#![allow(dead_code, reason = "each test crate uses its own part of the harness")]

use ike::endpoint::{Config, Endpoint, Event, Transmit};
use ike::esp::{IpProtocol, Sa, SaDb, Spi};
use ike::ikev1::main_mode::Path;
use ike::ikev1::quick_mode::ChildSa;
use l2sec_ike as ike;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The responder's address.
pub(crate) const SERVER: &str = "2.2.2.2:500";

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

/// One initiator.
pub(crate) struct Peer {
    /// Its IKE endpoint.
    pub(crate) endpoint: Endpoint<ChaCha8Rng>,
    /// Its own address (port 500; it floats to 4500 on the same address).
    pub(crate) local: SocketAddr,
    /// The NAT's public address, when it sits behind one; its ports 500 and 4500 then appear
    /// as `nat_ports.0` and `nat_ports.1`.
    pub(crate) nat: Option<(IpAddr, (u16, u16))>,
    /// Everything it reported.
    pub(crate) events: Vec<Event>,
}

impl Peer {
    /// How the responder sees `local` of this peer.
    fn public(&self, local: SocketAddr) -> SocketAddr {
        match self.nat {
            Some((ip, (p500, p4500))) => {
                SocketAddr::new(ip, if local.port() == 4500 { p4500 } else { p500 })
            }
            None => local,
        }
    }

    /// The first ESP SA pair it installed.
    pub(crate) fn child(&self) -> Option<&ChildSa> {
        child(&self.events)
    }
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy)]
enum To {
    Server,
    Peer(usize),
}

/// The responder, the initiators and the datagrams between them.
pub(crate) struct World {
    /// The simulated clock.
    pub(crate) now: Instant,
    /// The responder.
    pub(crate) server: Endpoint<ChaCha8Rng>,
    /// Everything the responder reported.
    pub(crate) server_events: Vec<Event>,
    /// The initiators.
    pub(crate) peers: Vec<Peer>,
    /// One-way latency.
    pub(crate) latency: Duration,
    in_flight: VecDeque<(Instant, To, Path, Vec<u8>)>,
    /// Datagrams the responder dropped at its half-open limits.
    pub(crate) limited: usize,
}

impl World {
    /// A responder at [`SERVER`] with `config`.
    pub(crate) fn new(config: Config, latency: Duration) -> Self {
        Self {
            now: t0(),
            server: Endpoint::new(config, ChaCha8Rng::seed_from_u64(0xface)),
            server_events: Vec::new(),
            peers: Vec::new(),
            latency,
            in_flight: VecDeque::new(),
            limited: 0,
        }
    }

    /// Adds an initiator at `local` (behind `nat`, if given) and returns its index.
    pub(crate) fn add_peer(
        &mut self,
        config: Config,
        local: &str,
        nat: Option<(IpAddr, (u16, u16))>,
    ) -> usize {
        let seed = 1 + self.peers.len() as u64;
        self.peers.push(Peer {
            endpoint: Endpoint::new(config, ChaCha8Rng::seed_from_u64(seed)),
            local: local.parse().unwrap(),
            nat,
            events: Vec::new(),
        });
        self.peers.len() - 1
    }

    /// Peer `i` starts Main Mode towards the responder.
    pub(crate) fn connect(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.peers[i];
        let path = Path {
            local: p.local,
            remote: SERVER.parse().unwrap(),
        };
        p.endpoint.connect(now, path).unwrap();
        self.collect();
    }

    fn collect(&mut self) {
        let mut buf = vec![0u8; 8192];
        let at = self.now + self.latency;
        while let Some(t) = self.server.poll_transmit(&mut buf) {
            // The NAT translates the destination back to the private address.
            let target = self.peers.iter().position(|p| {
                p.public(SocketAddr::new(p.local.ip(), 500)) == t.remote
                    || p.public(SocketAddr::new(p.local.ip(), 4500)) == t.remote
            });
            let Some(i) = target else { continue };
            let port = if self.peers[i].public(SocketAddr::new(self.peers[i].local.ip(), 4500))
                == t.remote
            {
                4500
            } else {
                500
            };
            let path = Path {
                local: SocketAddr::new(self.peers[i].local.ip(), port),
                remote: t.local,
            };
            self.in_flight
                .push_back((at, To::Peer(i), path, buf[..t.len].to_vec()));
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
        for i in 0..self.peers.len() {
            while let Some(t) = self.peers[i].endpoint.poll_transmit(&mut buf) {
                let path = self.seen_by_server(i, t);
                self.in_flight
                    .push_back((at, To::Server, path, buf[..t.len].to_vec()));
            }
            while let Some(e) = self.peers[i].endpoint.poll_event() {
                self.peers[i].events.push(e);
            }
        }
    }

    /// The path of peer `i`'s datagram as the responder sees it (through the NAT, if any).
    fn seen_by_server(&self, i: usize, t: Transmit) -> Path {
        Path {
            local: t.remote,
            remote: self.peers[i].public(t.local),
        }
    }

    /// Delivers everything due, then runs every timer due; advances the clock to the next
    /// delivery or deadline, but never past `until`. Returns false when nothing is left to do.
    pub(crate) fn step(&mut self, until: Instant) -> bool {
        self.collect();
        let next = self
            .in_flight
            .front()
            .map(|f| f.0)
            .into_iter()
            .chain(self.server.poll_timeout())
            .chain(self.peers.iter().filter_map(|p| p.endpoint.poll_timeout()))
            .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next.min(until));
        while self.in_flight.front().is_some_and(|f| f.0 <= self.now) {
            let Some((_, to, path, bytes)) = self.in_flight.pop_front() else {
                break;
            };
            match to {
                To::Server => {
                    let r = self.server.handle_datagram(self.now, path, &bytes);
                    self.limited += usize::from(r == Err(ike::endpoint::Discard::Limit));
                }
                To::Peer(i) => {
                    let _ = self.peers[i]
                        .endpoint
                        .handle_datagram(self.now, path, &bytes);
                }
            }
            self.collect();
        }
        self.server.handle_timeout(self.now);
        for p in &mut self.peers {
            p.endpoint.handle_timeout(self.now);
        }
        self.collect();
        next <= until
    }

    /// Runs until `done` or `limit` of simulated time passed.
    pub(crate) fn run(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let end = self.now + limit;
        while !done(self) {
            if self.now >= end || !self.step(end) {
                return done(self);
            }
        }
        true
    }
}

/// The first `ChildSaUp` in `events`.
pub(crate) fn child(events: &[Event]) -> Option<&ChildSa> {
    events.iter().find_map(|e| match e {
        Event::ChildSaUp { child, .. } => Some(child.as_ref()),
        _ => None,
    })
}

/// Every `ChildSaUp` in `events`, with the ESP path.
pub(crate) fn children(events: &[Event]) -> Vec<(Path, &ChildSa)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaUp { child, path, .. } => Some((*path, child.as_ref())),
            _ => None,
        })
        .collect()
}

/// Installs `child`'s inbound SA in `db` and returns its outbound SA.
pub(crate) fn install(db: &mut SaDb, child: &ChildSa, rng: &mut ChaCha8Rng) -> Sa {
    let t = child.transform;
    db.insert(Sa::inbound(Spi(child.inbound_spi), t, child.inbound_keys()).unwrap())
        .unwrap();
    Sa::outbound(Spi(child.outbound_spi), t, child.outbound_keys(), rng).unwrap()
}

/// Seals `payload` as UDP with `sa`; returns the ESP packet.
pub(crate) fn seal(sa: &mut Sa, payload: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let o = sa.overhead();
    let mut buf = vec![0u8; o.head + payload.len() + o.tail];
    buf[o.head..o.head + payload.len()].copy_from_slice(payload);
    let r = sa
        .seal(
            &mut buf,
            o.head..o.head + payload.len(),
            IpProtocol::UDP,
            rng,
        )
        .unwrap();
    buf[r].to_vec()
}
