//! The client engine against the server's engine, in memory and simulated time (STYLE.md
//! §10.4): IKE Main Mode and Quick Mode, ESP (plain and behind a NAT), L2TP, PPP with each
//! authentication method, pings through TUN both ways, the failures a user can meet, a full
//! disconnect, and convergence under loss.

use super::*;
use l2sec_server::engine::ipsec::{
    Engine as Server, HEADROOM as SERVER_HEADROOM, Route as ServerRoute,
    TAILROOM as SERVER_TAILROOM,
};
use l2sec_server::engine::pool::Pool;
use l2sec_server::testing::{ServerSetup, reference_server as server};
use rand_core::Rng;

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

const PSK: &[u8] = b"interop-test-psk";
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(2, 2, 2, 2));
const INTRANET: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

fn server_ike() -> SocketAddr {
    SocketAddr::new(SERVER_IP, 500)
}

/// One laptop: its engine, its address and the NAT in front of it, if any.
struct Laptop {
    engine: Engine<ChaCha20Rng>,
    /// Our address as the engine knows it.
    ip: IpAddr,
    /// The NAT's public address, which rewrites ports 500 → 40500 and 4500 → 44500.
    public: Option<IpAddr>,
    events: Vec<ClientEvent>,
    tun: Vec<Vec<u8>>,
}

impl Laptop {
    fn seen_ip(&self) -> IpAddr {
        self.public.unwrap_or(self.ip)
    }

    /// Our source address after the NAT.
    fn outside(&self, local: SocketAddr) -> SocketAddr {
        match self.public {
            Some(p) => SocketAddr::new(p, local.port() + 40_000),
            None => local,
        }
    }

    /// The destination before the NAT, if `to` is ours.
    fn inside(&self, to: SocketAddr) -> Option<SocketAddr> {
        match self.public {
            Some(p) if to.ip() == p => to
                .port()
                .checked_sub(40_000)
                .map(|port| SocketAddr::new(self.ip, port)),
            Some(_) => None,
            None => (to.ip() == self.ip).then_some(to),
        }
    }

    fn down(&self) -> Option<(Stage, DownReason)> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Down { stage, reason } => Some((*stage, *reason)),
            _ => None,
        })
    }

    fn address(&self) -> Option<Ipv4Addr> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::AddressAssigned { local, .. } => Some(*local),
            _ => None,
        })
    }
}

struct LaptopSetup {
    ip: IpAddr,
    public: Option<IpAddr>,
    psk: &'static [u8],
    password: &'static str,
    methods: Vec<Method>,
    ike: Option<ike::endpoint::Config>,
    /// No periodic traffic of its own: no DPD, L2TP Hello or LCP Echo.
    quiet: bool,
}

impl Default for LaptopSetup {
    fn default() -> Self {
        Self {
            ip: "203.0.113.5".parse().unwrap(),
            public: None,
            psk: PSK,
            password: "admin@123",
            methods: Method::ALL.to_vec(),
            ike: None,
            quiet: false,
        }
    }
}

enum Datagram {
    ToServer {
        from: usize,
        route: Route,
        bytes: Vec<u8>,
    },
    ToLaptop {
        route: ServerRoute,
        bytes: Vec<u8>,
    },
}

struct World {
    now: Instant,
    server: Server<ChaCha20Rng>,
    laptops: Vec<Laptop>,
    server_tun: Vec<Vec<u8>>,
    /// Percentage of datagrams lost, each way.
    loss: u32,
    net: ChaCha20Rng,
    /// What the laptops sent, when and where.
    sent: Vec<(Instant, Route, Vec<u8>)>,
}

impl World {
    fn new(setup: ServerSetup, seed: u64) -> Self {
        Self {
            now: t0(),
            server: server(setup, seed),
            laptops: Vec::new(),
            server_tun: Vec::new(),
            loss: 0,
            net: ChaCha20Rng::seed_from_u64(seed + 2),
            sent: Vec::new(),
        }
    }

