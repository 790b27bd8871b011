//! The whole server engine against a client built from the same crates, in memory: IKE Main
//! Mode and Quick Mode, ESP (plain and UDP-encapsulated), L2TP, PPP, a ping through TUN.

use super::*;
use crate::engine::lns::HEADROOM as LNS_HEADROOM;
use crate::engine::pool::Pool;
use crate::testing::{
    ServerSetup, reference_policy, reference_pool, reference_server, reference_users,
};
use ike::ikev1::main_mode::Path;
use l2tp::Received;
use ppp::auth::Password;
use ppp::wire::Protocol;
use ppp::{ClientConfig, Session};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

const PSK: &[u8] = b"interop-test-psk";

fn server() -> Engine<ChaCha20Rng> {
    server_with(
        ike::endpoint::Config::new(PSK),
        "admin@123",
        reference_pool(),
    )
}

/// The reference server with its IKE settings, the user's password and the pool replaced.
fn server_with(ike: ike::endpoint::Config, password: &str, pool: Pool) -> Engine<ChaCha20Rng> {
    let setup = ServerSetup {
        ike,
        password: password.to_owned(),
        pool,
        ..ServerSetup::default()
    };
    reference_server(setup, 1)
}

/// The laptop: IKE initiator, ESP, LAC, PPP client.
struct Laptop {
    ike: Ike<ChaCha20Rng>,
    sadb: SaDb,
    outbound: Option<(u32, bool)>,
    l2tp: l2tp::Endpoint<ChaCha20Rng>,
    data: Option<l2tp::DataPath>,
    ppp: Option<Session>,
    /// What the PPP session's inputs draw from.
    ppp_rng: ChaCha20Rng,
    ike_path: Path,
    rng: ChaCha20Rng,
}

const SERVER_IKE: &str = "2.2.2.2:500";

impl Laptop {
    fn new(now: Instant, local: SocketAddr) -> Self {
        Self::with_config(now, local, ike::endpoint::Config::new(PSK))
    }

    /// A laptop with its own IKE settings (the ESP transforms it proposes, say).
    fn with_config(now: Instant, local: SocketAddr, config: ike::endpoint::Config) -> Self {
        let mut ike = Ike::new(config, ChaCha20Rng::seed_from_u64(3));
        let ike_path = Path {
            local,
            remote: SERVER_IKE.parse().unwrap(),
        };
        ike.connect(now, ike_path).unwrap();
        Self {
            ike,
            sadb: SaDb::new(16),
            outbound: None,
            l2tp: l2tp::Endpoint::new(
                Arc::new(l2tp::Config::default()),
                ChaCha20Rng::seed_from_u64(4),
            ),
            data: None,
            ppp: None,
            ppp_rng: ChaCha20Rng::seed_from_u64(6),
            ike_path,
            rng: ChaCha20Rng::seed_from_u64(5),
        }
    }

    fn ipv4(&self) -> Option<Ipv4Addr> {
        self.ppp.as_ref().and_then(Session::ipv4).map(|l| l.local)
    }

    /// Seals an inner L2TP datagram (UDP 1701 → 1701) for the server.
    fn seal(&mut self, l2tp: &[u8]) -> Option<(bool, Vec<u8>)> {
        let (spi, encapsulated) = self.outbound?;
        let mut buf = vec![0u8; HEADROOM + UDP_HEADER_LEN + l2tp.len() + TAILROOM];
        let start = HEADROOM;
        let len = u16::try_from(UDP_HEADER_LEN + l2tp.len()).unwrap();
        buf[start..start + 8].copy_from_slice(
            &[
                &1701u16.to_be_bytes()[..],
                &1701u16.to_be_bytes(),
                &len.to_be_bytes(),
                &[0, 0],
            ]
            .concat(),
        );
        buf[start + 8..start + 8 + l2tp.len()].copy_from_slice(l2tp);
        let sa = self.sadb.outbound_mut(Spi(spi)).unwrap();
        let range = sa
            .seal(
                &mut buf,
                start..start + 8 + l2tp.len(),
                IpProtocol(17),
                &mut self.rng,
            )
            .unwrap();
        Some((encapsulated, buf[range].to_vec()))
    }
}

struct World {
    now: Instant,
    server: Engine<ChaCha20Rng>,
    laptop: Laptop,
    tun: Vec<Vec<u8>>,
    /// When false the laptop vanished: nothing reaches it or comes from it.
    connected: bool,
}

