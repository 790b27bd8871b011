//! Bodies of the fuzz targets (STYLE.md §10.6), shared by `radius/fuzz` and the corpus replay
//! test. Compiled only for tests and under `--cfg fuzzing`.

use crate::client::{Client, Config, ServerConfig};
use crate::crypto::{Password, Secret, decrypt_salted, reveal_user_password};
use crate::dae::{DaeRequest, write_ack, write_nak};
use crate::request::{AccessRequest, AccountingRequest, Counters, Credentials};
use crate::verify::{MessageAuthenticatorPolicy, verify_request, verify_response};
use crate::wire::{
    AcctStatusType, Attr, Attributes, Authenticator, Code, ErrorCause, Identifier, MsAttr, Packet,
    PacketWriter, VendorAttributes, VendorId,
};
use rand_core::{TryCryptoRng, TryRng};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The secret every fuzzed packet is checked with.
pub const FUZZ_SECRET: &[u8] = b"fuzz-secret";

/// `radius_packet`: the packet view, the attribute chain, typed attributes, Microsoft
/// sub-attributes, the decryptions and the verifications over one datagram. Every typed
/// attribute is written back and must give the same bytes.
pub fn packet(data: &[u8]) {
    let secret = Secret::new(FUZZ_SECRET);
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let _ = (packet.code(), packet.identifier(), packet.length());
    assert!(packet.as_bytes().len() <= data.len());
    let authenticator = packet.authenticator();
    for policy in [
        MessageAuthenticatorPolicy::Required,
        MessageAuthenticatorPolicy::IfPresent,
    ] {
        let _ = verify_request(&packet, &secret, policy);
        let _ = verify_response(&packet, &Authenticator([0x5a; 16]), &secret, policy);
    }
    let mut out = [0u8; 4096];
    let mut w = codec::Writer::new(&mut out);
    for attribute in packet.attributes() {
        let attribute = attribute.expect("invariant: new_checked walked the chain");
        let Ok(typed) = Attr::parse(attribute) else {
            w.put_u8(attribute.kind.0).expect("fits");
            w.put_u8(u8::try_from(attribute.value.len() + 2).expect("fits"))
                .expect("fits");
            w.put_slice(attribute.value).expect("fits");
            continue;
        };
        typed
            .emit(&mut w)
            .expect("invariant: a parsed attribute re-emits within its own length");
        match typed {
            Attr::UserPassword(hidden) => {
                let _ = reveal_user_password(hidden, &secret, &authenticator);
            }
            Attr::VendorSpecific { vendor, data } if vendor == VendorId::MICROSOFT => {
                microsoft(data, &secret, &authenticator);
            }
            _ => {}
        }
    }
    assert_eq!(
        w.written(),
        packet.attribute_bytes(),
        "re-emitted attributes differ"
    );
    if let Ok(request) = DaeRequest::parse(data, &secret, MessageAuthenticatorPolicy::IfPresent) {
        let mut buf = [0u8; 4096];
        let _ = write_ack(&mut buf, &request, &secret);
        let _ = write_nak(
            &mut buf,
            &request,
            &secret,
            ErrorCause::SESSION_CONTEXT_NOT_FOUND,
        );
    }
}

