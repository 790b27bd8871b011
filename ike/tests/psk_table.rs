//! Pre-shared keys chosen by the peer's address, through the public [`Endpoint`] API: peers
//! with their own keys connect side by side, a key used from the wrong address fails, an ID the
//! entry does not name is refused, and an address without a key gets no answer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

mod common;

use common::{SERVER, World};
use ike::endpoint::{Config, Event};
use ike::ikev1::keys::Secret;
use ike::ikev1::main_mode::{Authentication, PskEntry, PskTable, Refusal};
use l2sec_ike as ike;
use std::sync::Arc;
use std::time::Duration;

/// 10.0.0.2 and 10.0.0.3 have their own keys, 10.0.0.4 must call itself laptop.example.com,
/// the 10.1.0.0/16 network shares a key, and there is no default.
fn responder() -> Config {
    let mut table = PskTable::new();
    for (peer, id, key) in [
        ("10.0.0.2", Some("10.0.0.2"), "alpha-key"),
        ("10.0.0.3", None, "bravo-key"),
        ("10.0.0.4", Some("fqdn:laptop.example.com"), "charlie-key"),
        ("10.1.0.0/16", None, "branch-key"),
    ] {
        table
            .insert(PskEntry {
                peer: peer.parse().unwrap(),
                id: id.map(|i| i.parse().unwrap()),
                secret: Secret::new(key.as_bytes()),
            })
            .unwrap();
    }
    let mut config = Config::new(b"not used: the table decides");
    config.phase1.auth = Authentication::PreSharedKeys(Arc::new(table));
    config
}

fn refusals(events: &[Event]) -> Vec<Refusal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Refused { refusal, .. } => Some(*refusal),
            _ => None,
        })
        .collect()
}

fn phase1_up(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Phase1Up { .. }))
}

#[test]
fn peers_with_their_own_keys_connect_side_by_side() {
    let mut w = World::new(responder(), Duration::from_millis(10));
    let alpha = w.add_peer(Config::new(b"alpha-key"), "10.0.0.2:500", None);
    let bravo = w.add_peer(Config::new(b"bravo-key"), "10.0.0.3:500", None);
    let branch = w.add_peer(Config::new(b"branch-key"), "10.1.7.9:500", None);
    for i in [alpha, bravo, branch] {
        w.connect(i);
    }
    assert!(
        w.run(Duration::from_secs(10), |w| common::children(
            &w.server_events
        )
        .len()
            == 3),
        "{:?}",
        w.server_events
    );
    let server_children = common::children(&w.server_events);
    assert_eq!(server_children.len(), 3);
    for p in &w.peers {
        let c = p.child().unwrap();
        let (_, s) = server_children
            .iter()
            .find(|(_, s)| s.inbound_spi == c.outbound_spi)
            .expect("the responder's counterpart");
        assert_eq!(s.outbound_spi, c.inbound_spi);
        assert_eq!(
            s.inbound_keys().encryption,
            c.outbound_keys().encryption,
            "{}",
            p.local
        );
    }
    assert!(refusals(&w.server_events).is_empty());
}

#[test]
fn another_peers_key_fails_authentication_from_this_address() {
    let mut w = World::new(responder(), Duration::from_millis(10));
    // bravo's address with alpha's key.
    let i = w.add_peer(Config::new(b"alpha-key"), "10.0.0.3:500", None);
    w.connect(i);
    w.run(Duration::from_secs(120), |_| false);
    assert_eq!(
        refusals(&w.server_events),
        vec![Refusal::AuthenticationFailed],
        "the responder cannot decrypt message 5 with bravo's key"
    );
    assert_eq!(w.server.established(), 0);
    assert_eq!(w.server.half_open(), 0, "the failed exchange is forgotten");
    // With different keys nothing the responder could send is readable to the initiator:
    // message 6 never comes and its exchange gives up (the client reports "no authentication
    // reply: wrong pre-shared key?").
    let peer = &w.peers[i];
    assert!(!phase1_up(&peer.events));
    assert!(!refusals(&peer.events).is_empty(), "{:?}", peer.events);
    assert_eq!(peer.endpoint.half_open(), 0);
}

#[test]
fn an_id_the_entry_does_not_name_is_refused() {
    let mut w = World::new(responder(), Duration::from_millis(10));
    // The right key from the right address, but its ID is its address, not the FQDN.
    let i = w.add_peer(Config::new(b"charlie-key"), "10.0.0.4:500", None);
    w.connect(i);
    w.run(Duration::from_secs(120), |_| false);
    assert_eq!(refusals(&w.server_events), vec![Refusal::IdMismatch]);
    assert_eq!(w.server.established(), 0);
    assert!(!phase1_up(&w.peers[i].events));
    // The initiator is told why (INVALID-ID-INFORMATION, encrypted, in place of message 6).
    assert!(
        refusals(&w.peers[i].events).contains(&Refusal::IdMismatch),
        "{:?}",
        refusals(&w.peers[i].events)
    );
}

#[test]
fn an_address_without_a_key_is_not_answered() {
    let mut w = World::new(responder(), Duration::from_millis(10));
    let i = w.add_peer(Config::new(b"alpha-key"), "192.0.2.50:500", None);
    w.connect(i);
    w.run(Duration::from_secs(1), |_| false);
    assert_eq!(refusals(&w.server_events)[0], Refusal::NoPreSharedKey);
    assert_eq!(w.server.half_open(), 0, "no state for a stranger");
    assert!(!phase1_up(&w.peers[i].events));
}

#[test]
fn the_initiator_uses_the_key_of_the_responders_address() {
    // A client with keys for two gateways and none for a third.
    let mut table = PskTable::new();
    for (peer, key) in [(SERVER, "alpha-key"), ("203.0.113.1", "other-gateway")] {
        let peer = peer.split(':').next().unwrap();
        table
            .insert(PskEntry {
                peer: peer.parse().unwrap(),
                id: None,
                secret: Secret::new(key.as_bytes()),
            })
            .unwrap();
    }
    let mut client = Config::new(b"not used");
    client.phase1.auth = Authentication::PreSharedKeys(Arc::new(table));
    let mut w = World::new(responder(), Duration::from_millis(10));
    let i = w.add_peer(client, "10.0.0.2:500", None);
    w.connect(i);
    assert!(w.run(Duration::from_secs(10), |w| w.peers[0].child().is_some()));
}
