//! Scripted single-side tests of the endpoint and its tunnels in simulated time: one side is
//! ours, the other is written out message by message.

use super::*;
use crate::event::{Origin, SessionDownReason};
use crate::reliable;
use crate::session::SessionState;
use crate::testdata::{self, Sender};
use crate::wire::avp::{self, Flags};
use crate::wire::hidden::{ResponseIn, challenge_response};
use crate::wire::message::{
    Accm, BearerType, CallErrors, Cdn, FramingCapabilities, FramingType, Hello, Iccn, Icrq, Ocrq,
    ProtocolVersion, Scccn, Sccrq, Sli, Wen,
};
use crate::{Config, Limits, Secret};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_core::{TryCryptoRng, TryRng};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

#[expect(
    clippy::disallowed_methods,
    reason = "the script's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Words handed out first (the top 16 bits of each become an ID), then a seeded stream.
struct Scripted {
    words: VecDeque<u32>,
    rest: ChaCha8Rng,
}

impl Scripted {
    fn ids(ids: &[u16]) -> Self {
        Self {
            words: ids.iter().map(|id| u32::from(*id) << 16).collect(),
            rest: ChaCha8Rng::seed_from_u64(7),
        }
    }
}

impl TryRng for Scripted {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self
            .words
            .pop_front()
            .unwrap_or_else(|| rand_core::Rng::next_u32(&mut self.rest)))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand_core::Rng::next_u64(&mut self.rest))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand_core::Rng::fill_bytes(&mut self.rest, dst);
        Ok(())
    }
}

impl TryCryptoRng for Scripted {}

fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

fn client() -> SocketAddr {
    addr([10, 77, 0, 20], 1701)
}

fn lns_addr() -> SocketAddr {
    addr([10, 77, 0, 10], 1701)
}

fn lns(config: Config) -> Endpoint<ChaCha8Rng> {
    Endpoint::new(Arc::new(config), ChaCha8Rng::seed_from_u64(1))
}

fn build(tunnel: u16, session: u16, ns: u16, nr: u16, message: ControlMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let len = wire::write_control(
        &mut buf,
        TunnelId(tunnel),
        SessionId(session),
        Seq(ns),
        Seq(nr),
        |w| message.emit(w),
    )
    .unwrap();
    buf.truncate(len);
    buf
}

fn sccrq<'a>(
    assigned: u16,
    challenge: Option<&'a [u8]>,
    tie_breaker: Option<[u8; 8]>,
) -> Sccrq<'a> {
    Sccrq {
        protocol_version: ProtocolVersion::V1_0,
        framing_capabilities: FramingCapabilities(3),
        bearer_capabilities: None,
        tie_breaker,
        firmware_revision: None,
        host_name: b"peer",
        vendor_name: None,
        assigned_tunnel_id: TunnelId(assigned),
        receive_window_size: Some(4),
        challenge,
    }
}

fn icrq(assigned: u16, serial: u32) -> Icrq<'static> {
    Icrq {
        assigned_session_id: SessionId(assigned),
        call_serial_number: serial,
        bearer_type: None,
        physical_channel_id: None,
        calling_number: None,
        called_number: None,
        sub_address: None,
    }
}

fn iccn() -> Iccn<'static> {
    Iccn {
        tx_connect_speed: 10_000_000,
        framing_type: FramingType(1),
        initial_received_lcp_confreq: Some(&[1, 4, 5, 0xdc]),
        last_sent_lcp_confreq: None,
        last_received_lcp_confreq: None,
        proxy_authen_type: None,
        proxy_authen_name: Some(b"hb"),
        proxy_authen_challenge: None,
        proxy_authen_id: None,
        proxy_authen_response: None,
        private_group_id: None,
        rx_connect_speed: None,
        sequencing_required: false,
    }
}

/// One datagram our side sent.
#[derive(Debug, Clone)]
struct Sent {
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl Sent {
    fn packet(&self) -> Packet<&[u8]> {
        Packet::new_checked(&self.bytes[..]).unwrap()
    }
    fn ids(&self) -> (u16, u16) {
        let p = self.packet();
        (p.tunnel_id().0, p.session_id().0)
    }
    fn ns_nr(&self) -> (u16, u16) {
        let (ns, nr) = self.packet().sequence().unwrap();
        (ns.0, nr.0)
    }
    fn is_zlb(&self) -> bool {
        self.packet().is_zlb()
    }
    fn message(&self) -> ControlMessage<'_> {
        let range = self.packet().payload_range();
        ControlMessage::parse(Avps::new(&self.bytes[range])).unwrap()
    }
    fn message_type(&self) -> Option<MessageType> {
        (!self.is_zlb()).then(|| self.message().message_type())
    }
    /// (result, error code) of a StopCCN or CDN.
    fn result(&self) -> (u16, Option<ErrorCode>) {
        let rc = match self.message() {
            ControlMessage::StopCcn(m) => m.result_code,
            ControlMessage::Cdn(m) => m.result_code,
            other => panic!("no result code in {other:?}"),
        };
        (rc.result, rc.error.map(|e| e.code))
    }
}

#[track_caller]
fn drain<R: CryptoRng>(ep: &mut Endpoint<R>, now: Instant) -> Vec<Sent> {
    let mut buf = [0u8; MAX_CONTROL_LEN];
    std::iter::from_fn(|| {
        ep.poll_transmit(now, &mut buf).map(|t| Sent {
            to: t.peer,
            bytes: buf[..t.len].to_vec(),
        })
    })
    .collect()
}

fn events<R: CryptoRng>(ep: &mut Endpoint<R>) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// The remote side of a scripted tunnel: numbers its messages and tracks the LNS's IDs.
struct Remote {
    from: SocketAddr,
    /// The tunnel ID the remote assigned.
    tunnel: u16,
    /// The LNS's tunnel ID, once known.
    lns_tunnel: u16,
    ns: u16,
    nr: u16,
}

impl Remote {
    fn new(from: SocketAddr, tunnel: u16) -> Self {
        Self {
            from,
            tunnel,
            lns_tunnel: 0,
            ns: 0,
            nr: 0,
        }
    }

    fn datagram(&mut self, session: u16, message: ControlMessage<'_>) -> Vec<u8> {
        let bytes = build(self.lns_tunnel, session, self.ns, self.nr, message);
        self.ns = self.ns.wrapping_add(1);
        bytes
    }

    #[track_caller]
    fn send<R: CryptoRng>(
        &mut self,
        ep: &mut Endpoint<R>,
        now: Instant,
        session: u16,
        message: ControlMessage<'_>,
    ) {
        let mut bytes = self.datagram(session, message);
        ep.handle_datagram(now, self.from, &mut bytes).unwrap();
    }

    /// Drains the endpoint, checks everything goes to us, and acknowledges in our books.
    #[track_caller]
    fn receive<R: CryptoRng>(&mut self, ep: &mut Endpoint<R>, now: Instant) -> Vec<Sent> {
        let sent = drain(ep, now);
        for s in &sent {
            assert_eq!(s.to, self.from);
            assert_eq!(s.ids().0, self.tunnel, "header carries our tunnel ID");
            if !s.is_zlb() && s.ns_nr().0 == self.nr {
                self.nr = self.nr.wrapping_add(1);
            }
            if let Some(ControlMessage::Sccrp(m)) = s.message_type().map(|_| s.message()) {
                self.lns_tunnel = m.assigned_tunnel_id.0;
            }
        }
        sent
    }