impl World {
    /// `server` and a laptop at 203.0.113.5:500 that has just started to connect, at `now`.
    fn new(now: Instant, server: Engine<ChaCha20Rng>) -> Self {
        Self {
            now,
            laptop: Laptop::new(now, "203.0.113.5:500".parse().unwrap()),
            server,
            tun: Vec::new(),
            connected: true,
        }
    }

    /// Everything the laptop sends reaches the server and back, until quiet.
    fn exchange(&mut self) {
        let mut buf = [0u8; 4096];
        if !self.connected {
            while self.server.poll_transmit(self.now, &mut buf).is_some() {}
            return;
        }
        let server_ip: IpAddr = "2.2.2.2".parse().unwrap();
        let mut progress = true;
        while progress {
            progress = false;
            // Laptop → server: IKE.
            while let Some(t) = self.laptop.ike.poll_transmit(&mut buf) {
                progress = true;
                let mut datagram = if t.non_esp_marker {
                    [&[0u8; 4][..], &buf[..t.len]].concat()
                } else {
                    buf[..t.len].to_vec()
                };
                let _ = self
                    .server
                    .handle_udp(self.now, t.remote, t.local, &mut datagram);
            }
            while let Some(e) = self.laptop.ike.poll_event() {
                if let IkeEvent::ChildSaUp { child, .. } = e {
                    let t = child.transform;
                    self.laptop
                        .sadb
                        .insert(
                            Sa::inbound(Spi(child.inbound_spi), t, child.inbound_keys()).unwrap(),
                        )
                        .unwrap();
                    self.laptop
                        .sadb
                        .insert(
                            Sa::outbound(
                                Spi(child.outbound_spi),
                                t,
                                child.outbound_keys(),
                                &mut self.laptop.rng,
                            )
                            .unwrap(),
                        )
                        .unwrap();
                    let encapsulated =
                        matches!(child.encapsulation, Encapsulation::UdpTransport(_));
                    self.laptop.outbound = Some((child.outbound_spi, encapsulated));
                    self.laptop
                        .l2tp
                        .connect(self.now, SocketAddr::new(server_ip, 1701))
                        .unwrap();
                }
            }
            // Laptop → server: L2TP control and PPP, inside ESP.
            let mut datagrams = Vec::new();
            while let Some(t) = self.laptop.l2tp.poll_transmit(self.now, &mut buf) {
                datagrams.push(buf[..t.len].to_vec());
            }
            while let Some(e) = self.laptop.l2tp.poll_event() {
                if let l2tp::Event::SessionUp(up) = e {
                    self.laptop.data = self.laptop.l2tp.data_path(up.tunnel, up.session);
                    let config = Arc::new(ClientConfig::new("hb@hb", Password::new("admin@123")));
                    self.laptop.ppp_rng = ChaCha20Rng::seed_from_u64(6);
                    let rng = &mut self.laptop.ppp_rng;
                    self.laptop.ppp = Some(Session::client(config, rng, self.now));
                }
            }
            if let (Some(ppp), Some(data)) = (self.laptop.ppp.as_mut(), self.laptop.data) {
                while let Some(n) = ppp.poll_transmit(&mut buf[LNS_HEADROOM..]) {
                    let range = data
                        .encapsulate(&mut buf, LNS_HEADROOM..LNS_HEADROOM + n)
                        .unwrap();
                    datagrams.push(buf[range].to_vec());
                }
                while ppp.poll_event().is_some() {}
            }
            for d in datagrams {
                progress = true;
                self.deliver_to_server(&d);
            }
            // Server → laptop.
            while let Some(out) = self.server.poll_transmit(self.now, &mut buf) {
                progress = true;
                let bytes = buf[out.range].to_vec();
                self.deliver_to_laptop(out.route, bytes);
            }
        }
    }

    fn deliver_to_server(&mut self, l2tp: &[u8]) {
        let Some((encapsulated, mut esp)) = self.laptop.seal(l2tp) else {
            return;
        };
        let result = if encapsulated {
            let remote = SocketAddr::new(self.laptop.ike_path.local.ip(), 4500);
            self.server
                .handle_udp(self.now, "2.2.2.2:4500".parse().unwrap(), remote, &mut esp)
        } else {
            self.server
                .handle_esp(self.now, self.laptop.ike_path.local.ip(), &mut esp)
        };
        if let Ok(Some(range)) = result {
            self.tun.push(esp[range].to_vec());
        }
    }

