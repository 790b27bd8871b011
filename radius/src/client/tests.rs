//! The client in simulated time, against fake servers built from the crate's own writer.

use super::*;
use crate::crypto::{Password, reveal_user_password};
use crate::request::{Counters, Credentials};
use crate::verify::verify_request;
use crate::wire::{
    AcctStatusType, AcctTerminateCause, Attr, Attributes, FramedProtocol, MsAttr, MsAttributeType,
    NasPortType, PacketWriter, ServiceType, VendorId,
};
use crate::{InvalidAccept, RejectCause};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use std::net::Ipv4Addr;

const TIMEOUT: Duration = Duration::from_secs(3);

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn auth_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, u8::try_from(i + 1).unwrap()], 1812))
}

fn acct_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, u8::try_from(i + 1).unwrap()], 1813))
}

fn secret(i: usize) -> Secret {
    Secret::new(format!("secret-{i}"))
}

fn config(servers: usize) -> Config {
    Config {
        servers: (0..servers)
            .map(|i| ServerConfig {
                name: format!("radius{i}"),
                secret: secret(i),
                auth: Some(auth_addr(i)),
                acct: Some(acct_addr(i)),
                message_authenticator: MessageAuthenticatorPolicy::Required,
            })
            .collect(),
        nas: NasIdentity {
            ip_address: Some(Ipv4Addr::new(192, 0, 2, 1)),
            identifier: Some(b"lns1".to_vec()),
        },
        timeout: TIMEOUT,
        retries: 2,
        dead_time: secs(30),
        max_requests: 1000,
    }
}

fn client(servers: usize) -> Client<ChaCha8Rng> {
    Client::new(
        config(servers),
        0x0123_4567_89ab_cdef,
        ChaCha8Rng::seed_from_u64(7),
    )
    .unwrap()
}

fn pap(user: &str, password: &str) -> AccessRequest {
    AccessRequest {
        user_name: user.as_bytes().to_vec(),
        credentials: Credentials::Pap(Password::new(password)),
        nas_port: Some(7),
        calling_station_id: Some(b"198.51.100.7".to_vec()),
        called_station_id: Some(b"192.0.2.1".to_vec()),
        acct_session_id: None,
    }
}

fn mschapv2(ident: u8) -> AccessRequest {
    AccessRequest {
        credentials: Credentials::MsChapV2 {
            ident,
            authenticator_challenge: [0xa1; 16],
            peer_challenge: [0xb2; 16],
            nt_response: [0xc3; 24],
        },
        ..pap("hb", "")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    to: SocketAddr,
    server: ServerIndex,
    bytes: Vec<u8>,
}

impl Sent {
    fn identifier(&self) -> u8 {
        self.bytes[1]
    }
    fn authenticator(&self) -> Authenticator {
        Packet::new_checked(&self.bytes[..])
            .unwrap()
            .authenticator()
    }
    fn attrs(&self) -> Vec<Attr<'_>> {
        Attributes::new(&self.bytes[20..])
            .map(|a| Attr::parse(a.unwrap()).unwrap())
            .collect()
    }
}

#[track_caller]
fn drain(c: &mut Client<ChaCha8Rng>) -> Vec<Sent> {
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    while let Some(t) = c.poll_transmit(&mut buf) {
        out.push(Sent {
            to: t.to,
            server: t.server,
            bytes: buf[..t.len].to_vec(),
        });
    }
    out
}

#[track_caller]
fn events(c: &mut Client<ChaCha8Rng>) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A server's answer to `request`, with Message-Authenticator first and whatever `body` adds.
fn answer(
    request: &Sent,
    secret: &Secret,
    code: Code,
    body: impl FnOnce(&mut PacketWriter<'_>),
) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        code,
        Identifier(request.identifier()),
        &Authenticator::ZERO,
    )
    .unwrap();
    w.message_authenticator().unwrap();
    body(&mut w);
    w.finish_response(secret, &request.authenticator())
        .unwrap()
        .to_vec()
}

fn accept(request: &Sent, server: usize) -> Vec<u8> {
    answer(request, &secret(server), Code::ACCESS_ACCEPT, |_| {})
}

