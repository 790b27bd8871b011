//! The LNS layer against our own LAC and PPP client, in memory and simulated time (no IPsec).

use super::*;
use crate::engine::policy::{Proto, Rule};
use ppp::auth::Password;
use ppp::{ClientConfig, ServerConfig};
use std::time::Duration;

const USERS: &str = r#"
[[user]]
name = "hb@hb"
password = "admin@123"

[[user]]
name = "alice"
nt_hash = "8846f7eaee8fb117ad06bdd830b7586c"
address = "172.16.1.77"
"#;

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

fn new_lns(methods: Vec<Method>, pool_last: Ipv4Addr) -> Lns<ChaCha20Rng> {
    let config = LnsConfig {
        l2tp: Arc::new(l2tp::Config::default()),
        ppp: Arc::new(ServerConfig {
            methods,
            ..ServerConfig::default()
        }),
        local: Ipv4Addr::new(172, 16, 1, 1),
        dns: [Some(Ipv4Addr::new(192, 168, 1, 1)), None],
    };
    let users = Users::parse("users.toml", USERS).unwrap();
    let pool = Pool::new(
        Ipv4Addr::new(172, 16, 1, 2),
        pool_last,
        &[],
        &[Ipv4Addr::new(172, 16, 1, 77)],
    )
    .unwrap();
    let policy = Policy::new(vec![Rule {
        from: vec!["172.16.1.0/24".parse().unwrap()],
        to: vec!["192.168.1.0/24".parse().unwrap()],
        proto: Proto::Any,
        ports: None,
    }]);
    Lns::new(config, pool, users, policy, ChaCha20Rng::seed_from_u64(1))
}

const SERVER: &str = "2.2.2.2:1701";

/// One client: a LAC endpoint and a PPP client session.
struct Client {
    addr: SocketAddr,
    l2tp: l2tp::Endpoint<ChaCha20Rng>,
    ppp: Option<Session>,
    /// What the PPP session's inputs draw from.
    ppp_rng: ChaCha20Rng,
    config: Arc<ClientConfig>,
    data: Option<DataPath>,
    down: Option<DownReason>,
    tunnel: Option<TunnelId>,
    /// The Result Code of the CDN the LNS ended the call with.
    cdn: Option<CdnResult>,
    /// Calls the test placed in the tunnel besides the first: they have no PPP here.
    extra_calls: Vec<SessionId>,
}

impl Client {
    fn new(n: u8, user: &str, password: &str, now: Instant) -> Self {
        let mut l2tp = l2tp::Endpoint::new(
            Arc::new(l2tp::Config::default()),
            ChaCha20Rng::seed_from_u64(u64::from(n) + 10),
        );
        l2tp.connect(now, SERVER.parse().unwrap()).unwrap();
        Self {
            addr: SocketAddr::from(([10, 0, 0, n], 1701)),
            l2tp,
            ppp: None,
            ppp_rng: ChaCha20Rng::seed_from_u64(99),
            config: Arc::new(ClientConfig::new(user, Password::new(password))),
            data: None,
            down: None,
            tunnel: None,
            cdn: None,
            extra_calls: Vec::new(),
        }
    }

    fn ipv4(&self) -> Option<Ipv4Addr> {
        self.ppp.as_ref().and_then(|p| p.ipv4()).map(|l| l.local)
    }
}

/// Moves everything between the clients and the LNS until quiet, then advances time.
fn run(
    lns: &mut Lns<ChaCha20Rng>,
    clients: &mut [Client],
    now: &mut Instant,
    limit: Duration,
    done: impl Fn(&Lns<ChaCha20Rng>, &[Client]) -> bool,
) -> bool {
    run_with(lns, clients, now, limit, None, done)
}

