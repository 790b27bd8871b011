//! Operator actions on the whole engine: status with IKE and ESP details, and a kick that
//! ends with the peer's IKE SA deleted.

use super::*;
use crate::engine::lns::admin::{KICK_GRACE, KickTarget};

#[test]
fn status_names_the_ike_suite_esp_transform_and_peer_and_kick_deletes_the_ike_sa() {
    let now = t0();
    let mut w = World::new(now, server());
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    let address = w.laptop.ipv4().unwrap();
    let status = w.server.status(w.now, 1_700_000_000);
    assert_eq!(status.len(), 1);
    let s = &status[0];
    assert_eq!(s.user.as_deref(), Some("hb@hb"));
    assert_eq!(s.address, Some(address));
    assert_eq!(s.peer, "203.0.113.5:500".parse().unwrap());
    assert!(!s.nat, "no NAT: plain ESP");
    let cookies = *w.server.keys.cookies().next().unwrap();
    let suite = w.server.ike.phase1(cookies).unwrap().suite;
    assert_eq!(s.ike.as_deref(), Some(suite.to_string().as_str()));
    assert!(
        s.ike.as_deref().unwrap().split('-').count() == 3,
        "{:?}",
        s.ike
    );
    let esp = s.esp.clone().unwrap();
    assert!(
        ["aes128gcm16", "aes256gcm16"].contains(&esp.as_str()) || esp.contains('-'),
        "{esp}"
    );
    // Kick: the session ends, and a grace later the laptop is told its SAs are deleted.
    assert_eq!(w.server.kick(w.now, &KickTarget::User("hb@hb".into())), 1);
    assert!(w.drive(Duration::from_secs(5), |w| w.server.lns().sessions() == 0));
    let released = w.now;
    assert_eq!(w.server.child_sas(), 1, "ESP lives on for the StopCCN");
    assert!(w.drive(Duration::from_secs(5), |w| w.server.child_sas() == 0));
    assert_eq!(w.now, released + KICK_GRACE);
    assert_eq!(w.server.ike.established(), 0);
    assert_eq!(w.laptop.ike.established(), 0, "the laptop got the Delete");
    assert_eq!(w.server.lns().pool().in_use(), 0);
}

#[test]
fn a_reloaded_psk_is_required_of_new_ike_sas_and_the_live_session_keeps_working() {
    use crate::engine::ipsec::admin::Reload;
    use crate::engine::lns::admin::LnsReload;
    use ike::ikev1::keys::Secret;
    use ike::ikev1::main_mode::Authentication;
    let now = t0();
    let mut w = World::new(now, server());
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    let address = w.laptop.ipv4().unwrap();
    let reload = Reload {
        lns: LnsReload {
            users: reference_users("admin@123"),
            pool: reference_pool(),
            policy: reference_policy(),
            dns: [None, None],
        },
        ike_auth: Some(Authentication::PreSharedKey(Secret::new(b"the-new-psk"))),
    };
    assert_eq!(w.server.reload(w.now, reload), Ok(Vec::new()));
    // The live session still carries traffic.
    let ping = icmp(address, Ipv4Addr::new(192, 168, 1, 1));
    let mut buf = vec![0u8; LNS_HEADROOM + ping.len()];
    buf[LNS_HEADROOM..].copy_from_slice(&ping);
    let end = buf.len();
    let frame = w
        .laptop
        .ppp
        .as_ref()
        .unwrap()
        .encapsulate(Protocol::IPV4, &mut buf, LNS_HEADROOM..end)
        .unwrap();
    let range = w.laptop.data.unwrap().encapsulate(&mut buf, frame).unwrap();
    let datagram = buf[range].to_vec();
    w.deliver_to_server(&datagram);
    assert_eq!(w.tun.last(), Some(&ping));
    // A second laptop with the old key is refused; with the new key it connects.
    w.laptop = Laptop::new(w.now, "203.0.113.6:500".parse().unwrap());
    assert!(!w.drive(Duration::from_secs(10), |w| w.laptop.ike.established() > 0));
    let mut fresh = Laptop::new(w.now, "203.0.113.7:500".parse().unwrap());
    fresh.ike = Ike::new(
        ike::endpoint::Config::new(b"the-new-psk"),
        ChaCha20Rng::seed_from_u64(8),
    );
    fresh.ike.connect(w.now, fresh.ike_path).unwrap();
    w.laptop = fresh;
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    assert_eq!(w.server.lns().sessions(), 2, "the first session lives on");
}

#[test]
fn a_kicked_peer_that_comes_back_within_the_grace_keeps_its_new_ike_sa() {
    let now = t0();
    let mut w = World::new(now, server());
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    assert_eq!(w.server.kick(w.now, &KickTarget::User("hb@hb".into())), 1);
    assert!(w.drive(Duration::from_secs(5), |w| w.server.lns().sessions() == 0));
    let released = w.now;
    // The same laptop (address and port) reconnects before the grace is over.
    w.laptop = Laptop::new(w.now, "203.0.113.5:500".parse().unwrap());
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    assert!(w.now < released + KICK_GRACE);
    let _ = w.drive(KICK_GRACE * 3, |_| false);
    assert!(w.now >= released + KICK_GRACE);
    assert!(w.laptop.ipv4().is_some());
    assert_eq!(w.server.lns().sessions(), 1);
    assert_eq!(
        w.laptop.ike.established(),
        1,
        "its new IKE SA was not deleted"
    );
}
