//! Scripted single-session tests: one side is a real `Session`, the other is hand-written frames.

use super::*;
use crate::auth::Method;
use crate::wire::Frame;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

#[expect(
    clippy::disallowed_methods,
    reason = "the script's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

/// The randomness a scripted input may need; seeded, so every run sends the same frames.
fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(8)
}

fn frame(protocol: Protocol, code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1600];
    let n = write_packet(&mut buf, protocol, code, id, |w| w.put_slice(data)).unwrap();
    buf.truncate(n);
    buf
}

/// (protocol, code, identifier, data) of every queued frame.
fn sent(s: &mut Session) -> Vec<(Protocol, u8, u8, Vec<u8>)> {
    let mut buf = [0u8; 1600];
    let mut v = Vec::new();
    while let Some(n) = s.poll_transmit(&mut buf) {
        let f = Frame::parse(&buf[..n]).unwrap();
        let p = Packet::parse(f.information).unwrap();
        v.push((f.protocol, p.code, p.identifier, p.data.to_vec()));
    }
    v
}

fn server(methods: &[Method]) -> Session {
    let config = ServerConfig {
        methods: methods.to_vec(),
        ..ServerConfig::default()
    };
    Session::server(Arc::new(config), &mut ChaCha8Rng::seed_from_u64(7), t0())
}

/// Opens LCP on a PAP server with the given client options; returns the session and the time.
fn lcp_open(client_options: &[u8]) -> (Session, Instant) {
    let now = t0();
    let mut s = server(&[Method::Pap]);
    let ours = sent(&mut s).pop().unwrap();
    assert_eq!((ours.0, ours.1), (Protocol::LCP, 1));
    s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 1, 1, client_options))
        .unwrap();
    s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 2, ours.2, &ours.3))
        .unwrap();
    let _ = sent(&mut s);
    (s, now)
}

#[test]
fn unknown_lcp_options_are_rejected_verbatim_and_known_ones_acked() {
    let now = t0();
    let mut s = server(&[Method::Pap]);
    let _ = sent(&mut s);
    // Windows 11 style: MRU 1400, magic, PFC, ACFC, Callback (13) and Multilink MRRU (17).
    let request = [
        1, 4, 0x05, 0x78, 5, 6, 0x11, 0x22, 0x33, 0x44, 7, 2, 8, 2, 13, 3, 6, 17, 4, 0x05, 0xdc,
    ];
    s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 1, 9, &request))
        .unwrap();
    // (The peer's first request also makes us repeat our own Configure-Request.)
    let replies =
        |s: &mut Session| -> Vec<_> { sent(s).into_iter().filter(|f| f.1 != 1).collect() };
    assert_eq!(
        replies(&mut s),
        vec![(Protocol::LCP, 4, 9, vec![13, 3, 6, 17, 4, 0x05, 0xdc])]
    );
    let request = [
        1, 4, 0x05, 0x78, 2, 6, 0, 0, 0, 0, 5, 6, 0x11, 0x22, 0x33, 0x44, 7, 2, 8, 2,
    ];
    s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 1, 10, &request))
        .unwrap();
    assert_eq!(sent(&mut s), vec![(Protocol::LCP, 2, 10, request.to_vec())]);
}

#[test]
fn peer_mru_is_honoured_and_too_small_mru_is_naked_up() {
    let (mut s, now) = lcp_open(&[1, 4, 0x05, 0x00, 5, 6, 1, 2, 3, 4]);
    assert_eq!(s.peer_mru(), 1280);
    // An MRU below the floor is Nak'd to 128.
    let mut s2 = server(&[Method::Pap]);
    let _ = sent(&mut s2);
    s2.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 1, 3, &[1, 4, 0, 64]))
        .unwrap();
    // (Our own Configure-Request, repeated on the peer's first, is not the point here.)
    assert_eq!(
        sent(&mut s2)
            .into_iter()
            .filter(|f| f.1 != 1)
            .collect::<Vec<_>>(),
        vec![(Protocol::LCP, 3, 3, vec![1, 4, 0, 128])]
    );
    let _ = &mut s;
}