    fn add(&mut self, setup: LaptopSetup, seed: u64) -> usize {
        let local = SocketAddr::new(setup.ip, 500);
        let mut config = EngineConfig::new(
            server_ike(),
            local,
            setup.psk,
            "hb@hb",
            Password::new(setup.password),
        );
        if let Some(ike) = setup.ike {
            config.ike = ike;
        }
        let mut ppp = (*config.ppp).clone();
        ppp.methods = setup.methods;
        if setup.quiet {
            config.ike.dpd_interval = None;
            ppp.link.echo_interval = None;
            config.l2tp = Arc::new(l2tp::Config {
                hello_interval: Duration::from_secs(3600),
                ..l2tp::Config::default()
            });
        }
        config.ppp = Arc::new(ppp);
        let engine = Engine::new(config, ChaCha20Rng::seed_from_u64(seed + 10), self.now);
        self.laptops.push(Laptop {
            engine,
            ip: setup.ip,
            public: setup.public,
            events: Vec::new(),
            tun: Vec::new(),
        });
        self.laptops.len() - 1
    }

    fn lost(&mut self) -> bool {
        self.loss > 0 && self.net.next_u32() % 100 < self.loss
    }

    /// Delivers everything both sides send until both are quiet.
    fn exchange(&mut self) {
        let mut buf = vec![0u8; TRANSMIT_BUF_LEN];
        loop {
            let mut queue = Vec::new();
            for (i, laptop) in self.laptops.iter_mut().enumerate() {
                while let Some(out) = laptop.engine.poll_transmit(self.now, &mut buf) {
                    self.sent
                        .push((self.now, out.route, buf[out.range.clone()].to_vec()));
                    queue.push(Datagram::ToServer {
                        from: i,
                        route: out.route,
                        bytes: buf[out.range].to_vec(),
                    });
                }
                while let Some(e) = laptop.engine.poll_event() {
                    laptop.events.push(e);
                }
            }
            while let Some(out) = self.server.poll_transmit(self.now, &mut buf) {
                queue.push(Datagram::ToLaptop {
                    route: out.route,
                    bytes: buf[out.range].to_vec(),
                });
            }
            while self.server.lns_mut().poll_event().is_some() {}
            if queue.is_empty() {
                return;
            }
            for d in queue {
                if !self.lost() {
                    self.deliver(d);
                }
            }
        }
    }

    fn deliver(&mut self, d: Datagram) {
        let now = self.now;
        match d {
            Datagram::ToServer { from, route, bytes } => {
                let laptop = &self.laptops[from];
                let result = match route {
                    Route::Udp {
                        local,
                        remote,
                        non_esp_marker,
                    } => {
                        let mut bytes = if non_esp_marker {
                            [&[0u8; 4][..], &bytes].concat()
                        } else {
                            bytes
                        };
                        let source = laptop.outside(local);
                        self.server
                            .handle_udp(now, remote, source, &mut bytes)
                            .map(|r| r.map(|r| bytes[r].to_vec()))
                    }
                    Route::Esp { remote } => {
                        assert_eq!(remote, SERVER_IP);
                        let mut bytes = bytes;
                        let source = laptop.seen_ip();
                        self.server
                            .handle_esp(now, source, &mut bytes)
                            .map(|r| r.map(|r| bytes[r].to_vec()))
                    }
                };
                if let Ok(Some(ip)) = result {
                    self.server_tun.push(ip);
                }
            }
            Datagram::ToLaptop { route, bytes } => match route {
                ServerRoute::Udp {
                    local,
                    remote,
                    non_esp_marker,
                } => {
                    let Some(laptop) = self.laptops.iter_mut().find(|l| l.inside(remote).is_some())
                    else {
                        return;
                    };
                    let to = laptop.inside(remote).unwrap();
                    let mut bytes = if non_esp_marker {
                        [&[0u8; 4][..], &bytes].concat()
                    } else {
                        bytes
                    };
                    if let Ok(Some(r)) = laptop.engine.handle_udp(now, to, local, &mut bytes) {
                        laptop.tun.push(bytes[r].to_vec());
                    }
                }
                ServerRoute::Esp { remote, .. } => {
                    let Some(laptop) = self.laptops.iter_mut().find(|l| l.seen_ip() == remote)
                    else {
                        return;
                    };
                    let mut bytes = bytes;
                    if let Ok(Some(r)) = laptop.engine.handle_esp(now, SERVER_IP, &mut bytes) {
                        laptop.tun.push(bytes[r].to_vec());
                    }
                }
            },
        }
    }

