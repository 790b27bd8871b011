//! Our LAC ↔ our LNS through a seeded lossy link in simulated time: tunnels and calls come up
//! and are torn down cleanly whatever the link does to control messages.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness: failures should panic and say which seed"
)]

use l2sec_l2tp::reliable;
use l2sec_l2tp::wire::message::{CdnResult, StopCcnResult};
use l2sec_l2tp::{
    Config, Endpoint, Event, Origin, SessionDownReason, SessionId, TunnelDownReason, TunnelId,
};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Lac,
    Lns,
}

#[derive(Debug, Clone, Copy)]
struct Impairment {
    latency: Duration,
    loss: f64,
    duplicate: f64,
    reorder: f64,
}

const HOSTILE: Impairment = Impairment {
    latency: Duration::from_millis(20),
    loss: 0.2,
    duplicate: 0.05,
    reorder: 0.1,
};

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn epoch() -> Instant {
    Instant::now()
}

fn lac_addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 20), 40123))
}

fn lns_addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 10), 1701))
}

/// Enough retransmissions that 20 % loss each way never exhausts them in 1,000 runs.
fn config() -> Config {
    Config {
        reliable: reliable::Config {
            max_retransmits: 15,
            ..reliable::Config::default()
        },
        hold_period: Duration::from_secs(60),
        ..Config::default()
    }
}

struct Pair {
    now: Instant,
    lac: Endpoint<ChaCha8Rng>,
    lns: Endpoint<ChaCha8Rng>,
    rng: ChaCha8Rng,
    link: Impairment,
    /// (deliver at, sequence, to, datagram)
    in_flight: Vec<(Instant, u64, Side, Vec<u8>)>,
    sequence: u64,
    /// Datagrams the link dropped.
    lost: u64,
    lac_events: Vec<Event>,
    lns_events: Vec<Event>,
    seed: u64,
}

impl Pair {
    fn new(seed: u64, link: Impairment) -> Self {
        Self {
            now: epoch(),
            lac: Endpoint::new(Arc::new(config()), ChaCha8Rng::seed_from_u64(seed)),
            lns: Endpoint::new(Arc::new(config()), ChaCha8Rng::seed_from_u64(seed ^ 0x1a5)),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x11c),
            link,
            in_flight: Vec::new(),
            sequence: 0,
            lost: 0,
            lac_events: Vec::new(),
            lns_events: Vec::new(),
            seed,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        f64::from(self.rng.next_u32()) / 4_294_967_296.0 < p
    }

    fn send(&mut self, to: Side, datagram: Vec<u8>) {
        if self.chance(self.link.loss) {
            self.lost += 1;
            return;
        }
        let copies = if self.chance(self.link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = self.now + self.link.latency;
            if self.chance(self.link.reorder) {
                at += self.link.latency * 3;
            }
            self.sequence += 1;
            self.in_flight
                .push((at, self.sequence, to, datagram.clone()));
        }
    }

    fn collect(&mut self) {
        let mut buf = [0u8; l2sec_l2tp::MAX_CONTROL_LEN];
        while let Some(t) = self.lac.poll_transmit(self.now, &mut buf) {
            assert_eq!(t.peer, lns_addr());
            self.send(Side::Lns, buf[..t.len].to_vec());
        }
        while let Some(t) = self.lns.poll_transmit(self.now, &mut buf) {
            assert_eq!(t.peer, lac_addr());
            self.send(Side::Lac, buf[..t.len].to_vec());
        }
        self.lac_events
            .extend(std::iter::from_fn(|| self.lac.poll_event()));
        self.lns_events
            .extend(std::iter::from_fn(|| self.lns.poll_event()));
    }

    /// Delivers what is due, runs the timers, and advances the clock to the next thing that
    /// happens. Returns false when nothing is left to happen.
    fn step(&mut self) -> bool {
        self.collect();
        let next_datagram = self.in_flight.iter().map(|f| f.0).min();
        let next = [
            next_datagram,
            self.lac.poll_timeout(),
            self.lns.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        self.in_flight.sort_by_key(|f| (f.0, f.1));
        let due = self
            .in_flight
            .iter()
            .take_while(|f| f.0 <= self.now)
            .count();
        for (_, _, to, mut datagram) in self.in_flight.drain(..due).collect::<Vec<_>>() {
            // Discards (duplicates beyond the window, messages for forgotten tunnels) are
            // part of a lossy life.
            let _ = match to {
                Side::Lac => self
                    .lac
                    .handle_datagram(self.now, lns_addr(), &mut datagram),
                Side::Lns => self
                    .lns
                    .handle_datagram(self.now, lac_addr(), &mut datagram),
            };
        }
        self.lac.handle_timeout(self.now);
        self.lns.handle_timeout(self.now);
        self.collect();
        true
    }

    #[track_caller]
    fn drive_until(&mut self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(
                self.step() && self.now <= deadline,
                "seed {}: {what} not reached within {limit:?} of simulated time\nLAC: {:?}\nLNS: {:?}",
                self.seed,
                self.lac_events,
                self.lns_events
            );
        }
    }
}