/// As [`run`], with RADIUS datagrams going to (and answered by) `radius`.
fn run_with(
    lns: &mut Lns<ChaCha20Rng>,
    clients: &mut [Client],
    now: &mut Instant,
    limit: Duration,
    mut radius: Option<&mut FakeRadius>,
    done: impl Fn(&Lns<ChaCha20Rng>, &[Client]) -> bool,
) -> bool {
    let end = *now + limit;
    let mut buf = [0u8; 2048];
    loop {
        let mut progress = true;
        while progress {
            progress = false;
            let mut rbuf = [0u8; 4096];
            while let Some((to, n)) = lns.poll_radius_transmit(&mut rbuf) {
                progress = true;
                if let Some(answer) = radius.as_mut().and_then(|r| r.handle(*now, &rbuf[..n])) {
                    let _ = lns.handle_radius(*now, to, &answer);
                }
            }
            for c in clients.iter_mut() {
                while let Some(t) = c.l2tp.poll_transmit(*now, &mut buf) {
                    progress = true;
                    let _ = lns.handle_l2tp(*now, c.addr, &mut buf[..t.len]);
                }
                while let Some(e) = c.l2tp.poll_event() {
                    if let l2tp::Event::SessionDown {
                        reason:
                            l2tp::SessionDownReason::Disconnected {
                                origin: l2tp::Origin::Peer,
                                result,
                                ..
                            },
                        ..
                    } = e
                    {
                        c.cdn = Some(result);
                    }
                    if let l2tp::Event::SessionUp(up) = e
                        && !c.extra_calls.contains(&up.session)
                    {
                        c.tunnel = Some(up.tunnel);
                        c.data = c.l2tp.data_path(up.tunnel, up.session);
                        c.ppp_rng = ChaCha20Rng::seed_from_u64(99);
                        c.ppp = Some(Session::client(Arc::clone(&c.config), &mut c.ppp_rng, *now));
                    }
                }
                if let (Some(ppp), Some(data)) = (c.ppp.as_mut(), c.data) {
                    while let Some(n) = ppp.poll_transmit(&mut buf[HEADROOM..]) {
                        progress = true;
                        let range = data.encapsulate(&mut buf, HEADROOM..HEADROOM + n).unwrap();
                        let mut datagram = buf[range].to_vec();
                        let _ = lns.handle_l2tp(*now, c.addr, &mut datagram);
                    }
                    while let Some(e) = ppp.poll_event() {
                        if let ppp::Event::Down(r) = e {
                            c.down = Some(r);
                        }
                    }
                }
            }
            while let Some((peer, n)) = lns.poll_transmit(*now, &mut buf) {
                progress = true;
                // Clients may share an address (and port): the one that owns the tunnel takes it.
                let datagram = buf[..n].to_vec();
                for c in clients.iter_mut().filter(|c| c.addr == peer) {
                    let mut datagram = datagram.clone();
                    let received =
                        c.l2tp
                            .handle_datagram(*now, SERVER.parse().unwrap(), &mut datagram);
                    if let Err(l2tp::Discard::UnknownTunnel(_)) = received {
                        continue;
                    }
                    let Ok(Received::Data(d)) = received else {
                        break;
                    };
                    let Some(ppp) = c
                        .ppp
                        .as_mut()
                        .filter(|_| !c.extra_calls.contains(&d.session))
                    else {
                        break;
                    };
                    if let Some(r) = radius.as_mut() {
                        r.frames.push(datagram[d.frame.clone()].to_vec());
                    }
                    let _ = ppp.handle_frame(*now, &mut c.ppp_rng, &datagram[d.frame]);
                    break;
                }
            }
        }
        if done(lns, clients) {
            return true;
        }
        let next = clients
            .iter()
            .flat_map(|c| {
                [
                    c.l2tp.poll_timeout(),
                    c.ppp.as_ref().and_then(|p| p.poll_timeout()),
                ]
            })
            .flatten()
            .chain(lns.poll_timeout())
            .min();
        let Some(next) = next else {
            return done(lns, clients);
        };
        if next > end {
            return done(lns, clients);
        }
        *now = (*now).max(next);
        lns.handle_timeout(*now);
        for c in clients.iter_mut() {
            c.l2tp.handle_timeout(*now);
            if let Some(p) = c.ppp.as_mut() {
                p.handle_timeout(*now, &mut c.ppp_rng);
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

/// Sends `packet` from the client through PPP and L2TP to the LNS; returns what reaches TUN.
fn send_up(
    lns: &mut Lns<ChaCha20Rng>,
    c: &mut Client,
    now: Instant,
    packet: &[u8],
) -> Result<Vec<u8>, Drop> {
    let mut buf = vec![0u8; HEADROOM + packet.len()];
    buf[HEADROOM..].copy_from_slice(packet);
    let end = buf.len();
    let frame = c
        .ppp
        .as_ref()
        .unwrap()
        .encapsulate(Protocol::IPV4, &mut buf, HEADROOM..end)
        .unwrap();
    let range = c.data.unwrap().encapsulate(&mut buf, frame).unwrap();
    let mut datagram = buf[range].to_vec();
    let out = lns.handle_l2tp(now, c.addr, &mut datagram)?;
    Ok(datagram[out.unwrap()].to_vec())
}

#[test]
fn reference_flow_pap_address_ping_and_teardown() {
    let mut now = t0();
    // PAP only, as in the reference scenario (with MS-CHAP-V2 also allowed, the client would
    // ask for it instead).
    let mut lns = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 100));
    let mut clients = vec![Client::new(5, "hb@hb", "admin@123", now)];
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        |_, c| c[0].ipv4().is_some()
    ));
    let address = clients[0].ipv4().unwrap();
    assert_eq!(address, Ipv4Addr::new(172, 16, 1, 2), "first pool address");
    let events: Vec<_> = std::iter::from_fn(|| lns.poll_event()).collect();
    assert!(events.contains(&LnsEvent::Connected {
        peer: clients[0].addr,
        user: "hb@hb".into(),
        address,
        method: Method::Pap
    }));
    // Ping the intranet server: the packet reaches TUN untouched.
    let ping = icmp(address, Ipv4Addr::new(192, 168, 1, 1));
    assert_eq!(
        send_up(&mut lns, &mut clients[0], now, &ping).unwrap(),
        ping
    );
    // The reply from TUN reaches the client's IP layer.
    let reply = icmp(Ipv4Addr::new(192, 168, 1, 1), address);
    let mut buf = vec![0u8; HEADROOM + reply.len()];
    buf[HEADROOM..].copy_from_slice(&reply);
    let (peer, range) = lns
        .handle_tun(&mut buf, HEADROOM..HEADROOM + reply.len())
        .unwrap();
    assert_eq!(peer, clients[0].addr);
    let mut datagram = buf[range].to_vec();
    let Ok(Received::Data(d)) =
        clients[0]
            .l2tp
            .handle_datagram(now, SERVER.parse().unwrap(), &mut datagram)
    else {
        panic!()
    };
    let c = &mut clients[0];
    assert_eq!(
        c.ppp
            .as_mut()
            .unwrap()
            .handle_frame(now, &mut c.ppp_rng, &datagram[d.frame]),
        Ok(ppp::Received::Ipv4(&reply[..]))
    );
    // Policy: the dmz is not reachable; a forged source is dropped.
    assert_eq!(
        send_up(
            &mut lns,
            &mut clients[0],
            now,
            &icmp(address, Ipv4Addr::new(10, 9, 9, 9))
        ),
        Err(Drop::Policy)
    );
    assert_eq!(
        send_up(
            &mut lns,
            &mut clients[0],
            now,
            &icmp(Ipv4Addr::new(172, 16, 1, 99), Ipv4Addr::new(192, 168, 1, 1))
        ),
        Err(Drop::Spoofed)
    );
    assert_eq!(lns.stats().spoofed, 1);
    // The client hangs up: the address goes back to the pool.
    clients[0].ppp.as_mut().unwrap().close(now);
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        |l, _| l.sessions() == 0
    ));
    assert_eq!(lns.pool().in_use(), 0);
    let events: Vec<_> = std::iter::from_fn(|| lns.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, LnsEvent::Disconnected { address: Some(a), reason: DownReason::PeerTerminated, .. } if *a == address))
    );
}