/// Microsoft sub-attributes: what parses as one whole sub-attribute re-emits the same way.
fn microsoft(data: &[u8], secret: &Secret, authenticator: &Authenticator) {
    for sub in VendorAttributes::new(data) {
        let Ok(sub) = sub else { return };
        let Ok(typed) = MsAttr::parse(sub) else {
            continue;
        };
        if let MsAttr::MppeSendKey(k) | MsAttr::MppeRecvKey(k) = typed {
            let _ = decrypt_salted(&k, secret, authenticator);
        }
        let mut out = [0u8; 300];
        let mut w = codec::Writer::new(&mut out);
        if typed.emit(&mut w).is_ok() {
            // The Vendor-Specific header (6 octets), then the sub-attribute as received.
            let written = w.written();
            assert_eq!(
                written.get(8..),
                Some(sub.value),
                "MS sub-attribute differs"
            );
            assert_eq!(written.get(6), Some(&sub.kind));
        }
    }
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

/// The addresses of `radius_client`: two servers' auth and acct ports, and a stranger.
const SOURCES: [([u8; 4], u16); 5] = [
    ([10, 0, 0, 1], 1812),
    ([10, 0, 0, 1], 1813),
    ([10, 0, 0, 2], 1812),
    ([10, 0, 0, 2], 1813),
    ([10, 0, 0, 9], 1812),
];

fn source(index: u8) -> SocketAddr {
    let (ip, port) = SOURCES[usize::from(index) % SOURCES.len()];
    SocketAddr::from((ip, port))
}

fn server_secret(server: usize) -> Secret {
    Secret::new(if server == 0 {
        FUZZ_SECRET
    } else {
        b"fuzz-secret-2"
    })
}

/// Limits small enough for the fuzzer to reach them.
fn client_config() -> Config {
    Config {
        servers: (0..2)
            .map(|i| ServerConfig {
                name: format!("s{i}"),
                secret: server_secret(i),
                auth: Some(source(u8::try_from(2 * i).unwrap_or(0))),
                acct: Some(source(u8::try_from(2 * i + 1).unwrap_or(0))),
                message_authenticator: if i == 0 {
                    MessageAuthenticatorPolicy::Required
                } else {
                    MessageAuthenticatorPolicy::IfPresent
                },
            })
            .collect(),
        timeout: Duration::from_secs(1),
        retries: 1,
        dead_time: Duration::from_secs(5),
        max_requests: 300,
        ..Config::default()
    }
}

/// `radius_client`: a [`Client`] with two servers fed requests, datagrams and timer ticks.
///
/// Input: repeated operations, each an `op` byte whose bits 0–1 pick the kind:
/// 0 = submit (bits 2–3: PAP, CHAP-MD5, MS-CHAP-V2, accounting; bits 4–7 repeat it
/// 1–16 times), 1 = raw datagram (`source, len`, bytes), 2 = a signed answer to the n-th
/// datagram sent so far (`n, code, len`, attribute bytes; signed with that server's secret
/// and Message-Authenticator first, so it reaches the reply parser), 3 = advance time by the
/// next byte × 100 ms and run the timers.
///
/// Asserts no panic, the request bound, and the `Discard` contract: after `Err`, nothing new
/// is queued to send, no event appears and the deadline is unchanged.
pub fn client(data: &[u8]) {
    let Ok(mut client) = Client::new(client_config(), 1, Counter(7)) else {
        return;
    };
    let t0 = epoch();
    let mut now = t0;
    let mut sent: Vec<(SocketAddr, usize, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut r = codec::Reader::new(data);
    let mut session_ids = 0u32;
    while let Ok(op) = r.u8() {
        match op & 3 {
            0 => {
                for _ in 0..=(op >> 4) {
                    let _ = submit(&mut client, now, (op >> 2) & 3, &mut session_ids);
                }
            }
            1 => {
                let (Ok(from), Ok(len)) = (r.u8(), r.u16()) else {
                    return;
                };
                let Ok(bytes) = r.take(usize::from(len).min(r.remaining())) else {
                    return;
                };
                feed(&mut client, now, source(from), bytes);
            }
            2 => {
                let (Ok(n), Ok(code), Ok(len)) = (r.u8(), r.u8(), r.u8()) else {
                    return;
                };
                let Ok(body) = r.take(usize::from(len).min(r.remaining())) else {
                    return;
                };
                if sent.is_empty() {
                    continue;
                }
                let (to, server, request) = &sent[usize::from(n) % sent.len()];
                if let Some(answer) = sign(request, &server_secret(*server), Code(code), body) {
                    feed(&mut client, now, *to, &answer);
                }
            }
            _ => {
                let Ok(step) = r.u8() else { return };
                now += Duration::from_millis(100) * u32::from(step);
                client.handle_timeout(now);
            }
        }
        while let Some(t) = client.poll_transmit(&mut buf) {
            assert!(t.len <= crate::wire::MAX_LEN);
            if sent.len() < 64 {
                sent.push((t.to, t.server.0, buf[..t.len].to_vec()));
            }
        }
        while client.poll_event().is_some() {}
        assert!(client.pending() <= 300, "request bound exceeded");
        if let Some(deadline) = client.poll_timeout() {
            assert!(
                deadline <= now + Duration::from_secs(1),
                "deadline beyond the timeout"
            );
        }
    }
}

fn feed(client: &mut Client<Counter>, now: Instant, from: SocketAddr, bytes: &[u8]) {
    let before = (client.pending(), client.poll_timeout());
    if client.handle_datagram(now, from, bytes).is_err() {
        let mut buf = [0u8; 4096];
        assert_eq!(
            client.poll_transmit(&mut buf),
            None,
            "a discard queued a datagram"
        );
        assert_eq!(client.poll_event(), None, "a discard produced an event");
        assert_eq!(
            (client.pending(), client.poll_timeout()),
            before,
            "a discard changed state"
        );
    }
}

fn submit(
    client: &mut Client<Counter>,
    now: Instant,
    kind: u8,
    session_ids: &mut u32,
) -> Result<(), crate::client::SubmitError> {
    let access = |credentials| AccessRequest {
        user_name: b"fuzz".to_vec(),
        credentials,
        nas_port: Some(1),
        calling_station_id: None,
        called_station_id: None,
        acct_session_id: None,
    };
    let request = match kind {
        0 => access(Credentials::Pap(Password::new("pw"))),
        1 => access(Credentials::ChapMd5 {
            ident: 1,
            challenge: vec![2; 16],
            response: [3; 16],
        }),
        2 => access(Credentials::MsChapV2 {
            ident: 4,
            authenticator_challenge: [5; 16],
            peer_challenge: [6; 16],
            nt_response: [7; 24],
        }),
        _ => {
            *session_ids = session_ids.wrapping_add(1);
            let mut record = AccountingRequest::new(
                AcctStatusType::INTERIM_UPDATE,
                client.next_acct_session_id(),
            );
            record.counters = Some(Counters {
                input_octets: u64::from(*session_ids) << 32,
                ..Counters::default()
            });
            return client.account(now, record).map(|_| ());
        }
    };
    client.authenticate(now, request).map(|_| ())
}

/// An answer to `request` with `body` as attributes, Message-Authenticator first, signed with
/// `secret`. `None` when `body` is not an attribute chain or does not fit.
fn sign(request: &[u8], secret: &Secret, code: Code, body: &[u8]) -> Option<Vec<u8>> {
    let request = Packet::new_checked(request).ok()?;
    let mut buf = [0u8; 4096];
    let mut w = PacketWriter::new(
        &mut buf,
        code,
        Identifier(request.identifier().0),
        &Authenticator::ZERO,
    )
    .ok()?;
    w.message_authenticator().ok()?;
    for a in Attributes::new(body) {
        let a = a.ok()?;
        w.raw(a.kind, a.value).ok()?;
    }
    Some(
        w.finish_response(secret, &request.authenticator())
            .ok()?
            .to_vec(),
    )
}

#[cfg(test)]
mod tests {
    codec::corpus_replay!();

    #[test]
    fn committed_corpus_replays() {
        assert!(replay("radius_packet", super::packet) >= 8);
        assert!(replay("radius_client", super::client) >= 4);
    }

    /// The seeds, regenerated with `cargo test -p l2sec-radius --lib -- --ignored
    /// fuzzing::tests::write_seed_corpus`.
    #[test]
    #[ignore = "writes the committed seed corpus"]
    fn write_seed_corpus() {
        for (target, seeds) in [
            ("radius_packet", packet_seeds()),
            ("radius_client", client_seeds()),
        ] {
            let dir = corpus(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in seeds {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }

    fn packet_seeds() -> Vec<(&'static str, Vec<u8>)> {
        use super::*;
        use crate::wire::MsAttributeType;
        let secret = Secret::new(FUZZ_SECRET);
        let build = |code: Code, body: &dyn Fn(&mut PacketWriter<'_>)| {
            let mut buf = [0u8; 4096];
            let mut w =
                PacketWriter::new(&mut buf, code, Identifier(3), &Authenticator([0x5a; 16]))
                    .unwrap();
            w.message_authenticator().unwrap();
            body(&mut w);
            if code.is_response() {
                w.finish_response(&secret, &Authenticator([0x5a; 16]))
                    .unwrap()
                    .to_vec()
            } else {
                w.finish_request(&secret).unwrap().to_vec()
            }
        };
        let rfc_request = hex_literal::hex!(
            "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a 01 06 6e 65 6d 6f 02 12"
            "0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03"
        );
        let rfc_accept = hex_literal::hex!(
            "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2 06 06 00 00 00 01 0f 06"
            "00 00 00 00 0e 06 c0 a8 01 03"
        );
        let rfc_chap = hex_literal::hex!(
            "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e 0d 33 67 a2 01 08 66 6c 6f 70 73 79"
            "03 13 16 e9 75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04 06 c0 a8 01 10 05 06 00"
            "00 00 14 06 06 00 00 00 02 07 06 00 00 00 01"
        );
        vec![
            ("rfc2865-7.1-access-request", rfc_request.to_vec()),
            ("rfc2865-7.1-access-accept", rfc_accept.to_vec()),
            ("rfc2865-7.2-chap-request", rfc_chap.to_vec()),
            (
                "generated-pap-request",
                build(Code::ACCESS_REQUEST, &|w| {
                    w.attr(&Attr::UserName(b"hb")).unwrap();
                    w.user_password(b"admin@123", &secret).unwrap();
                }),
            ),
            (
                "generated-mschapv2-request",
                build(Code::ACCESS_REQUEST, &|w| {
                    w.ms_attr(&MsAttr::ChapChallenge(&[1; 16])).unwrap();
                    w.ms_attr(&MsAttr::Chap2Response(crate::wire::MsChap2Response {
                        ident: 1,
                        flags: 0,
                        peer_challenge: [2; 16],
                        reserved: [0; 8],
                        nt_response: [3; 24],
                    }))
                    .unwrap();
                }),
            ),
            (
                "generated-mschapv2-accept",
                build(Code::ACCESS_ACCEPT, &|w| {
                    w.ms_attr(&MsAttr::Chap2Success {
                        ident: 1,
                        message: b"S=0123456789ABCDEF0123456789ABCDEF01234567",
                    })
                    .unwrap();
                    for (kind, salt) in [
                        (MsAttributeType::MS_MPPE_SEND_KEY, [0x80, 1]),
                        (MsAttributeType::MS_MPPE_RECV_KEY, [0x80, 2]),
                    ] {
                        w.mppe_key(kind, &[9; 16], salt, &secret, &Authenticator([0x5a; 16]))
                            .unwrap();
                    }
                    w.attr(&Attr::FramedIpAddress([10, 8, 0, 1].into()))
                        .unwrap();
                    w.attr(&Attr::Class(b"class")).unwrap();
                }),
            ),
            (
                "generated-reject-ms-chap-error",
                build(Code::ACCESS_REJECT, &|w| {
                    w.ms_attr(&MsAttr::ChapError {
                        ident: 1,
                        message: b"E=691 R=0 V=3",
                    })
                    .unwrap();
                    w.attr(&Attr::ReplyMessage(b"no")).unwrap();
                }),
            ),
            (
                "generated-accounting-stop",
                build(Code::ACCOUNTING_REQUEST, &|w| {
                    w.attr(&Attr::AcctStatusType(AcctStatusType::STOP)).unwrap();
                    w.attr(&Attr::AcctSessionId(b"0000000000000001-00000001"))
                        .unwrap();
                    w.attr(&Attr::AcctInputGigawords(1)).unwrap();
                }),
            ),
            (
                "generated-disconnect-request",
                build(Code::DISCONNECT_REQUEST, &|w| {
                    w.attr(&Attr::ProxyState(b"p")).unwrap();
                    w.attr(&Attr::UserName(b"hb")).unwrap();
                }),
            ),
            (
                "generated-coa-request",
                build(Code::COA_REQUEST, &|w| {
                    w.attr(&Attr::SessionTimeout(60)).unwrap();
                    w.attr(&Attr::FilterId(b"guest")).unwrap();
                }),
            ),
        ]
    }

    fn client_seeds() -> Vec<(&'static str, Vec<u8>)> {
        // op 0: submit; op 2: signed answer (n, code, len, body); op 3: time step.
        let accept_body = [18u8, 4, b'o', b'k', 27, 6, 0, 0, 0, 60];
        let mut pap_accept = vec![0x00, 2, 0, 2, u8::try_from(accept_body.len()).unwrap()];
        pap_accept.extend_from_slice(&accept_body);
        vec![
            ("pap-accepted", pap_accept),
            ("mschapv2-rejected", vec![0x08, 2, 0, 3, 0]),
            ("accounting-done", vec![0x0c, 2, 0, 5, 0]),
            // Three requests, nobody answers: retransmissions, failover, timeouts.
            (
                "all-silent",
                vec![0x20, 3, 10, 3, 10, 3, 10, 3, 10, 3, 10, 3, 10],
            ),
            // A raw datagram from a stranger and a forged one from server 1.
            (
                "forged",
                vec![
                    0x00, 1, 4, 0, 20, 2, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
            // Many requests: 256 Identifiers in use, the rest wait.
            ("many", vec![0xf0; 20]),
        ]
    }
}
