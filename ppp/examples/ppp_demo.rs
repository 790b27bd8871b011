//! Runs a PPP client and server session against each other in memory, as they run inside an
//! L2TP session between a laptop and the LNS, and prints every frame and the negotiated result.
//!
//! ```text
//! cargo run -p l2sec-ppp --example ppp_demo -- [--auth pap|chap|mschapv2] [--loss 0.2] [--seed N]
//! ```
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a demo prints its transcript"
)]

use l2sec_ppp::auth::{Credential, Method, Password};
use l2sec_ppp::ipcp::Assignment;
use l2sec_ppp::session::{ClientConfig, Event, Received, ServerConfig, Session};
use l2sec_ppp::wire::{Code, Frame, Options, Packet, Protocol};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "hb@hb";
const PASSWORD: &str = "admin@123";
const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
const POOL_ADDRESS: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 51);
const DNS: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

struct Args {
    method: Method,
    loss: f64,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        method: Method::Pap,
        loss: 0.0,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--auth" => {
                let v = value()?;
                args.method = Method::ALL
                    .into_iter()
                    .find(|m| m.name() == v)
                    .ok_or(format!("unknown method {v}"))?;
            }
            "--loss" => args.loss = value()?.parse().map_err(|e| format!("--loss: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "-h" | "--help" => {
                return Err(
                    "usage: ppp_demo [--auth pap|chap|mschapv2] [--loss 0..1] [--seed N]".into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn describe(frame: &[u8]) -> String {
    let Ok(f) = Frame::parse(frame) else {
        return "malformed".into();
    };
    let name = f.protocol.name().unwrap_or("?");
    if f.protocol.is_network_data() {
        return format!("{name} packet, {} bytes", f.information.len());
    }
    let Ok(p) = Packet::parse(f.information) else {
        return format!("{name} malformed");
    };
    let code = match f.protocol {
        Protocol::PAP => [
            "",
            "Authenticate-Request",
            "Authenticate-Ack",
            "Authenticate-Nak",
        ]
        .get(usize::from(p.code))
        .copied(),
        Protocol::CHAP => ["", "Challenge", "Response", "Success", "Failure"]
            .get(usize::from(p.code))
            .copied(),
        _ => Code(p.code).name(),
    };
    let mut text = format!("{name} {} id={}", code.unwrap_or("?"), p.identifier);
    if (1..=4).contains(&p.code) && !matches!(f.protocol, Protocol::PAP | Protocol::CHAP) {
        let options: Vec<String> = Options::new(p.data)
            .map_while(Result::ok)
            .map(|o| {
                format!(
                    "{}:{}",
                    o.kind,
                    o.data
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                )
            })
            .collect();
        text.push_str(&format!(" [{}]", options.join(" ")));
    }
    text
}

#[expect(
    clippy::disallowed_methods,
    reason = "the demo's simulated clock starts here"
)]
fn epoch() -> Instant {
    Instant::now()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let t0 = epoch();
    let server_config = ServerConfig {
        methods: vec![args.method],
        ..ServerConfig::default()
    };
    let client_config = ClientConfig::new(USER, Password::new(PASSWORD));
    let mut server_rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut client_rng = ChaCha8Rng::seed_from_u64(args.seed + 1);
    let mut server = Session::server(Arc::new(server_config), &mut server_rng, t0);
    let mut client = Session::client(Arc::new(client_config), &mut client_rng, t0);
    let mut link_rng = ChaCha8Rng::seed_from_u64(args.seed + 2);
    let store = Credential::Password(Password::new(PASSWORD));
    println!(
        "PPP over L2TP, in memory: client {USER} ↔ LNS, auth {}, loss {}",
        args.method.name(),
        args.loss
    );
    let mut now = t0;
    let mut buf = [0u8; 2048];
    // Frames in flight: (arrival, to_server, bytes). 20 ms each way.
    let mut in_flight: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
    let latency = Duration::from_millis(20);
    let deadline = t0 + Duration::from_secs(120);
    while now < deadline && !(client.ipv4().is_some() && server.ipv4().is_some()) {
        while let Some(event) = server.poll_event() {
            match event {
                Event::AuthRequest(request) => {
                    let verdict = if request.user == USER {
                        request.verify(&store)
                    } else {
                        l2sec_ppp::auth::Verdict::Reject
                    };
                    println!(
                        "{:>6} ms  LNS: user {} presents {:?}: {}",
                        (now - t0).as_millis(),
                        request.user,
                        request.proof.method(),
                        if matches!(verdict, l2sec_ppp::auth::Verdict::Accept(_)) {
                            "accepted"
                        } else {
                            "rejected"
                        }
                    );
                    server.auth_verdict(now, &mut server_rng, verdict);
                }
                Event::AddressRequest { user } => {
                    println!(
                        "{:>6} ms  LNS: pool assigns {POOL_ADDRESS} to {user}",
                        (now - t0).as_millis()
                    );
                    server.assign_address(
                        now,
                        Assignment {
                            local: LOCAL,
                            peer: POOL_ADDRESS,
                            dns: [Some(DNS), None],
                            nbns: [None; 2],
                        },
                    );
                }
                Event::Down(reason) => {
                    println!("LNS: link down: {reason:?}");
                    return ExitCode::FAILURE;
                }
                _ => {}
            }
        }
        while let Some(event) = client.poll_event() {
            if let Event::Down(reason) = event {
                println!("client: link down: {reason:?}");
                return ExitCode::FAILURE;
            }
        }
        for (to_server, session) in [(false, &mut server), (true, &mut client)] {
            while let Some(n) = session.poll_transmit(&mut buf) {
                let from = if to_server {
                    "client → LNS   "
                } else {
                    "LNS    → client"
                };
                let lost = f64::from(link_rng.next_u32()) / 4_294_967_296.0 < args.loss;
                println!(
                    "{:>6} ms  {from}  {}{}",
                    (now - t0).as_millis(),
                    describe(&buf[..n]),
                    if lost { "  (lost)" } else { "" }
                );
                if !lost {
                    in_flight.push((now + latency, to_server, buf[..n].to_vec()));
                }
            }
        }
        let next = [
            in_flight.iter().map(|f| f.0).min(),
            server.poll_timeout(),
            client.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        now = now.max(next);
        in_flight.sort_by_key(|f| f.0);
        while in_flight.first().is_some_and(|f| f.0 <= now) {
            let (_, to_server, frame) = in_flight.remove(0);
            let (session, rng) = if to_server {
                (&mut server, &mut server_rng)
            } else {
                (&mut client, &mut client_rng)
            };
            let _ = session.handle_frame(now, rng, &frame);
        }
        server.handle_timeout(now, &mut server_rng);
        client.handle_timeout(now, &mut client_rng);
    }
    let (Some(c), Some(s)) = (client.ipv4(), server.ipv4()) else {
        println!("did not converge within 120 s of simulated time");
        return ExitCode::FAILURE;
    };
    println!();
    println!(
        "network up after {} ms of simulated time",
        (now - t0).as_millis()
    );
    println!(
        "  client: address {} peer {} DNS {:?}",
        c.local,
        c.peer,
        c.dns.iter().flatten().collect::<Vec<_>>()
    );
    println!(
        "  LNS:    address {} peer {}  (MRU client {} / LNS {})",
        s.local,
        s.peer,
        server.peer_mru(),
        client.peer_mru()
    );
    // One ICMP echo from the pool address to the intranet server, wrapped for L2TP in place.
    let mut packet = [0u8; 4 + 28];
    packet[4..].copy_from_slice(&[
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 172, 16, 1, 51, 192, 168, 1, 1, 8, 0, 0xf7, 0xfe,
        0, 1, 0, 0,
    ]);
    let Ok(frame) = client.encapsulate(Protocol::IPV4, &mut packet, 4..32) else {
        return ExitCode::FAILURE;
    };
    match server.handle_frame(now, &mut server_rng, &packet[frame.clone()]) {
        Ok(Received::Ipv4(ip)) => println!(
            "  ping {POOL_ADDRESS} → {DNS}: {}-byte frame, LNS delivers {} IPv4 bytes to the IP layer",
            frame.len(),
            ip.len()
        ),
        other => {
            println!("  data path failed: {other:?}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