#[test]
fn every_method_static_address_and_nt_hash_users() {
    for method in [Method::Pap, Method::ChapMd5, Method::MsChapV2] {
        let mut now = t0();
        let mut lns = new_lns(vec![method], Ipv4Addr::new(172, 16, 1, 100));
        let mut clients = vec![Client::new(5, "hb@hb", "admin@123", now)];
        assert!(
            run(
                &mut lns,
                &mut clients,
                &mut now,
                Duration::from_secs(10),
                |_, c| c[0].ipv4().is_some()
            ),
            "{method:?}"
        );
    }
    // alice has only an NT hash and a static address: MS-CHAP-V2 and PAP work.
    for method in [Method::MsChapV2, Method::Pap] {
        let mut now = t0();
        let mut lns = new_lns(vec![method], Ipv4Addr::new(172, 16, 1, 100));
        let mut clients = vec![Client::new(6, "alice", "password", now)];
        assert!(
            run(
                &mut lns,
                &mut clients,
                &mut now,
                Duration::from_secs(10),
                |_, c| c[0].ipv4().is_some()
            ),
            "{method:?}"
        );
        assert_eq!(clients[0].ipv4(), Some(Ipv4Addr::new(172, 16, 1, 77)));
    }
}

#[test]
fn wrong_password_and_exhausted_pool() {
    let mut now = t0();
    let mut lns = new_lns(vec![Method::MsChapV2], Ipv4Addr::new(172, 16, 1, 3));
    let mut clients = vec![Client::new(5, "hb@hb", "wrong", now)];
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        |_, c| c[0].down.is_some()
    ));
    assert_eq!(clients[0].down, Some(DownReason::AuthFailed));
    assert!(
        std::iter::from_fn(|| lns.poll_event()).any(|e| matches!(e, LnsEvent::AuthFailed { .. }))
    );
    assert_eq!(lns.pool().in_use(), 0);
    // A pool of two: the third client is refused an address, the first two are unaffected.
    let mut now = t0();
    let mut lns = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 3));
    let mut clients: Vec<Client> = (1..=3)
        .map(|n| Client::new(n, "hb@hb", "admin@123", now))
        .collect();
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        |_, c| c.iter().filter(|c| c.ipv4().is_some()).count() == 2
            && c.iter().any(|c| c.down.is_some())
    ));
    let refused: Vec<_> = clients.iter().filter(|c| c.down.is_some()).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(lns.pool().in_use(), 2);
    let addresses: Vec<_> = clients.iter().filter_map(Client::ipv4).collect();
    assert_ne!(addresses[0], addresses[1]);
}

#[test]
fn a_stopccn_from_the_client_is_a_clean_hang_up_and_frees_the_address() {
    // xl2tpd's `d` sends StopCCN (general request) before pppd gets to say goodbye.
    let mut now = t0();
    let mut lns = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 100));
    let mut clients = vec![Client::new(7, "hb@hb", "admin@123", now)];
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        |_, c| c[0].ipv4().is_some()
    ));
    let tunnel = clients[0].tunnel.unwrap();
    clients[0]
        .l2tp
        .close_tunnel(now, tunnel, StopCcnResult::GENERAL_REQUEST, None)
        .unwrap();
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        |l, _| l.sessions() == 0
    ));
    assert_eq!(lns.pool().in_use(), 0);
    let events: Vec<_> = std::iter::from_fn(|| lns.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            LnsEvent::Disconnected {
                reason: DownReason::PeerTerminated,
                ..
            }
        )),
        "{events:?}"
    );
}

// ---- RADIUS, against a fake server in simulated time ----

use crate::engine::radius::{DaeClient, Order, RadiusSettings};
use radius::crypto::{Secret as RadiusSecret, reveal_user_password};
use radius::wire::{Attr, Attributes, Code, Packet, PacketWriter};

const RADIUS_ADDR: &str = "127.0.0.1:1812";
const RADIUS_ACCT: &str = "127.0.0.1:1813";

