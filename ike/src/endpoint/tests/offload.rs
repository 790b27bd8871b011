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
    n.dh_queue.iter().filter(|(_, j)| is_agree(j)).count()
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

/// Whether a job of this kind is queued.
fn queued(n: &Net, kind: fn(&DhJob) -> bool) -> bool {
    n.dh_queue.iter().any(|(_, j)| kind(j))
}

/// Takes the first queued job of this kind out (to hand back a result of the test's choice).
fn take(n: &mut Net, kind: fn(&DhJob) -> bool) -> DhJob {
    let i = n.dh_queue.iter().position(|(_, j)| kind(j)).unwrap();
    n.dh_queue.remove(i).unwrap().1
}

const fn is_key_pair_for(j: &DhJob) -> bool {
    matches!(j, DhJob::KeyPairFor { .. })
}

const fn is_agree(j: &DhJob) -> bool {
    matches!(j, DhJob::Agree { .. })
}

const fn is_agree_quick(j: &DhJob) -> bool {
    matches!(j, DhJob::AgreeQuick { .. })
}

const fn is_sign(j: &DhJob) -> bool {
    matches!(j, DhJob::Sign { .. })
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
    let DhJob::Agree { cookies, .. } = take(&mut n, is_agree) else {
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
    // The pool is empty: message 3 waits for its key pair, which comes back too late.
    assert!(n.drive(Duration::from_secs(5), |n| queued(n, is_key_pair_for)));
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

fn with_pfs() -> Config {
    let mut c = Config::new(b"interop-test-psk");
    c.phase2.pfs = crate::ikev1::phase2::Pfs::Group(DhGroup::Modp2048);
    c
}

fn quick_agreements(n: &Net) -> usize {
    n.dh_queue.iter().filter(|(_, j)| is_agree_quick(j)).count()
}

#[test]
fn a_quick_mode_with_pfs_answers_at_once_and_reads_message_3_when_its_agreement_is_back() {
    let mut n = Net::with_configs(47, 0.0, with_pfs(), offloading(2));
    n.dh_delay = Duration::from_millis(200);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| quick_agreements(n) == 1));
    let asked = n.now;
    // Message 2 went out; message 3 comes back 60 ms later and must wait.
    assert!(n.drive(Duration::from_millis(150), |n| n.in_flight.is_empty()));
    assert!(child(&n.client_events).is_some(), "the client has its SAs");
    assert!(
        child(&n.server_events).is_none(),
        "the server waits for g(qm)^xy"
    );
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    let took = n.now - asked;
    assert!(
        took <= Duration::from_millis(210),
        "{took:?}: read when the job came back"
    );
    assert_eq!(n.server.stats().dh_computations, 2, "phase 1 and PFS");
    // The keys agree: what the client seals, the server opens.
    let (c, s) = (
        child(&n.client_events).unwrap(),
        child(&n.server_events).unwrap(),
    );
    assert_eq!(c.outbound_spi, s.inbound_spi);
    assert_eq!(
        c.outbound_keys().encryption,
        s.inbound_keys().encryption,
        "both sides mixed in the same PFS secret"
    );
}

#[test]
fn a_refused_pfs_agreement_ends_only_that_quick_mode() {
    let mut n = Net::with_configs(48, 0.0, with_pfs(), offloading(2));
    n.dh_delay = Duration::from_secs(1);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| quick_agreements(n) == 1));
    let DhJob::AgreeQuick {
        cookies,
        message_id,
        ..
    } = take(&mut n, is_agree_quick)
    else {
        unreachable!()
    };
    n.server.handle_dh_done(
        n.now,
        DhDone::AgreedQuick {
            cookies,
            message_id,
            result: Err(DhError::InvalidPublicValue),
        },
    );
    n.collect();
    assert!(n.server_events.iter().any(|e| matches!(
        e,
        Event::Refused {
            refusal: Refusal::InvalidKeyInformation,
            ..
        }
    )));
    assert_eq!(n.server.established(), 1, "the ISAKMP SA stays");
    n.drive(Duration::from_secs(3), |_| false);
    assert!(child(&n.server_events).is_none());
}