    fn zlb<R: CryptoRng>(&self, ep: &mut Endpoint<R>, now: Instant) {
        let mut bytes = build(
            self.lns_tunnel,
            0,
            self.ns,
            self.nr,
            ControlMessage::Hello(Hello {}),
        );
        bytes.truncate(12);
        bytes[2..4].copy_from_slice(&12u16.to_be_bytes());
        ep.handle_datagram(now, self.from, &mut bytes).unwrap();
    }

    /// SCCRQ, SCCRP, SCCCN: an established tunnel at `now`.
    #[track_caller]
    fn establish<R: CryptoRng>(&mut self, ep: &mut Endpoint<R>, now: Instant) {
        self.send(ep, now, 0, sccrq(self.tunnel, None, None).into());
        let sent = self.receive(ep, now);
        assert_eq!(sent[0].message_type(), Some(MessageType::SCCRP));
        self.send(
            ep,
            now,
            0,
            Scccn {
                challenge_response: None,
            }
            .into(),
        );
    }

    /// ICRQ, ICRP, ICCN: returns the LNS's session ID.
    #[track_caller]
    fn call<R: CryptoRng>(&mut self, ep: &mut Endpoint<R>, now: Instant, session: u16) -> u16 {
        self.send(ep, now, 0, icrq(session, 1).into());
        let sent = self.receive(ep, now);
        let icrp = sent
            .iter()
            .find(|s| s.message_type() == Some(MessageType::ICRP))
            .expect("ICRP");
        let ControlMessage::Icrp(m) = icrp.message() else {
            unreachable!()
        };
        assert_eq!(icrp.ids().1, session);
        let lns_session = m.assigned_session_id.0;
        self.send(ep, now, lns_session, iccn().into());
        lns_session
    }
}

#[test]
fn sccrp_is_retransmitted_with_backoff_until_scccn_acknowledges_it() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut remote = Remote::new(client(), 1);
    remote.send(&mut ep, t0, 0, sccrq(1, None, None).into());
    let sccrp = remote.receive(&mut ep, t0);
    assert_eq!(sccrp.len(), 1);
    assert_eq!(sccrp[0].message_type(), Some(MessageType::SCCRP));
    assert_eq!(sccrp[0].ns_nr(), (0, 1), "SCCRP acknowledges the SCCRQ");
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(1)));

    ep.handle_timeout(t0 + ms(999));
    assert!(
        drain(&mut ep, t0 + ms(999)).is_empty(),
        "nothing before the RTO"
    );
    let mut at = t0;
    for backoff in [1, 2, 4] {
        at += secs(backoff);
        assert_eq!(ep.poll_timeout(), Some(at));
        ep.handle_timeout(at);
        ep.handle_timeout(at); // twice is harmless
        let again = drain(&mut ep, at);
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].bytes, sccrp[0].bytes,
            "same Ns, same Nr, same body"
        );
    }
    assert_eq!(ep.poll_timeout(), Some(at + secs(8)));
    remote.send(
        &mut ep,
        at + secs(1),
        0,
        Scccn {
            challenge_response: None,
        }
        .into(),
    );
    let up = events(&mut ep);
    assert!(matches!(
        &up[..],
        [Event::TunnelUp { peer_tunnel: TunnelId(1), peer_host_name, .. }] if peer_host_name == b"peer"
    ));
    // Only the delayed acknowledgement of SCCCN remains.
    assert_eq!(ep.poll_timeout(), Some(at + secs(1) + ms(100)));
    ep.handle_timeout(at + secs(1) + ms(100));
    let zlb = drain(&mut ep, at + secs(1) + ms(100));
    assert_eq!(zlb.len(), 1);
    assert!(zlb[0].is_zlb());
    assert_eq!(zlb[0].ns_nr(), (1, 2));
}

#[test]
fn hello_goes_out_after_the_configured_quiet_time_and_a_dead_peer_is_detected() {
    let t0 = t0();
    let config = Config {
        hello_interval: secs(30),
        ..Config::default()
    };
    let mut ep = lns(config);
    let mut remote = Remote::new(client(), 1);
    remote.establish(&mut ep, t0);
    let lns_tunnel = TunnelId(remote.lns_tunnel);
    events(&mut ep);
    ep.handle_timeout(t0 + ms(100));
    assert!(remote.receive(&mut ep, t0 + ms(100))[0].is_zlb());
    assert_eq!(
        ep.poll_timeout(),
        Some(t0 + secs(30)),
        "quiet since SCCCN at t0"
    );

    // A message from the peer restarts the quiet period.
    remote.send(&mut ep, t0 + secs(10), 0, Hello {}.into());
    ep.handle_timeout(t0 + secs(10) + ms(100));
    remote.receive(&mut ep, t0 + secs(10) + ms(100));
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(40)));
    ep.handle_timeout(t0 + secs(40));
    let hello = remote.receive(&mut ep, t0 + secs(40));
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0].message_type(), Some(MessageType::HELLO));

    // The peer acknowledges: the next HELLO is due 30 s after that acknowledgement.
    remote.zlb(&mut ep, t0 + secs(41));
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(71)));
    ep.handle_timeout(t0 + secs(71));
    assert_eq!(remote.receive(&mut ep, t0 + secs(71)).len(), 1);

    // Now the peer is gone: 5 retransmissions (1, 2, 4, 8, 8 s), then 8 s more.
    let mut at = t0 + secs(71);
    for backoff in [1, 2, 4, 8, 8] {
        at += secs(backoff);
        assert_eq!(ep.poll_timeout(), Some(at));
        ep.handle_timeout(at);
        let again = drain(&mut ep, at);
        assert_eq!(again[0].message_type(), Some(MessageType::HELLO));
    }
    at += secs(8);
    assert_eq!(ep.poll_timeout(), Some(at));
    ep.handle_timeout(at);
    assert_eq!(
        events(&mut ep),
        vec![Event::TunnelDown {
            peer: client(),
            tunnel: lns_tunnel,
            reason: TunnelDownReason::PeerUnresponsive,
            peer_host_name: b"peer".to_vec(),
        }]
    );
    assert!(ep.is_idle(), "a dead peer's tunnel is forgotten at once");
    assert!(drain(&mut ep, at).is_empty(), "no StopCCN to a dead peer");
}

#[test]
fn a_received_stop_ccn_is_acknowledged_and_remembered_for_the_hold_period() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut remote = Remote::new(client(), 1);
    remote.establish(&mut ep, t0);
    let lns_session = remote.call(&mut ep, t0, 81);
    events(&mut ep);
    remote.receive(&mut ep, t0);
    let stop = StopCcn {
        assigned_tunnel_id: TunnelId(1),
        result_code: ResultCode {
            result: 6,
            error: None,
        },
    };
    let mut bytes = remote.datagram(0, stop.into());
    let t1 = t0 + secs(5);
    ep.handle_datagram(t1, client(), &mut bytes.clone())
        .unwrap();
    let down = events(&mut ep);
    assert_eq!(down.len(), 2);
    assert!(matches!(
        down[0],
        Event::SessionDown { session: SessionId(s), peer_session: SessionId(81), reason: SessionDownReason::TunnelDown, .. } if s == lns_session
    ));
    assert!(matches!(
        down[1],
        Event::TunnelDown {
            reason: TunnelDownReason::Stopped {
                origin: Origin::Peer,
                result: StopCcnResult::SHUTTING_DOWN,
                error: None
            },
            ..
        }
    ));
    // RFC 2661 §5.7: the StopCCN is acknowledged; a retransmission of it is acknowledged again.
    ep.handle_timeout(t1 + ms(100));
    let ack = drain(&mut ep, t1 + ms(100));
    assert!(ack.len() == 1 && ack[0].is_zlb() && ack[0].ns_nr().1 == remote.ns);
    ep.handle_datagram(t1 + secs(2), client(), &mut bytes)
        .unwrap();
    assert!(drain(&mut ep, t1 + secs(2))[0].is_zlb());
    assert_eq!(ep.tunnel_count(), 1);
    assert_eq!(ep.poll_timeout(), Some(t1 + secs(31)));
    ep.handle_timeout(t1 + secs(31) - ms(1));
    assert_eq!(ep.tunnel_count(), 1, "held until the end of the period");
    ep.handle_timeout(t1 + secs(31));
    assert!(ep.is_idle());
}