    fn deliver_to_laptop(&mut self, route: Route, mut bytes: Vec<u8>) {
        let esp = match route {
            Route::Udp {
                local,
                remote,
                non_esp_marker: true,
            } => {
                let _ = self.laptop.ike.handle_datagram(
                    self.now,
                    Path {
                        local: remote,
                        remote: local,
                    },
                    &bytes[..],
                );
                return;
            }
            Route::Udp {
                local,
                remote,
                non_esp_marker: false,
            } if local.port() == 500 => {
                let _ = self.laptop.ike.handle_datagram(
                    self.now,
                    Path {
                        local: remote,
                        remote: local,
                    },
                    &bytes[..],
                );
                return;
            }
            Route::Udp { .. } | Route::Esp { .. } => &mut bytes,
        };
        let Ok((_, opened)) = self.laptop.sadb.open(esp) else {
            return;
        };
        let l2tp = opened.payload.start + UDP_HEADER_LEN..opened.payload.end;
        let mut inner = esp[l2tp].to_vec();
        if let Ok(Received::Data(d)) =
            self.laptop
                .l2tp
                .handle_datagram(self.now, "2.2.2.2:1701".parse().unwrap(), &mut inner)
            && let Some(ppp) = self.laptop.ppp.as_mut()
        {
            let _ = ppp.handle_frame(self.now, &mut self.laptop.ppp_rng, &inner[d.frame]);
        }
    }

    fn drive(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.exchange();
            if done(self) {
                return true;
            }
            let laptop = [
                self.laptop.ike.poll_timeout(),
                self.laptop.l2tp.poll_timeout(),
                self.laptop.ppp.as_ref().and_then(Session::poll_timeout),
            ];
            let next = [self.server.poll_timeout()]
                .into_iter()
                .chain(laptop.into_iter().filter(|_| self.connected))
                .flatten()
                .min();
            let Some(next) = next.filter(|n| *n <= end) else {
                return done(self);
            };
            self.now = self.now.max(next);
            self.server.handle_timeout(self.now);
            self.laptop.ike.handle_timeout(self.now);
            self.laptop.l2tp.handle_timeout(self.now);
            if let Some(p) = self.laptop.ppp.as_mut() {
                p.handle_timeout(self.now, &mut self.laptop.ppp_rng);
            }
        }
    }
}

fn icmp(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[8, 0, 0xf7, 0xfe, 0, 1, 0, 0]);
    p
}

#[test]
fn reference_scenario_in_memory_ike_esp_l2tp_ppp_and_a_ping() {
    let now = t0();
    let mut w = World::new(now, server());
    w.server.enable_keylog();
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    let address = w.laptop.ipv4().unwrap();
    assert_eq!(address, Ipv4Addr::new(172, 16, 1, 2));
    // The key log has one Wireshark ikev1_decryption_table row (initiator cookie, ISAKMP
    // encryption key) and one esp_sa row per direction.
    let keylog = w.server.take_keylog();
    let ike: Vec<_> = keylog
        .iter()
        .filter_map(|r| match r {
            KeyLogRow::Ikev1(r) => Some(r),
            KeyLogRow::Esp(_) => None,
        })
        .collect();
    let esp: Vec<_> = keylog
        .iter()
        .filter_map(|r| match r {
            KeyLogRow::Esp(r) => Some(r),
            KeyLogRow::Ikev1(_) => None,
        })
        .collect();
    assert_eq!((ike.len(), esp.len()), (1, 2), "{keylog:?}");
    let (cookie, key) = ike[0].split_once(',').unwrap();
    assert_eq!(cookie.len(), 16);
    assert!([32, 48, 64].contains(&key.len()), "{key}");
    assert!(
        (cookie.to_owned() + key)
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
    );
    let (spi, _) = w.laptop.outbound.unwrap();
    assert!(
        esp[0].starts_with(&format!(
            "\"IPv4\",\"203.0.113.5\",\"2.2.2.2\",\"{spi:#010x}\""
        )),
        "{}",
        esp[0]
    );
    assert!(esp.iter().all(|l| l.split("\",\"").count() == 8));
    assert_eq!(w.server.child_sas(), 1);
    // A ping from the pool address to the intranet server comes out of TUN intact.
    let ping = icmp(address, Ipv4Addr::new(192, 168, 1, 1));
    let mut buf = vec![0u8; LNS_HEADROOM + ping.len()];
    buf[LNS_HEADROOM..].copy_from_slice(&ping);
    let ppp = w.laptop.ppp.as_ref().unwrap();
    let end = buf.len();
    let frame = ppp
        .encapsulate(Protocol::IPV4, &mut buf, LNS_HEADROOM..end)
        .unwrap();
    let range = w.laptop.data.unwrap().encapsulate(&mut buf, frame).unwrap();
    let datagram = buf[range].to_vec();
    w.deliver_to_server(&datagram);
    assert_eq!(w.tun.last(), Some(&ping), "the ping reaches TUN");
    // The reply from the intranet is sealed for the laptop and reaches its IP layer.
    let reply = icmp(Ipv4Addr::new(192, 168, 1, 1), address);
    let mut buf = vec![0u8; HEADROOM + reply.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + reply.len()].copy_from_slice(&reply);
    let out = w
        .server
        .handle_tun(&mut buf, HEADROOM..HEADROOM + reply.len())
        .unwrap();
    assert_eq!(
        out.route,
        Route::Esp {
            local: "2.2.2.2".parse().unwrap(),
            remote: "203.0.113.5".parse().unwrap()
        },
        "plain ESP without NAT, from the address the IKE SA was made on"
    );
    let mut esp = buf[out.range].to_vec();
    let (_, opened) = w.laptop.sadb.open(&mut esp).unwrap();
    assert_eq!(
        &esp[opened.payload.start..opened.payload.start + 4],
        &[0x06, 0xa5, 0x06, 0xa5]
    );
    // Plain L2TP to 1701 is refused.
    let mut plain = datagram.clone();
    assert_eq!(
        w.server.handle_udp(
            w.now,
            "2.2.2.2:1701".parse().unwrap(),
            "203.0.113.5:1701".parse().unwrap(),
            &mut plain
        ),
        Err(Drop::PlainL2tp)
    );
}