#[test]
fn with_the_pool_empty_message_4_waits_for_a_key_pair_from_the_driver() {
    let mut n = Net::with_configs(49, 0.0, Config::new(b"interop-test-psk"), offloading(2));
    n.dh_delay = Duration::from_millis(300);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| queued(n, is_key_pair_for)));
    let asked = n.now;
    // Nothing is in flight until the key pair comes back: no message 4 yet.
    assert!(n.drive(Duration::from_millis(250), |n| n.in_flight.is_empty()));
    assert_eq!(agreements(&n), 0, "no message 4, so no agreement yet");
    assert!(n.drive(Duration::from_secs(1), |n| agreements(n) == 1));
    assert!(
        n.now - asked >= Duration::from_millis(300),
        "message 4 waited for the job"
    );
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    assert_eq!(n.server.stats().dh_computations, 1);
    let cookies = phase1_cookies(&n.server_events).unwrap();
    assert_eq!(
        n.client.isakmp_encryption_key(cookies).unwrap().expose(),
        n.server.isakmp_encryption_key(cookies).unwrap().expose()
    );
}

#[test]
fn with_certificates_message_6_waits_for_the_signature_from_the_driver() {
    use crate::ikev1::test_pki::{Pki, subject, wall_clock};
    let pki = Pki::new();
    let server = Config {
        dh_offload: true,
        dh_pool: 1,
        ..Config::with_certificates(pki.server_credentials())
    };
    let mut n = Net::with_configs(
        50,
        0.0,
        Config::with_certificates(pki.client_credentials()),
        server,
    );
    n.client.set_wall_clock(n.now, wall_clock());
    n.server.set_wall_clock(n.now, wall_clock());
    n.dh_delay = Duration::from_millis(300);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| queued(n, is_sign)));
    assert_eq!(
        n.server.established(),
        0,
        "message 5 read, message 6 not written"
    );
    let asked = n.now;
    assert!(
        n.drive(Duration::from_secs(10), both_have_children),
        "client {:?} / server {:?}",
        n.client_events,
        n.server_events
    );
    assert!(n.now - asked >= Duration::from_millis(300));
    let peer = n.server_events.iter().find_map(|e| match e {
        Event::Phase1Up { peer_id, .. } => Some(peer_id.clone()),
        _ => None,
    });
    assert_eq!(peer.map(|p| p.data), Some(subject(&pki.client)));
}

#[test]
fn a_failed_signature_ends_the_exchange() {
    use crate::ikev1::test_pki::{Pki, wall_clock};
    let pki = Pki::new();
    let server = Config {
        dh_offload: true,
        ..Config::with_certificates(pki.server_credentials())
    };
    let mut n = Net::with_configs(
        51,
        0.0,
        Config::with_certificates(pki.client_credentials()),
        server,
    );
    n.client.set_wall_clock(n.now, wall_clock());
    n.server.set_wall_clock(n.now, wall_clock());
    n.dh_delay = Duration::from_secs(1);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(10), |n| queued(n, is_sign)));
    let DhJob::Sign { cookies, .. } = take(&mut n, is_sign) else {
        unreachable!()
    };
    n.server.handle_dh_done(
        n.now,
        DhDone::Signed {
            cookies,
            result: Err(Refusal::Malformed),
        },
    );
    n.collect();
    assert_eq!(n.server.half_open(), 0);
    assert_eq!(n.server.established(), 0);
}

const fn is_quick_key_pair_for(j: &DhJob) -> bool {
    matches!(
        j,
        DhJob::KeyPairFor {
            target: KeyPairTarget::QuickMode { .. },
            ..
        }
    )
}

fn quick_key_pairs(n: &Net) -> usize {
    n.dh_queue
        .iter()
        .filter(|(_, j)| is_quick_key_pair_for(j))
        .count()
}

/// Whether a datagram from the server to the client is on the way.
fn server_sent(n: &Net) -> bool {
    n.in_flight.iter().any(|(_, to_server, _, _)| !to_server)
}

