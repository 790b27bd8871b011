//! The control protocol and socket: what is refused, and how the socket is made.

use super::*;
use std::net::{Ipv4Addr, SocketAddr};

#[test]
fn requests_parse_and_hostile_ones_are_refused_with_a_reason() {
    assert_eq!(
        Request::parse(br#"{"version":1,"command":"status"}"#),
        Ok(Request::Status)
    );
    assert_eq!(
        Request::parse(b"{\"version\":1,\"command\":\"reload\"}\n"),
        Ok(Request::Reload)
    );
    assert_eq!(
        Request::parse(br#"{"version":1,"command":"kick","target":"alice"}"#),
        Ok(Request::Kick(KickTarget::User("alice".into())))
    );
    assert_eq!(
        Request::parse(br#"{"version":1,"command":"kick","target":"172.16.1.2"}"#),
        Ok(Request::Kick(KickTarget::Address(Ipv4Addr::new(
            172, 16, 1, 2
        ))))
    );
    let long = format!(
        r#"{{"version":1,"command":"kick","target":"{}"}}"#,
        "a".repeat(MAX_REQUEST)
    );
    assert_eq!(Request::parse(long.as_bytes()), Err(ProtocolError::TooLong));
    let garbage: &[&[u8]] = &[
        b"",
        b"status\n",
        b"\xff\xfe\x00garbage",
        br#"{"version":1}"#,
        br#"{"version":"1","command":"status"}"#,
        br#"{"version":1,"command":"status","extra":true}"#,
        br#"[1,2,3]"#,
    ];
    for g in garbage {
        assert!(
            matches!(Request::parse(g), Err(ProtocolError::Malformed(_))),
            "{:?} gave {:?}",
            String::from_utf8_lossy(g),
            Request::parse(g)
        );
    }
    assert_eq!(
        Request::parse(br#"{"version":1,"command":"status","target":"x"}"#),
        Err(ProtocolError::Malformed("status takes no target".into()))
    );
    assert_eq!(
        Request::parse(br#"{"version":2,"command":"status"}"#),
        Err(ProtocolError::Version(2))
    );
    assert_eq!(
        Request::parse(br#"{"version":1,"command":"shutdown"}"#),
        Err(ProtocolError::UnknownCommand("shutdown".into()))
    );
    for bad in [
        br#"{"version":1,"command":"kick"}"#.as_slice(),
        br#"{"version":1,"command":"kick","target":""}"#,
    ] {
        assert_eq!(Request::parse(bad), Err(ProtocolError::Target));
    }
    let long_name = format!(
        r#"{{"version":1,"command":"kick","target":"{}"}}"#,
        "b".repeat(254)
    );
    assert_eq!(
        Request::parse(long_name.as_bytes()),
        Err(ProtocolError::Target)
    );
}

fn session(user: &str, address: [u8; 4], bytes_in: u64) -> SessionStatus {
    SessionStatus {
        user: Some(user.into()),
        address: Some(Ipv4Addr::from(address)),
        peer: SocketAddr::from(([203, 0, 113, 5], 4500)),
        nat: true,
        ike: Some("aes256-sha256-modp2048".into()),
        esp: Some("aes128gcm16".into()),
        auth: Some("MS-CHAPv2".into()),
        state: "connected".into(),
        tunnel_id: 7,
        session_id: 9,
        bytes_in,
        bytes_out: 2048,
        packets_in: 3,
        packets_out: 2,
        connected_since_unix: Some(1_764_000_000),
        connected_since: Some("2025-11-24T16:00:00Z".into()),
        last_activity_secs: Some(4),
    }
}

#[test]
fn the_table_is_aligned_and_the_json_names_are_stable() {
    let sessions = [
        session("alice", [172, 16, 1, 2], 100),
        session("a-much-longer-name", [172, 16, 1, 13], 5_000_000),
    ];
    let text = table(&sessions);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("USER"), "{text}");
    for column in ["ADDRESS", "PEER", "IKE", "ESP", "SINCE"] {
        let at = lines[0].find(column).unwrap();
        for line in &lines[1..] {
            let before = &line[..at];
            assert!(
                before.ends_with("  ") && !line[at..].starts_with(' '),
                "{column} misaligned:\n{text}"
            );
        }
    }
    assert!(text.contains("4.7 MiB (3 pkts)"), "{text}");
    assert!(text.contains("100 B (3 pkts)"), "{text}");
    assert_eq!(table(&[]), "no sessions\n");
    let json = serde_json::to_value(&sessions[0]).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "address",
            "auth",
            "bytes_in",
            "bytes_out",
            "connected_since",
            "connected_since_unix",
            "esp",
            "ike",
            "last_activity_secs",
            "nat",
            "packets_in",
            "packets_out",
            "peer",
            "session_id",
            "state",
            "tunnel_id",
            "user"
        ]
    );
    assert_eq!(json["peer"], "203.0.113.5:4500");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn config_at(dir: &Path) -> Config {
    let mut config = Config::parse("t.toml", "[ipsec]\npsk = \"k\"\n", |_| None).unwrap();
    config.control_socket = dir.join("run").join("control.sock");
    config
}

#[test]
fn the_socket_is_private_replaces_a_stale_one_refuses_a_live_one_and_goes_at_exit() {
    let dir = std::env::temp_dir().join(format!("l2sec-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config_at(&dir);
    let path = config.control_socket.clone();
    runtime().block_on(async {
        // A stale socket (nobody listening) is replaced.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let control = Control::bind(&config).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        // A live one is refused, and left alone.
        let e = Control::bind(&config).unwrap_err().to_string();
        assert!(e.contains("another l2sec-server is running"), "{e}");
        assert!(path.exists());
        drop(control);
        assert!(!path.exists(), "removed at exit");
        // A fresh directory is made 0700.
        let fresh = config_at(&dir.join("fresh"));
        let control = Control::bind(&fresh).unwrap();
        assert_eq!(mode(fresh.control_socket.parent().unwrap()), 0o700);
        drop(control);
        // Something that is not a socket is never replaced.
        std::fs::write(&path, "x").unwrap();
        let e = Control::bind(&config).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn oversized_and_garbage_requests_on_the_socket_get_an_error_and_the_socket_serves_on() {
    let dir = std::env::temp_dir().join(format!("l2sec-ctl-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config_at(&dir);
    runtime().block_on(async {
        let mut control = Control::bind(&config).unwrap();
        let ask = |bytes: Vec<u8>| {
            let path = config.control_socket.clone();
            async move {
                let s = tokio::net::UnixStream::connect(&path).await.unwrap();
                let (mut r, mut w) = s.into_split();
                // The server answers and closes before reading all of an oversized request:
                // write and read at once.
                let writer = tokio::spawn(async move { w.write_all(&bytes).await.is_ok() });
                let mut answer = Vec::new();
                let _ = r.read_to_end(&mut answer).await;
                let _ = writer.await;
                serde_json::from_slice::<Response>(answer.trim_ascii()).unwrap()
            }
        };
        let big = ask(vec![b'{'; 100_000]).await;
        assert!(!big.ok);
        assert_eq!(big.error.as_deref(), Some("request longer than 1024 bytes"));
        let garbage = ask(b"\x00\x01 hello\n".to_vec()).await;
        assert!(
            garbage
                .error
                .as_deref()
                .unwrap()
                .starts_with("not a request"),
            "{garbage:?}"
        );
        // A good request reaches the packet loop's side of the channel.
        let status = tokio::spawn(ask(br#"{"version":1,"command":"status"}"#.to_vec()));
        let job = control.recv().await.unwrap();
        assert!(matches!(job.command, Command::Status));
        let _ = job.reply.send(Response {
            sessions: Some(vec![session("alice", [172, 16, 1, 2], 1)]),
            ..Response::ok()
        });
        let answer = status.await.unwrap();
        assert!(answer.ok);
        assert_eq!(answer.sessions.unwrap()[0].user.as_deref(), Some("alice"));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_byte_sequence_makes_the_request_parser_panic() {
    // Every prefix of valid requests, and seeded random bytes mixed with JSON punctuation.
    let valid: &[&[u8]] = &[
        br#"{"version":1,"command":"kick","target":"172.16.1.2"}"#,
        br#"{"version":1,"command":"status"}"#,
    ];
    for v in valid {
        for n in 0..=v.len() {
            let _ = Request::parse(&v[..n]);
        }
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let alphabet = b"{}[]\":,01 versionkcmdtargeu\\\x00\xff\n";
    for round in 0..20_000 {
        let len = round % 200;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[usize::try_from(x % alphabet.len() as u64).unwrap()]
            })
            .collect();
        if let Ok(r) = Request::parse(&bytes) {
            assert!(matches!(
                r,
                Request::Status | Request::Reload | Request::Kick(_)
            ));
        }
    }
}

#[test]
fn stuck_clients_do_not_stall_others_and_more_than_the_limit_are_closed() {
    let dir = std::env::temp_dir().join(format!("l2sec-ctl-stuck-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config_at(&dir);
    let path = config.control_socket.clone();
    runtime().block_on(async {
        let mut control = Control::bind(&config).unwrap();
        // One client connects and says nothing: another is still served.
        let stuck = tokio::net::UnixStream::connect(&path).await.unwrap();
        let status = {
            let path = path.clone();
            tokio::spawn(async move {
                let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
                s.write_all(b"{\"version\":1,\"command\":\"status\"}\n")
                    .await
                    .unwrap();
                let mut answer = Vec::new();
                s.read_to_end(&mut answer).await.unwrap();
                serde_json::from_slice::<Response>(answer.trim_ascii()).unwrap()
            })
        };
        let job = control.recv().await.unwrap();
        let _ = job.reply.send(Response::ok());
        assert!(status.await.unwrap().ok);
        // MAX_CLIENTS silent connections hold every slot; one more is closed unanswered.
        let mut silent = vec![stuck];
        for _ in 1..MAX_CLIENTS {
            silent.push(tokio::net::UnixStream::connect(&path).await.unwrap());
        }
        tokio::task::yield_now().await;
        let mut extra = tokio::net::UnixStream::connect(&path).await.unwrap();
        let _ = extra
            .write_all(b"{\"version\":1,\"command\":\"status\"}\n")
            .await;
        let mut answer = Vec::new();
        let _ = extra.read_to_end(&mut answer).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        // The silent ones hang up: their slots come back and a request is served again.
        drop(silent);
        let mut served = false;
        for _ in 0..100 {
            tokio::task::yield_now().await;
            let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
            s.write_all(b"{\"version\":1,\"command\":\"shutdown\"}\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer).await;
            if !answer.is_empty() {
                let r: Response = serde_json::from_slice(answer.trim_ascii()).unwrap();
                assert_eq!(r.error.as_deref(), Some("unknown command \"shutdown\""));
                served = true;
                break;
            }
        }
        assert!(served);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cli_finds_the_socket_by_flag_by_configuration_or_at_the_default() {
    let dir = std::env::temp_dir().join(format!("l2sec-ctl-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        "[server]\ncontrol_socket = \"/srv/vpn/ctl.sock\"\n[ipsec]\npsk = \"k\"\n",
    )
    .unwrap();
    let by_config = SocketArgs {
        socket: None,
        config: Some(file.clone()),
    };
    assert_eq!(by_config.path().unwrap(), Path::new("/srv/vpn/ctl.sock"));
    let by_flag = SocketArgs {
        socket: Some("/tmp/other.sock".into()),
        config: Some(file),
    };
    assert_eq!(by_flag.path().unwrap(), Path::new("/tmp/other.sock"));
    assert_eq!(
        SocketArgs::default().path().unwrap(),
        Path::new("/run/l2sec/control.sock")
    );
    let missing = SocketArgs {
        socket: None,
        config: Some(dir.join("nope.toml")),
    };
    assert!(missing.path().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
