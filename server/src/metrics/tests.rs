use super::*;
use std::collections::BTreeMap;

/// `name{labels} value` lines → value, and `# TYPE name type` lines → type.
fn parse(text: &str) -> (BTreeMap<String, f64>, BTreeMap<String, String>, Vec<String>) {
    let (mut samples, mut types, mut helps) = (BTreeMap::new(), BTreeMap::new(), Vec::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), t.to_owned());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            helps.push(rest.split_once(' ').unwrap().0.to_owned());
        } else if !line.is_empty() && !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').unwrap();
            samples.insert(series.to_owned(), value.parse().unwrap());
        }
    }
    (samples, types, helps)
}

#[test]
fn exposition_text_has_names_labels_help_and_types() {
    let mut snapshot = Snapshot {
        ike_sas: 2,
        child_sas: 3,
        tunnels: 1,
        sessions: 1,
        pool_in_use: 1,
        ..Snapshot::default()
    };
    snapshot.stats = crate::engine::stats::sample();
    let text = render(&snapshot).unwrap();
    let (samples, types, helps) = parse(&text);
    for (name, t) in [
        ("l2sec_connects_total", "counter"),
        ("l2sec_drops_total", "counter"),
        ("l2sec_esp_packets_total", "counter"),
        ("l2sec_esp_bytes_total", "counter"),
        ("l2sec_sessions", "gauge"),
        ("l2sec_tunnels", "gauge"),
        ("l2sec_ike_sas", "gauge"),
        ("l2sec_child_sas", "gauge"),
        ("l2sec_handshake_duration_seconds", "histogram"),
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(t),
            "{name}\n{text}"
        );
        assert!(helps.iter().any(|h| h == name), "HELP for {name}");
    }
    let get = |s: &str| samples.get(s).copied();
    assert_eq!(
        get(r#"l2sec_connects_total{outcome="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        get(r#"l2sec_connects_total{outcome="auth_failed"}"#),
        Some(2.0)
    );
    assert_eq!(get(r#"l2sec_connects_total{outcome="bad_psk"}"#), Some(0.0));
    assert_eq!(get(r#"l2sec_drops_total{reason="malformed"}"#), Some(3.0));
    assert_eq!(get(r#"l2sec_drops_total{reason="replay"}"#), Some(0.0));
    assert_eq!(get(r#"l2sec_esp_bytes_total{direction="in"}"#), Some(100.0));
    assert_eq!(
        get(r#"l2sec_esp_packets_total{direction="out"}"#),
        Some(1.0)
    );
    assert_eq!(get("l2sec_sessions"), Some(1.0));
    assert_eq!(get("l2sec_child_sas"), Some(3.0));
    // 0.3 s: in the 0.5 s bucket and every larger one, not in 0.25 s.
    assert_eq!(
        get(r#"l2sec_handshake_duration_seconds_bucket{le="0.25"}"#),
        Some(0.0)
    );
    assert_eq!(
        get(r#"l2sec_handshake_duration_seconds_bucket{le="0.5"}"#),
        Some(1.0)
    );
    assert_eq!(
        get(r#"l2sec_handshake_duration_seconds_bucket{le="+Inf"}"#),
        Some(1.0)
    );
    assert_eq!(get("l2sec_handshake_duration_seconds_count"), Some(1.0));
    assert!((get("l2sec_handshake_duration_seconds_sum").unwrap() - 0.3).abs() < 1e-9);
    // Every sample belongs to a declared metric with the l2sec_ prefix.
    for series in samples.keys() {
        assert!(series.starts_with("l2sec_"), "{series}");
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "{series} has no TYPE");
    }
}

#[test]
fn the_endpoint_serves_only_get_metrics() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let publisher = start(listener).unwrap();
    let snapshot = Snapshot {
        sessions: 7,
        ..Snapshot::default()
    };
    publisher.publish(&snapshot);
    let get = |request: &'static str| {
        runtime.block_on(async move {
            // A connection closed by the server may end in a reset: what came before counts.
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(request.as_bytes()).await;
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("\nl2sec_sessions 7\n"), "{ok}");
    assert!(get("GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(get("GET /metricsx HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
    // At the connection limit a further connection is closed unanswered; once the idle ones
    // go, scrapes are answered again.
    let idle: Vec<_> = (0..MAX_CONNECTIONS)
        .map(|_| {
            runtime
                .block_on(tokio::net::TcpStream::connect(addr))
                .unwrap()
        })
        .collect();
    assert_eq!(
        get("GET /metrics HTTP/1.1\r\n\r\n"),
        "",
        "over the limit: closed"
    );
    drop(idle);
    let answered = (0..100).any(|_| {
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
        get("GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK")
    });
    assert!(
        answered,
        "the slots are freed when the idle connections close"
    );
    // A head that fills the buffer without ending is refused, not buffered further.
    let mut big = String::from("GET /metrics HTTP/1.1\r\nX: ");
    big.push_str(&"a".repeat(MAX_REQUEST - big.len()));
    assert!(get(Box::leak(big.into_boxed_str())).starts_with("HTTP/1.1 431 "));
}
