//! Disconnect/CoA requests (RFC 5176) resolved through the session indexes: each session
//! identification attribute finds its sessions without looking at any other session.

use super::*;

/// The value of attribute `name` in a Start record's debug text: `Name(value)`.
fn field<'a>(record: &'a str, name: &str) -> &'a str {
    record
        .split(&format!("{name}("))
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
}

/// The bytes of a `[1, 2, 3]` debug list.
fn bytes(list: &str) -> Vec<u8> {
    list.trim_matches(['[', ']'])
        .split(", ")
        .map(|b| b.parse().unwrap())
        .collect()
}

/// "… N session(s) …" of the last RADIUS event.
fn acted_on(lns: &mut Lns<ChaCha20Rng>) -> Option<usize> {
    events(lns)
        .into_iter()
        .filter_map(|e| match e {
            LnsEvent::Radius { what } => what
                .split(": ")
                .nth(1)
                .and_then(|w| w.split(' ').next())
                .and_then(|n| n.parse().ok()),
            _ => None,
        })
        .next_back()
}

#[test]
fn each_identification_attribute_finds_its_sessions_through_an_index() {
    let mut now = t0();
    let mut lns = radius_lns(Order::RadiusOnly, None);
    let mut radius = FakeRadius::new(Vec::new());
    // Two sessions of bob (from 10.0.0.5 and 10.0.0.6), one of alice (10.0.0.7), and
    // filler sessions of others that no request below names.
    let mut clients = vec![
        Client::new(5, "bob", "radius-pass", now),
        Client::new(6, "bob", "radius-pass", now),
        Client::new(7, "alice", "radius-pass", now),
    ];
    clients.extend((20..40).map(|n| Client::new(n, &format!("user{n}"), "radius-pass", now)));
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(20),
        Some(&mut radius),
        |_, c| c.iter().all(|c| c.ipv4().is_some())
    ));
    assert_eq!(lns.sessions(), 23);
    let start = radius.records(AcctStatusType::START);
    let alice = &start
        .iter()
        .find(|(_, r)| r.contains(&format!("UserName({:?})", b"alice")))
        .unwrap()
        .1;
    let alice_session_id = bytes(field(alice, "AcctSessionId"));
    let alice_port: u32 = field(alice, "NasPort").parse().unwrap();
    let bob_address = clients[1].ipv4().unwrap();
    events(&mut lns);

    let dae: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut out = [0u8; 4096];
    let session_id = Attr::AcctSessionId(&alice_session_id);
    // (attributes, sessions examined, sessions acted on; None: NAK 503).
    let cases: [(&[Attr<'_>], u64, Option<usize>); 9] = [
        (&[Attr::UserName(b"bob")], 2, Some(2)),
        (&[Attr::UserName(b"alice")], 1, Some(1)),
        (&[Attr::UserName(b"carol")], 0, None),
        (&[session_id], 1, Some(1)),
        (
            &[Attr::AcctSessionId(b"0000000000001234-FFFFFFFF")],
            0,
            None,
        ),
        (&[Attr::FramedIpAddress(bob_address)], 1, Some(1)),
        (&[Attr::CallingStationId(b"10.0.0.6")], 1, Some(1)),
        (&[Attr::NasPort(alice_port)], 1, Some(1)),
        // Every attribute must match: bob's sessions are examined, neither is from .7.
        (
            &[Attr::UserName(b"bob"), Attr::CallingStationId(b"10.0.0.7")],
            2,
            None,
        ),
    ];
    for (i, (attrs, examined, acted)) in cases.iter().enumerate() {
        let before = lns.dae_visits;
        let q = dae_request(
            Code::COA_REQUEST,
            u8::try_from(i).unwrap(),
            "dae-secret",
            attrs,
        );
        let answer = lns
            .handle_dae(now, dae, &q, &mut out)
            .map(|n| dae_answer(&q, &out[..n]));
        let expected = match acted {
            Some(_) => (Code::COA_ACK, None),
            None => (Code::COA_NAK, Some(503)),
        };
        assert_eq!(answer, Some(expected), "{attrs:?}");
        assert_eq!(lns.dae_visits - before, *examined, "{attrs:?}");
        if acted.is_some() {
            assert_eq!(acted_on(&mut lns), *acted, "{attrs:?}");
        }
    }
    // A malformed Calling-Station-Id names nobody, and nothing is examined.
    let before = lns.dae_visits;
    let q = dae_request(
        Code::DISCONNECT_REQUEST,
        50,
        "dae-secret",
        &[Attr::CallingStationId(b"not an address")],
    );
    let answer = lns
        .handle_dae(now, dae, &q, &mut out)
        .map(|n| dae_answer(&q, &out[..n]));
    assert_eq!(answer, Some((Code::DISCONNECT_NAK, Some(503))));
    assert_eq!(lns.dae_visits, before);

    // Disconnect by Calling-Station-Id ends exactly that session; the indexes forget it.
    let entries = lns.index.len();
    let q = dae_request(
        Code::DISCONNECT_REQUEST,
        51,
        "dae-secret",
        &[Attr::CallingStationId(b"10.0.0.5")],
    );
    let answer = lns
        .handle_dae(now, dae, &q, &mut out)
        .map(|n| dae_answer(&q, &out[..n]));
    assert_eq!(answer, Some((Code::DISCONNECT_ACK, None)));
    assert!(run_with(
        &mut lns,
        &mut clients,
        &mut now,
        Duration::from_secs(30),
        Some(&mut radius),
        |l, _| l.sessions() == 22
    ));
    assert_eq!(
        lns.index.len(),
        entries - 3,
        "user, session ID and peer entries"
    );
    assert_eq!(
        clients[0].cdn,
        Some(CdnResult::ADMINISTRATIVE),
        "a final end"
    );
    assert!(clients[1..].iter().all(|c| c.cdn.is_none()));
    // bob now has one session left, and a request by his name finds only that one.
    let before = lns.dae_visits;
    let q = dae_request(
        Code::COA_REQUEST,
        52,
        "dae-secret",
        &[Attr::UserName(b"bob")],
    );
    let answer = lns
        .handle_dae(now, dae, &q, &mut out)
        .map(|n| dae_answer(&q, &out[..n]));
    assert_eq!(answer, Some((Code::COA_ACK, None)));
    assert_eq!(lns.dae_visits - before, 1);
}