fn session_up(events: &[Event]) -> Option<(TunnelId, SessionId, SessionId)> {
    events.iter().find_map(|e| match e {
        Event::SessionUp(up) => Some((up.tunnel, up.session, up.peer_session)),
        _ => None,
    })
}

/// Returns (datagrams delivered or duplicated, datagrams lost).
fn run(seed: u64, link: Impairment) -> (u64, u64) {
    let mut pair = Pair::new(seed, link);
    let (tunnel, session) = pair.lac.connect(pair.now, lns_addr()).unwrap();
    pair.drive_until("both sessions up", Duration::from_secs(300), |p| {
        session_up(&p.lac_events).is_some() && session_up(&p.lns_events).is_some()
    });
    let (lac_tunnel, lac_session, lac_peer_session) = session_up(&pair.lac_events).unwrap();
    let (lns_tunnel, lns_session, lns_peer_session) = session_up(&pair.lns_events).unwrap();
    assert_eq!((lac_tunnel, lac_session), (tunnel, session), "seed {seed}");
    assert_eq!(lac_peer_session, lns_session, "seed {seed}");
    assert_eq!(lns_peer_session, lac_session, "seed {seed}");
    assert!(pair.lns.data_path(lns_tunnel, lns_session).is_some());

    // Teardown: CDN, then StopCCN, from the LAC.
    pair.lac
        .close_session(pair.now, tunnel, session, CdnResult::ADMINISTRATIVE, None)
        .unwrap();
    pair.drive_until("CDN received", Duration::from_secs(300), |p| {
        p.lns_events.iter().any(|e| {
            matches!(
                e,
                Event::SessionDown {
                    reason: SessionDownReason::Disconnected {
                        origin: Origin::Peer,
                        result: CdnResult::ADMINISTRATIVE,
                        ..
                    },
                    ..
                }
            )
        })
    });
    pair.lac
        .close_tunnel(pair.now, tunnel, StopCcnResult::GENERAL_REQUEST, None)
        .unwrap();
    pair.drive_until("StopCCN received", Duration::from_secs(300), |p| {
        p.lns_events.iter().any(|e| {
            matches!(
                e,
                Event::TunnelDown {
                    reason: TunnelDownReason::Stopped {
                        origin: Origin::Peer,
                        result: StopCcnResult::GENERAL_REQUEST,
                        ..
                    },
                    ..
                }
            )
        })
    });
    pair.drive_until("both sides forget", Duration::from_secs(300), |p| {
        p.lac.is_idle() && p.lns.is_idle()
    });
    for events in [&pair.lac_events, &pair.lns_events] {
        let ups = events
            .iter()
            .filter(|e| matches!(e, Event::TunnelUp { .. }))
            .count();
        let downs = events
            .iter()
            .filter(|e| matches!(e, Event::TunnelDown { .. }))
            .count();
        assert_eq!((ups, downs), (1, 1), "seed {seed}: {events:?}");
    }
    (pair.sequence, pair.lost)
}

#[test]
fn tunnel_and_call_come_up_and_down_over_a_clean_link() {
    let (_, lost) = run(
        0,
        Impairment {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            ..HOSTILE
        },
    );
    assert_eq!(lost, 0);
}

#[test]
fn a_thousand_seeds_with_loss_duplication_and_reordering() {
    let seeds: Vec<u64> = match std::env::var("L2SEC_SIM_SEED") {
        Ok(seed) => vec![seed.parse().unwrap()],
        Err(_) => (1..=1000).collect(),
    };
    let (mut sent, mut lost) = (0, 0);
    for seed in &seeds {
        let (s, l) = run(*seed, HOSTILE);
        sent += s;
        lost += l;
    }
    // The link really was hostile: about a fifth of the datagrams never arrived.
    let share = lost as f64 / (sent + lost) as f64;
    assert!(
        seeds.len() == 1 || (0.15..0.25).contains(&share),
        "{lost} lost of {sent}"
    );
    eprintln!(
        "{} seeds: {sent} datagrams delivered, {lost} lost",
        seeds.len()
    );
}