/// A RADIUS server that accepts `password` for every user with `reply` attributes, answers
/// accounting, and keeps what it received.
struct FakeRadius {
    secret: RadiusSecret,
    password: &'static [u8],
    reply: Vec<Attr<'static>>,
    silent: bool,
    /// Reply-Message of an Access-Reject.
    reject_message: &'static [u8],
    /// PPP frames the LNS sent the clients meanwhile.
    frames: Vec<Vec<u8>>,
    /// (when, status type) of every Accounting-Request, and its attributes' debug text.
    accounting: Vec<(Instant, u32, String)>,
}

impl FakeRadius {
    fn new(reply: Vec<Attr<'static>>) -> Self {
        Self {
            secret: RadiusSecret::new("fake-secret"),
            password: b"radius-pass",
            reply,
            silent: false,
            reject_message: b"",
            frames: Vec::new(),
            accounting: Vec::new(),
        }
    }

    fn handle(&mut self, now: Instant, datagram: &[u8]) -> Option<Vec<u8>> {
        if self.silent {
            return None;
        }
        let p = Packet::new_checked(datagram).unwrap();
        let attrs: Vec<Attr<'_>> = Attributes::new(p.attribute_bytes())
            .map(|a| Attr::parse(a.unwrap()).unwrap())
            .collect();
        let code = match p.code() {
            Code::ACCESS_REQUEST => {
                let ok = attrs.iter().any(|a| {
                    matches!(a, Attr::UserPassword(h)
                        if reveal_user_password(h, &self.secret, &p.authenticator())
                            .is_ok_and(|pw| pw.expose() == self.password))
                });
                if ok {
                    Code::ACCESS_ACCEPT
                } else {
                    Code::ACCESS_REJECT
                }
            }
            Code::ACCOUNTING_REQUEST => {
                let status = attrs.iter().find_map(|a| match a {
                    Attr::AcctStatusType(t) => Some(u32::from(*t)),
                    _ => None,
                });
                self.accounting
                    .push((now, status.unwrap(), format!("{attrs:?}")));
                Code::ACCOUNTING_RESPONSE
            }
            other => panic!("{other:?}"),
        };
        let mut buf = [0u8; 4096];
        let mut w = PacketWriter::new(
            &mut buf,
            code,
            p.identifier(),
            &radius::wire::Authenticator::ZERO,
        )
        .unwrap();
        w.message_authenticator().unwrap();
        if code == Code::ACCESS_ACCEPT {
            for a in &self.reply {
                w.attr(a).unwrap();
            }
        }
        if code == Code::ACCESS_REJECT && !self.reject_message.is_empty() {
            w.attr(&Attr::ReplyMessage(self.reject_message)).unwrap();
        }
        Some(
            w.finish_response(&self.secret, &p.authenticator())
                .unwrap()
                .to_vec(),
        )
    }

    /// The accounting records of one status type: (when, attributes).
    fn records(&self, status: AcctStatusType) -> Vec<(Instant, String)> {
        let status = u32::from(status);
        self.accounting
            .iter()
            .filter(|(_, s, _)| *s == status)
            .map(|(t, _, a)| (*t, a.clone()))
            .collect()
    }
}

fn radius_lns(order: Order, interim: Option<Duration>) -> Lns<ChaCha20Rng> {
    let secret = RadiusSecret::new("fake-secret");
    let settings = RadiusSettings {
        client: radius::Config {
            servers: vec![radius::ServerConfig {
                name: "fake".into(),
                secret: secret.clone(),
                auth: Some(RADIUS_ADDR.parse().unwrap()),
                acct: Some(RADIUS_ACCT.parse().unwrap()),
                message_authenticator: Default::default(),
            }],
            nas: radius::NasIdentity {
                ip_address: Some(Ipv4Addr::new(2, 2, 2, 2)),
                identifier: Some(b"lns".to_vec()),
            },
            timeout: Duration::from_secs(1),
            retries: 1,
            ..radius::Config::default()
        },
        order,
        accounting: true,
        interim_interval: interim,
        called_station_id: Some(b"2.2.2.2".to_vec()),
        dae_clients: vec![DaeClient {
            address: "127.0.0.1".parse().unwrap(),
            secret: RadiusSecret::new("dae-secret"),
        }],
        boot: 0x1234,
    };
    let web = Policy::new(vec![Rule {
        from: vec!["172.16.1.0/24".parse().unwrap()],
        to: vec!["192.168.1.0/24".parse().unwrap()],
        proto: Proto::Tcp,
        ports: Some((443, 443)),
    }]);
    let staff = Pool::new(
        Ipv4Addr::new(172, 16, 1, 90),
        Ipv4Addr::new(172, 16, 1, 92),
        &[],
        &[],
    )
    .unwrap();
    new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 100))
        .with_named_pools([("staff".to_owned(), staff)].into_iter().collect())
        .with_filters([("web".to_owned(), web)].into_iter().collect())
        .with_radius(settings)
        .unwrap()
}

fn events(lns: &mut Lns<ChaCha20Rng>) -> Vec<LnsEvent> {
    std::iter::from_fn(|| lns.poll_event()).collect()
}

