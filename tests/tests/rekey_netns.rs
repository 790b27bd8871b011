//! Rekeying under load, end to end: the server's policy allows phase 1 for 20 s and phase 2 for
//! 8 s, shorter than the client proposes (8 h and 1 h). The server announces the phase-2
//! lifetime (RESPONDER-LIFETIME), so the client rekeys phase 2; Main Mode cannot announce one,
//! so the server rekeys phase 1 itself. A TCP stream runs across several rekeys of both,
//! arrives intact, and PPP is never renegotiated.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

use l2sec_tests::netns::available;
use l2sec_tests::scenario::{Options, Scenario, output};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_tcp_transfer_survives_rekeys_of_both_phases_and_ppp_stays_up() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::with(
        "r",
        &Options {
            auth: "mschapv2",
            ipsec: "ike_lifetime = \"20s\"\nsa_lifetime = \"8s\"",
            ..Options::default()
        },
    );
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    assert!(up, "no address\n{}", output(client));
    // 40 s of a slow TCP stream (64 KiB every 250 ms, 10 MiB in all) from the laptop to the
    // intranet server, spanning about five phase-2 and two phase-1 rekeys.
    let received = s.state.join("received");
    let sink = Command::new("ip")
        .args(["netns", "exec", &s.topo.ns("intranet")])
        .args(["sh", "-c"])
        .arg(format!(
            "nc -l -N 192.168.1.1 5001 > '{}'",
            received.display()
        ))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut source = Command::new("ip")
        .args(["netns", "exec", &s.topo.ns("mobile")])
        .args(["nc", "-N", "192.168.1.1", "5001"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = source.stdin.take().unwrap();
    let mut sent = Vec::new();
    let mut chunk = vec![0u8; 65_536];
    let start = Instant::now();
    let mut n = 0u8;
    while start.elapsed() < Duration::from_secs(40) {
        // Each chunk differs, so a replayed or misplaced segment would show.
        for (b, x) in chunk.iter_mut().zip((0u8..=250).cycle()) {
            *b = x ^ n;
        }
        stdin.write_all(&chunk).unwrap();
        sent.extend_from_slice(&chunk);
        n = n.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(stdin);
    let source_ok = source.wait().unwrap().success();
    let mut sink = sink;
    let mut sink_ok = false;
    for _ in 0..100 {
        if let Ok(Some(st)) = sink.try_wait() {
            sink_ok = st.success();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = std::fs::read(&received).unwrap_or_default();
    let client_log = output(client);
    let server_log = s.server_log();
    let count = |log: &str, what: &str| log.lines().filter(|l| l.contains(what)).count();
    let context = format!("client:\n{client_log}\nserver:\n{server_log}");
    assert!(source_ok && sink_ok, "nc failed\n{context}");
    assert_eq!(got.len(), sent.len(), "bytes received\n{context}");
    assert!(got == sent, "the stream arrived corrupted");
    // Both phases were rekeyed, several times, and PPP came up once and never went down.
    assert!(
        count(&server_log, "IPsec SA established") >= 4,
        "phase-2 rekeys\n{context}"
    );
    assert!(
        count(&server_log, "IKE SA rekeyed") >= 1,
        "phase-1 rekeys\n{context}"
    );
    assert_eq!(count(&server_log, "user connected"), 1, "{context}");
    assert_eq!(count(&server_log, "user disconnected"), 0, "{context}");
    assert_eq!(count(&server_log, "IKE SA deleted"), 0, "{context}");
}