#[test]
fn own_magic_number_coming_back_is_detected_as_a_loop() {
    let mut now = t0();
    let mut s = server(&[Method::Pap]);
    // A looped-back line: everything we send comes straight back to us.
    let mut buf = [0u8; 1600];
    for _ in 0..200 {
        if s.is_dead() {
            break;
        }
        let mut frames = Vec::new();
        while let Some(n) = s.poll_transmit(&mut buf) {
            frames.push(buf[..n].to_vec());
        }
        for f in frames {
            let _ = s.handle_frame(now, &mut rng(), &f);
        }
        now += Duration::from_millis(100);
        s.handle_timeout(now, &mut rng());
    }
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        events.contains(&Event::Down(DownReason::LoopedBack)),
        "{events:?}"
    );
}

#[test]
fn echo_request_is_answered_with_our_magic_and_discard_is_ignored() {
    let (mut s, now) = lcp_open(&[5, 6, 1, 2, 3, 4]);
    let magic = s.lcp.negotiator().magic().to_be_bytes();
    s.handle_frame(
        now,
        &mut rng(),
        &frame(Protocol::LCP, 9, 42, &[1, 2, 3, 4, b'h', b'i']),
    )
    .unwrap();
    let mut expected = magic.to_vec();
    expected.extend_from_slice(b"hi");
    assert_eq!(sent(&mut s), vec![(Protocol::LCP, 10, 42, expected)]);
    s.handle_frame(
        now,
        &mut rng(),
        &frame(Protocol::LCP, 11, 43, &[1, 2, 3, 4, 0xde, 0xad]),
    )
    .unwrap();
    assert_eq!(sent(&mut s), vec![]);
    // Our own magic in an Echo-Request means the link loops back.
    s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 9, 44, &magic))
        .unwrap();
    assert_eq!(s.phase(), Phase::Terminate);
}

#[test]
fn echo_requests_follow_the_configured_interval() {
    let (mut s, now) = lcp_open(&[5, 6, 1, 2, 3, 4]);
    assert_eq!(
        s.poll_timeout(),
        Some(now + Duration::from_secs(30).min(s.config_auth_timeout()))
    );
    s.handle_timeout(now + Duration::from_secs(30), &mut rng());
    let echoes: Vec<_> = sent(&mut s).into_iter().filter(|f| f.1 == 9).collect();
    assert_eq!(echoes.len(), 1);
    assert_eq!(
        echoes[0].3,
        s.lcp.negotiator().magic().to_be_bytes().to_vec()
    );
}