    /// Steps until `done` holds or `limit` of simulated time passes.
    fn drive(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.exchange();
            if done(self) {
                return true;
            }
            let next = self
                .laptops
                .iter()
                .filter_map(|l| l.engine.poll_timeout())
                .chain(self.server.poll_timeout())
                .min();
            let Some(next) = next.filter(|n| *n <= end) else {
                return done(self);
            };
            self.now = self.now.max(next);
            self.server.handle_timeout(self.now);
            for laptop in &mut self.laptops {
                laptop.engine.handle_timeout(self.now);
            }
        }
    }

    fn connect(&mut self, i: usize) -> Ipv4Addr {
        assert!(
            self.drive(Duration::from_secs(120), |w| w.laptops[i]
                .address()
                .is_some()),
            "no address: {:?}",
            self.laptops[i].events
        );
        self.laptops[i].address().unwrap()
    }

    /// A ping from the laptop's TUN to the intranet, and the reply back.
    fn ping(&mut self, i: usize) {
        let address = self.laptops[i].engine.ipv4().unwrap().local;
        let ping = icmp(address, INTRANET);
        let mut buf = vec![0u8; HEADROOM + ping.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + ping.len()].copy_from_slice(&ping);
        let out = self.laptops[i]
            .engine
            .handle_tun(&mut buf, HEADROOM..HEADROOM + ping.len())
            .unwrap();
        let encapsulated = self.laptops[i].engine.encapsulated();
        assert_eq!(
            matches!(out.route, Route::Udp { .. }),
            encapsulated,
            "{out:?}"
        );
        let before = self.server_tun.len();
        self.deliver(Datagram::ToServer {
            from: i,
            route: out.route,
            bytes: buf[out.range].to_vec(),
        });
        assert_eq!(self.server_tun.len(), before + 1, "the ping reaches TUN");
        assert_eq!(self.server_tun.last(), Some(&ping));
        // The reply from the intranet, through the server, reaches the laptop's TUN.
        let reply = icmp(INTRANET, address);
        let mut buf = vec![0u8; SERVER_HEADROOM + reply.len() + SERVER_TAILROOM];
        buf[SERVER_HEADROOM..SERVER_HEADROOM + reply.len()].copy_from_slice(&reply);
        let out = self
            .server
            .handle_tun(&mut buf, SERVER_HEADROOM..SERVER_HEADROOM + reply.len())
            .unwrap();
        let before = self.laptops[i].tun.len();
        self.deliver(Datagram::ToLaptop {
            route: out.route,
            bytes: buf[out.range].to_vec(),
        });
        assert_eq!(
            self.laptops[i].tun.len(),
            before + 1,
            "the reply reaches TUN"
        );
        assert_eq!(self.laptops[i].tun.last(), Some(&reply));
    }
}

fn icmp(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[8, 0, 0xf7, 0xfe, 0, 1, 0, 0]);
    p
}

fn stages(events: &[ClientEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            ClientEvent::IkeUp { .. } => "ike",
            ClientEvent::IpsecUp { .. } => "ipsec",
            ClientEvent::L2tpUp => "l2tp",
            ClientEvent::Authenticated { .. } => "auth",
            ClientEvent::AddressAssigned { .. } => "address",
            ClientEvent::Down { .. } => "down",
        })
        .collect()
}

