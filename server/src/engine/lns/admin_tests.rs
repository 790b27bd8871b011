//! Operator actions on the LNS layer in simulated time: status, kick, reload.

use super::*;
use crate::engine::lns::admin::{KICK_GRACE, KickTarget, LnsReload, ReloadError};

fn connect(
    lns: &mut Lns<ChaCha20Rng>,
    clients: &mut [Client],
    now: &mut Instant,
    radius: Option<&mut FakeRadius>,
) {
    assert!(run_with(
        lns,
        clients,
        now,
        Duration::from_secs(10),
        radius,
        |_, c| c.iter().all(|c| c.ipv4().is_some())
    ));
}

fn users(text: &str) -> Users {
    Users::parse("users.toml", text).unwrap()
}

const HB: &str = "[[user]]\nname = \"hb@hb\"\npassword = \"admin@123\"\n";
const CAROL: &str = "[[user]]\nname = \"carol\"\npassword = \"carol-pw\"\n";

fn reload_of(users: Users, last: [u8; 4], policy: Policy, dns: [u8; 4]) -> LnsReload {
    let pool = Pool::new(Ipv4Addr::new(172, 16, 1, 2), Ipv4Addr::from(last), &[], &[]).unwrap();
    LnsReload {
        users,
        pool,
        policy,
        dns: [Some(Ipv4Addr::from(dns)), None],
    }
}

fn to(net: &str) -> Policy {
    Policy::new(vec![Rule {
        from: vec!["172.16.1.0/24".parse().unwrap()],
        to: vec![net.parse().unwrap()],
        proto: Proto::Any,
        ports: None,
    }])
}

#[test]
fn status_shows_user_address_peer_method_traffic_times_and_ids() {
    let mut now = t0();
    let epoch = now;
    let mut lns = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 100));
    let mut clients = vec![Client::new(5, "hb@hb", "admin@123", now)];
    assert!(lns.status(now, 1_700_000_000).is_empty());
    connect(&mut lns, &mut clients, &mut now, None);
    let up = now;
    now += Duration::from_secs(7);
    let ping = icmp(Ipv4Addr::new(172, 16, 1, 2), Ipv4Addr::new(192, 168, 1, 1));
    send_up(&mut lns, &mut clients[0], now, &ping).unwrap();
    let reply = icmp(Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(172, 16, 1, 2));
    let mut buf = vec![0u8; HEADROOM + reply.len()];
    buf[HEADROOM..].copy_from_slice(&reply);
    lns.handle_tun(&mut buf, HEADROOM..HEADROOM + reply.len())
        .unwrap();
    now += Duration::from_secs(3);
    let unix_now = 1_700_000_100;
    let s = lns.status(now, unix_now);
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(s.user.as_deref(), Some("hb@hb"));
    assert_eq!(s.address, Some(Ipv4Addr::new(172, 16, 1, 2)));
    assert_eq!(s.peer, clients[0].addr);
    assert_eq!(s.auth.as_deref(), Some("PAP"));
    assert_eq!(s.state, "connected");
    assert_eq!(
        (s.bytes_in, s.packets_in, s.bytes_out, s.packets_out),
        (28, 1, 28, 1)
    );
    let since = unix_now - (now - up).as_secs();
    assert_eq!(s.connected_since_unix, Some(since));
    assert_eq!(since, 1_700_000_090);
    assert_eq!(
        s.connected_since.as_deref(),
        Some("2023-11-14T22:14:50Z"),
        "RFC 3339 of {since}"
    );
    assert_eq!(s.last_activity_secs, Some(3), "the ping 3 s ago");
    assert!(up >= epoch);
    let key = *lns.links.keys().next().unwrap();
    assert_eq!((s.tunnel_id, s.session_id), (key.0.0, key.1.0));
    assert_ne!(s.session_id, 0);
}