#[test]
fn a_local_close_sends_stop_ccn_until_acknowledged_then_holds() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut remote = Remote::new(client(), 1);
    remote.establish(&mut ep, t0);
    let lns_session = remote.call(&mut ep, t0, 81);
    remote.receive(&mut ep, t0);
    events(&mut ep);
    let tunnel = TunnelId(remote.lns_tunnel);
    ep.close_session(
        t0,
        tunnel,
        SessionId(lns_session),
        CdnResult::ADMINISTRATIVE,
        None,
    )
    .unwrap();
    let cdn = remote.receive(&mut ep, t0);
    assert_eq!(cdn[0].message_type(), Some(MessageType::CDN));
    assert_eq!(cdn[0].ids(), (1, 81));
    assert_eq!(cdn[0].result(), (3, None));
    assert_eq!(
        ep.close_session(
            t0,
            tunnel,
            SessionId(lns_session),
            CdnResult::ADMINISTRATIVE,
            None
        ),
        Err(CallError::UnknownSession)
    );
    ep.close_tunnel(t0, tunnel, StopCcnResult::GENERAL_REQUEST, None)
        .unwrap();
    let stop = remote.receive(&mut ep, t0);
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0].message_type(), Some(MessageType::STOP_CCN));
    assert_eq!(stop[0].result(), (1, None));
    let ev = events(&mut ep);
    assert!(matches!(
        ev.last(),
        Some(Event::TunnelDown {
            reason: TunnelDownReason::Stopped {
                origin: Origin::Local,
                ..
            },
            ..
        })
    ));
    // Unacknowledged, the CDN and the StopCCN are retransmitted.
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(1)));
    ep.handle_timeout(t0 + secs(1));
    let again = drain(&mut ep, t0 + secs(1));
    assert_eq!(
        again.iter().map(Sent::message_type).collect::<Vec<_>>(),
        vec![Some(MessageType::CDN), Some(MessageType::STOP_CCN)]
    );
    remote.zlb(&mut ep, t0 + secs(2));
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(31)));
    ep.handle_timeout(t0 + secs(31));
    assert!(ep.is_idle());
}

/// An AVP no one defined (type 300), with the M bit.
fn unknown_mandatory(w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
    avp::put(w, AttributeType(300), Flags::MANDATORY, &[1, 2])
}

fn with_unknown_mandatory(
    tunnel: u16,
    session: u16,
    ns: u16,
    nr: u16,
    message: ControlMessage<'_>,
) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let len = wire::write_control(
        &mut buf,
        TunnelId(tunnel),
        SessionId(session),
        Seq(ns),
        Seq(nr),
        |w| {
            message.emit(w)?;
            unknown_mandatory(w)
        },
    )
    .unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn an_unknown_mandatory_avp_in_a_tunnel_message_stops_the_tunnel_with_error_8() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut remote = Remote::new(client(), 1);
    remote.send(&mut ep, t0, 0, sccrq(1, None, None).into());
    remote.receive(&mut ep, t0);
    let mut scccn = with_unknown_mandatory(
        remote.lns_tunnel,
        0,
        1,
        1,
        Scccn {
            challenge_response: None,
        }
        .into(),
    );
    ep.handle_datagram(t0, client(), &mut scccn).unwrap();
    let stop = remote.receive(&mut ep, t0);
    assert_eq!(stop[0].message_type(), Some(MessageType::STOP_CCN));
    assert_eq!(
        stop[0].result(),
        (2, Some(ErrorCode::UNKNOWN_MANDATORY_AVP))
    );
    assert!(matches!(
        events(&mut ep)[..],
        [Event::TunnelDown {
            reason: TunnelDownReason::Stopped {
                origin: Origin::Local,
                result: StopCcnResult::GENERAL_ERROR,
                error: Some(ErrorCode::UNKNOWN_MANDATORY_AVP)
            },
            ..
        }]
    ));

    // The same AVP in an SCCRQ: StopCCN straight back, no tunnel.
    let mut ep = lns(Config::default());
    let mut bad = with_unknown_mandatory(0, 0, 0, 0, sccrq(9, None, None).into());
    ep.handle_datagram(t0, client(), &mut bad).unwrap();
    assert_eq!(ep.tunnel_count(), 0);
    let stop = drain(&mut ep, t0);
    assert_eq!(stop[0].ids(), (9, 0));
    assert_eq!(stop[0].ns_nr(), (0, 1));
    assert_eq!(
        stop[0].result(),
        (2, Some(ErrorCode::UNKNOWN_MANDATORY_AVP))
    );
    assert!(ep.is_idle());
}

#[test]
fn an_unknown_mandatory_avp_in_a_call_message_costs_only_the_call() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut remote = Remote::new(client(), 1);
    remote.establish(&mut ep, t0);
    let good = remote.call(&mut ep, t0, 81);
    remote.receive(&mut ep, t0);
    events(&mut ep);

    // An ICRQ with it: CDN to the call it announces, nothing created.
    let mut bad = with_unknown_mandatory(
        remote.lns_tunnel,
        0,
        remote.ns,
        remote.nr,
        icrq(82, 2).into(),
    );
    remote.ns += 1;
    ep.handle_datagram(t0, client(), &mut bad).unwrap();
    let cdn = remote.receive(&mut ep, t0);
    assert_eq!(cdn[0].message_type(), Some(MessageType::CDN));
    assert_eq!(cdn[0].ids(), (1, 82));
    assert_eq!(cdn[0].result(), (2, Some(ErrorCode::UNKNOWN_MANDATORY_AVP)));

    // A WEN with it for the established call: CDN for that call.
    let wen = Wen {
        call_errors: CallErrors {
            crc_errors: 1,
            framing_errors: 0,
            hardware_overruns: 0,
            buffer_overruns: 0,
            timeout_errors: 0,
            alignment_errors: 0,
        },
    };
    let mut bad = with_unknown_mandatory(remote.lns_tunnel, good, remote.ns, remote.nr, wen.into());
    remote.ns += 1;
    ep.handle_datagram(t0, client(), &mut bad).unwrap();
    let cdn = remote.receive(&mut ep, t0);
    assert_eq!(cdn[0].ids(), (1, 81));
    assert_eq!(cdn[0].result(), (2, Some(ErrorCode::UNKNOWN_MANDATORY_AVP)));
    assert!(matches!(
        events(&mut ep)[..],
        [Event::SessionDown {
            reason: SessionDownReason::Disconnected {
                origin: Origin::Local,
                ..
            },
            ..
        }]
    ));
    let tunnel = ep.tunnel(TunnelId(remote.lns_tunnel)).unwrap();
    assert_eq!(tunnel.state(), TunnelState::Established, "the tunnel stays");
    assert_eq!(tunnel.session_count(), 0);
}