/// The message IDs of the server's Quick Modes under `cookies`.
fn server_quick_modes(n: &Net, cookies: Cookies) -> Vec<u32> {
    n.server
        .established
        .get(&cookies)
        .map(|e| e.quick.keys().copied().collect())
        .unwrap_or_default()
}

fn server_children(n: &Net) -> Vec<u32> {
    n.server_events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaUp { child, .. } => Some(child.message_id.0),
            _ => None,
        })
        .collect()
}

// Phase 1 uses MODP-1024 (the client's first suite) and PFS MODP-2048: the first Quick Mode
// finds the PFS group's pool empty.

#[test]
fn with_the_pool_empty_a_pfs_quick_mode_answers_when_its_key_pair_is_back() {
    let mut n = Net::with_configs(52, 0.0, with_pfs(), offloading(2));
    n.dh_delay = Duration::from_millis(300);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| queued(n, is_quick_key_pair_for)));
    assert_eq!(n.server.dh_ready(DhGroup::Modp2048), 0);
    assert_eq!(n.server.stats().dh_computations, 1, "phase 1 only");
    let asked = n.now;
    // Message 1 is read; message 2 waits for the key pair and nothing goes out meanwhile.
    while queued(&n, is_quick_key_pair_for) {
        assert!(n.now < asked + Duration::from_secs(1), "the job came back");
        assert!(!server_sent(&n), "message 2 went out before its key pair");
        assert_eq!(quick_agreements(&n), 0);
        assert!(n.step());
    }
    assert!(n.now - asked >= Duration::from_millis(300));
    assert!(
        server_sent(&n),
        "message 2 leaves when the key pair is back"
    );
    assert_eq!(quick_agreements(&n), 1, "and its agreement is a job too");
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    assert_eq!(n.server.stats().dh_computations, 2, "phase 1 and PFS");
    let (c, s) = (
        child(&n.client_events).unwrap(),
        child(&n.server_events).unwrap(),
    );
    assert_eq!(c.outbound_spi, s.inbound_spi);
    assert_eq!(c.outbound_keys().encryption, s.inbound_keys().encryption);
    assert_eq!(c.inbound_keys().encryption, s.outbound_keys().encryption);
    // Traffic passes both ways.
    let mut rng = ChaCha8Rng::seed_from_u64(52);
    let (mut client, mut server) = (EspSide::default(), EspSide::default());
    let (mut seen_c, mut seen_s) = (0, 0);
    client.apply(&n.client_events, &mut seen_c, &mut rng);
    server.apply(&n.server_events, &mut seen_s, &mut rng);
    let payload = b"an L2TP datagram".to_vec();
    let packet = client.seal(&payload, &mut rng);
    server.open(packet, &payload);
    let packet = server.seal(&payload, &mut rng);
    client.open(packet, &payload);
    assert_eq!((client.opened, server.opened), (1, 1));
}

#[test]
fn a_failed_pfs_key_pair_ends_only_that_quick_mode() {
    let mut n = Net::with_configs(53, 0.0, with_pfs(), offloading(2));
    n.dh_delay = Duration::from_secs(1);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(10), |n| queued(
        n,
        is_quick_key_pair_for
    )));
    let cookies = phase1_cookies(&n.server_events).unwrap();
    // A second Quick Mode under the same ISAKMP SA also waits for a key pair.
    n.client.start_quick(n.now, cookies).unwrap();
    assert!(n.drive(Duration::from_secs(1), |n| quick_key_pairs(n) == 2));
    assert_eq!(server_quick_modes(&n, cookies).len(), 2);
    let DhJob::KeyPairFor {
        target: target @ KeyPairTarget::QuickMode { message_id, .. },
        ..
    } = take(&mut n, is_quick_key_pair_for)
    else {
        unreachable!()
    };
    n.server.handle_dh_done(
        n.now,
        DhDone::KeyPairFor {
            target,
            result: Err(DhError::InvalidPublicValue),
        },
    );
    let mut buf = [0u8; MAX_MESSAGE];
    assert!(
        n.server.poll_transmit(&mut buf).is_none(),
        "nothing is sent"
    );
    n.dh_delay = Duration::from_millis(100);
    n.collect();
    assert!(n.server_events.iter().any(|e| matches!(
        e,
        Event::Refused {
            refusal: Refusal::InvalidKeyInformation,
            ..
        }
    )));
    let left = server_quick_modes(&n, cookies);
    assert_eq!(left.len(), 1, "the other Quick Mode waits on");
    assert!(!left.contains(&message_id), "the failed one is gone");
    assert_eq!(n.server.established(), 1, "the ISAKMP SA stays");
    // The other one completes (before the client repeats the failed one's message 1).
    assert!(n.drive(Duration::from_secs(2), |n| !server_children(n).is_empty()));
    assert_eq!(server_children(&n), left);
    assert_eq!(n.server.established(), 1);
}

