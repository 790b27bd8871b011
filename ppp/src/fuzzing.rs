//! Bodies of the fuzz targets (STYLE.md §10.6), shared by `ppp/fuzz` and the corpus replay test.

use crate::auth::{Method, Password, chap, pap};
use crate::session::{ClientConfig, Discard, LinkConfig, ServerConfig, Session};
use crate::wire::{Frame, Options, Packet, Protocol, write_packet};
use rand_core::{Infallible, TryCryptoRng, TryRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `ppp_frame`: every parser over one frame. What parses as a control packet is written back
/// and must read back the same.
pub fn frame(data: &[u8]) {
    let Ok(frame) = Frame::parse(data) else {
        return;
    };
    let Ok(packet) = Packet::parse(frame.information) else {
        return;
    };
    let mut buf = [0u8; 70_000];
    let len = write_packet(
        &mut buf,
        frame.protocol,
        packet.code,
        packet.identifier,
        |w| w.put_slice(packet.data),
    );
    if let Ok(len) = len {
        let again = Frame::parse(&buf[..len])
            .ok()
            .and_then(|f| Packet::parse(f.information).ok());
        assert_eq!(again, Some(packet), "a parsed packet writes back unchanged");
    }
    for option in Options::new(packet.data) {
        let Ok(option) = option else { break };
        let _ = Method::from_option_data(option.data);
    }
    let _ = pap::Request::parse(packet.data);
    let _ = pap::parse_message(packet.data);
    if let Ok(v) = chap::ValueAndName::parse(packet.data) {
        let _ = chap::MsChapV2Response::parse(v.value);
    }
    let _ = chap::mschapv2_failure_code(packet.data);
    let _ = chap::mschapv2_success(packet.data);
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

/// `ppp_link`: arbitrary frames and timer ticks fed to a server and a client session.
///
/// Input layout: repeated `[op, len_hi, len_lo, frame...]`; `op` bit 0 picks the session, bit 1
/// advances time by `op >> 2` seconds first. Asserts the `Discard` contract: a dropped frame
/// produces no output.
pub fn link(data: &[u8]) {
    let t0 = epoch();
    let server_config = Arc::new(ServerConfig {
        link: LinkConfig {
            ipv6: true,
            ..LinkConfig::default()
        },
        rechallenge: Some(Duration::from_secs(5)),
        ..ServerConfig::default()
    });
    let client_config = Arc::new(ClientConfig::new("hb@hb", Password::new("admin@123")));
    let mut rngs = [Counter(1), Counter(2)];
    let mut sessions = [
        Session::server(server_config, &mut rngs[0], t0),
        Session::client(client_config, &mut rngs[1], t0),
    ];
    let mut now = t0;
    let mut rest = data;
    let mut out = [0u8; 2048];
    while let [op, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        let session = &mut sessions[usize::from(op & 1)];
        let rng = &mut rngs[usize::from(op & 1)];
        if op & 2 != 0 {
            now += Duration::from_secs(u64::from(op >> 2));
            session.handle_timeout(now, rng);
        }
        while session.poll_transmit(&mut out).is_some() {}
        let result = session.handle_frame(now, rng, frame);
        if let Err(Discard::Dead | Discard::Malformed(_) | Discard::TooLong(_)) = result {
            let produced = session.poll_transmit(&mut out).is_some();
            assert!(!produced, "a discarded frame produced output");
        }
        while session.poll_transmit(&mut out).is_some() {}
        while let Some(event) = session.poll_event() {
            match event {
                crate::Event::AuthRequest(request) => {
                    let verdict = request.verify(&crate::auth::Credential::Password(
                        Password::new("admin@123"),
                    ));
                    session.auth_verdict(now, rng, verdict);
                }
                crate::Event::AddressRequest { .. } => session.assign_address(
                    now,
                    crate::ipcp::Assignment {
                        local: [172, 16, 1, 1].into(),
                        peer: [172, 16, 1, 51].into(),
                        dns: [Some([192, 168, 1, 1].into()), None],
                        nbns: [None; 2],
                    },
                ),
                _ => {}
            }
        }
        let mut ip = [0u8; 64];
        let _ = session.encapsulate(Protocol::IPV4, &mut ip, 4..44);
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "fuzzing epoch; every later instant derives from it"
)]
fn epoch() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    codec::corpus_replay!();

    #[test]
    fn committed_corpus_replays() {
        replay("ppp_frame", super::frame);
        replay("ppp_link", super::link);
    }
}