#[test]
fn tunnel_authentication_both_ways_with_the_right_secret() {
    let t0 = t0();
    let secret = Some(Secret::new(*b"tunnel-secret"));
    let mut ep = lns(Config {
        secret: secret.clone(),
        ..Config::default()
    });
    let mut remote = Remote::new(client(), 1);
    let our_challenge = b"0123456789abcdef";
    remote.send(&mut ep, t0, 0, sccrq(1, Some(our_challenge), None).into());
    let sent = remote.receive(&mut ep, t0);
    let ControlMessage::Sccrp(sccrp) = sent[0].message() else {
        panic!("no SCCRP");
    };
    assert_eq!(
        sccrp.challenge_response,
        Some(challenge_response(
            ResponseIn::Sccrp,
            b"tunnel-secret",
            our_challenge
        )),
        "the LNS proves it knows the secret"
    );
    let their_challenge = sccrp.challenge.expect("the LNS challenges us").to_vec();
    let response = challenge_response(ResponseIn::Scccn, b"tunnel-secret", &their_challenge);
    remote.send(
        &mut ep,
        t0,
        0,
        Scccn {
            challenge_response: Some(response),
        }
        .into(),
    );
    assert!(matches!(events(&mut ep)[..], [Event::TunnelUp { .. }]));
}

#[test]
fn a_wrong_challenge_response_is_refused_with_not_authorized() {
    let t0 = t0();
    let mut ep = lns(Config {
        secret: Some(Secret::new(*b"tunnel-secret")),
        ..Config::default()
    });
    let mut remote = Remote::new(client(), 1);
    remote.send(&mut ep, t0, 0, sccrq(1, None, None).into());
    let sent = remote.receive(&mut ep, t0);
    let ControlMessage::Sccrp(sccrp) = sent[0].message() else {
        panic!("no SCCRP");
    };
    let challenge = sccrp.challenge.unwrap().to_vec();
    let wrong = challenge_response(ResponseIn::Scccn, b"not-the-secret", &challenge);
    remote.send(
        &mut ep,
        t0,
        0,
        Scccn {
            challenge_response: Some(wrong),
        }
        .into(),
    );
    let stop = remote.receive(&mut ep, t0);
    assert_eq!(stop[0].message_type(), Some(MessageType::STOP_CCN));
    assert_eq!(stop[0].result(), (4, None));
    assert!(matches!(
        events(&mut ep)[..],
        [Event::TunnelDown {
            reason: TunnelDownReason::Stopped {
                result: StopCcnResult::NOT_AUTHORIZED,
                ..
            },
            ..
        }]
    ));

    // Without a secret we cannot answer a challenge: refused the same way.
    let mut ep = lns(Config::default());
    let mut remote = Remote::new(client(), 1);
    remote.send(&mut ep, t0, 0, sccrq(1, Some(b"challenge"), None).into());
    let stop = remote.receive(&mut ep, t0);
    assert_eq!(stop[0].result(), (4, None));
}

/// Runs two endpoints against each other without loss until neither has anything to do or
/// `until` passes.
fn exchange<A: CryptoRng, B: CryptoRng>(
    lac: &mut Endpoint<A>,
    lns: &mut Endpoint<B>,
    mut now: Instant,
    until: Instant,
) -> Instant {
    loop {
        let mut moved = false;
        for s in drain(lac, now) {
            moved = true;
            let _ = lns.handle_datagram(now, client(), &mut s.bytes.clone());
        }
        for s in drain(lns, now) {
            moved = true;
            let _ = lac.handle_datagram(now, lns_addr(), &mut s.bytes.clone());
        }
        if moved {
            continue;
        }
        let next = [lac.poll_timeout(), lns.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(at) if at <= until => {
                now = now.max(at);
                lac.handle_timeout(now);
                lns.handle_timeout(now);
            }
            _ => return now,
        }
    }
}

#[test]
fn a_lac_with_the_wrong_secret_refuses_the_lns_and_the_right_one_connects() {
    let t0 = t0();
    for (lac_secret, ok) in [(&b"tunnel-secret"[..], true), (b"wrong", false)] {
        let mut lns_ep = lns(Config {
            secret: Some(Secret::new(*b"tunnel-secret")),
            ..Config::default()
        });
        let mut lac = Endpoint::new(
            Arc::new(Config {
                secret: Some(Secret::new(lac_secret)),
                ..Config::default()
            }),
            ChaCha8Rng::seed_from_u64(2),
        );
        lac.connect(t0, lns_addr()).unwrap();
        exchange(&mut lac, &mut lns_ep, t0, t0 + secs(5));
        let lac_events = events(&mut lac);
        let up = lac_events.iter().any(|e| matches!(e, Event::SessionUp(_)));
        assert_eq!(up, ok, "{lac_events:?}");
        if !ok {
            assert!(lac_events.iter().any(|e| matches!(
                e,
                Event::TunnelDown {
                    reason: TunnelDownReason::Stopped {
                        origin: Origin::Local,
                        result: StopCcnResult::NOT_AUTHORIZED,
                        ..
                    },
                    ..
                }
            )));
            assert!(events(&mut lns_ep).iter().any(|e| matches!(
                e,
                Event::TunnelDown {
                    reason: TunnelDownReason::Stopped {
                        origin: Origin::Peer,
                        result: StopCcnResult::NOT_AUTHORIZED,
                        ..
                    },
                    ..
                }
            )));
        }
    }
}

#[test]
fn tie_breaker_lower_value_wins_and_equal_values_lose_both() {
    let t0 = t0();
    for (theirs, outcome) in [
        ([0x00; 8], "they win"),
        ([0xff; 8], "we win"),
        ([0x55; 8], "both lose"),
    ] {
        let mut ep = lns(Config::default());
        let (ours_id, _) = ep.connect(t0, lns_addr()).unwrap();
        let sccrq_out = drain(&mut ep, t0);
        let ControlMessage::Sccrq(m) = sccrq_out[0].message() else {
            panic!("no SCCRQ");
        };
        let ours = m.tie_breaker.expect("our SCCRQ carries a tie breaker");
        let theirs = if outcome == "both lose" { ours } else { theirs };
        assert!(
            ours != [0; 8] && ours != [0xff; 8],
            "seeded value in between"
        );
        let mut bytes = build(0, 0, 0, 0, sccrq(5, None, Some(theirs)).into());
        ep.handle_datagram(t0, lns_addr(), &mut bytes).unwrap();
        let sent = drain(&mut ep, t0);
        let ev = events(&mut ep);
        let lost = ev.iter().any(|e| {
            matches!(
                e,
                Event::TunnelDown {
                    reason: TunnelDownReason::TieBreakerLost,
                    ..
                }
            )
        });
        match outcome {
            "they win" => {
                assert!(lost);
                assert!(ep.tunnel(ours_id).is_none());
                assert_eq!(sent.len(), 1);
                assert_eq!(sent[0].message_type(), Some(MessageType::SCCRP));
                assert_eq!(ep.tunnel_count(), 1);
            }
            "we win" => {
                assert!(!lost && sent.is_empty());
                assert_eq!(ep.tunnel_count(), 1);
                assert!(ep.tunnel(ours_id).is_some());
                assert_eq!(ep.stats().tie_breaks_won, 1);
            }
            _ => {
                assert!(lost && sent.is_empty());
                assert_eq!(ep.tunnel_count(), 0);
            }
        }
    }
}