#[test]
fn a_radius_accept_sets_address_class_session_timeout_and_interim_deadlines_exactly() {
    let mut now = t0();
    let mut lns = radius_lns(Order::LocalFirst, Some(Duration::from_secs(30)));
    let epoch = now;
    lns.set_wall_clock(epoch, 1_700_000_000);
    lns.accounting_on(now);
    let mut radius = FakeRadius::new(vec![
        Attr::FramedIpAddress(Ipv4Addr::new(172, 16, 1, 60)),
        Attr::SessionTimeout(100),
        Attr::Class(b"gold"),
        Attr::ReplyMessage(b"hello"),
    ]);
    let mut clients = vec![Client::new(5, "bob", "radius-pass", now)];
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        Some(&mut radius),
        |_, c| c[0].ipv4().is_some()
    ));
    assert_eq!(clients[0].ipv4(), Some(Ipv4Addr::new(172, 16, 1, 60)));
    let start = radius.records(AcctStatusType::START);
    assert_eq!(start.len(), 1);
    let (up, attrs) = &start[0];
    let up = *up;
    for expected in [
        "UserName([98, 111, 98])",
        "FramedIpAddress(172.16.1.60)",
        "Class([103, 111, 108, 100])",
        "AcctAuthentic(RADIUS)",
        "CallingStationId([49, 48, 46, 48, 46, 48, 46, 53])",
    ] {
        assert!(attrs.contains(expected), "{expected} in {attrs}");
    }
    assert_eq!(radius.records(AcctStatusType::ACCOUNTING_ON).len(), 1);
    // Event-Timestamp: the driver's wall clock carried forward by the engine's `now`.
    let stamp = 1_700_000_000 + (up - epoch).as_secs();
    assert!(
        attrs.contains(&format!("EventTimestamp({stamp})")),
        "{attrs}"
    );
    // Interim-Updates every 30 s from Start; the session ends 100 s after the Accept.
    let accepted = up; // no latency in the simulation: accepted, up and Start coincide
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(200),
        Some(&mut radius),
        |l, _| l.sessions() == 0
    ));
    let interims: Vec<Instant> = radius
        .records(AcctStatusType::INTERIM_UPDATE)
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        interims,
        [30, 60, 90].map(|s| up + Duration::from_secs(s)),
        "Interim-Update at its interval"
    );
    let stop = radius.records(AcctStatusType::STOP);
    assert_eq!(stop.len(), 1);
    assert!(
        stop[0].0 >= accepted + Duration::from_secs(100)
            && stop[0].0 < accepted + Duration::from_secs(101),
        "Session-Timeout"
    );
    assert!(
        stop[0].1.contains("AcctTerminateCause(SESSION_TIMEOUT)"),
        "{}",
        stop[0].1
    );
    assert!(stop[0].1.contains("AcctSessionTime(100)"), "{}", stop[0].1);
    assert_eq!(lns.pool().in_use(), 0);
    // Not an administrative end: a client may reconnect after it.
    assert_eq!(clients[0].cdn, Some(CdnResult::GENERAL_ERROR));
    // At a clean stop with no session left, only Accounting-Off goes out.
    lns.accounting_off(now);
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(5),
        Some(&mut radius),
        |l, _| l.radius_pending() == 0
    ));
    assert_eq!(radius.records(AcctStatusType::ACCOUNTING_OFF).len(), 1);
}

#[test]
fn idle_timeout_counts_from_the_users_last_packet() {
    let mut now = t0();
    let mut lns = radius_lns(Order::RadiusOnly, None);
    let mut radius = FakeRadius::new(vec![Attr::IdleTimeout(20)]);
    let mut clients = vec![Client::new(5, "bob", "radius-pass", now)];
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        Some(&mut radius),
        |_, c| c[0].ipv4().is_some()
    ));
    let up = radius.records(AcctStatusType::START)[0].0;
    // A packet at +10 s moves the deadline from +20 s to +30 s.
    let t = up + Duration::from_secs(10);
    lns.handle_timeout(t);
    let address = clients[0].ipv4().unwrap();
    send_up(
        &mut lns,
        &mut clients[0],
        t,
        &icmp(address, Ipv4Addr::new(192, 168, 1, 1)),
    )
    .unwrap();
    lns.handle_timeout(up + Duration::from_secs(20));
    // Early and repeated timeouts change nothing.
    lns.handle_timeout(up + Duration::from_secs(29));
    lns.handle_timeout(up + Duration::from_secs(29));
    assert_eq!(lns.sessions(), 1);
    now = up + Duration::from_secs(29);
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        Some(&mut radius),
        |l, _| l.sessions() == 0
    ));
    let stop = radius.records(AcctStatusType::STOP);
    assert_eq!(stop[0].0, up + Duration::from_secs(30));
    assert!(
        stop[0].1.contains("AcctTerminateCause(IDLE_TIMEOUT)"),
        "{}",
        stop[0].1
    );
    assert!(stop[0].1.contains("AcctInputPackets(1)"), "{}", stop[0].1);
    assert!(stop[0].1.contains("AcctInputOctets(28)"), "{}", stop[0].1);
}