#[test]
fn reference_scenario_pap_address_and_a_ping_both_ways() {
    let mut w = World::new(ServerSetup::default(), 1);
    let i = w.add(LaptopSetup::default(), 1);
    let address = w.connect(i);
    assert_eq!(address, Ipv4Addr::new(172, 16, 1, 2));
    let l = &w.laptops[i];
    assert_eq!(
        stages(&l.events),
        ["ike", "ipsec", "l2tp", "auth", "address"]
    );
    assert!(matches!(
        l.events[0],
        ClientEvent::IkeUp { suite: Some(_), nat } if !nat.encapsulate()
    ));
    assert!(matches!(
        l.events[1],
        ClientEvent::IpsecUp {
            encapsulated: false,
            ..
        }
    ));
    assert_eq!(
        l.events[3],
        ClientEvent::Authenticated {
            method: Method::Pap
        }
    );
    assert_eq!(
        l.events[4],
        ClientEvent::AddressAssigned {
            local: Ipv4Addr::new(172, 16, 1, 2),
            peer: Ipv4Addr::new(172, 16, 1, 1),
            dns: [Some(INTRANET), None],
        }
    );
    assert!(l.engine.is_up());
    assert_eq!(w.server.child_sas(), 1);
    assert_eq!(w.server.lns().pool().in_use(), 1);
    w.ping(i);
    w.ping(i);
}

#[test]
fn chap_md5_and_ms_chap_v2_authenticate_and_ping() {
    for method in [Method::ChapMd5, Method::MsChapV2] {
        let mut w = World::new(
            ServerSetup {
                methods: vec![method],
                ..ServerSetup::default()
            },
            2,
        );
        let i = w.add(LaptopSetup::default(), 2);
        assert_eq!(w.connect(i), Ipv4Addr::new(172, 16, 1, 2));
        assert!(
            w.laptops[i]
                .events
                .contains(&ClientEvent::Authenticated { method }),
            "{method:?}: {:?}",
            w.laptops[i].events
        );
        w.ping(i);
    }
}

#[test]
fn behind_a_nat_ike_floats_to_4500_and_esp_is_udp_encapsulated() {
    let mut w = World::new(ServerSetup::default(), 3);
    let i = w.add(
        LaptopSetup {
            ip: "192.168.0.10".parse().unwrap(),
            public: Some("198.51.100.7".parse().unwrap()),
            ..LaptopSetup::default()
        },
        3,
    );
    assert_eq!(w.connect(i), Ipv4Addr::new(172, 16, 1, 2));
    let l = &w.laptops[i];
    assert!(matches!(
        l.events[0],
        ClientEvent::IkeUp { nat, .. } if nat.local_behind_nat && nat.encapsulate()
    ));
    assert!(matches!(
        l.events[1],
        ClientEvent::IpsecUp {
            encapsulated: true,
            ..
        }
    ));
    assert!(l.engine.encapsulated());
    w.ping(i);
    // The server's answers go to the NAT's mapping of port 4500.
    let reply = icmp(INTRANET, Ipv4Addr::new(172, 16, 1, 2));
    let mut buf = vec![0u8; SERVER_HEADROOM + reply.len() + SERVER_TAILROOM];
    buf[SERVER_HEADROOM..SERVER_HEADROOM + reply.len()].copy_from_slice(&reply);
    let out = w
        .server
        .handle_tun(&mut buf, SERVER_HEADROOM..SERVER_HEADROOM + reply.len())
        .unwrap();
    assert_eq!(
        out.route,
        ServerRoute::Udp {
            local: "2.2.2.2:4500".parse().unwrap(),
            remote: "198.51.100.7:44500".parse().unwrap(),
            non_esp_marker: false,
        }
    );
}