#[test]
fn kick_terminates_ppp_sends_cdn_and_stopccn_frees_the_address_and_accounts_admin_reset() {
    let mut now = t0();
    let mut lns = radius_lns(Order::LocalFirst, None);
    let mut radius = FakeRadius::new(Vec::new());
    let mut clients = vec![
        Client::new(1, "hb@hb", "admin@123", now),
        Client::new(2, "bob", "radius-pass", now),
    ];
    connect(&mut lns, &mut clients, &mut now, Some(&mut radius));
    assert_eq!(lns.pool().in_use(), 2);
    let hb = clients[0].ipv4().unwrap();
    assert_eq!(lns.kick(now, &KickTarget::User("nobody".into())), 0);
    assert_eq!(
        lns.kick(now, &KickTarget::Address(Ipv4Addr::new(172, 16, 1, 99))),
        0
    );
    let kicked_at = now;
    assert_eq!(lns.kick(now, &KickTarget::User("hb@hb".into())), 1);
    assert_eq!(
        lns.kick(now, &KickTarget::User("hb@hb".into())),
        0,
        "already ending: not counted twice"
    );
    radius.frames.clear();
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(5),
        Some(&mut radius),
        |l, _| l.sessions() == 1
    ));
    assert_eq!(now, kicked_at, "Terminate-Ack came back at once");
    // The client goes down after its own restart timer (RFC 1661 §4.2, zero-restart count).
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(5),
        Some(&mut radius),
        |_, c| c[0].down.is_some()
    ));
    // LCP Terminate-Request (protocol c021, code 5) reached the client: it saw a clean end.
    assert!(
        radius
            .frames
            .iter()
            .any(|f| f.windows(3).any(|w| w == [0xc0, 0x21, 5])),
        "{:02x?}",
        radius.frames
    );
    assert_eq!(clients[0].down, Some(DownReason::PeerTerminated));
    assert!(!lns.pool().is_assigned(hb), "address freed");
    assert_eq!(lns.pool().in_use(), 1, "bob keeps his");
    assert!(clients[1].down.is_none());
    let stops = radius.records(AcctStatusType::STOP);
    assert_eq!(stops.len(), 1);
    assert!(
        stops[0].1.contains("AcctTerminateCause(ADMIN_RESET)")
            && stops[0].1.contains(&format!("FramedIpAddress({hb})")),
        "{}",
        stops[0].1
    );
    // The tunnel had no other call: StopCCN. The client's tunnel closes (it would otherwise
    // live on with HELLOs).
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(40),
        Some(&mut radius),
        |l, c| c[0].l2tp.tunnel_count() == 0 && l.tunnels() == 1
    ));
    // The CDN before that StopCCN reached the client, saying "administrative reasons" (a
    // client may take the end as final); bob's call was not touched.
    assert_eq!(clients[0].cdn, Some(CdnResult::ADMINISTRATIVE));
    assert_eq!(clients[1].cdn, None);
    // The peer has no session left: its IKE SA goes exactly KICK_GRACE after the release.
    let mut lns2 = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 100));
    let mut now2 = t0();
    let mut one = vec![Client::new(3, "hb@hb", "admin@123", now2)];
    connect(&mut lns2, &mut one, &mut now2, None);
    let t = now2;
    lns2.kick(t, &KickTarget::Address(Ipv4Addr::new(172, 16, 1, 2)));
    assert!(run(
        &mut lns2,
        &mut one,
        &mut now2,
        Duration::ZERO,
        |l, _| l.sessions() == 0
    ));
    assert_eq!(lns2.admin_deadline(), Some(t + KICK_GRACE));
    lns2.handle_timeout(t + KICK_GRACE - Duration::from_millis(1));
    assert_eq!(lns2.next_kicked_peer(), None, "not before the grace");
    lns2.handle_timeout(t + KICK_GRACE);
    assert_eq!(lns2.next_kicked_peer(), Some(one[0].addr));
    assert_eq!(lns2.next_kicked_peer(), None);
    lns2.handle_timeout(t + KICK_GRACE);
    assert_eq!(lns2.next_kicked_peer(), None, "a second call is harmless");
}