#[test]
fn a_vanished_client_is_found_dead_and_its_address_returns_to_the_pool() {
    let now = t0();
    let mut w = World::new(now, server());
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    assert_eq!(w.server.lns().pool().in_use(), 1);
    w.connected = false;
    let start = w.now;
    // LCP echo (30 s × 4), L2TP HELLO and IKE DPD all notice; the first one frees everything.
    assert!(
        w.drive(Duration::from_secs(600), |w| w.server.lns().pool().in_use()
            == 0
            && w.server.lns().sessions() == 0)
    );
    let freed_after = w.now - start;
    assert!(
        freed_after <= Duration::from_secs(200),
        "freed after {freed_after:?}"
    );
    assert!(
        w.drive(Duration::from_secs(600), |w| w.server.child_sas() == 0),
        "ESP SAs go with the dead IKE SA"
    );
}

#[test]
fn plain_l2tp_only_when_allowed() {
    let now = t0();
    let mut lac = l2tp::Endpoint::new(
        Arc::new(l2tp::Config::default()),
        ChaCha20Rng::seed_from_u64(9),
    );
    lac.connect(now, "2.2.2.2:1701".parse().unwrap()).unwrap();
    let mut buf = [0u8; 2048];
    let n = lac.poll_transmit(now, &mut buf).unwrap().len;
    let sccrq = buf[..n].to_vec();
    let (local, remote): (SocketAddr, SocketAddr) = (
        "2.2.2.2:1701".parse().unwrap(),
        "203.0.113.5:1701".parse().unwrap(),
    );
    let mut engine = server();
    assert_eq!(
        engine.handle_udp(now, local, remote, &mut sccrq.clone()),
        Err(Drop::PlainL2tp)
    );
    assert!(
        engine.poll_transmit(now, &mut buf).is_none(),
        "refused without a reply"
    );
    engine.allow_plain_l2tp(true);
    assert_eq!(
        engine.handle_udp(now, local, remote, &mut sccrq.clone()),
        Ok(None)
    );
    let out = engine.poll_transmit(now, &mut buf).expect("SCCRP");
    assert_eq!(
        out.route,
        Route::Udp {
            local,
            remote,
            non_esp_marker: false
        }
    );
    let mut sccrp = buf[out.range].to_vec();
    assert!(
        lac.handle_datagram(now, "2.2.2.2:1701".parse().unwrap(), &mut sccrp)
            .is_ok()
    );
}
mod metrics;

#[path = "admin_tests.rs"]
mod admin_tests;

#[path = "batch_tests.rs"]
mod batch_tests;