#[test]
fn the_tie_breaker_index_holds_our_lac_tunnels_only_while_they_live() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    // A tunnel the peer opened: not ours, never looked at for a tie break.
    let mut bytes = build(0, 0, 0, 0, sccrq(5, None, Some([0x11; 8])).into());
    ep.handle_datagram(t0, lns_addr(), &mut bytes).unwrap();
    drain(&mut ep, t0);
    assert_eq!(ep.tunnel_count(), 1);
    assert!(ep.lac_by_address.is_empty());
    // One we open to the same address: indexed.
    let (ours_id, _) = ep.connect(t0, lns_addr()).unwrap();
    drain(&mut ep, t0);
    assert_eq!(
        ep.lac_by_address.iter().copied().collect::<Vec<_>>(),
        [(lns_addr().ip(), ours_id.0)]
    );
    // It loses the tie break to the peer's next SCCRQ: gone, from the index too.
    let mut bytes = build(0, 0, 0, 0, sccrq(6, None, Some([0x00; 8])).into());
    ep.handle_datagram(t0, lns_addr(), &mut bytes).unwrap();
    drain(&mut ep, t0);
    assert!(ep.tunnel(ours_id).is_none());
    assert!(ep.lac_by_address.is_empty());
    assert_eq!(ep.tunnel_count(), 2);
}

#[test]
fn the_seed_scenario_message_by_message() {
    let t0 = t0();
    // Our LAC draws tunnel 1 and session 81; the LNS draws tunnel 0x4a21 and session 77.
    let mut lac = Endpoint::new(Arc::new(Config::default()), Scripted::ids(&[1, 81]));
    let mut lns_ep = Endpoint::new(Arc::new(Config::default()), Scripted::ids(&[0x4a21, 77]));
    let lac_from = addr([10, 77, 0, 20], 40123);
    let (tunnel, session) = lac.connect(t0, lns_addr()).unwrap();
    assert_eq!((tunnel, session), (TunnelId(1), SessionId(81)));

    let relay = |from_lac: bool, lac: &mut Endpoint<Scripted>, lns_ep: &mut Endpoint<Scripted>| {
        let (src, dst) = if from_lac {
            (lac, lns_ep)
        } else {
            (lns_ep, lac)
        };
        let sent = drain(src, t0);
        let to = if from_lac { lac_from } else { lns_addr() };
        for s in &sent {
            dst.handle_datagram(t0, to, &mut s.bytes.clone()).unwrap();
        }
        sent
    };
    let m = relay(true, &mut lac, &mut lns_ep).remove(0);
    assert_eq!(m.to, lns_addr());
    assert_eq!(
        (m.message_type(), m.ids(), m.ns_nr()),
        (Some(MessageType::SCCRQ), (0, 0), (0, 0))
    );
    let ControlMessage::Sccrq(sccrq) = m.message() else {
        unreachable!()
    };
    assert_eq!(sccrq.assigned_tunnel_id, TunnelId(1));

    let m = relay(false, &mut lac, &mut lns_ep).remove(0);
    assert_eq!(
        (m.message_type(), m.ids(), m.ns_nr()),
        (Some(MessageType::SCCRP), (1, 0), (0, 1))
    );
    let ControlMessage::Sccrp(sccrp) = m.message() else {
        unreachable!()
    };
    assert_eq!(sccrp.assigned_tunnel_id, TunnelId(0x4a21));

    // SCCRP acknowledged the SCCRQ, so the window holds SCCCN and ICRQ together.
    let mut both = relay(true, &mut lac, &mut lns_ep);
    assert_eq!(both.len(), 2);
    let m = both.remove(0);
    assert_eq!(
        (m.message_type(), m.ids(), m.ns_nr()),
        (Some(MessageType::SCCCN), (0x4a21, 0), (1, 1))
    );
    let m = both.remove(0);
    assert_eq!(
        (m.message_type(), m.ids(), m.ns_nr()),
        (Some(MessageType::ICRQ), (0x4a21, 0), (2, 1))
    );
    let ControlMessage::Icrq(icrq) = m.message() else {
        unreachable!()
    };
    assert_eq!(icrq.assigned_session_id, SessionId(81));

    let m = relay(false, &mut lac, &mut lns_ep).remove(0);
    assert_eq!(
        (m.message_type(), m.ids(), m.ns_nr()),
        (Some(MessageType::ICRP), (1, 81), (1, 3))
    );
    let ControlMessage::Icrp(icrp) = m.message() else {
        unreachable!()
    };
    assert_eq!(icrp.assigned_session_id, SessionId(77));

    let m = relay(true, &mut lac, &mut lns_ep).remove(0);
    assert_eq!(
        (m.message_type(), m.ids(), m.ns_nr()),
        (Some(MessageType::ICCN), (0x4a21, 77), (3, 2))
    );

    let lns_events = events(&mut lns_ep);
    assert!(matches!(
        &lns_events[0],
        Event::TunnelUp {
            tunnel: TunnelId(0x4a21),
            peer_tunnel: TunnelId(1),
            ..
        }
    ));
    let Event::SessionUp(up) = &lns_events[1] else {
        panic!("{lns_events:?}")
    };
    assert_eq!(
        (
            up.peer,
            up.tunnel,
            up.session,
            up.peer_session,
            up.call_serial_number
        ),
        (lac_from, TunnelId(0x4a21), SessionId(77), SessionId(81), 1)
    );
    let lac_events = events(&mut lac);
    assert!(
        matches!(&lac_events[1], Event::SessionUp(up) if up.session == SessionId(81) && up.peer_session == SessionId(77))
    );

    // Data both ways, encapsulated in headroom and routed without copies.
    let path = lac.data_path(tunnel, session).unwrap();
    assert_eq!(
        (path.peer_tunnel, path.peer_session),
        (TunnelId(0x4a21), SessionId(77))
    );
    let mut buf = [0u8; 64];
    buf[DATA_HEADROOM..DATA_HEADROOM + 4].copy_from_slice(&[0xff, 0x03, 0xc0, 0x21]);
    let message = path
        .encapsulate(&mut buf, DATA_HEADROOM..DATA_HEADROOM + 4)
        .unwrap();
    assert_eq!(message, 0..DATA_HEADROOM + 4);
    let received = lns_ep
        .handle_datagram(t0, lac_from, &mut buf[message])
        .unwrap();
    assert_eq!(
        received,
        Received::Data(DataMessage {
            tunnel: TunnelId(0x4a21),
            session: SessionId(77),
            frame: 6..10
        })
    );
}

