//! Operator actions on the whole engine: status with IKE and ESP details, and a kick that
//! ends with the peer's IKE SA deleted.

use super::*;
use crate::engine::lns::admin::{KICK_GRACE, KickTarget};

#[test]
fn status_names_the_ike_suite_esp_transform_and_peer_and_kick_deletes_the_ike_sa() {
    let now = t0();
    let laptop = Laptop::new(now, "203.0.113.5:500".parse().unwrap());
    let mut w = World {
        now,
        server: server(),
        laptop,
        tun: Vec::new(),
        connected: true,
    };
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    let address = w.laptop.ipv4().unwrap();
    let status = w.server.status(w.now, 1_700_000_000);
    assert_eq!(status.len(), 1);
    let s = &status[0];
    assert_eq!(s.user.as_deref(), Some("hb@hb"));
    assert_eq!(s.address, Some(address));
    assert_eq!(s.peer, "203.0.113.5:500".parse().unwrap());
    assert!(!s.nat, "no NAT: plain ESP");
    let cookies = *w.server.keys.keys().next().unwrap();
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