#[test]
fn ipcp_server_rejects_vj_and_offers_dns_and_nbns() {
    let now = t0();
    let mut s = server(&[Method::Pap]);
    let ours = sent(&mut s).pop().unwrap();
    s.handle_frame(
        now,
        &mut rng(),
        &frame(Protocol::LCP, 1, 1, &[5, 6, 1, 2, 3, 4]),
    )
    .unwrap();
    s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 2, ours.2, &ours.3))
        .unwrap();
    s.handle_frame(
        now,
        &mut rng(),
        &frame(
            Protocol::PAP,
            1,
            5,
            &[5, b'h', b'b', b'@', b'h', b'b', 1, b'x'],
        ),
    )
    .unwrap();
    let Some(Event::AuthRequest(_)) =
        std::iter::from_fn(|| s.poll_event()).find(|e| matches!(e, Event::AuthRequest(_)))
    else {
        panic!("no auth request")
    };
    s.auth_verdict(
        now,
        &mut rng(),
        Verdict::Accept(crate::auth::Grant::default()),
    );
    let assignment = Assignment {
        local: Ipv4Addr::new(172, 16, 1, 1),
        peer: Ipv4Addr::new(172, 16, 1, 51),
        dns: [
            Some(Ipv4Addr::new(192, 168, 1, 1)),
            Some(Ipv4Addr::new(192, 168, 1, 2)),
        ],
        nbns: [Some(Ipv4Addr::new(192, 168, 1, 3)), None],
    };
    // The client's request arrives before the pool answered: it is kept and replayed.
    let vj = [2, 6, 0x00, 0x2d, 0x0f, 0x01];
    let mut request = vec![3, 6, 0, 0, 0, 0];
    request.extend_from_slice(&vj);
    s.handle_frame(now, &mut rng(), &frame(Protocol::IPCP, 1, 1, &request))
        .unwrap();
    s.assign_address(now, assignment);
    let out = sent(&mut s);
    assert!(out.contains(&(Protocol::PAP, 2, 5, [&[8u8][..], b"Login ok"].concat())));
    assert!(out.contains(&(Protocol::IPCP, 1, 1, vec![3, 6, 172, 16, 1, 1])));
    assert!(
        out.contains(&(Protocol::IPCP, 4, 1, vj.to_vec())),
        "{out:?}"
    );
    let request = [
        3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 130, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0, 132, 6, 0, 0,
        0, 0,
    ];
    s.handle_frame(now, &mut rng(), &frame(Protocol::IPCP, 1, 2, &request))
        .unwrap();
    let out = sent(&mut s);
    assert_eq!(
        out,
        vec![(Protocol::IPCP, 4, 2, vec![132, 6, 0, 0, 0, 0])],
        "no secondary NBNS to offer"
    );
    let request = [
        3, 6, 0, 0, 0, 0, 129, 6, 0, 0, 0, 0, 130, 6, 0, 0, 0, 0, 131, 6, 0, 0, 0, 0,
    ];
    s.handle_frame(now, &mut rng(), &frame(Protocol::IPCP, 1, 3, &request))
        .unwrap();
    let nak = [
        3, 6, 172, 16, 1, 51, 129, 6, 192, 168, 1, 1, 130, 6, 192, 168, 1, 3, 131, 6, 192, 168, 1,
        2,
    ];
    assert_eq!(sent(&mut s), vec![(Protocol::IPCP, 3, 3, nak.to_vec())]);
}

#[test]
fn auth_packets_of_a_method_not_negotiated_are_discarded() {
    let (mut s, now) = lcp_open(&[5, 6, 1, 2, 3, 4]);
    let chap = frame(Protocol::CHAP, 2, 1, &[16; 20]);
    assert_eq!(
        s.handle_frame(now, &mut rng(), &chap),
        Err(Discard::UnexpectedAuth)
    );
    assert_eq!(sent(&mut s), vec![]);
    // IP before IPCP is open is dropped and counted, not rejected.
    assert_eq!(
        s.handle_frame(now, &mut rng(), &[0xff, 3, 0, 0x21, 0x45]),
        Err(Discard::NotOpen(Protocol::IPV4))
    );
    assert_eq!(s.stats().not_open, 1);
}

#[test]
fn lower_layer_down_finishes_at_once() {
    let (mut s, now) = lcp_open(&[5, 6, 1, 2, 3, 4]);
    s.lower_layer_down(now);
    assert!(s.is_dead());
    assert!(
        std::iter::from_fn(|| s.poll_event()).any(|e| e == Event::Down(DownReason::LowerLayerDown))
    );
    assert_eq!(
        s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 9, 1, &[0; 4])),
        Err(Discard::Dead)
    );
    assert_eq!(s.poll_timeout(), None);
}

impl Session {
    fn config_auth_timeout(&self) -> Duration {
        match &self.role {
            RoleState::Server { config, .. } => config.auth_timeout,
            RoleState::Client { config, .. } => config.auth_timeout,
        }
    }
}

