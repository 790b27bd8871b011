//! Prometheus metrics of the real `l2sec-server` in the reference topology: a connection and
//! a ping show up as counters, a wrong password as `auth_failed`, only `/metrics` is served,
//! and nothing listens unless `[metrics] listen` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

use l2sec_tests::netns::available;
use l2sec_tests::scenario::{Options, Scenario, output};
use std::time::Duration;

const METRICS: &str = "2.2.2.2:9108";

/// `GET path` from inside the LNS namespace (OpenBSD netcat, as the other netns tests use);
/// the whole answer, head and body, or `None` when nothing answered.
fn get(s: &Scenario, path: &str) -> Option<String> {
    let (host, port) = METRICS.split_once(':').unwrap();
    let script =
        format!("printf 'GET {path} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' | nc -N -w 5 {host} {port}");
    let out = s.topo.run("lns", "sh", &["-c", &script]).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The value of the sample `series` (name with labels, exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes until `done` holds for the text (the server publishes after each loop turn), for
/// up to 10 s; returns the last text.
fn scrape_until(s: &Scenario, done: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Some(t) = get(s, "/metrics") {
            if done(&t) {
                return t;
            }
            last = t;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

#[test]
fn metrics_count_a_connection_its_traffic_a_wrong_password_and_a_wrong_key() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let config = format!("[metrics]\nlisten = \"{METRICS}\"\n");
    let mut s = Scenario::with(
        "mx",
        &Options {
            auth: "mschapv2",
            config: &config,
            ..Options::default()
        },
    );
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let ping = up
        && s.topo
            .run("mobile", "ping", &["-c", "3", "-W", "2", "192.168.1.1"])
            .is_ok_and(|o| o.status.success());
    let connected = scrape_until(&s, |t| {
        sample(t, r#"l2sec_connects_total{outcome="ok"}"#) == Some(1.0)
            && sample(t, r#"l2sec_esp_packets_total{direction="in"}"#).is_some_and(|n| n >= 3.0)
    });
    let not_found = get(&s, "/");
    let client_log = output(client);
    // The same laptop with a wrong password: refused in PPP.
    let wrong = s.client("not-the-password");
    let refused = scrape_until(&s, |t| {
        sample(t, r#"l2sec_connects_total{outcome="auth_failed"}"#) == Some(1.0)
    });
    let wrong_log = output(wrong);
    // And with a wrong pre-shared key: refused at Main Mode message 5.
    let bad_key = s.client_with_psk("not-the-psk", "admin@123");
    let bad_psk = scrape_until(&s, |t| {
        sample(t, r#"l2sec_connects_total{outcome="bad_psk"}"#) == Some(1.0)
    });
    let bad_key_log = output(bad_key);
    let server_log = s.server_log();
    let context = format!(
        "metrics:\n{connected}\nclient:\n{client_log}\nwrong client:\n{wrong_log}\nwrong key:\n{bad_key_log}\nserver:\n{server_log}"
    );
    assert!(up && ping, "connect and ping failed\n{context}");
    let head = connected.split("\r\n\r\n").next().unwrap_or_default();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{context}");
    assert!(head.contains("text/plain; version=0.0.4"), "{context}");
    assert!(
        connected.contains("# TYPE l2sec_connects_total counter"),
        "{context}"
    );
    assert_eq!(
        sample(&connected, r#"l2sec_connects_total{outcome="ok"}"#),
        Some(1.0),
        "{context}"
    );
    assert_eq!(sample(&connected, "l2sec_sessions"), Some(1.0), "{context}");
    assert_eq!(sample(&connected, "l2sec_tunnels"), Some(1.0), "{context}");
    assert_eq!(sample(&connected, "l2sec_ike_sas"), Some(1.0), "{context}");
    assert_eq!(
        sample(&connected, "l2sec_child_sas"),
        Some(1.0),
        "{context}"
    );
    for direction in ["in", "out"] {
        let bytes = format!("l2sec_esp_bytes_total{{direction=\"{direction}\"}}");
        assert!(
            sample(&connected, &bytes).is_some_and(|b| b > 0.0),
            "{bytes}\n{context}"
        );
    }
    assert_eq!(
        sample(&connected, "l2sec_handshake_duration_seconds_count"),
        Some(1.0),
        "{context}"
    );
    assert_eq!(
        sample(
            &connected,
            r#"l2sec_handshake_duration_seconds_bucket{le="+Inf"}"#
        ),
        Some(1.0),
        "{context}"
    );
    let failed = sample(&connected, r#"l2sec_connects_total{outcome="auth_failed"}"#);
    assert_eq!(failed, Some(0.0), "{context}");
    assert_eq!(
        sample(&refused, r#"l2sec_connects_total{outcome="auth_failed"}"#),
        Some(1.0),
        "metrics:\n{refused}\n{context}"
    );
    assert_eq!(
        sample(&refused, r#"l2sec_connects_total{outcome="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&bad_psk, r#"l2sec_connects_total{outcome="bad_psk"}"#),
        Some(1.0),
        "metrics:\n{bad_psk}\n{context}"
    );
    assert_eq!(
        sample(&bad_psk, r#"l2sec_connects_total{outcome="auth_failed"}"#),
        Some(1.0)
    );
    let not_found = not_found.unwrap_or_default();
    assert!(not_found.starts_with("HTTP/1.1 404 "), "{not_found}");
    // The log has one line per stage, with the peer.
    for stage in [
        "IKE SA established",
        "IPsec SA established",
        "L2TP tunnel established",
        "L2TP session established",
        "PPP authenticated",
        "user connected",
        "authentication failed",
        "IKE refused",
    ] {
        assert!(
            server_log.contains(stage),
            "no {stage:?} line\n{server_log}"
        );
    }
}

#[test]
fn no_metrics_endpoint_unless_configured() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let s = Scenario::start("mxo", "pap");
    // The server is up (its TUN device has its address): nothing answers on the port.
    assert_eq!(get(&s, "/metrics"), None);
}