#[test]
fn nat_keepalive_after_twenty_seconds_of_send_idleness() {
    let mut w = World::new(ServerSetup::default(), 4);
    // DPD, L2TP Hello and LCP Echo would refresh the mapping too: turn them off.
    let i = w.add(
        LaptopSetup {
            ip: "192.168.0.10".parse().unwrap(),
            public: Some("198.51.100.7".parse().unwrap()),
            quiet: true,
            ..LaptopSetup::default()
        },
        4,
    );
    w.connect(i);
    w.drive(Duration::from_secs(2), |_| false);
    // Data keeps the mapping alive: the keepalive comes 20 s after the ping.
    w.ping(i);
    let ping_at = w.now;
    w.sent.clear();
    w.drive(Duration::from_secs(50), |_| false);
    let keepalive = Route::Udp {
        local: "192.168.0.10:4500".parse().unwrap(),
        remote: "2.2.2.2:4500".parse().unwrap(),
        non_esp_marker: false,
    };
    // Every send on 4500 (the ping at 0 s, DPD and L2TP answers to the server, keepalives).
    let mut sends = vec![(Duration::ZERO, false)];
    sends.extend(
        w.sent
            .iter()
            .filter(
                |(_, route, _)| matches!(route, Route::Udp { local, .. } if local.port() == 4500),
            )
            .map(|(at, route, bytes)| (*at - ping_at, *route == keepalive && bytes[..] == [0xff])),
    );
    let log = format!("{sends:?}");
    assert_eq!(sends[1], (Duration::from_secs(20), true), "{log}");
    assert!(sends.iter().filter(|s| s.1).count() >= 2, "{log}");
    for pair in sends.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap <= Duration::from_secs(20), "{log}");
        // A keepalive goes out exactly 20 s after the last datagram, never earlier.
        assert!(!pair[1].1 || gap == Duration::from_secs(20), "{log}");
    }
    // Early and repeated timer calls send nothing more.
    let now = w.now;
    w.laptops[i].engine.handle_timeout(now);
    w.laptops[i].engine.handle_timeout(now);
    let mut buf = vec![0u8; TRANSMIT_BUF_LEN];
    assert_eq!(w.laptops[i].engine.poll_transmit(now, &mut buf), None);
    // The server takes it as a keepalive.
    let mut k = vec![0xff];
    assert_eq!(
        w.server.handle_udp(
            now,
            "2.2.2.2:4500".parse().unwrap(),
            "198.51.100.7:44500".parse().unwrap(),
            &mut k
        ),
        Err(l2sec_server::engine::ipsec::Drop::Keepalive)
    );
}

#[test]
fn unreachable_server_is_an_ike_timeout() {
    let mut w = World::new(ServerSetup::default(), 5);
    let i = w.add(LaptopSetup::default(), 5);
    w.loss = 100;
    assert!(w.drive(Duration::from_secs(300), |w| w.laptops[0].down().is_some()));
    assert_eq!(
        w.laptops[i].down(),
        Some((Stage::Ike, DownReason::ServerUnreachable))
    );
    assert!(w.laptops[i].engine.is_finished());
    assert_eq!(w.laptops[i].engine.poll_timeout(), None);
}

#[test]
fn wrong_psk_is_reported_as_an_unanswered_authentication() {
    let mut w = World::new(ServerSetup::default(), 6);
    let i = w.add(
        LaptopSetup {
            psk: b"not-the-psk",
            ..LaptopSetup::default()
        },
        6,
    );
    assert!(w.drive(Duration::from_secs(300), |w| w.laptops[0].down().is_some()));
    assert_eq!(
        w.laptops[i].down(),
        Some((Stage::Ike, DownReason::NoAuthenticationReply))
    );
    assert_eq!(w.server.child_sas(), 0);
}

#[test]
fn no_common_proposal_is_reported_from_the_servers_notify() {
    let mut ike = ike::endpoint::Config::new(PSK);
    ike.phase1.policy.suites.retain(|s| {
        s.cipher == ike::crypto::CipherAlgorithm::AesCbc256
            && s.hash == ike::crypto::HashAlgorithm::Sha256
    });
    let mut w = World::new(
        ServerSetup {
            ike,
            ..ServerSetup::default()
        },
        7,
    );
    let mut offer = ike::endpoint::Config::new(PSK);
    offer
        .phase1
        .policy
        .suites
        .retain(|s| s.cipher == ike::crypto::CipherAlgorithm::TripleDesCbc);
    let i = w.add(
        LaptopSetup {
            ike: Some(offer),
            ..LaptopSetup::default()
        },
        7,
    );
    assert!(w.drive(Duration::from_secs(10), |w| w.laptops[0].down().is_some()));
    assert_eq!(
        w.laptops[i].down(),
        Some((Stage::Ike, DownReason::Refused(Refusal::NoProposalChosen)))
    );
}