#[test]
fn a_verdict_message_replaces_our_pap_text_and_is_cut_at_200_octets() {
    let now = t0();
    for (message, expected) in [
        ("Account expired".to_owned(), b"Account expired".to_vec()),
        ("é".repeat(150), "é".repeat(100).into_bytes()),
    ] {
        let mut s = server(&[Method::Pap]);
        let ours = sent(&mut s).pop().unwrap();
        s.handle_frame(
            now,
            &mut rng(),
            &frame(Protocol::LCP, 1, 1, &[5, 6, 1, 2, 3, 4]),
        )
        .unwrap();
        s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 2, ours.2, &ours.3))
            .unwrap();
        let _ = sent(&mut s);
        s.handle_frame(
            now,
            &mut rng(),
            &frame(
                Protocol::PAP,
                1,
                5,
                &[5, b'h', b'b', b'@', b'h', b'b', 1, b'x'],
            ),
        )
        .unwrap();
        s.auth_verdict_with_message(now, &mut rng(), Verdict::Reject, &message);
        let nak = sent(&mut s)
            .into_iter()
            .find(|p| p.0 == Protocol::PAP)
            .unwrap();
        assert_eq!(nak.1, crate::auth::pap::NAK);
        assert_eq!(usize::from(nak.3[0]), expected.len());
        assert_eq!(&nak.3[1..], &expected[..]);
    }
}

#[test]
fn an_ms_chap_v2_refusal_carries_the_error_code_and_message_with_no_retry() {
    let now = t0();
    let mut s = server(&[Method::MsChapV2]);
    let ours = sent(&mut s).pop().unwrap();
    s.handle_frame(
        now,
        &mut rng(),
        &frame(Protocol::LCP, 1, 1, &[5, 6, 1, 2, 3, 4]),
    )
    .unwrap();
    s.handle_frame(now, &mut rng(), &frame(Protocol::LCP, 2, ours.2, &ours.3))
        .unwrap();
    let challenge = sent(&mut s)
        .into_iter()
        .find(|p| p.0 == Protocol::CHAP)
        .unwrap();
    // Response (RFC 2759 §4): Value-Size 49, Peer-Challenge, 8 reserved, NT-Response, Flags.
    let mut response = vec![49u8];
    response.extend_from_slice(&[7; 16]);
    response.extend_from_slice(&[0; 8]);
    response.extend_from_slice(&[9; 24]);
    response.push(0);
    response.extend_from_slice(b"bob");
    s.handle_frame(
        now,
        &mut rng(),
        &frame(Protocol::CHAP, 2, challenge.2, &response),
    )
    .unwrap();
    assert!(std::iter::from_fn(|| s.poll_event()).any(|e| matches!(e, Event::AuthRequest(_))));
    s.auth_reject_with_error(now, &mut rng(), 648, Some("Password expired"));
    let failure = sent(&mut s)
        .into_iter()
        .find(|p| p.0 == Protocol::CHAP)
        .unwrap();
    assert_eq!((failure.1, failure.2), (4, challenge.2));
    let text = String::from_utf8(failure.3).unwrap();
    assert!(text.starts_with("E=648 R=0 C="), "{text}");
    assert!(text.ends_with(" V=3 M=Password expired"), "{text}");
}

#[test]
fn a_session_holds_no_random_generator_of_its_own() {
    // Until the inputs took the caller's generator, every server session embedded a
    // ChaCha20Rng: `Session<ChaCha20Rng>` was 1,328 bytes, 304 of them the generator's state.
    const WITH_GENERATOR: usize = 1328;
    let generator = size_of::<rand_chacha::ChaCha20Rng>();
    assert_eq!(generator, 304);
    let session = size_of::<Session>();
    eprintln!(
        "Session: {session} bytes (was {WITH_GENERATOR}, saved {})",
        WITH_GENERATOR - session
    );
    assert!(session <= WITH_GENERATOR - generator, "{session} bytes");
}