#[test]
fn the_order_decides_between_the_users_file_and_radius() {
    // local-first: hb@hb is in the file and never reaches RADIUS (which is silent here).
    let mut now = t0();
    let mut lns = radius_lns(Order::LocalFirst, None);
    let mut silent = FakeRadius::new(Vec::new());
    silent.silent = true;
    let mut clients = vec![Client::new(5, "hb@hb", "admin@123", now)];
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(5),
        Some(&mut silent),
        |_, c| c[0].ipv4().is_some()
    ));
    // radius-first: the same user waits for RADIUS, and when no server answers (2 sends, 1 s
    // apart) the file lets them in.
    let mut now = t0();
    let start = now;
    let mut lns = radius_lns(Order::RadiusFirst, None);
    let mut clients = vec![Client::new(5, "hb@hb", "admin@123", now)];
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        Some(&mut silent),
        |_, c| c[0].ipv4().is_some()
    ));
    assert!(now >= start + Duration::from_secs(2), "waited for RADIUS");
    // radius-only: the same user, no server answering: refused, with the reason.
    let mut now = t0();
    let mut lns = radius_lns(Order::RadiusOnly, None);
    let mut clients = vec![Client::new(5, "hb@hb", "admin@123", now)];
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        Some(&mut silent),
        |_, c| c[0].down.is_some()
    ));
    assert_eq!(clients[0].down, Some(DownReason::AuthFailed));
    assert!(events(&mut lns).iter().any(|e| matches!(
        e,
        LnsEvent::AuthFailed {
            why: "no RADIUS server answered",
            ..
        }
    )));
}

#[test]
fn framed_pool_and_filter_id_apply_and_what_cannot_be_honoured_is_refused() {
    let connect = |reply: Vec<Attr<'static>>| {
        let mut now = t0();
        let mut lns = radius_lns(Order::RadiusOnly, None);
        let mut radius = FakeRadius::new(reply);
        let mut clients = vec![Client::new(5, "bob", "radius-pass", now)];
        run_with(
            &mut lns,
            &mut clients,
            &mut now,
            Duration::from_secs(30),
            Some(&mut radius),
            |_, c| c[0].ipv4().is_some() || c[0].down.is_some(),
        );
        (lns, clients, now)
    };
    // Framed-Pool: the address comes from the named pool.
    let (_, clients, _) = connect(vec![Attr::FramedPool(b"staff")]);
    assert_eq!(clients[0].ipv4(), Some(Ipv4Addr::new(172, 16, 1, 90)));
    // Filter-Id: only TCP 443 to the intranet passes for this session.
    let (mut lns, mut clients, now) = connect(vec![Attr::FilterId(b"web")]);
    let address = clients[0].ipv4().unwrap();
    assert_eq!(
        send_up(
            &mut lns,
            &mut clients[0],
            now,
            &icmp(address, Ipv4Addr::new(192, 168, 1, 1))
        ),
        Err(Drop::Policy)
    );
    // Not honoured: an unknown pool or filter, an address outside the pool or the LNS's own.
    for (reply, refusal) in [
        (Attr::FramedPool(b"nope"), "unknown Framed-Pool"),
        (Attr::FilterId(b"nope"), "unknown Filter-Id"),
        (
            Attr::ServiceType(radius::wire::ServiceType::LOGIN),
            "Service-Type is not Framed",
        ),
        (
            Attr::FramedIpAddress(Ipv4Addr::new(10, 9, 9, 9)),
            "no address",
        ),
        (
            Attr::FramedIpAddress(Ipv4Addr::new(172, 16, 1, 1)),
            "no address",
        ),
    ] {
        let (mut lns, clients, _) = connect(vec![reply]);
        assert_eq!(clients[0].ipv4(), None, "{reply:?}");
        assert!(clients[0].down.is_some(), "{reply:?}");
        let events = events(&mut lns);
        assert!(
            events.iter().any(|e| match e {
                LnsEvent::AuthFailed { why, .. } => *why == refusal,
                LnsEvent::Disconnected { reason, .. } =>
                    refusal == "no address" && *reason == DownReason::NoAddress,
                _ => false,
            }),
            "{reply:?}: {events:?}"
        );
    }
}

#[test]
fn reply_messages_reach_the_peer_in_pap_ack_and_nak() {
    let pap_messages = |radius: &FakeRadius| -> Vec<(u8, Vec<u8>)> {
        radius
            .frames
            .iter()
            .filter_map(|f| {
                let f = ppp::wire::Frame::parse(f).ok()?;
                (f.protocol == Protocol::PAP).then_some(())?;
                let p = ppp::wire::Packet::parse(f.information).ok()?;
                Some((p.code, p.data.get(1..)?.to_vec()))
            })
            .collect()
    };
    for (password, code, text) in [
        ("radius-pass", ppp::auth::pap::ACK, &b"Welcome, bob"[..]),
        ("wrong", ppp::auth::pap::NAK, &b"Account locked"[..]),
    ] {
        let mut now = t0();
        let mut lns = radius_lns(Order::RadiusOnly, None);
        let mut radius = FakeRadius::new(vec![Attr::ReplyMessage(b"Welcome,\tbob")]);
        radius.reject_message = b"Account locked\n";
        let mut clients = vec![Client::new(5, "bob", password, now)];
        run_with(
            &mut lns,
            &mut clients,
            &mut now,
            Duration::from_secs(10),
            Some(&mut radius),
            |_, c| c[0].ipv4().is_some() || c[0].down.is_some(),
        );
        assert!(
            pap_messages(&radius).contains(&(code, text.to_vec())),
            "{:?}",
            pap_messages(&radius)
        );
    }
}