#[test]
fn reload_keeps_the_session_applies_policy_adds_users_grows_the_pool_and_refuses_a_shrink() {
    let mut now = t0();
    // A pool of one address.
    let mut lns = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 2));
    let mut clients = vec![Client::new(1, "hb@hb", "admin@123", now)];
    connect(&mut lns, &mut clients, &mut now, None);
    let hb = Ipv4Addr::new(172, 16, 1, 2);
    assert_eq!(clients[0].ipv4(), Some(hb));
    let intranet = icmp(hb, Ipv4Addr::new(192, 168, 1, 1));
    let dmz = icmp(hb, Ipv4Addr::new(10, 99, 0, 1));
    assert!(send_up(&mut lns, &mut clients[0], now, &intranet).is_ok());
    assert_eq!(
        send_up(&mut lns, &mut clients[0], now, &dmz),
        Err(Drop::Policy)
    );
    // Carol is not a user yet, and the pool is full anyway.
    let mut carol = vec![Client::new(2, "carol", "carol-pw", now)];
    assert!(!run(
        &mut lns,
        &mut carol,
        &mut now,
        Duration::from_secs(5),
        |_, c| c[0].ipv4().is_some()
    ));
    // A shrink that drops the live address is refused whole: nothing changes.
    let shrink = LnsReload {
        pool: Pool::new(
            Ipv4Addr::new(172, 16, 1, 3),
            Ipv4Addr::new(172, 16, 1, 9),
            &[],
            &[],
        )
        .unwrap(),
        ..reload_of(
            users(&format!("{HB}{CAROL}")),
            [172, 16, 1, 9],
            to("10.99.0.0/24"),
            [9, 9, 9, 9],
        )
    };
    assert_eq!(
        lns.reload(now, shrink),
        Err(ReloadError::PoolShrinks {
            address: hb,
            user: "hb@hb".into()
        })
    );
    assert!(lns.users.get("carol").is_none());
    assert!(send_up(&mut lns, &mut clients[0], now, &intranet).is_ok());
    // Users + carol, pool .2-.10, policy to the dmz only, other DNS.
    let kicked = lns
        .reload(
            now,
            reload_of(
                users(&format!("{HB}{CAROL}")),
                [172, 16, 1, 10],
                to("10.99.0.0/24"),
                [9, 9, 9, 9],
            ),
        )
        .unwrap();
    assert!(kicked.is_empty());
    assert!(
        lns.pool().is_assigned(hb),
        "the live address is held in the new pool"
    );
    assert_eq!(lns.pool().size(), 9);
    // The live session: same address, and the new policy on its next packet.
    assert_eq!(lns.sessions(), 1);
    assert_eq!(
        send_up(&mut lns, &mut clients[0], now, &intranet),
        Err(Drop::Policy)
    );
    assert_eq!(send_up(&mut lns, &mut clients[0], now, &dmz).unwrap(), dmz);
    // Carol logs in, gets a new address (never hb's) and the new DNS.
    let mut carol = vec![Client::new(4, "carol", "carol-pw", now)];
    connect(&mut lns, &mut carol, &mut now, None);
    let link = carol[0].ppp.as_ref().unwrap().ipv4().unwrap();
    assert_eq!(link.local, Ipv4Addr::new(172, 16, 1, 3));
    assert_eq!(link.dns[0], Some(Ipv4Addr::new(9, 9, 9, 9)));
    assert!(
        clients[0].down.is_none(),
        "hb's session lived through it all"
    );
    // hb@hb is removed from the file: kicked, and cannot log in again.
    let kicked = lns
        .reload(
            now,
            reload_of(
                users(CAROL),
                [172, 16, 1, 10],
                to("10.99.0.0/24"),
                [9, 9, 9, 9],
            ),
        )
        .unwrap();
    assert_eq!(kicked, ["hb@hb"]);
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(5),
        |l, c| c[0].down.is_some() && !l.pool().is_assigned(hb)
    ));
    assert_eq!(lns.sessions(), 1, "carol stays");
    let mut again = vec![Client::new(3, "hb@hb", "admin@123", now)];
    assert!(!run(
        &mut lns,
        &mut again,
        &mut now,
        Duration::from_secs(10),
        |_, c| c[0].ipv4().is_some()
    ));
}