#[test]
fn a_pap_request_carries_the_nas_attributes_and_a_hidden_password() {
    let t0 = t0();
    let mut c = client(1);
    c.authenticate(t0, pap("hb", "admin@123")).unwrap();
    let sent = drain(&mut c);
    assert_eq!(sent.len(), 1);
    let s = &sent[0];
    assert_eq!((s.to, s.server), (auth_addr(0), ServerIndex(0)));
    let p = Packet::new_checked(&s.bytes[..]).unwrap();
    assert_eq!(p.code(), Code::ACCESS_REQUEST);
    assert_eq!(
        verify_request(&p, &secret(0), MessageAuthenticatorPolicy::Required),
        Ok(())
    );
    let attrs = s.attrs();
    assert!(matches!(attrs[0], Attr::MessageAuthenticator(_)));
    let Attr::UserPassword(hidden) = attrs[2] else {
        panic!("{attrs:?}")
    };
    assert_eq!(
        reveal_user_password(hidden, &secret(0), &s.authenticator())
            .unwrap()
            .expose(),
        b"admin@123"
    );
    assert_eq!(
        attrs[1..],
        [
            Attr::UserName(b"hb"),
            Attr::UserPassword(hidden),
            Attr::NasIpAddress(Ipv4Addr::new(192, 0, 2, 1)),
            Attr::NasIdentifier(b"lns1"),
            Attr::NasPort(7),
            Attr::NasPortType(NasPortType::VIRTUAL),
            Attr::ServiceType(ServiceType::FRAMED),
            Attr::FramedProtocol(FramedProtocol::PPP),
            Attr::CalledStationId(b"192.0.2.1"),
            Attr::CallingStationId(b"198.51.100.7"),
        ]
    );
}

#[test]
fn chap_and_ms_chap_v2_requests_carry_the_rfc_attributes() {
    let t0 = t0();
    let mut c = client(1);
    c.authenticate(
        t0,
        AccessRequest {
            credentials: Credentials::ChapMd5 {
                ident: 0x16,
                challenge: vec![0x55; 16],
                response: [0x66; 16],
            },
            ..pap("flopsy", "")
        },
    )
    .unwrap();
    c.authenticate(t0, mschapv2(9)).unwrap();
    let sent = drain(&mut c);
    let chap = sent[0].attrs();
    assert_eq!(
        chap[2..4],
        [
            Attr::ChapPassword {
                ident: 0x16,
                response: [0x66; 16]
            },
            Attr::ChapChallenge(&[0x55; 16]),
        ]
    );
    // MS-CHAP-V2: two Microsoft Vendor-Specific attributes, byte for byte (RFC 2548 §2.1.2,
    // §2.3.2).
    let ms = &sent[1].bytes;
    let at = 20 + 18 + 4; // after Message-Authenticator and User-Name "hb"
    let mut expected = vec![26, 24, 0, 0, 1, 55, 11, 18];
    expected.extend_from_slice(&[0xa1; 16]);
    expected.extend_from_slice(&[26, 58, 0, 0, 1, 55, 25, 52, 9, 0]);
    expected.extend_from_slice(&[0xb2; 16]);
    expected.extend_from_slice(&[0; 8]);
    expected.extend_from_slice(&[0xc3; 24]);
    assert_eq!(ms[at..at + expected.len()], expected[..]);
    assert!(
        !sent[1]
            .attrs()
            .iter()
            .any(|a| matches!(a, Attr::UserPassword(_)))
    );
}

#[test]
fn retransmissions_keep_identifier_and_authenticator_then_the_next_server_is_tried() {
    let t0 = t0();
    let mut c = client(2);
    let id = c.authenticate(t0, pap("hb", "pw")).unwrap();
    let first = drain(&mut c).remove(0);
    assert_eq!(c.poll_timeout(), Some(t0 + TIMEOUT));

    // Early and repeated timer calls change nothing.
    c.handle_timeout(t0 + secs(1));
    c.handle_timeout(t0 + secs(1));
    assert!(drain(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), Some(t0 + TIMEOUT));

    for n in 1..=2 {
        let at = t0 + TIMEOUT * n;
        c.handle_timeout(at);
        let again = drain(&mut c);
        assert_eq!(
            again,
            std::slice::from_ref(&first),
            "retransmission {n} is the same datagram"
        );
        assert_eq!(c.poll_timeout(), Some(at + TIMEOUT));
        c.handle_timeout(at);
        assert!(drain(&mut c).is_empty(), "a second call at {n} sent again");
    }

    c.handle_timeout(t0 + TIMEOUT * 3);
    let moved = drain(&mut c);
    assert_eq!(moved.len(), 1);
    assert_eq!(
        (moved[0].to, moved[0].server),
        (auth_addr(1), ServerIndex(1))
    );
    assert_ne!(moved[0].authenticator(), first.authenticator());
    assert_eq!(
        verify_request(
            &Packet::new_checked(&moved[0].bytes[..]).unwrap(),
            &secret(1),
            MessageAuthenticatorPolicy::Required
        ),
        Ok(())
    );
    assert_eq!(
        events(&mut c),
        [Event::ServerDead {
            server: ServerIndex(0),
            service: Service::Authentication
        }]
    );
    assert!(c.is_dead(t0 + TIMEOUT * 3, ServerIndex(0), Service::Authentication));
    assert_eq!(c.poll_timeout(), Some(t0 + TIMEOUT * 4));

    // Server 2 answers: accepted; server 1 stays skipped for new requests until dead_time.
    c.handle_datagram(t0 + secs(10), auth_addr(1), &accept(&moved[0], 1))
        .unwrap();
    let evs = events(&mut c);
    assert!(
        matches!(&evs[..], [Event::Accepted { request, server: ServerIndex(1), .. }] if *request == id),
        "{evs:?}"
    );
    assert_eq!(c.poll_timeout(), None);
    c.authenticate(t0 + secs(11), pap("hb", "pw")).unwrap();
    assert_eq!(drain(&mut c)[0].to, auth_addr(1));
    let revived = t0 + TIMEOUT * 3 + secs(30);
    c.authenticate(revived, pap("hb", "pw")).unwrap();
    assert_eq!(drain(&mut c)[0].to, auth_addr(0), "dead_time is over");
    assert_eq!(c.stats().failovers, 1);
    assert_eq!(c.stats().retransmits, 2);
}