#[test]
fn acct_interim_interval_from_the_server_wins_and_is_at_least_60_s() {
    for (server, expected) in [(10, 60), (120, 120)] {
        let mut now = t0();
        let mut lns = radius_lns(Order::RadiusOnly, Some(Duration::from_secs(30)));
        let mut radius = FakeRadius::new(vec![
            Attr::AcctInterimInterval(server),
            Attr::SessionTimeout(250),
        ]);
        let mut clients = vec![Client::new(5, "bob", "radius-pass", now)];
        assert!(run_with(
            &mut lns,
            &mut clients,
            &mut now,
            Duration::from_secs(300),
            Some(&mut radius),
            |l, c| c[0].down.is_some() && l.sessions() == 0
        ));
        let up = radius.records(AcctStatusType::START)[0].0;
        let interims: Vec<Duration> = radius
            .records(AcctStatusType::INTERIM_UPDATE)
            .iter()
            .map(|r| r.0 - up)
            .collect();
        let want: Vec<Duration> = (1..)
            .map(|k| Duration::from_secs(k * expected))
            .take_while(|d| *d < Duration::from_secs(250))
            .collect();
        assert_eq!(interims, want, "Acct-Interim-Interval {server}");
    }
}

#[test]
fn ms_chap_error_codes_are_read_from_the_radius_text() {
    assert_eq!(
        ms_chap_error_code(b"E=648 R=0 C=00112233445566778899AABBCCDDEEFF V=3"),
        Some(648)
    );
    assert_eq!(ms_chap_error_code(b"E=691"), Some(691));
    for bad in [&b""[..], b"E=", b"691", b"E=99999999999999999999 R=0"] {
        assert_eq!(ms_chap_error_code(bad), None, "{bad:?}");
    }
}

/// A Disconnect-Request or CoA-Request from `from` signed with `secret`, with `attrs`.
fn dae_request(code: Code, identifier: u8, secret: &str, attrs: &[Attr<'_>]) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        code,
        radius::wire::Identifier(identifier),
        &radius::wire::Authenticator::ZERO,
    )
    .unwrap();
    w.message_authenticator().unwrap();
    for a in attrs {
        w.attr(a).unwrap();
    }
    w.finish_request(&RadiusSecret::new(secret))
        .unwrap()
        .to_vec()
}

/// The answer's code and Error-Cause, after checking its Response Authenticator.
fn dae_answer(request: &[u8], answer: &[u8]) -> (Code, Option<u32>) {
    let q = Packet::new_checked(request).unwrap();
    let p = Packet::new_checked(answer).unwrap();
    radius::verify::verify_response(
        &p,
        &q.authenticator(),
        &RadiusSecret::new("dae-secret"),
        MessageAuthenticatorPolicy::Required,
    )
    .unwrap();
    let cause = Attributes::new(p.attribute_bytes()).find_map(|a| match Attr::parse(a.ok()?) {
        Ok(Attr::ErrorCause(c)) => Some(u32::from(c)),
        _ => None,
    });
    (p.code(), cause)
}

#[test]
fn disconnect_and_coa_requests_are_verified_matched_and_answered() {
    let mut now = t0();
    let mut lns = radius_lns(Order::RadiusOnly, None);
    let mut radius = FakeRadius::new(Vec::new());
    let mut clients = vec![Client::new(5, "bob", "radius-pass", now)];
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        Some(&mut radius),
        |_, c| c[0].ipv4().is_some()
    ));
    let address = clients[0].ipv4().unwrap();
    let dae: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut out = [0u8; 4096];
    let mut ask = |lns: &mut Lns<ChaCha20Rng>, from: SocketAddr, request: &[u8]| {
        lns.handle_dae(now, from, request, &mut out)
            .map(|n| dae_answer(request, &out[..n]))
    };
    // From a stranger, or with the wrong secret: dropped without an answer.
    let bob = [Attr::UserName(b"bob")];
    let q = dae_request(Code::DISCONNECT_REQUEST, 1, "dae-secret", &bob);
    assert_eq!(ask(&mut lns, "10.1.1.1:3799".parse().unwrap(), &q), None);
    let q = dae_request(Code::DISCONNECT_REQUEST, 2, "guess", &bob);
    assert_eq!(ask(&mut lns, dae, &q), None);
    // NAKs: nobody named, a session that does not exist, another NAS, an unknown filter.
    let cases: [(&[Attr<'_>], u32); 4] = [
        (&[], 402),
        (&[Attr::UserName(b"carol")], 503),
        (
            &[
                Attr::UserName(b"bob"),
                Attr::NasIpAddress(Ipv4Addr::new(9, 9, 9, 9)),
            ],
            403,
        ),
        (&[Attr::UserName(b"bob"), Attr::FilterId(b"nope")], 407),
    ];
    for (i, (attrs, cause)) in cases.iter().enumerate() {
        let code = if i == 3 {
            Code::COA_REQUEST
        } else {
            Code::DISCONNECT_REQUEST
        };
        let q = dae_request(code, 10 + u8::try_from(i).unwrap(), "dae-secret", attrs);
        let nak = if i == 3 {
            Code::COA_NAK
        } else {
            Code::DISCONNECT_NAK
        };
        assert_eq!(
            ask(&mut lns, dae, &q),
            Some((nak, Some(*cause))),
            "{attrs:?}"
        );
    }
    // CoA: Filter-Id "web" now applies to this session (ICMP to the intranet is dropped).
    let q = dae_request(
        Code::COA_REQUEST,
        20,
        "dae-secret",
        &[Attr::FramedIpAddress(address), Attr::FilterId(b"web")],
    );
    assert_eq!(ask(&mut lns, dae, &q), Some((Code::COA_ACK, None)));
    assert_eq!(
        send_up(
            &mut lns,
            &mut clients[0],
            now,
            &icmp(address, Ipv4Addr::new(192, 168, 1, 1))
        ),
        Err(Drop::Policy)
    );
    // Disconnect by Acct-Session-Id is acknowledged; its retransmission gets the same answer.
    let session = radius.records(AcctStatusType::START)[0].1.clone();
    let id = session
        .split("AcctSessionId(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_owned();
    let id: Vec<u8> = id
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|b| b.parse().unwrap())
        .collect();
    let q = dae_request(
        Code::DISCONNECT_REQUEST,
        30,
        "dae-secret",
        &[Attr::AcctSessionId(&id)],
    );
    assert_eq!(ask(&mut lns, dae, &q), Some((Code::DISCONNECT_ACK, None)));
    assert_eq!(ask(&mut lns, dae, &q), Some((Code::DISCONNECT_ACK, None)));
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        Some(&mut radius),
        |l, _| l.sessions() == 0
    ));
    let stop = radius.records(AcctStatusType::STOP);
    assert_eq!(stop.len(), 1);
    assert!(
        stop[0].1.contains("AcctTerminateCause(ADMIN_RESET)"),
        "{}",
        stop[0].1
    );
}