#[test]
fn a_pfs_key_pair_back_after_its_quick_mode_expired_changes_nothing() {
    let mut n = Net::with_configs(54, 0.0, with_pfs(), offloading(2));
    n.dh_delay = Duration::from_millis(100);
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), |n| queued(n, is_quick_key_pair_for)));
    let cookies = phase1_cookies(&n.server_events).unwrap();
    let job = take(&mut n, is_quick_key_pair_for);
    // The client repeats message 1 meanwhile (ignored while the pair is computed) and gives up.
    n.drive(Duration::from_secs(70), |_| false);
    assert!(server_quick_modes(&n, cookies).is_empty(), "expired");
    let ready = n.server.dh_ready(DhGroup::Modp2048);
    n.server.handle_dh_done(n.now, job.run());
    let mut buf = [0u8; MAX_MESSAGE];
    assert!(
        n.server.poll_transmit(&mut buf).is_none(),
        "nothing is sent"
    );
    assert!(server_quick_modes(&n, cookies).is_empty());
    assert_eq!(n.server.dh_ready(DhGroup::Modp2048), ready);
    assert!(child(&n.server_events).is_none());
    assert_eq!(n.server.established(), 1);
}

#[test]
fn with_the_pool_filled_a_pfs_quick_mode_queues_no_key_pair_job() {
    let mut n = Net::with_configs(55, 0.0, with_pfs(), offloading(2));
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    assert!(n.drive(Duration::from_secs(5), |n| n.dh_queue.is_empty()));
    assert_eq!(n.server.dh_ready(DhGroup::Modp2048), 2);
    let cookies = phase1_cookies(&n.server_events).unwrap();
    // Refills take long now: the next Quick Mode must use a pair from the pool.
    n.dh_delay = Duration::from_secs(3);
    n.client.start_quick(n.now, cookies).unwrap();
    let mut lowest = usize::MAX;
    let end = n.now + Duration::from_secs(10);
    while server_children(&n).len() < 2 {
        assert!(n.now < end, "the second Quick Mode completes");
        assert!(
            !queued(&n, is_key_pair_for),
            "no key pair is computed for it"
        );
        lowest = lowest.min(n.server.dh_ready(DhGroup::Modp2048));
        assert!(n.step());
    }
    assert_eq!(lowest, 1, "it took a pair from the pool");
    assert_eq!(n.server.stats().dh_computations, 3, "phase 1 and two PFS");
}

#[test]
fn without_offload_a_pfs_quick_mode_hands_out_no_job() {
    let mut n = Net::with_configs(56, 0.0, with_pfs(), Config::new(b"interop-test-psk"));
    connect(&mut n);
    assert!(n.drive(Duration::from_secs(5), both_have_children));
    assert_eq!(
        n.dh_runs, 0,
        "the key pair and the agreement were computed in line"
    );
    assert!(n.server.poll_dh_job().is_none());
    let (c, s) = (
        child(&n.client_events).unwrap(),
        child(&n.server_events).unwrap(),
    );
    assert_eq!(c.outbound_keys().encryption, s.inbound_keys().encryption);
}