#[test]
fn clients_behind_one_nat_with_the_same_ids_never_mix() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let a = addr([203, 0, 113, 9], 1701);
    let b = addr([203, 0, 113, 9], 40000);
    let mut ra = Remote::new(a, 1);
    let mut rb = Remote::new(b, 1);
    ra.establish(&mut ep, t0);
    rb.establish(&mut ep, t0);
    assert_ne!(ra.lns_tunnel, rb.lns_tunnel);
    let sa = ra.call(&mut ep, t0, 1);
    let sb = rb.call(&mut ep, t0, 1);
    ra.receive(&mut ep, t0);
    rb.receive(&mut ep, t0);
    let ups: Vec<_> = events(&mut ep)
        .into_iter()
        .filter_map(|e| match e {
            Event::SessionUp(up) => Some((up.peer, up.tunnel.0, up.session.0)),
            _ => None,
        })
        .collect();
    assert_eq!(ups, vec![(a, ra.lns_tunnel, sa), (b, rb.lns_tunnel, sb)]);
    // A data message for A's tunnel from B's port is refused.
    let mut data = [0x00, 0x02, 0, 0, 0, 0, 0xff, 0x03];
    data[2..4].copy_from_slice(&ra.lns_tunnel.to_be_bytes());
    data[4..6].copy_from_slice(&sa.to_be_bytes());
    assert_eq!(
        ep.handle_datagram(t0, b, &mut data.clone()),
        Err(Discard::WrongPeer)
    );
    assert!(matches!(
        ep.handle_datagram(t0, a, &mut data),
        Ok(Received::Data(_))
    ));
    // Control messages likewise.
    let mut hello = build(ra.lns_tunnel, 0, ra.ns, ra.nr, Hello {}.into());
    assert_eq!(
        ep.handle_datagram(t0, b, &mut hello),
        Err(Discard::WrongPeer)
    );
}

#[test]
fn a_retransmitted_sccrq_does_not_create_a_second_tunnel() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let sccrq_bytes = build(0, 0, 0, 0, sccrq(1, None, None).into());
    ep.handle_datagram(t0, client(), &mut sccrq_bytes.clone())
        .unwrap();
    let first = drain(&mut ep, t0);
    ep.handle_datagram(t0 + secs(1), client(), &mut sccrq_bytes.clone())
        .unwrap();
    assert_eq!(ep.tunnel_count(), 1);
    let again = drain(&mut ep, t0 + secs(1));
    // The SCCRP is retransmitted by its own timer; the duplicate is acknowledged at once.
    assert!(again.iter().all(|s| s.ids() == first[0].ids()));
    // The same tunnel ID from another port is another client.
    let other = addr([10, 77, 0, 20], 1702);
    ep.handle_datagram(t0, other, &mut sccrq_bytes.clone())
        .unwrap();
    assert_eq!(ep.tunnel_count(), 2);
}

/// SCCRQ + SCCCN from each address; returns how many tunnels came up.
fn open_from(ep: &mut Endpoint<ChaCha8Rng>, t0: Instant, peers: &[SocketAddr]) -> usize {
    for (i, peer) in peers.iter().enumerate() {
        let mut r = Remote::new(*peer, u16::try_from(i % 60000).unwrap() + 1);
        r.send(ep, t0, 0, sccrq(r.tunnel, None, None).into());
        let sent = r.receive(ep, t0);
        if sent[0].message_type() == Some(MessageType::SCCRP) {
            r.send(
                ep,
                t0,
                0,
                Scccn {
                    challenge_response: None,
                }
                .into(),
            );
        } else {
            assert_eq!(sent[0].message_type(), Some(MessageType::STOP_CCN));
            assert_eq!(
                sent[0].result(),
                (2, Some(ErrorCode::INSUFFICIENT_RESOURCES))
            );
        }
    }
    events(ep)
        .iter()
        .filter(|e| matches!(e, Event::TunnelUp { .. }))
        .count()
}

#[test]
fn five_hundred_peers_and_two_hundred_ports_of_one_address_at_once() {
    let t0 = t0();
    let distinct: Vec<SocketAddr> = (0..500u32)
        .map(|i| {
            let [_, _, hi, lo] = i.to_be_bytes();
            addr([10, 1, hi, lo], 1701)
        })
        .collect();
    let one_address: Vec<SocketAddr> = (0..200).map(|i| addr([192, 0, 2, 1], 20000 + i)).collect();
    let mut ep = lns(Config {
        limits: Limits {
            max_tunnels_per_address: 200,
            ..Limits::default()
        },
        ..Config::default()
    });
    assert_eq!(open_from(&mut ep, t0, &distinct), 500);
    assert_eq!(open_from(&mut ep, t0, &one_address), 200);
    assert_eq!(ep.tunnel_count(), 700);
    let ids: BTreeSet<u16> = ep.tunnels.keys().copied().collect();
    assert_eq!(ids.len(), 700);
    assert!(!ids.contains(&0));
}

#[test]
fn tunnel_limits_refuse_the_excess_with_stop_ccn_and_keep_no_state() {
    let t0 = t0();
    let mut ep = lns(Config {
        limits: Limits {
            max_tunnels: 10,
            max_tunnels_per_address: 3,
            ..Limits::default()
        },
        ..Config::default()
    });
    let same: Vec<SocketAddr> = (0..5).map(|i| addr([192, 0, 2, 1], 20000 + i)).collect();
    assert_eq!(open_from(&mut ep, t0, &same), 3, "per address");
    assert_eq!(ep.tunnel_count(), 3);
    let others: Vec<SocketAddr> = (0..10).map(|i| addr([10, 2, 0, i], 1701)).collect();
    assert_eq!(open_from(&mut ep, t0, &others), 7, "in total");
    assert_eq!(ep.tunnel_count(), 10);
    assert_eq!(ep.stats().tunnels_refused, 5);
    // Our own LAC tunnels are subject to the same limits.
    assert_eq!(
        ep.connect(t0, lns_addr()),
        Err(ConnectError::TooManyTunnels)
    );
}

#[test]
fn the_session_limit_refuses_an_icrq_with_cdn() {
    let t0 = t0();
    let mut ep = lns(Config {
        limits: Limits {
            max_sessions_per_tunnel: 2,
            ..Limits::default()
        },
        ..Config::default()
    });
    let mut r = Remote::new(client(), 1);
    r.establish(&mut ep, t0);
    r.call(&mut ep, t0, 10);
    r.call(&mut ep, t0, 11);
    r.receive(&mut ep, t0);
    r.send(&mut ep, t0, 0, icrq(12, 3).into());
    let cdn = r.receive(&mut ep, t0);
    assert_eq!(cdn[0].message_type(), Some(MessageType::CDN));
    assert_eq!(cdn[0].ids(), (1, 12));
    assert_eq!(
        cdn[0].result(),
        (2, Some(ErrorCode::INSUFFICIENT_RESOURCES))
    );
    assert_eq!(
        ep.tunnel(TunnelId(r.lns_tunnel)).unwrap().session_count(),
        2
    );
}

#[test]
fn a_full_control_queue_refuses_messages_until_the_peer_acknowledges() {
    let t0 = t0();
    let mut ep = lns(Config {
        reliable: reliable::Config {
            max_queued: 2,
            ..reliable::Config::default()
        },
        ..Config::default()
    });
    let mut r = Remote::new(client(), 1);
    r.establish(&mut ep, t0);
    ep.handle_timeout(t0 + ms(100));
    r.receive(&mut ep, t0 + ms(100));
    // The peer's window is 4 but the congestion window starts at 1: one ICRP in flight, two
    // waiting, then the queue is full.
    // SCCCN acknowledged SCCRP, so the congestion window is 2: two ICRPs in flight, two
    // waiting, then the queue is full.
    for (session, in_flight) in [(10u16, 1), (11, 1), (12, 0), (13, 0)] {
        // The peer's Nr stays at 1: it acknowledges none of them.
        r.send(&mut ep, t0, 0, icrq(session, 1).into());
        assert_eq!(drain(&mut ep, t0).len(), in_flight);
    }
    let before = ep.digest();
    let mut fifth = r.datagram(0, icrq(14, 1).into());
    assert_eq!(
        ep.handle_datagram(t0, client(), &mut fifth.clone()),
        Err(Discard::Busy)
    );
    assert_eq!(ep.digest(), before, "nothing changed");
    assert!(drain(&mut ep, t0).is_empty(), "not even acknowledged");
    // The peer acknowledges the two ICRPs: the waiting ones go out, the retransmitted ICRQ is
    // taken.
    r.nr = 3;
    r.zlb(&mut ep, t0 + ms(200));
    assert_eq!(drain(&mut ep, t0 + ms(200)).len(), 2);
    ep.handle_datagram(t0 + secs(1), client(), &mut fifth)
        .unwrap();
    assert_eq!(
        ep.tunnel(TunnelId(r.lns_tunnel)).unwrap().session_count(),
        5
    );
}

