//! Runs IKEv1 Main Mode and Quick Mode against a server over a real UDP socket and exits 0 once
//! ESP SAs are negotiated (used by the namespace tests; prints one line per stage).
//!
//! `ike_probe LOCAL_IP SERVER_IP PSK [TIMEOUT_SECONDS]`
#![allow(clippy::print_stdout, reason = "a test tool reports its stages")]

use ike::endpoint::{Config, Endpoint, Event};
use ike::ikev1::main_mode::Path;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (local, server, psk, timeout) = match &args[..] {
        [_, l, s, p] => (l, s, p, 30),
        [_, l, s, p, t] => (l, s, p, t.parse().unwrap_or(30)),
        _ => {
            println!("usage: ike_probe LOCAL_IP SERVER_IP PSK [TIMEOUT_SECONDS]");
            return ExitCode::from(2);
        }
    };
    let (Ok(local), Ok(server)) = (
        format!("{local}:500").parse::<SocketAddr>(),
        format!("{server}:500").parse::<SocketAddr>(),
    ) else {
        return ExitCode::from(2);
    };
    let Ok(socket) = UdpSocket::bind(local) else {
        println!("cannot bind {local}");
        return ExitCode::FAILURE;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    let start = Instant::now();
    let mut endpoint = Endpoint::new(
        Config::new(psk.as_bytes()),
        ChaCha20Rng::seed_from_u64(u64::from(std::process::id())),
    );
    let path = Path {
        local,
        remote: server,
    };
    if endpoint.connect(start, path).is_err() {
        return ExitCode::FAILURE;
    }
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(timeout) {
        while let Some(t) = endpoint.poll_transmit(&mut buf) {
            let _ = socket.send_to(&buf[..t.len], t.remote);
        }
        while let Some(event) = endpoint.poll_event() {
            match event {
                Event::Phase1Up { peer_id, .. } => println!("phase 1 up with {peer_id:?}"),
                Event::ChildSaUp { child, .. } => {
                    println!(
                        "ESP up: in {:#x} out {:#x} {:?} {:?}",
                        child.inbound_spi, child.outbound_spi, child.transform, child.encapsulation
                    );
                    return ExitCode::SUCCESS;
                }
                Event::Refused { refusal, .. } => println!("refused: {refusal}"),
                _ => {}
            }
        }
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = endpoint.handle_datagram(
                Instant::now(),
                Path {
                    local,
                    remote: from,
                },
                &buf[..n],
            );
        }
        endpoint.handle_timeout(Instant::now());
    }
    println!("timed out");
    ExitCode::FAILURE
}