#[test]
fn wrong_password_is_a_ppp_authentication_failure_and_everything_is_released() {
    for method in Method::ALL {
        let mut w = World::new(
            ServerSetup {
                methods: vec![method],
                ..ServerSetup::default()
            },
            8,
        );
        let i = w.add(
            LaptopSetup {
                password: "wrong",
                ..LaptopSetup::default()
            },
            8,
        );
        assert!(w.drive(Duration::from_secs(120), |w| w.laptops[0].down().is_some()));
        assert_eq!(
            w.laptops[i].down(),
            Some((Stage::Ppp, DownReason::Ppp(ppp::DownReason::AuthFailed))),
            "{method:?}"
        );
        assert_eq!(
            stages(&w.laptops[i].events),
            ["ike", "ipsec", "l2tp", "down"]
        );
        // The client tears down the rest: CDN, StopCCN, IKE Delete.
        assert!(w.drive(
            Duration::from_secs(60),
            |w| w.laptops[0].engine.is_finished()
                && w.server.child_sas() == 0
                && w.server.lns().sessions() == 0
        ));
        assert_eq!(w.server.lns().pool().in_use(), 0);
    }
}

#[test]
fn no_address_when_the_pool_of_one_is_taken() {
    let only = Ipv4Addr::new(172, 16, 1, 2);
    let pool = Pool::new(only, only, &[], &[]).unwrap();
    let mut w = World::new(
        ServerSetup {
            pool,
            ..ServerSetup::default()
        },
        9,
    );
    let first = w.add(LaptopSetup::default(), 9);
    assert_eq!(w.connect(first), Ipv4Addr::new(172, 16, 1, 2));
    let second = w.add(
        LaptopSetup {
            ip: "203.0.113.9".parse().unwrap(),
            ..LaptopSetup::default()
        },
        10,
    );
    assert!(w.drive(Duration::from_secs(120), |w| w.laptops[1].down().is_some()));
    assert_eq!(
        w.laptops[second].down(),
        Some((Stage::Ppp, DownReason::Ppp(ppp::DownReason::NoAddress)))
    );
    assert!(
        w.laptops[second]
            .events
            .contains(&ClientEvent::Authenticated {
                method: Method::Pap
            })
    );
    // The first laptop is untouched.
    assert!(w.laptops[first].engine.is_up());
    w.ping(first);
    assert_eq!(w.server.lns().pool().in_use(), 1);
}

#[test]
fn disconnect_tears_down_ppp_l2tp_and_ike_on_both_sides() {
    let mut w = World::new(ServerSetup::default(), 11);
    let i = w.add(LaptopSetup::default(), 11);
    w.connect(i);
    assert_eq!(w.server.lns().pool().in_use(), 1);
    let now = w.now;
    w.laptops[i].engine.disconnect(now);
    // Disconnecting twice changes nothing.
    w.laptops[i].engine.disconnect(now);
    assert!(!w.laptops[i].engine.is_up());
    let mut buf = vec![0u8; HEADROOM + 28 + TAILROOM];
    buf[HEADROOM] = 0x45;
    assert_eq!(
        w.laptops[i]
            .engine
            .handle_tun(&mut buf, HEADROOM..HEADROOM + 28),
        Err(Drop::NotConnected)
    );
    assert!(w.drive(Duration::from_secs(30), |w| w.laptops[0].down().is_some()));
    assert_eq!(
        w.laptops[i].down(),
        Some((Stage::Disconnected, DownReason::Requested))
    );
    assert!(w.laptops[i].engine.is_finished());
    assert_eq!(w.laptops[i].engine.child_sas(), 0);
    w.exchange();
    assert_eq!(w.server.child_sas(), 0, "IKE Delete removed the ESP SAs");
    assert_eq!(w.server.lns().sessions(), 0);
    assert_eq!(w.server.lns().pool().in_use(), 0);
    // Exactly one Down, nothing after.
    assert_eq!(
        stages(&w.laptops[i].events)
            .iter()
            .filter(|s| **s == "down")
            .count(),
        1
    );
    assert_eq!(w.laptops[i].engine.poll_timeout(), None);
}

