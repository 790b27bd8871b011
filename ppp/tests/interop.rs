//! Replays the client side of real PPP exchanges (pppd behind xl2tpd, captured in
//! `ppp/testdata/*-ppp.hex`) against our server session.
//!
//! The captured client answered another server, so the replay adapts only what must follow our
//! server: an LCP/IPCP/IPV6CP Configure-Ack or -Nak from the client is re-addressed to our
//! outstanding request. Everything else is fed verbatim — in particular the MS-CHAP-V2 Response:
//! the server's RNG is scripted to issue the captured challenge and identifier, so pppd's real
//! NT-Response must verify and our Success must equal the captured server's byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: failures should panic"
)]

use l2sec_ppp::auth::{Credential, Method, Password};
use l2sec_ppp::ipcp::Assignment;
use l2sec_ppp::session::{Event, LinkConfig, Received, ServerConfig, Session};
use l2sec_ppp::wire::{Code, Frame, Packet, Protocol};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Infallible, Rng, SeedableRng, TryCryptoRng, TryRng};
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes from a script first, then from a seeded generator.
struct ScriptedRng {
    script: VecDeque<u8>,
    rest: ChaCha8Rng,
}

impl ScriptedRng {
    fn byte(&mut self) -> u8 {
        self.script
            .pop_front()
            .unwrap_or_else(|| self.rest.next_u32().to_be_bytes()[0])
    }
}

impl TryRng for ScriptedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_be_bytes([
            self.byte(),
            self.byte(),
            self.byte(),
            self.byte(),
        ]))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from(self.try_next_u32()?) << 32 | u64::from(self.try_next_u32()?))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.iter_mut().for_each(|b| *b = self.byte());
        Ok(())
    }
}

impl TryCryptoRng for ScriptedRng {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Client,
    Server,
}

fn fixture(name: &str) -> Vec<(Dir, Vec<u8>)> {
    let path = format!("{}/testdata/{name}-ppp.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter_map(|line| {
            let (dir, hex) = line.split_once("> ")?;
            let dir = match dir {
                "c" => Dir::Client,
                "s" => Dir::Server,
                _ => return None,
            };
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            Some((dir, bytes))
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// (protocol, code, identifier) of a control frame.
fn kind(frame: &[u8]) -> Option<(Protocol, u8, u8)> {
    let f = Frame::parse(frame).ok()?;
    if f.protocol.is_network_data() {
        return None;
    }
    let p = Packet::parse(f.information).ok()?;
    Some((f.protocol, p.code, p.identifier))
}

/// Rebuilds `frame` (a Configure-Ack or -Nak) for our server's outstanding request.
fn readdress(frame: &[u8], our_request: &[u8]) -> Vec<u8> {
    let (protocol, code, _) = kind(frame).unwrap();
    let ours = Packet::parse(&our_request[4..]).unwrap();
    let mut out = frame[..4].to_vec();
    out.extend_from_slice(&[code, ours.identifier, 0, 0]);
    if code == Code::CONFIGURE_ACK.0 {
        out.extend_from_slice(ours.data);
    } else {
        out.extend_from_slice(Packet::parse(&frame[4..]).unwrap().data);
    }
    let len = u16::try_from(out.len() - 4).unwrap().to_be_bytes();
    out[6..8].copy_from_slice(&len);
    assert_eq!(kind(&out).unwrap().0, protocol);
    out
}

#[expect(
    clippy::disallowed_methods,
    reason = "the replay's epoch; every later instant derives from it"
)]
fn epoch() -> Instant {
    Instant::now()
}

struct Replay {
    server: Session,
    rng: ScriptedRng,
    now: Instant,
    /// Our latest Configure-Request per protocol.
    requests: Vec<(Protocol, Vec<u8>)>,
    sent: Vec<Vec<u8>>,
    events: Vec<Event>,
}

impl Replay {
    fn drain(&mut self) {
        let mut buf = [0u8; 1600];
        while let Some(n) = self.server.poll_transmit(&mut buf) {
            let frame = buf[..n].to_vec();
            if let Some((protocol, 1, _)) = kind(&frame) {
                self.requests.retain(|(p, _)| *p != protocol);
                self.requests.push((protocol, frame.clone()));
            }
            self.sent.push(frame);
        }
        while let Some(event) = self.server.poll_event() {
            match &event {
                Event::AuthRequest(request) => {
                    assert_eq!(request.user, "vpnuser");
                    assert_eq!(request.proof.method(), Method::MsChapV2);
                    let verdict =
                        request.verify(&Credential::Password(Password::new("vpnpass123")));
                    self.server.auth_verdict(self.now, &mut self.rng, verdict);
                }
                Event::AddressRequest { user } => {
                    assert_eq!(user, "vpnuser");
                    self.server.assign_address(
                        self.now,
                        Assignment {
                            local: Ipv4Addr::new(172, 16, 1, 1),
                            peer: Ipv4Addr::new(172, 16, 1, 2),
                            dns: [None; 2],
                            nbns: [None; 2],
                        },
                    );
                }
                _ => {}
            }
            self.events.push(event);
        }
    }

    fn request(&self, protocol: Protocol) -> Vec<u8> {
        self.requests
            .iter()
            .find(|(p, _)| *p == protocol)
            .map(|(_, f)| f.clone())
            .expect("our request")
    }
}

/// The captured challenge identifier and value (the first CHAP Challenge the server sent).
fn captured_challenge(frames: &[(Dir, Vec<u8>)]) -> (u8, [u8; 16]) {
    let (_, frame) = frames
        .iter()
        .find(|(d, f)| *d == Dir::Server && matches!(kind(f), Some((Protocol::CHAP, 1, _))))
        .expect("a challenge");
    let p = Packet::parse(&frame[4..]).unwrap();
    (p.identifier, p.data[1..17].try_into().unwrap())
}

