//! Bodies of the fuzz targets (STYLE.md §10.6), shared by `l2tp/fuzz` and the corpus replay
//! test. Compiled only for tests and under `--cfg fuzzing`.

use crate::config::{Config, Limits, Secret};
use crate::endpoint::{Endpoint, Received};
use crate::wire::message::{CdnResult, StopCcnResult};
use crate::wire::{Avps, ControlMessage, Packet, hidden};
use crate::{SessionId, TunnelId, reliable};
use rand_core::{TryCryptoRng, TryRng};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The secret used to exercise the hidden-AVP path.
const FUZZ_SECRET: &[u8] = b"fuzz-secret";

/// `l2tp_control`: the header view, the AVP iterator, hidden-AVP revealing and the typed
/// message parser over one datagram. What parses as a message is written back and must read
/// back the same.
pub fn control_message(data: &[u8]) {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.tunnel_id(),
        packet.session_id(),
        packet.sequence(),
        packet.priority(),
        packet.is_zlb(),
    );
    let body = packet.payload();
    assert!(packet.header_len() + body.len() <= data.len());
    if !packet.is_control() {
        return;
    }
    round_trip(body);
    let _ = ControlMessage::peek_type(body);

    let mut revealed = body.to_vec();
    if let Ok(len) = hidden::reveal_body(&mut revealed, FUZZ_SECRET) {
        assert!(len <= body.len(), "revealing never grows a body");
        if let Some(revealed) = revealed.get(..len) {
            round_trip(revealed);
        }
    }
}

fn round_trip(body: &[u8]) {
    let Ok(message) = ControlMessage::parse(Avps::new(body)) else {
        return;
    };
    // What we accept we can write back (never longer than what we read), and it reads back
    // the same.
    let mut out = vec![0u8; body.len()];
    let mut w = codec::Writer::new(&mut out);
    message
        .emit(&mut w)
        .expect("invariant: a parsed message re-emits within its own length");
    assert_eq!(
        ControlMessage::parse(Avps::new(w.written())),
        Ok(message),
        "re-emitted message parses differently"
    );
}

/// A deterministic generator for fuzzing (never used outside tests and fuzzing).
struct Counter(u64);

impl TryRng for Counter {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::try_from(self.try_next_u64()? >> 32).unwrap_or(0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for Counter {}

#[expect(
    clippy::disallowed_methods,
    reason = "fuzzing epoch; every later instant derives from it"
)]
fn epoch() -> Instant {
    Instant::now()
}

/// The four transport addresses of `l2tp_lns`; the first two share an IP address.
const PEERS: [([u8; 4], u16); 4] = [
    ([10, 0, 0, 1], 1701),
    ([10, 0, 0, 1], 1702),
    ([10, 0, 0, 2], 1701),
    ([10, 0, 0, 3], 40000),
];

/// In a fuzzed datagram's header, this tunnel or session ID is replaced by the last one our
/// endpoint assigned to (or was assigned by) that peer, so inputs can reach established
/// tunnels and calls whatever IDs the endpoint drew.
pub const LEARNT_ID: u16 = 0xffff;