#[test]
fn converges_with_ten_percent_loss_both_ways() {
    for seed in 100..130 {
        let mut w = World::new(ServerSetup::default(), seed);
        w.loss = 10;
        let i = w.add(LaptopSetup::default(), seed);
        assert!(
            w.drive(Duration::from_secs(120), |w| w.laptops[0]
                .address()
                .is_some()
                || w.laptops[0].down().is_some()),
            "seed {seed}: stuck"
        );
        assert_eq!(
            w.laptops[i].address(),
            Some(Ipv4Addr::new(172, 16, 1, 2)),
            "seed {seed}: {:?}",
            w.laptops[i].events
        );
        // The last IPCP Configure-Ack may have been lost: the server opens IPv4 once its
        // Configure-Request is answered again. Let that settle without loss, then ping.
        w.loss = 0;
        w.drive(Duration::from_secs(10), |_| false);
        w.ping(i);
    }
}

#[test]
fn hostile_datagrams_are_dropped_without_harm_at_every_stage() {
    let mut w = World::new(ServerSetup::default(), 12);
    let i = w.add(LaptopSetup::default(), 12);
    let mut junk = ChaCha20Rng::seed_from_u64(12);
    let server_500 = server_ike();
    let server_4500 = SocketAddr::new(SERVER_IP, 4500);
    let local_500: SocketAddr = "203.0.113.5:500".parse().unwrap();
    let local_4500: SocketAddr = "203.0.113.5:4500".parse().unwrap();
    let feed = |w: &mut World, junk: &mut ChaCha20Rng, connected: bool| {
        let now = w.now;
        let engine = &mut w.laptops[i].engine;
        for len in [0usize, 1, 3, 4, 5, 8, 27, 28, 29, 60, 200] {
            let mut bytes = vec![0u8; len];
            junk.fill_bytes(&mut bytes);
            let _ = engine.handle_udp(now, local_500, server_500, &mut bytes.clone());
            let _ = engine.handle_udp(now, local_4500, server_4500, &mut bytes.clone());
            let _ = engine.handle_esp(now, SERVER_IP, &mut bytes.clone());
            // The same with the non-ESP marker, and from a stranger.
            let mut marked = [&[0u8; 4][..], &bytes].concat();
            let _ = engine.handle_udp(now, local_4500, server_4500, &mut marked);
            assert_eq!(
                engine.handle_udp(
                    now,
                    local_500,
                    "192.0.2.66:500".parse().unwrap(),
                    &mut bytes
                ),
                Err(Drop::UnknownPeer)
            );
        }
        // A Main Mode message 1 would make a responder of us: refused before we are connected;
        // once connected it is the server rekeying phase 1 (strongSwan does), and answered.
        let mut other = Ike::new(
            ike::endpoint::Config::new(PSK),
            ChaCha20Rng::seed_from_u64(99),
        );
        let path = Path {
            local: server_500,
            remote: local_500,
        };
        other.connect(now, path).unwrap();
        let mut buf = vec![0u8; 4096];
        let t = other.poll_transmit(&mut buf).unwrap();
        let answer = engine.handle_udp(now, local_500, server_500, &mut buf[..t.len]);
        if connected {
            assert_eq!(answer, Ok(None));
        } else {
            assert_eq!(answer, Err(Drop::NotOurs));
        }
    };
    feed(&mut w, &mut junk, false);
    w.connect(i);
    feed(&mut w, &mut junk, true);
    w.drive(Duration::from_secs(5), |_| false);
    assert!(w.laptops[i].engine.is_up());
    assert!(w.laptops[i].down().is_none());
    w.ping(i);
}