fn replay(name: &str) {
    let frames = fixture(name);
    let (challenge_id, challenge) = captured_challenge(&frames);
    // Draw order of a server session: LCP magic seed (8), challenge (16), identifier (4).
    let mut script = VecDeque::from(vec![0x5a; 8]);
    script.extend(challenge);
    script.extend([challenge_id, 0, 0, 0]);
    let mut rng = ScriptedRng {
        script,
        rest: ChaCha8Rng::seed_from_u64(1),
    };
    // The captured server asked for CHAP-MD5 first and moved to MS-CHAP-V2 on the client's Nak.
    let config = ServerConfig {
        methods: vec![Method::ChapMd5, Method::MsChapV2],
        link: LinkConfig {
            ipv6: true,
            ..LinkConfig::default()
        },
        ..ServerConfig::default()
    };
    let now = epoch();
    let mut r = Replay {
        server: Session::server(Arc::new(config), &mut rng, now),
        rng,
        now,
        requests: Vec::new(),
        sent: Vec::new(),
        events: Vec::new(),
    };
    r.drain();
    let captured_server: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|(d, _)| *d == Dir::Server)
        .map(|(_, f)| f)
        .collect();
    let mut ip_packets = 0;
    let mut compared = 0;
    for (dir, frame) in &frames {
        if *dir != Dir::Client {
            continue;
        }
        r.now += Duration::from_millis(10);
        let before = r.sent.len();
        let input = match kind(frame) {
            Some((p @ (Protocol::LCP | Protocol::IPCP | Protocol::IPV6CP), 2 | 3, _)) => {
                readdress(frame, &r.request(p))
            }
            _ => frame.clone(),
        };
        let received = r
            .server
            .handle_frame(r.now, &mut r.rng, &input)
            .unwrap_or_else(|e| panic!("{name}: {e} for {frame:02x?}"));
        match Frame::parse(frame).unwrap().protocol {
            Protocol::IPV4 => {
                assert_eq!(received, Received::Ipv4(&frame[4..]), "{name}");
                ip_packets += 1;
            }
            Protocol::IPV6 => assert_eq!(received, Received::Ipv6(&frame[4..]), "{name}"),
            _ => assert_eq!(received, Received::Control),
        }
        r.drain();
        // Replies that depend only on the client's frame must equal the captured server's.
        for ours in &r.sent[before..] {
            let (protocol, code, id) = kind(ours).unwrap();
            let deterministic = matches!(
                (protocol, code),
                (Protocol::LCP, 2..=4)
                    | (Protocol::IPCP | Protocol::IPV6CP, 2..=4)
                    | (Protocol::CHAP, 3)
            ) && !(protocol == Protocol::LCP && frame[4] != 1);
            if deterministic {
                let theirs = captured_server
                    .iter()
                    .find(|f| kind(f) == Some((protocol, code, id)));
                assert_eq!(Some(ours), theirs.copied(), "{name}: reply to {frame:02x?}");
                compared += 1;
            }
        }
    }
    // LCP Ack, CHAP Success, IPCP Nak and Ack, IPV6CP Ack.
    assert_eq!(compared, 5, "{name}: replies compared byte for byte");
    let link = r.server.ipv4().expect("IPCP open");
    assert_eq!(link.peer, Ipv4Addr::new(172, 16, 1, 2));
    assert!(r.server.ipv6().is_some(), "{name}: IPV6CP open");
    assert_eq!(ip_packets, 5, "{name}: the five pings reach the IP layer");
    assert!(r.events.iter().any(|e| matches!(
        e,
        Event::Authenticated {
            method: Method::MsChapV2,
            ..
        }
    )));
    let success = r
        .sent
        .iter()
        .find(|f| matches!(kind(f), Some((Protocol::CHAP, 3, _))))
        .expect("CHAP Success");
    assert!(
        captured_server.contains(&success),
        "{name}: our MS-CHAP-V2 Success equals the captured one"
    );
}

#[test]
fn strongswan_server_windows10_client_side_replays() {
    replay("strongswan-server-windows10");
}

#[test]
fn libreswan_server_linux_nm_client_side_replays() {
    replay("libreswan-server-linux-nm");
}

#[test]
fn libreswan_server_natt_client_side_replays() {
    replay("libreswan-server-natt");
}

#[test]
fn captured_success_message_is_the_rfc2759_authenticator_response() {
    // From the windows10 capture: pppd's NT-Response for challenge 08ed…47 and the server's S=.
    let frames = fixture("strongswan-server-windows10");
    let (id, challenge) = captured_challenge(&frames);
    assert_eq!(
        (id, challenge.to_vec()),
        (0xc1, hex("08ed942e1442c136b288ac468ce53347"))
    );
    let response = frames
        .iter()
        .find(|(d, f)| *d == Dir::Client && matches!(kind(f), Some((Protocol::CHAP, 2, _))))
        .unwrap();
    let value = &response.1[4 + 4 + 1..4 + 4 + 1 + 49];
    let hash = l2sec_ppp::auth::NtHash::of_password("vpnpass123");
    let peer_challenge: [u8; 16] = value[..16].try_into().unwrap();
    let nt_response: [u8; 24] = value[24..48].try_into().unwrap();
    let s = l2sec_ppp::auth::mschapv2::authenticator_response(
        &hash,
        &nt_response,
        &peer_challenge,
        &challenge,
        b"vpnuser",
    );
    assert_eq!(&s.0[..], b"S=41EB1F209F26DA4CD6135D998CA18015C2A7A7E8");
}