#[test]
fn a_kicked_tunnel_closes_with_its_last_call_and_its_peer_loses_ike_once_with_its_last_session() {
    let mut now = t0();
    let mut lns = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 1, 100));
    // Two tunnels from one peer (address and port).
    let mut clients = vec![
        Client::new(1, "hb@hb", "admin@123", now),
        Client::new(2, "hb@hb", "admin@123", now),
    ];
    clients[1].addr = clients[0].addr;
    let peer = clients[0].addr;
    connect(&mut lns, &mut clients, &mut now, None);
    assert_eq!(lns.tunnels(), 2);
    // A second call in the first tunnel (without PPP: the client hangs it up below).
    let tunnel = clients[0].tunnel.unwrap();
    let call = clients[0].l2tp.place_call(now, tunnel).unwrap();
    clients[0].extra_calls.push(call);
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(5),
        |l, _| l.sessions() == 3
    ));
    // The first tunnel's PPP session is kicked: its call ends, its tunnel stays for the other.
    let first = clients[0].ipv4().unwrap();
    assert_eq!(lns.kick(now, &KickTarget::Address(first)), 1);
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::ZERO,
        |l, _| l.sessions() == 2
    ));
    run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(5),
        |_, _| false,
    );
    assert_eq!(lns.sessions(), 2);
    assert_eq!(lns.tunnels(), 2, "the kicked tunnel has a call left");
    assert_eq!(clients[0].l2tp.tunnel_count(), 1, "no StopCCN");
    assert_eq!(lns.admin_deadline(), None);
    // Its last call ends: now the kicked tunnel is closed. The peer still has a session in
    // its other tunnel, so its IKE SA stays.
    clients[0]
        .l2tp
        .close_session(now, tunnel, call, CdnResult::ADMINISTRATIVE, None)
        .unwrap();
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(40),
        |l, c| l.sessions() == 1 && l.tunnels() == 1 && c[0].l2tp.tunnel_count() == 0
    ));
    assert_eq!(clients[1].l2tp.tunnel_count(), 1, "the other tunnel lives");
    assert_eq!(lns.admin_deadline(), None, "the peer has a session left");
    assert_eq!(lns.closing_peers(), 0);
    // The peer's last session is kicked: its IKE SA goes KICK_GRACE later.
    let second = clients[1].ipv4().unwrap();
    let t = now;
    assert_eq!(lns.kick(now, &KickTarget::Address(second)), 1);
    assert!(run(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::ZERO,
        |l, _| l.sessions() == 0
    ));
    assert_eq!(lns.admin_deadline(), Some(t + KICK_GRACE));
    assert_eq!(lns.closing_peers(), 1);
    // It comes back within the grace and is kicked again: still one entry, the first deadline.
    now += KICK_GRACE / 2;
    let mut again = vec![Client::new(3, "hb@hb", "admin@123", now)];
    again[0].addr = peer;
    connect(&mut lns, &mut again, &mut now, None);
    assert!(now < t + KICK_GRACE);
    assert_eq!(lns.kick(now, &KickTarget::User("hb@hb".into())), 1);
    assert!(run(
        &mut lns,
        &mut again,
        &mut now,
        Duration::ZERO,
        |l, _| l.sessions() == 0
    ));
    assert_eq!(lns.closing_peers(), 1, "queued once per peer");
    assert_eq!(lns.admin_deadline(), Some(t + KICK_GRACE));
    lns.handle_timeout(t + KICK_GRACE);
    assert_eq!(lns.next_kicked_peer(), Some(peer));
    assert_eq!(lns.next_kicked_peer(), None);
}
