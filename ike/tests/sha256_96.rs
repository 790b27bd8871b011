//! HMAC-SHA2-256 truncated to 96 bits, selected per peer: some Android builds (and Linux before
//! 2.6.33) negotiate HMAC-SHA2-256 but put 12 ICV bytes on the wire instead of RFC 4868's 16.
//! Quick Mode cannot tell, so the responder is told which peers do it: those peers get the
//! truncated variant, every other peer the standard one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

mod common;

use common::World;
use ike::crypto::{CipherAlgorithm, IntegrityAlgorithm};
use ike::endpoint::Config;
use ike::esp::{Discard, SaDb, Transform};
use l2sec_ike as ike;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use std::time::Duration;

/// A responder that knows 10.0.0.2 truncates.
fn responder() -> Config {
    let mut config = Config::new(b"psk");
    config.phase2.sha256_96_peers = vec!["10.0.0.2".parse().unwrap()];
    config
}

/// An old Android: offers only AES-CBC-128 with HMAC-SHA2-256, and truncates it.
fn old_android() -> Config {
    let mut config = Config::new(b"psk");
    config.phase2.transforms = vec![
        Transform::new(
            CipherAlgorithm::AesCbc128,
            Some(IntegrityAlgorithm::HmacSha256_128),
        )
        .unwrap(),
    ];
    config.phase2.sha256_96 = true;
    config
}

/// Connects `peer` from `address`; returns whether a UDP datagram sealed by the peer's
/// outbound SA opens at the responder, and the integrity each side chose.
fn connect_and_send(
    address: &str,
) -> (
    Result<(), Discard>,
    Option<IntegrityAlgorithm>,
    Option<IntegrityAlgorithm>,
) {
    let mut w = World::new(responder(), Duration::from_millis(10));
    let i = w.add_peer(old_android(), address, None);
    w.connect(i);
    assert!(
        w.run(Duration::from_secs(10), |w| {
            w.peers[0].child().is_some() && !common::children(&w.server_events).is_empty()
        }),
        "{:?}",
        w.server_events
    );
    let client = w.peers[i].child().unwrap();
    let server = common::children(&w.server_events)[0].1;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut server_db = SaDb::new(4);
    let _server_out = common::install(&mut server_db, server, &mut rng);
    let mut client_db = SaDb::new(4);
    let mut client_out = common::install(&mut client_db, client, &mut rng);
    let mut packet = common::seal(&mut client_out, b"an L2TP datagram", &mut rng);
    let opened = server_db.open(&mut packet).map(|_| ());
    (
        opened,
        client.transform.integrity(),
        server.transform.integrity(),
    )
}

#[test]
fn a_peer_listed_as_truncating_gets_hmac_sha256_96_and_its_esp_opens() {
    let (opened, client, server) = connect_and_send("10.0.0.2:500");
    assert_eq!(client, Some(IntegrityAlgorithm::HmacSha256_96));
    assert_eq!(server, Some(IntegrityAlgorithm::HmacSha256_96));
    assert_eq!(opened, Ok(()));
}

#[test]
fn an_unlisted_truncating_peer_gets_the_standard_variant_and_its_esp_fails_integrity() {
    // Same client from another address: the responder follows RFC 4868 (16-byte ICV), the
    // client still sends 12, and nothing it sends verifies. This is why the choice is per peer.
    let (opened, client, server) = connect_and_send("10.0.0.3:500");
    assert_eq!(client, Some(IntegrityAlgorithm::HmacSha256_96));
    assert_eq!(server, Some(IntegrityAlgorithm::HmacSha256_128));
    assert!(opened.is_err(), "{opened:?}");
}