#[test]
fn with_every_server_silent_the_request_times_out_and_the_next_one_tries_them_again() {
    let t0 = t0();
    let mut c = client(2);
    let id = c.authenticate(t0, pap("hb", "pw")).unwrap();
    let mut sends = Vec::new();
    let mut now = t0;
    sends.extend(drain(&mut c).into_iter().map(|s| (now - t0, s.to)));
    while let Some(at) = c.poll_timeout() {
        now = at;
        c.handle_timeout(now);
        sends.extend(drain(&mut c).into_iter().map(|s| (now - t0, s.to)));
    }
    assert_eq!(
        sends,
        [
            (secs(0), auth_addr(0)),
            (secs(3), auth_addr(0)),
            (secs(6), auth_addr(0)),
            (secs(9), auth_addr(1)),
            (secs(12), auth_addr(1)),
            (secs(15), auth_addr(1)),
        ]
    );
    assert_eq!(now - t0, secs(18));
    assert_eq!(
        events(&mut c),
        [
            Event::ServerDead {
                server: ServerIndex(0),
                service: Service::Authentication
            },
            Event::ServerDead {
                server: ServerIndex(1),
                service: Service::Authentication
            },
            Event::Timeout {
                request: id,
                service: Service::Authentication
            },
        ]
    );
    assert_eq!(c.pending(), 0);
    // Everything is dead: the next request tries the first server again at once.
    c.authenticate(now, pap("hb", "pw")).unwrap();
    assert_eq!(drain(&mut c)[0].to, auth_addr(0));
    assert!(!c.is_dead(now, ServerIndex(0), Service::Authentication));
}

#[test]
fn a_server_that_answers_others_is_not_marked_dead_for_one_lost_request() {
    let t0 = t0();
    let mut c = client(2);
    c.authenticate(t0, pap("a", "pw")).unwrap();
    c.authenticate(t0 + secs(8), pap("b", "pw")).unwrap();
    let sent = drain(&mut c);
    // The second request is answered just before the first gives up on server 1.
    c.handle_timeout(t0 + secs(3));
    c.handle_timeout(t0 + secs(6));
    drain(&mut c);
    c.handle_datagram(t0 + secs(8), auth_addr(0), &accept(&sent[1], 0))
        .unwrap();
    c.handle_timeout(t0 + secs(9));
    let moved = drain(&mut c);
    assert_eq!(moved[0].to, auth_addr(1), "the request itself moves on");
    assert!(
        !events(&mut c)
            .iter()
            .any(|e| matches!(e, Event::ServerDead { .. })),
        "server 1 answered after this request was first sent"
    );
}