#[test]
fn a_clean_stop_sends_stop_for_every_session_then_accounting_off() {
    let mut now = t0();
    let mut lns = radius_lns(Order::RadiusOnly, None);
    let mut radius = FakeRadius::new(Vec::new());
    let mut clients: Vec<Client> = (1..=2)
        .map(|n| Client::new(n, "bob", "radius-pass", now))
        .collect();
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        Some(&mut radius),
        |_, c| c.iter().all(|c| c.ipv4().is_some())
    ));
    lns.accounting_off(now);
    let mut buf = [0u8; 4096];
    let mut order = Vec::new();
    let mut answers = Vec::new();
    while let Some((to, n)) = lns.poll_radius_transmit(&mut buf) {
        answers.push((to, radius.handle(now, &buf[..n]).unwrap()));
        order.push(radius.accounting.last().unwrap().1);
    }
    for (from, answer) in answers {
        lns.handle_radius(now, from, &answer).unwrap();
    }
    assert_eq!(lns.radius_pending(), 0);
    assert_eq!(
        order,
        [
            u32::from(AcctStatusType::STOP),
            u32::from(AcctStatusType::STOP),
            u32::from(AcctStatusType::ACCOUNTING_OFF)
        ]
    );
    for (_, stop) in radius.records(AcctStatusType::STOP) {
        assert!(stop.contains("AcctTerminateCause(ADMIN_REBOOT)"), "{stop}");
    }
    // The sessions are not accounted twice when they end afterwards.
    for c in &mut clients {
        c.ppp.as_mut().unwrap().close(now);
    }
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        Some(&mut radius),
        |l, _| l.sessions() == 0
    ));
    assert_eq!(radius.records(AcctStatusType::STOP).len(), 2);
}

#[test]
fn sessions_ended_by_our_shutting_down_stopccn_are_accounted_as_admin_reboot() {
    let mut now = t0();
    let mut lns = radius_lns(Order::RadiusOnly, None);
    let mut radius = FakeRadius::new(Vec::new());
    let mut clients = vec![Client::new(5, "bob", "radius-pass", now)];
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(10),
        Some(&mut radius),
        |_, c| c[0].ipv4().is_some()
    ));
    // What a clean stop of the server does first: StopCCN (Shutting Down) to every tunnel.
    lns.l2tp.close_all(now);
    lns.pump(now);
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        Some(&mut radius),
        |l, _| l.sessions() == 0
    ));
    let stop = radius.records(AcctStatusType::STOP);
    assert_eq!(stop.len(), 1);
    assert!(
        stop[0].1.contains("AcctTerminateCause(ADMIN_REBOOT)"),
        "{}",
        stop[0].1
    );
}

#[path = "admin_tests.rs"]
mod admin_tests;
mod dae;
mod scale;

#[test]
fn only_an_administrative_end_is_sent_as_cdn_administrative() {
    use AcctTerminateCause as C;
    use DownReason as R;
    let admin = CdnResult::ADMINISTRATIVE;
    // A kick, a removed user and a Disconnect-Request (Admin-Reset), and a user's hang-up.
    assert_eq!(cdn_result(R::Closed, Some(C::ADMIN_RESET)), admin);
    assert_eq!(cdn_result(R::PeerTerminated, Some(C::ADMIN_RESET)), admin);
    assert_eq!(cdn_result(R::PeerTerminated, None), admin);
    // Ends a client should retry after.
    for (reason, cause, expected) in [
        (
            R::Closed,
            Some(C::SESSION_TIMEOUT),
            CdnResult::GENERAL_ERROR,
        ),
        (R::Closed, Some(C::IDLE_TIMEOUT), CdnResult::GENERAL_ERROR),
        (R::EchoTimeout, None, CdnResult::LOST_CARRIER),
        (R::LowerLayerDown, None, CdnResult::LOST_CARRIER),
        (R::NoAddress, None, CdnResult::TEMPORARY_LACK_OF_FACILITIES),
        (R::AuthFailed, None, CdnResult::GENERAL_ERROR),
    ] {
        assert_eq!(cdn_result(reason, cause), expected, "{reason:?} {cause:?}");
    }
}