fn peer(index: u8) -> SocketAddr {
    let (ip, port) = PEERS[usize::from(index & 3)];
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

/// Limits small enough for the fuzzer to hit every one of them.
fn lns_config(secret: bool) -> Config {
    Config {
        secret: secret.then(|| Secret::new(FUZZ_SECRET)),
        reliable: reliable::Config {
            max_queued: 4,
            receive_window: 4,
            ..reliable::Config::default()
        },
        limits: Limits {
            max_tunnels: 6,
            max_tunnels_per_address: 3,
            max_sessions_per_tunnel: 3,
            max_events: 16,
            max_stateless_replies: 4,
        },
        ..Config::default()
    }
}

/// `l2tp_lns`: an endpoint fed datagrams from four peers, timer ticks and local operations.
///
/// Input layout: byte 0 bit 0 configures a tunnel secret; then repeated operations, each an
/// `op` byte whose bits 0–1 pick the peer and bits 2–3 the kind: 0 = datagram (`len_hi,
/// len_lo`, bytes; header IDs equal to [`LEARNT_ID`] are re-addressed), 1 = advance time by
/// the next byte × 250 ms and run the timers, 2 = close a call or tunnel of that peer, 3 =
/// connect to that peer as LAC.
///
/// Asserts no panic, the limits, and the `Discard` contract: after `Err`, the endpoint's state
/// is unchanged and it has nothing new to send.
pub fn lns(data: &[u8]) {
    let _ = lns_run(data);
}

/// What an `l2tp_lns` input reached, so seed tests can check they go deep.
#[derive(Debug, Default)]
struct Reached {
    sessions_up: usize,
    data_messages: usize,
}

fn lns_run(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let Some((&flags, mut rest)) = data.split_first() else {
        return reached;
    };
    let config = lns_config(flags & 1 == 1);
    let limits = config.limits;
    let mut ep = Endpoint::new(Arc::new(config), Counter(u64::from(flags)));
    let mut now = epoch();
    let mut learnt = [(0u16, 0u16); 4];
    let mut buf = vec![0u8; crate::MAX_CONTROL_LEN];
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let who = op & 3;
        match (op >> 2) & 3 {
            0 => {
                let (len, tail) = match rest {
                    [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
                    _ => (rest.len(), &[][..]),
                };
                let (datagram, tail) = tail.split_at(len.min(tail.len()));
                rest = tail;
                let mut datagram = datagram.to_vec();
                readdress(&mut datagram, learnt[usize::from(who)]);
                let before = ep.digest();
                match ep.handle_datagram(now, peer(who), &mut datagram) {
                    Err(_) => {
                        assert_eq!(ep.digest(), before, "a discard changed the state");
                        assert!(
                            ep.poll_transmit(now, &mut buf).is_none(),
                            "a discard produced output"
                        );
                    }
                    Ok(Received::Data(data)) => {
                        reached.data_messages += 1;
                        assert!(data.frame.end <= datagram.len());
                        assert!(ep.data_path(data.tunnel, data.session).is_some());
                    }
                    Ok(Received::Control) => {}
                }
            }
            1 => {
                let (&ticks, tail) = rest.split_first().unwrap_or((&1, &[]));
                rest = tail;
                now += Duration::from_millis(250) * u32::from(ticks);
                ep.handle_timeout(now);
            }
            2 => {
                let (tunnel, session) = learnt[usize::from(who)];
                if op & 0x10 == 0 {
                    let _ = ep.close_session(
                        now,
                        TunnelId(tunnel),
                        SessionId(session),
                        CdnResult::ADMINISTRATIVE,
                        None,
                    );
                } else {
                    let _ = ep.close_tunnel(
                        now,
                        TunnelId(tunnel),
                        StopCcnResult::GENERAL_REQUEST,
                        None,
                    );
                }
            }
            _ => {
                let _ = ep.connect(now, peer(who));
            }
        }
        while let Some(t) = ep.poll_transmit(now, &mut buf) {
            let index = PEERS
                .iter()
                .position(|(ip, port)| peer_matches(t.peer, *ip, *port))
                .expect("invariant: we only talk to the four peers");
            learn(&mut learnt[index], buf.get(..t.len).unwrap_or_default());
        }
        let mut events = 0;
        while let Some(event) = ep.poll_event() {
            events += 1;
            if matches!(event, crate::Event::SessionUp(_)) {
                reached.sessions_up += 1;
            }
        }
        assert!(events <= limits.max_events);
        assert!(ep.tunnel_count() <= limits.max_tunnels);
        assert!(ep.pending_replies() <= limits.max_stateless_replies);
        for (_, (_, _, _, sessions)) in ep.digest() {
            assert!(sessions <= limits.max_sessions_per_tunnel);
        }
    }
    reached
}

fn peer_matches(addr: SocketAddr, ip: [u8; 4], port: u16) -> bool {
    addr == SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

/// Replaces [`LEARNT_ID`] header IDs by the learnt ones.
fn readdress(datagram: &mut [u8], (tunnel, session): (u16, u16)) {
    let Some(&first) = datagram.first() else {
        return;
    };
    let at = if first & 0x40 != 0 { 4 } else { 2 };
    for (offset, id) in [(at, tunnel), (at + 2, session)] {
        if let Some(field) = datagram.get_mut(offset..offset + 2)
            && field == LEARNT_ID.to_be_bytes()
        {
            field.copy_from_slice(&id.to_be_bytes());
        }
    }
}

/// Learns the IDs a peer must use from what we sent it: our tunnel ID from SCCRP (LNS) or
/// SCCRQ (LAC), our session ID from ICRP (LNS) or ICRQ (LAC).
fn learn(learnt: &mut (u16, u16), sent: &[u8]) {
    let Ok(packet) = Packet::new_checked(sent) else {
        return;
    };
    match ControlMessage::parse(Avps::new(packet.payload())) {
        Ok(ControlMessage::Sccrp(m)) => learnt.0 = m.assigned_tunnel_id.0,
        Ok(ControlMessage::Sccrq(m)) => learnt.0 = m.assigned_tunnel_id.0,
        Ok(ControlMessage::Icrp(m)) => learnt.1 = m.assigned_session_id.0,
        Ok(ControlMessage::Icrq(m)) => learnt.1 = m.assigned_session_id.0,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    codec::corpus_replay!();

    #[test]
    fn committed_corpus_replays() {
        replay("l2tp_control", super::control_message);
        assert!(replay("l2tp_lns", super::lns) >= 4);
    }

    /// A datagram operation for peer `who`.
    fn datagram(out: &mut Vec<u8>, who: u8, bytes: &[u8]) {
        out.push(who);
        out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
        out.extend_from_slice(bytes);
    }

    /// Seeds of `l2tp_lns`: each captured client's messages re-addressed with
    /// [`super::LEARNT_ID`], then a tick, a local close and a tick past the hold period; and a
    /// LAC that connects and gets the captured server's answers.
    fn seeds() -> Vec<(String, Vec<u8>)> {
        use crate::testdata::{self, Sender};
        let mut seeds = Vec::new();
        for sample in testdata::SAMPLES {
            let mut lns = vec![0u8];
            let mut lac = vec![0u8, 0x0c | 2];
            for m in testdata::control(sample) {
                let mut bytes = m.bytes.clone();
                if bytes[4..6] != [0, 0] {
                    bytes[4..6].copy_from_slice(&super::LEARNT_ID.to_be_bytes());
                }
                if bytes[6..8] != [0, 0] {
                    bytes[6..8].copy_from_slice(&super::LEARNT_ID.to_be_bytes());
                }
                match m.sender {
                    Sender::Client => datagram(&mut lns, 1, &bytes),
                    Sender::Server => {
                        bytes[4..6].copy_from_slice(&super::LEARNT_ID.to_be_bytes());
                        datagram(&mut lac, 2, &bytes);
                    }
                }
            }
            let data = [0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03, 0xc0, 0x21];
            datagram(&mut lns, 1, &data);
            lns.extend_from_slice(&[
                0x04 | 1,
                1,
                0x08 | 1,
                0x04 | 1,
                200,
                0x18 | 1,
                0x04 | 1,
                255,
            ]);
            seeds.push((format!("{sample}-lns"), lns));
            seeds.push((format!("{sample}-lac"), lac));
        }
        let mut secret = vec![1u8];
        let sccrq = testdata::control("strongswan-server-windows10")[0]
            .bytes
            .clone();
        for who in 0..4 {
            datagram(&mut secret, who, &sccrq);
        }
        secret.extend_from_slice(&[0x04, 255, 0x04, 255]);
        seeds.push(("four-peers-secret-timeouts".to_owned(), secret));
        seeds
    }

    /// Rewrites the committed seeds: `L2SEC_WRITE_CORPUS=1 cargo test -p l2sec-l2tp
    /// write_l2tp_lns_seeds`.
    #[test]
    fn write_l2tp_lns_seeds() {
        let seeds = seeds();
        for (name, bytes) in &seeds {
            let reached = super::lns_run(bytes);
            if !name.starts_with("four") {
                assert_eq!(reached.sessions_up, 1, "{name}");
            }
            if name.ends_with("-lns") {
                assert_eq!(reached.data_messages, 1, "{name}");
            }
        }
        if std::env::var_os("L2SEC_WRITE_CORPUS").is_none() {
            return;
        }
        let dir = corpus("l2tp_lns");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    #[test]
    fn every_captured_message_goes_through_the_fuzz_body() {
        for m in crate::testdata::all_control() {
            super::control_message(&m.bytes);
        }
    }
}