#[test]
fn forged_and_misdirected_answers_are_dropped_and_the_genuine_one_still_counts() {
    let t0 = t0();
    let mut c = client(2);
    let id = c.authenticate(t0, pap("hb", "pw")).unwrap();
    let req = drain(&mut c).remove(0);
    let deadline = c.poll_timeout();
    let now = t0 + secs(1);

    let wrong_secret = answer(&req, &Secret::new("guess"), Code::ACCESS_ACCEPT, |_| {});
    assert_eq!(
        c.handle_datagram(now, auth_addr(0), &wrong_secret),
        Err(Discard::Unverified(VerifyError::Authenticator))
    );
    // No Message-Authenticator: the default policy drops it (BlastRADIUS).
    let mut buf = [0u8; 64];
    let w = PacketWriter::new(
        &mut buf,
        Code::ACCESS_ACCEPT,
        Identifier(req.identifier()),
        &Authenticator::ZERO,
    )
    .unwrap();
    let bare = w
        .finish_response(&secret(0), &req.authenticator())
        .unwrap()
        .to_vec();
    assert_eq!(
        c.handle_datagram(now, auth_addr(0), &bare),
        Err(Discard::Unverified(
            VerifyError::MissingMessageAuthenticator
        ))
    );
    // A Message-Authenticator that does not match, under a correct Response Authenticator.
    let mut bad_mac = accept(&req, 0);
    bad_mac[22] ^= 1;
    let fixed = crate::crypto::packet_authenticator(&bad_mac, &req.authenticator(), &secret(0));
    bad_mac[4..20].copy_from_slice(&fixed);
    assert_eq!(
        c.handle_datagram(now, auth_addr(0), &bad_mac),
        Err(Discard::Unverified(VerifyError::MessageAuthenticator))
    );
    let genuine = accept(&req, 0);
    assert_eq!(
        c.handle_datagram(now, auth_addr(1), &genuine),
        Err(Discard::NoRequest),
        "server 2 was not asked: no request holds that Identifier there"
    );
    assert_eq!(
        c.handle_datagram(now, "10.9.9.9:1812".parse().unwrap(), &genuine),
        Err(Discard::UnknownSource)
    );
    let mut wrong_code = genuine.clone();
    wrong_code[0] = Code::ACCOUNTING_RESPONSE.0;
    assert_eq!(
        c.handle_datagram(now, auth_addr(0), &wrong_code),
        Err(Discard::UnexpectedCode(Code::ACCOUNTING_RESPONSE))
    );
    let mut other_id = genuine.clone();
    other_id[1] ^= 0x80;
    assert_eq!(
        c.handle_datagram(now, auth_addr(0), &other_id),
        Err(Discard::NoRequest)
    );
    assert_eq!(
        c.handle_datagram(now, auth_addr(0), &genuine[..19]),
        Err(Discard::Malformed(wire::Error::Truncated))
    );
    // Nothing changed.
    assert!(drain(&mut c).is_empty());
    assert!(events(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), deadline);
    assert_eq!(c.pending(), 1);
    let s = *c.stats();
    assert_eq!(
        (
            s.unverified,
            s.unknown_source,
            s.unexpected_code,
            s.no_request,
            s.malformed,
            s.answers
        ),
        (3, 1, 1, 2, 1, 0)
    );

    c.handle_datagram(now, auth_addr(0), &genuine).unwrap();
    assert!(matches!(&events(&mut c)[..], [Event::Accepted { request, .. }] if *request == id));
    // The same answer again, and one that arrives after the request moved on, find nothing.
    assert_eq!(
        c.handle_datagram(now, auth_addr(0), &genuine),
        Err(Discard::NoRequest)
    );
}

#[test]
fn an_answer_from_the_server_left_behind_is_dropped() {
    let t0 = t0();
    let mut c = client(2);
    c.authenticate(t0, pap("hb", "pw")).unwrap();
    let first = drain(&mut c).remove(0);
    for n in 1..=3 {
        c.handle_timeout(t0 + TIMEOUT * n);
    }
    let moved = drain(&mut c);
    assert_eq!(moved.last().unwrap().to, auth_addr(1));
    assert_eq!(
        c.handle_datagram(t0 + secs(10), auth_addr(0), &accept(&first, 0)),
        Err(Discard::NoRequest)
    );
    assert_eq!(c.pending(), 1);
}