#[test]
fn ocrq_is_refused_wen_is_ignored_and_sli_is_reported() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut r = Remote::new(client(), 1);
    r.establish(&mut ep, t0);
    let session = r.call(&mut ep, t0, 81);
    r.receive(&mut ep, t0);
    events(&mut ep);
    let ocrq = Ocrq {
        assigned_session_id: SessionId(90),
        call_serial_number: 5,
        minimum_bps: 0,
        maximum_bps: 1_000_000,
        bearer_type: BearerType(1),
        framing_type: FramingType(1),
        called_number: b"123",
        sub_address: None,
    };
    r.send(&mut ep, t0, 0, ocrq.into());
    let cdn = r.receive(&mut ep, t0);
    assert_eq!(cdn[0].message_type(), Some(MessageType::CDN));
    assert_eq!(cdn[0].ids(), (1, 90));
    assert_eq!(cdn[0].result().0, CdnResult::PERMANENT_LACK_OF_FACILITIES.0);
    let accm = Accm {
        send: 0,
        receive: 0xffff_ffff,
    };
    r.send(&mut ep, t0, session, Sli { accm }.into());
    assert_eq!(
        events(&mut ep),
        vec![Event::SetLinkInfo {
            peer: client(),
            tunnel: TunnelId(r.lns_tunnel),
            session: SessionId(session),
            accm
        }]
    );
    let tunnel = ep.tunnel(TunnelId(r.lns_tunnel)).unwrap();
    assert_eq!(
        tunnel.session_state(SessionId(session)),
        Some(SessionState::Established)
    );
}

#[test]
fn proxy_lcp_and_authentication_come_with_session_up_and_cdn_ends_the_call() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut r = Remote::new(client(), 1);
    r.establish(&mut ep, t0);
    let session = r.call(&mut ep, t0, 81);
    let ev = events(&mut ep);
    let Some(Event::SessionUp(up)) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(
        up.proxy.initial_received_lcp_confreq.as_deref(),
        Some(&[1, 4, 5, 0xdc][..])
    );
    assert_eq!(up.proxy.authen_name.as_deref(), Some(&b"hb"[..]));
    assert_eq!(up.tx_connect_speed, 10_000_000);
    // CDN from the peer, before it knew our session ID (header 0): found by its own ID.
    let cdn = Cdn {
        result_code: ResultCode {
            result: 1,
            error: None,
        },
        assigned_session_id: SessionId(81),
        q931_cause_code: None,
    };
    r.send(&mut ep, t0, 0, cdn.into());
    assert_eq!(
        events(&mut ep),
        vec![Event::SessionDown {
            peer: client(),
            tunnel: TunnelId(r.lns_tunnel),
            session: SessionId(session),
            peer_session: SessionId(81),
            reason: SessionDownReason::Disconnected {
                origin: Origin::Peer,
                result: CdnResult::LOST_CARRIER,
                error: None
            }
        }]
    );
    // Data for the gone call is discarded.
    let mut data = [0x00, 0x02, 0, 0, 0, 0, 0xff, 0x03];
    data[2..4].copy_from_slice(&r.lns_tunnel.to_be_bytes());
    data[4..6].copy_from_slice(&session.to_be_bytes());
    assert_eq!(
        ep.handle_datagram(t0, client(), &mut data),
        Err(Discard::UnknownSession(SessionId(session)))
    );
}

#[test]
fn setup_timeouts_bound_half_open_tunnels_and_calls() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut r = Remote::new(client(), 1);
    r.send(&mut ep, t0, 0, sccrq(1, None, None).into());
    r.receive(&mut ep, t0);
    r.zlb(&mut ep, t0 + ms(10)); // SCCRP acknowledged, but no SCCCN ever comes
    assert_eq!(ep.poll_timeout(), Some(t0 + secs(60)));
    ep.handle_timeout(t0 + secs(60));
    let stop = r.receive(&mut ep, t0 + secs(60));
    assert_eq!(stop[0].message_type(), Some(MessageType::STOP_CCN));
    assert!(matches!(
        events(&mut ep)[..],
        [Event::TunnelDown {
            reason: TunnelDownReason::SetupTimeout,
            ..
        }]
    ));

    let mut ep = lns(Config::default());
    let mut r = Remote::new(client(), 1);
    r.establish(&mut ep, t0);
    r.send(&mut ep, t0, 0, icrq(81, 1).into());
    r.receive(&mut ep, t0);
    r.zlb(&mut ep, t0 + ms(10));
    events(&mut ep);
    // The HELLO timer (60 s) and the call's setup deadline (60 s) coincide.
    ep.handle_timeout(t0 + secs(60));
    let sent = r.receive(&mut ep, t0 + secs(60));
    let cdn = sent
        .iter()
        .find(|s| s.message_type() == Some(MessageType::CDN))
        .unwrap();
    assert_eq!(cdn.result().0, CdnResult::TIMEOUT.0);
    assert!(matches!(
        events(&mut ep)[..],
        [Event::SessionDown {
            reason: SessionDownReason::SetupTimeout,
            ..
        }]
    ));
}

#[test]
fn discarded_datagrams_change_nothing() {
    let t0 = t0();
    let mut ep = lns(Config::default());
    let mut r = Remote::new(client(), 1);
    r.establish(&mut ep, t0);
    r.call(&mut ep, t0, 81);
    r.receive(&mut ep, t0);
    let before = ep.digest();
    let lns_tunnel = r.lns_tunnel;
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xc8, 0x03, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0],
        build(lns_tunnel.wrapping_add(1), 0, r.ns, r.nr, Hello {}.into()),
        build(lns_tunnel, 0, r.ns.wrapping_add(100), r.nr, Hello {}.into()),
        build(0, 0, 1, 0, sccrq(3, None, None).into()),
        build(0, 0, 0, 0, Hello {}.into()),
        build(0, 0, 0, 0, sccrq(0, None, None).into()),
        vec![0x00, 0x02, 0, 0, 0, 0],
    ];
    cases[7][2..4].copy_from_slice(&lns_tunnel.to_be_bytes());
    for mut case in cases {
        assert!(
            ep.handle_datagram(t0, client(), &mut case).is_err(),
            "{case:02x?}"
        );
        assert_eq!(ep.digest(), before);
        assert!(drain(&mut ep, t0).is_empty());
    }
}

