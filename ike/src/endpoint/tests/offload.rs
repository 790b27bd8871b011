//! The Diffie-Hellman work of answered exchanges done by the driver (`Config::dh_offload`).

use super::*;
use crate::crypto::{DhError, DhGroup};

fn offloading(pool: usize) -> Config {
    Config {
        dh_offload: true,
        dh_pool: pool,
        ..Config::new(b"interop-test-psk")
    }
}

fn agreements(n: &Net) -> usize {
    n.dh_queue
        .iter()
        .filter(|(_, j)| matches!(j, DhJob::Agree { .. }))
        .count()
}

fn ready(n: &Net) -> usize {
    DhGroup::ALL.iter().map(|g| n.server.dh_ready(*g)).sum()
}

fn phase1_cookies(events: &[Event]) -> Option<Cookies> {
    events.iter().find_map(|e| match e {
        Event::Phase1Up { cookies, .. } => Some(*cookies),
        _ => None,
    })
}

#[test]
fn message_4_leaves_before_the_agreement_and_an_early_message_5_waits_for_it() {
    let mut n = Net::with_configs(41, 0.0, Config::new(b"interop-test-psk"), offloading(4));
    // The agreement takes 200 ms; the link 30 ms each way: message 5 arrives first.
    n.dh_delay = Duration::from_millis(200);
    let start = n.now;
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| agreements(n) == 1));
    // Message 4 has gone: the client answers it with message 5 while the server still waits.
    assert!(n.drive(Duration::from_millis(150), |n| n.in_flight.is_empty()));
    assert_eq!(agreements(&n), 1, "the agreement is still out");
    assert_eq!(
        n.server.established(),
        0,
        "no keys, so message 5 cannot be read"
    );
    assert_eq!(n.server.stats().dh_computations, 0);
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    // Simulated time: the waiting message 5 was read when the keys came, not after the
    // client's retransmission 2 s later.
    let took = n.now - start;
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(n.server.stats().dh_computations, 1);
    let cookies = phase1_cookies(&n.server_events).unwrap();
    assert_eq!(
        n.client.isakmp_encryption_key(cookies).unwrap().expose(),
        n.server.isakmp_encryption_key(cookies).unwrap().expose(),
        "both sides derived the same keys from the offloaded agreement"
    );
    // The first use of the group started its pool; the driver filled it.
    assert!(n.drive(Duration::from_secs(5), |n| n.dh_queue.is_empty()));
    assert_eq!(ready(&n), 4);
}

#[test]
fn later_exchanges_take_their_key_pair_from_the_pool() {
    let mut n = Net::with_configs(42, 0.0, Config::new(b"interop-test-psk"), offloading(3));
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    assert!(n.drive(Duration::from_secs(5), |n| n.dh_queue.is_empty()));
    assert_eq!(ready(&n), 3);
    // Refills take long now: a second client's exchange must use a pair from the pool.
    n.dh_delay = Duration::from_secs(3);
    let second = Path {
        local: SocketAddr::from(([10, 0, 0, 3], 500)),
        remote: SERVER.parse().unwrap(),
    };
    n.client = Endpoint::new(
        Config::new(b"interop-test-psk"),
        ChaCha8Rng::seed_from_u64(43),
    );
    n.client_events.clear();
    n.client.connect(n.now, second).unwrap();
    assert!(n.drive(Duration::from_secs(2), |n| agreements(n) == 1));
    assert_eq!(
        ready(&n),
        2,
        "one pair taken, its replacement not computed yet"
    );
    assert!(n.drive(Duration::from_secs(10), |n| {
        child(&n.client_events).is_some()
    }));
    assert!(n.drive(Duration::from_secs(10), |n| n.dh_queue.is_empty()));
    assert_eq!(ready(&n), 3, "refilled");
    assert_eq!(n.server.established(), 2);
}

#[test]
fn a_refused_agreement_ends_the_exchange_and_a_late_one_is_ignored() {
    let mut n = Net::with_configs(44, 0.0, Config::new(b"interop-test-psk"), offloading(1));
    n.dh_delay = Duration::from_secs(1);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| agreements(n) == 1));
    // The peer's value turns out not to be on the curve / in the group.
    let i = n
        .dh_queue
        .iter()
        .position(|(_, j)| matches!(j, DhJob::Agree { .. }))
        .unwrap();
    let Some((_, DhJob::Agree { cookies, .. })) = n.dh_queue.remove(i) else {
        unreachable!()
    };
    assert_eq!(n.server.half_open(), 1);
    n.server.handle_dh_done(
        n.now,
        DhDone::Agreed {
            cookies,
            result: Err(DhError::InvalidPublicValue),
        },
    );
    n.collect();
    assert_eq!(n.server.half_open(), 0, "the exchange is gone");
    assert!(n.server_events.iter().any(|e| matches!(
        e,
        Event::Refused {
            refusal: Refusal::InvalidKeyInformation,
            ..
        }
    )));
    n.drive(Duration::from_secs(30), |_| false);
    assert_eq!(n.server.established(), 0);

    // A result for an exchange that timed out meanwhile changes nothing.
    let mut n = Net::with_configs(45, 0.0, Config::new(b"interop-test-psk"), offloading(1));
    n.dh_delay = Duration::from_secs(70);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| agreements(n) == 1));
    n.drive(Duration::from_secs(90), |n| n.dh_queue.is_empty());
    assert!(n.dh_queue.is_empty(), "every job came back");
    assert_eq!(n.server.half_open(), 0);
    assert_eq!(n.server.established(), 0);
    assert_eq!(n.server.stats().dh_computations, 0);
}

#[test]
fn without_offload_no_job_is_handed_out() {
    let mut n = Net::new(46, 0.0);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    assert_eq!(n.dh_runs, 0);
    assert_eq!(n.server.stats().dh_computations, 1);
    assert!(n.server.poll_dh_job().is_none());
}