#[test]
fn identifiers_wrap_after_256_requests() {
    let t0 = t0();
    let mut c = client(1);
    let mut seen = Vec::new();
    for n in 0..300u64 {
        let now = t0 + Duration::from_millis(n);
        c.authenticate(now, pap("hb", "pw")).unwrap();
        let req = drain(&mut c).remove(0);
        seen.push(req.identifier());
        c.handle_datagram(now, auth_addr(0), &accept(&req, 0))
            .unwrap();
        assert_eq!(events(&mut c).len(), 1);
    }
    let expected: Vec<u8> = (0..300u32)
        .map(|n| u8::try_from(n % 256).unwrap())
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn beyond_256_in_flight_requests_wait_for_a_free_identifier_and_the_total_is_bounded() {
    let t0 = t0();
    let mut cfg = config(1);
    cfg.max_requests = 300;
    let mut c = Client::new(cfg, 1, ChaCha8Rng::seed_from_u64(1)).unwrap();
    for _ in 0..300 {
        c.authenticate(t0, pap("hb", "pw")).unwrap();
    }
    assert_eq!(c.authenticate(t0, pap("hb", "pw")), Err(SubmitError::Full));
    assert_eq!(c.stats().refused, 1);
    let sent = drain(&mut c);
    assert_eq!(sent.len(), 256);
    let mut ids: Vec<u8> = sent.iter().map(Sent::identifier).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 256, "distinct Identifiers");

    // One answer frees one Identifier: exactly one waiting request goes out, with it.
    let now = t0 + secs(1);
    c.handle_datagram(now, auth_addr(0), &accept(&sent[40], 0))
        .unwrap();
    let next = drain(&mut c);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].identifier(), sent[40].identifier());
    assert_eq!(
        c.poll_timeout(),
        Some(t0 + TIMEOUT),
        "the oldest deadline rules"
    );

    // Answer everything: every request ends with one event, nothing is left.
    let mut outstanding: Vec<Sent> = sent
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 40)
        .map(|(_, s)| s)
        .chain(next)
        .collect();
    let mut done = 1;
    while let Some(req) = outstanding.pop() {
        c.handle_datagram(now, auth_addr(0), &accept(&req, 0))
            .unwrap();
        outstanding.extend(drain(&mut c));
        done += 1;
    }
    assert_eq!(done, 300);
    assert_eq!(events(&mut c).len(), 300);
    assert_eq!(c.pending(), 0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn cancelling_frees_the_identifier_and_silences_the_request() {
    let t0 = t0();
    let mut c = client(1);
    let id = c.authenticate(t0, pap("hb", "pw")).unwrap();
    let req = drain(&mut c).remove(0);
    c.cancel(t0, id);
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(
        c.handle_datagram(t0, auth_addr(0), &accept(&req, 0)),
        Err(Discard::NoRequest)
    );
    assert!(events(&mut c).is_empty());
}

#[test]
fn an_ms_chap_v2_accept_yields_keys_success_and_every_reply_attribute() {
    let t0 = t0();
    let mut c = client(1);
    let id = c.authenticate(t0, mschapv2(9)).unwrap();
    let req = drain(&mut c).remove(0);
    let success = b"S=0123456789ABCDEF0123456789ABCDEF01234567";
    let reply = answer(&req, &secret(0), Code::ACCESS_ACCEPT, |w| {
        w.attr(&Attr::ServiceType(ServiceType::FRAMED)).unwrap();
        w.attr(&Attr::FramedIpAddress(Ipv4Addr::new(10, 8, 0, 42)))
            .unwrap();
        w.attr(&Attr::FramedPool(b"vpn")).unwrap();
        w.attr(&Attr::SessionTimeout(3600)).unwrap();
        w.attr(&Attr::IdleTimeout(600)).unwrap();
        w.attr(&Attr::AcctInterimInterval(300)).unwrap();
        w.attr(&Attr::Class(b"c1")).unwrap();
        w.attr(&Attr::Class(b"c2")).unwrap();
        w.attr(&Attr::ReplyMessage(b"Hello, ")).unwrap();
        w.attr(&Attr::ReplyMessage(b"hb")).unwrap();
        w.attr(&Attr::FilterId(b"staff")).unwrap();
        w.ms_attr(&MsAttr::Chap2Success {
            ident: 9,
            message: success,
        })
        .unwrap();
        w.mppe_key(
            MsAttributeType::MS_MPPE_SEND_KEY,
            &[0x11; 16],
            [0x80, 1],
            &secret(0),
            &req.authenticator(),
        )
        .unwrap();
        w.mppe_key(
            MsAttributeType::MS_MPPE_RECV_KEY,
            &[0x22; 16],
            [0x80, 2],
            &secret(0),
            &req.authenticator(),
        )
        .unwrap();
        w.ms_attr(&MsAttr::MppeEncryptionPolicy(2)).unwrap();
        w.ms_attr(&MsAttr::MppeEncryptionTypes(4)).unwrap();
        w.ms_attr(&MsAttr::PrimaryDnsServer(Ipv4Addr::new(10, 0, 0, 53)))
            .unwrap();
    });
    c.handle_datagram(t0, auth_addr(0), &reply).unwrap();
    let [
        Event::Accepted {
            request,
            server,
            accept,
        },
    ] = &events(&mut c)[..]
    else {
        panic!("not one Accepted")
    };
    assert_eq!((*request, *server), (id, ServerIndex(0)));
    assert_eq!(accept.framed_ip_address, Some(Ipv4Addr::new(10, 8, 0, 42)));
    assert_eq!(accept.framed_pool.as_deref(), Some(&b"vpn"[..]));
    assert_eq!(accept.session_timeout, Some(secs(3600)));
    assert_eq!(accept.idle_timeout, Some(secs(600)));
    assert_eq!(accept.acct_interim_interval, Some(secs(300)));
    assert_eq!(accept.class, [b"c1".to_vec(), b"c2".to_vec()]);
    assert_eq!(accept.reply_message, b"Hello, hb");
    assert_eq!(accept.filter_id, [b"staff".to_vec()]);
    let s = accept.ms_chap2_success.unwrap();
    assert_eq!((s.ident, &s.authenticator_response), (9, success));
    let mppe = accept.mppe.as_ref().unwrap();
    assert_eq!(mppe.send.expose(), [0x11; 16]);
    assert_eq!(mppe.recv.expose(), [0x22; 16]);
    assert_eq!((mppe.policy, mppe.types), (Some(2), Some(4)));
    assert_eq!(
        accept.dns_servers,
        [Some(Ipv4Addr::new(10, 0, 0, 53)), None]
    );
}

#[test]
fn an_ms_chap_v2_accept_without_a_usable_success_is_a_reject() {
    let t0 = t0();
    let mut c = client(1);
    for (ident, body) in [
        (1u8, None),
        (2, Some((2u8, &b"S=nothex"[..]))),
        (
            3,
            Some((4u8, &b"S=0123456789ABCDEF0123456789ABCDEF01234567"[..])),
        ),
    ] {
        c.authenticate(t0, mschapv2(ident)).unwrap();
        let req = drain(&mut c).remove(0);
        let reply = answer(&req, &secret(0), Code::ACCESS_ACCEPT, |w| {
            if let Some((i, m)) = body {
                w.ms_attr(&MsAttr::Chap2Success {
                    ident: i,
                    message: m,
                })
                .unwrap();
            }
        });
        c.handle_datagram(t0, auth_addr(0), &reply).unwrap();
        let evs = events(&mut c);
        let [Event::Rejected { reject, .. }] = &evs[..] else {
            panic!("{evs:?}")
        };
        let expected = if body.is_none() {
            InvalidAccept::MissingMsChap2Success
        } else {
            InvalidAccept::BadMsChap2Success
        };
        assert_eq!(reject.cause, RejectCause::InvalidAccept(expected));
    }
}

#[test]
fn a_reject_carries_reply_message_and_ms_chap_error_and_a_challenge_is_a_reject() {
    let t0 = t0();
    let mut c = client(1);
    c.authenticate(t0, mschapv2(5)).unwrap();
    c.authenticate(t0, pap("hb", "pw")).unwrap();
    let sent = drain(&mut c);
    let error = b"E=691 R=0 C=00000000000000000000000000000000 V=3 M=Wrong";
    let reject = answer(&sent[0], &secret(0), Code::ACCESS_REJECT, |w| {
        w.attr(&Attr::ReplyMessage(b"Denied")).unwrap();
        w.ms_attr(&MsAttr::ChapError {
            ident: 5,
            message: error,
        })
        .unwrap();
    });
    c.handle_datagram(t0, auth_addr(0), &reject).unwrap();
    let challenge = answer(&sent[1], &secret(0), Code::ACCESS_CHALLENGE, |w| {
        w.attr(&Attr::State(b"s")).unwrap();
    });
    c.handle_datagram(t0, auth_addr(0), &challenge).unwrap();
    let evs = events(&mut c);
    let [
        Event::Rejected { reject: r1, .. },
        Event::Rejected { reject: r2, .. },
    ] = &evs[..]
    else {
        panic!("{evs:?}")
    };
    assert_eq!(r1.cause, RejectCause::AccessReject);
    assert_eq!(r1.reply_message, b"Denied");
    let e = r1.ms_chap_error.as_ref().unwrap();
    assert_eq!((e.ident, &e.message[..]), (5, &error[..]));
    assert_eq!(r2.cause, RejectCause::AccessChallenge);
}

#[test]
fn accounting_records_carry_counters_with_gigawords_and_a_computed_authenticator() {
    let t0 = t0();
    let mut c = client(2);
    let session = c.next_acct_session_id();
    let mut stop = AccountingRequest::new(AcctStatusType::STOP, session);
    stop.user_name = Some(b"hb".to_vec());
    stop.framed_ip_address = Some(Ipv4Addr::new(10, 8, 0, 42));
    stop.class = vec![b"c1".to_vec()];
    stop.session_time = Some(secs(125));
    stop.counters = Some(Counters {
        input_octets: (5 << 32) + 7,
        output_octets: 1000,
        input_packets: 10,
        output_packets: u64::MAX,
    });
    stop.terminate_cause = Some(AcctTerminateCause::USER_REQUEST);
    stop.event_timestamp = Some(1_700_000_000);
    let id = c.account(t0, stop).unwrap();
    let req = drain(&mut c).remove(0);
    assert_eq!(req.to, acct_addr(0));
    let p = Packet::new_checked(&req.bytes[..]).unwrap();
    assert_eq!(p.code(), Code::ACCOUNTING_REQUEST);
    assert_eq!(
        verify_request(&p, &secret(0), MessageAuthenticatorPolicy::Required),
        Ok(())
    );
    let attrs = req.attrs();
    for expected in [
        Attr::AcctStatusType(AcctStatusType::STOP),
        Attr::AcctSessionId(session.as_bytes()),
        Attr::UserName(b"hb"),
        Attr::FramedIpAddress(Ipv4Addr::new(10, 8, 0, 42)),
        Attr::Class(b"c1"),
        Attr::AcctDelayTime(0),
        Attr::AcctSessionTime(125),
        Attr::AcctInputOctets(7),
        Attr::AcctInputGigawords(5),
        Attr::AcctOutputOctets(1000),
        Attr::AcctOutputGigawords(0),
        Attr::AcctInputPackets(10),
        Attr::AcctOutputPackets(u32::MAX),
        Attr::AcctTerminateCause(AcctTerminateCause::USER_REQUEST),
        Attr::EventTimestamp(1_700_000_000),
        Attr::NasPortType(NasPortType::VIRTUAL),
    ] {
        assert!(
            attrs.contains(&expected),
            "{expected:?} missing from {attrs:?}"
        );
    }

    // Failover: a new packet for server 2 says how long the record has been waiting.
    for n in 1..=3 {
        c.handle_timeout(t0 + TIMEOUT * n);
    }
    let moved = drain(&mut c).pop().unwrap();
    assert_eq!(moved.to, acct_addr(1));
    assert!(moved.attrs().contains(&Attr::AcctDelayTime(9)));
    let response = answer(&moved, &secret(1), Code::ACCOUNTING_RESPONSE, |_| {});
    assert_eq!(
        c.handle_datagram(t0 + secs(10), auth_addr(1), &response),
        Err(Discard::UnexpectedCode(Code::ACCOUNTING_RESPONSE)),
        "an Accounting-Response on the auth port"
    );
    c.handle_datagram(t0 + secs(10), acct_addr(1), &response)
        .unwrap();
    assert_eq!(
        events(&mut c),
        [
            Event::ServerDead {
                server: ServerIndex(0),
                service: Service::Accounting
            },
            Event::AccountingDone {
                request: id,
                server: ServerIndex(1)
            }
        ]
    );
    assert!(!c.is_dead(t0 + secs(10), ServerIndex(0), Service::Authentication));
}

#[test]
fn accounting_on_and_off_carry_no_session_attributes() {
    let t0 = t0();
    let mut c = client(1);
    let session = c.next_acct_session_id();
    c.account(
        t0,
        AccountingRequest::new(AcctStatusType::ACCOUNTING_ON, session),
    )
    .unwrap();
    let attrs = drain(&mut c)
        .remove(0)
        .attrs()
        .into_iter()
        .map(|a| a.kind())
        .collect::<Vec<_>>();
    use crate::wire::AttributeType as T;
    assert_eq!(
        attrs,
        [
            T::MESSAGE_AUTHENTICATOR,
            T::ACCT_STATUS_TYPE,
            T::ACCT_SESSION_ID,
            T::NAS_IP_ADDRESS,
            T::NAS_IDENTIFIER,
            T::ACCT_DELAY_TIME
        ]
    );
}

#[test]
fn acct_session_ids_are_unique_within_and_across_runs() {
    let mut a = AcctSessionIds::new(0x0000_0001_6500_0000);
    let mut b = AcctSessionIds::new(0x0000_0001_6500_0001);
    let first = a.next_id();
    assert_eq!(first.to_string(), "0000000165000000-00000001");
    assert_ne!(a.next_id(), first);
    assert_ne!(b.next_id(), first, "another boot tag, another ID");
}

#[test]
fn unusable_configurations_and_requests_are_refused() {
    let t0 = t0();
    let rng = || ChaCha8Rng::seed_from_u64(0);
    assert_eq!(
        Client::new(Config::default(), 0, rng()).err(),
        Some(ConfigError::NoServer)
    );
    let mut dup = config(2);
    dup.servers[1].auth = dup.servers[0].auth;
    assert_eq!(
        Client::new(dup, 0, rng()).err(),
        Some(ConfigError::DuplicateAddress(auth_addr(0)))
    );
    let mut acct_only = config(1);
    acct_only.servers[0].auth = None;
    let mut c = Client::new(acct_only, 0, rng()).unwrap();
    assert_eq!(
        c.authenticate(t0, pap("hb", "pw")),
        Err(SubmitError::NoServer(Service::Authentication))
    );
    let mut c = client(1);
    assert_eq!(
        c.authenticate(t0, pap("hb", &"x".repeat(129))),
        Err(SubmitError::Encode(WriteError::PasswordTooLong(129)))
    );
    assert_eq!(
        c.authenticate(t0, pap(&"u".repeat(254), "pw")),
        Err(SubmitError::Encode(WriteError::ValueTooLong(254)))
    );
    assert_eq!(c.pending(), 0);
    assert!(drain(&mut c).is_empty());
}

#[test]
fn a_small_transmit_buffer_skips_the_datagram_until_its_retransmission() {
    let t0 = t0();
    let mut c = client(1);
    c.authenticate(t0, pap("hb", "pw")).unwrap();
    let mut small = [0u8; 20];
    assert_eq!(c.poll_transmit(&mut small), None);
    c.handle_timeout(t0 + TIMEOUT);
    assert_eq!(drain(&mut c).len(), 1);
}

#[test]
fn vendor_specific_answers_from_other_vendors_are_ignored() {
    let t0 = t0();
    let mut c = client(1);
    c.authenticate(t0, pap("hb", "pw")).unwrap();
    let req = drain(&mut c).remove(0);
    let reply = answer(&req, &secret(0), Code::ACCESS_ACCEPT, |w| {
        w.attr(&Attr::VendorSpecific {
            vendor: VendorId(9),
            data: &[1, 4, 0, 0],
        })
        .unwrap();
    });
    c.handle_datagram(t0, auth_addr(0), &reply).unwrap();
    assert!(matches!(&events(&mut c)[..], [Event::Accepted { .. }]));
}

#[test]
fn an_accounting_response_without_message_authenticator_is_taken_a_bad_one_is_not() {
    // FreeRADIUS signs Accounting-Responses with the Response Authenticator only; the
    // Message-Authenticator policy protects Access-Accept and must not lose accounting.
    let t0 = t0();
    let mut c = client(1);
    let session = c.next_acct_session_id();
    let id = c
        .account(t0, AccountingRequest::new(AcctStatusType::START, session))
        .unwrap();
    let req = drain(&mut c).remove(0);
    let mut buf = [0u8; 64];
    let w = PacketWriter::new(
        &mut buf,
        Code::ACCOUNTING_RESPONSE,
        Identifier(req.identifier()),
        &Authenticator::ZERO,
    )
    .unwrap();
    let bare = w
        .finish_response(&secret(0), &req.authenticator())
        .unwrap()
        .to_vec();
    let mut forged = bare.clone();
    forged[4] ^= 1;
    assert_eq!(
        c.handle_datagram(t0 + secs(1), acct_addr(0), &forged),
        Err(Discard::Unverified(VerifyError::Authenticator))
    );
    c.handle_datagram(t0 + secs(1), acct_addr(0), &bare)
        .unwrap();
    assert_eq!(
        events(&mut c),
        [Event::AccountingDone {
            request: id,
            server: ServerIndex(0)
        }]
    );
    // A signed one with a wrong Message-Authenticator is still dropped.
    let id = c
        .account(t0, AccountingRequest::new(AcctStatusType::STOP, session))
        .unwrap();
    let req = drain(&mut c).remove(0);
    let mut signed = answer(&req, &secret(0), Code::ACCOUNTING_RESPONSE, |_| {});
    signed[22] ^= 1;
    let fixed = crate::crypto::packet_authenticator(&signed, &req.authenticator(), &secret(0));
    signed[4..20].copy_from_slice(&fixed);
    assert_eq!(
        c.handle_datagram(t0 + secs(2), acct_addr(0), &signed),
        Err(Discard::Unverified(VerifyError::MessageAuthenticator))
    );
    assert_eq!(c.pending(), 1, "{id:?} still waits");
}