/// The real clients' messages (xl2tpd LACs) fed to our LNS, re-addressed to the IDs our LNS
/// assigned, as the client would after reading our SCCRP and ICRP.
#[test]
fn captured_client_messages_drive_our_lns() {
    let t0 = t0();
    for sample in testdata::SAMPLES {
        let mut ep = lns(Config::default());
        let mut lns_tunnel = 0u16;
        let mut lns_session = 0u16;
        let mut answers = Vec::new();
        for m in testdata::control(sample)
            .iter()
            .filter(|m| m.sender == Sender::Client)
        {
            let mut bytes = m.bytes.clone();
            if lns_tunnel != 0 {
                bytes[4..6].copy_from_slice(&lns_tunnel.to_be_bytes());
            }
            if bytes[6..8] != [0, 0] {
                bytes[6..8].copy_from_slice(&lns_session.to_be_bytes());
            }
            ep.handle_datagram(t0, client(), &mut bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", m.origin));
            ep.handle_timeout(t0 + ms(100));
            for s in drain(&mut ep, t0 + ms(100)) {
                match s.message_type().map(|_| s.message()) {
                    Some(ControlMessage::Sccrp(sccrp)) => {
                        lns_tunnel = sccrp.assigned_tunnel_id.0;
                    }
                    Some(ControlMessage::Icrp(icrp)) => {
                        lns_session = icrp.assigned_session_id.0;
                    }
                    _ => {}
                }
                answers.push((m.decoded.clone(), s.message_type(), s.ids(), s.ns_nr()));
            }
        }
        // What the captured server answered, our LNS answers too (with its own IDs).
        let captured: Vec<_> = testdata::control(sample)
            .into_iter()
            .filter(|m| m.sender == Sender::Server)
            .map(|m| {
                let p = Packet::new_checked(&m.bytes[..]).unwrap();
                let (ns, nr) = p.sequence().unwrap();
                (
                    (!p.is_zlb()).then(|| ControlMessage::peek_type(p.payload()).unwrap()),
                    (p.tunnel_id().0, (p.session_id().0 != 0)),
                    (ns.0, nr.0),
                )
            })
            .collect();
        // Messages: the same types, IDs and sequence numbers as the captured server's.
        let ours: Vec<_> = answers
            .iter()
            .filter(|a| a.1.is_some())
            .map(|(_, ty, (t, s), nsnr)| (*ty, (*t, *s != 0), *nsnr))
            .collect();
        let theirs: Vec<_> = captured.iter().filter(|c| c.0.is_some()).cloned().collect();
        assert_eq!(ours, theirs, "{sample}: {answers:?}");
        // Acknowledgements: SCCCN and ICCN are acknowledged with a ZLB (the captured server
        // also sent a redundant one after ICRP).
        let acks: Vec<_> = answers
            .iter()
            .filter(|a| a.1.is_none())
            .map(|(after, _, _, nsnr)| (after.as_str(), *nsnr))
            .collect();
        assert_eq!(acks, vec![("SCCCN", (1, 2)), ("ICCN", (2, 4))], "{sample}");
        let ev = events(&mut ep);
        assert!(matches!(ev[0], Event::TunnelUp { .. }), "{sample}");
        let Event::SessionUp(up) = &ev[1] else {
            panic!("{sample}: {ev:?}")
        };
        assert_eq!(up.session.0, lns_session);
    }
}

/// The real servers' answers fed to our LAC, re-addressed to our IDs.
#[test]
fn captured_server_messages_drive_our_lac() {
    let t0 = t0();
    for sample in testdata::SAMPLES {
        let mut lac = Endpoint::new(Arc::new(Config::default()), ChaCha8Rng::seed_from_u64(3));
        let (tunnel, session) = lac.connect(t0, lns_addr()).unwrap();
        let mut sent_types = Vec::new();
        let mut record = |lac: &mut Endpoint<ChaCha8Rng>, at: Instant| {
            for s in drain(lac, at) {
                sent_types.push(s.message_type());
            }
        };
        record(&mut lac, t0);
        for m in testdata::control(sample)
            .iter()
            .filter(|m| m.sender == Sender::Server)
        {
            let mut bytes = m.bytes.clone();
            bytes[4..6].copy_from_slice(&tunnel.0.to_be_bytes());
            if bytes[6..8] != [0, 0] {
                bytes[6..8].copy_from_slice(&session.0.to_be_bytes());
            }
            lac.handle_datagram(t0, lns_addr(), &mut bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", m.origin));
            record(&mut lac, t0);
        }
        assert_eq!(
            sent_types,
            vec![
                Some(MessageType::SCCRQ),
                Some(MessageType::SCCCN),
                Some(MessageType::ICRQ),
                Some(MessageType::ICCN),
            ],
            "{sample}"
        );
        let ev = events(&mut lac);
        assert!(matches!(ev[0], Event::TunnelUp { .. }));
        assert!(matches!(&ev[1], Event::SessionUp(up) if up.session == session));
    }
}

/// 2,000 tunnels, each opened 1–4 ms after the previous one (seeded): the endpoint's timer
/// path visits only the tunnel whose HELLO is due, and each HELLO goes out exactly a hello
/// interval after that tunnel last heard its peer.
#[test]
fn timers_of_2000_tunnels_visit_only_the_tunnels_due() {
    let mut now = t0();
    let mut config = Config::default();
    config.limits.max_tunnels = 4096;
    let hello = config.hello_interval;
    let mut ep = lns(config);
    let mut jitter = ChaCha8Rng::seed_from_u64(3);
    let mut heard = BTreeMap::new();
    let mut buf = [0u8; 2048];
    for i in 0..2000u32 {
        let peer = SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i), 1701));
        let mut lac = Endpoint::new(Arc::new(Config::default()), ChaCha8Rng::seed_from_u64(9));
        lac.connect(now, lns_addr()).unwrap();
        // Until quiet: the tunnel and its call come up.
        loop {
            let mut moved = false;
            while let Some(t) = lac.poll_transmit(now, &mut buf) {
                moved = true;
                let _ = ep.handle_datagram(now, peer, &mut buf[..t.len]);
                heard.insert(peer, now);
            }
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                moved = true;
                assert_eq!(t.peer, peer);
                let _ = lac.handle_datagram(now, lns_addr(), &mut buf[..t.len]);
            }
            if !moved {
                break;
            }
        }
        while ep.poll_event().is_some() {}
        now += Duration::from_micros(1000 + u64::from(jitter.try_next_u32().unwrap() % 3000));
        // Owed acknowledgements (ZLBs) of earlier tunnels go out as their timers come.
        while let Some(at) = ep.poll_timeout().filter(|at| *at <= now) {
            ep.handle_timeout(at);
            while ep.poll_transmit(at, &mut buf).is_some() {}
        }
    }
    assert_eq!(ep.tunnel_count(), 2000);
    // The last tunnels' owed acknowledgements.
    let settled = now + Duration::from_secs(1);
    while let Some(at) = ep.poll_timeout().filter(|at| *at <= settled) {
        ep.handle_timeout(at);
        while ep.poll_transmit(at, &mut buf).is_some() {}
    }
    // Each of the next HELLOs: exactly one tunnel is due and visited, and it sends HELLO.
    for _ in 0..50 {
        let at = ep.poll_timeout().unwrap();
        let due = ep
            .tunnels
            .values()
            .filter(|t| t.poll_timeout().is_some_and(|t| t <= at))
            .count();
        assert_eq!(due, 1);
        let before = ep.timer_visits;
        ep.handle_timeout(at);
        assert_eq!(
            ep.timer_visits - before,
            1,
            "only the due tunnel is visited"
        );
        let t = ep.poll_transmit(at, &mut buf).expect("HELLO");
        assert_eq!(at, heard[&t.peer] + hello, "HELLO on time");
        assert!(ep.poll_transmit(at, &mut buf).is_none());
    }
}
