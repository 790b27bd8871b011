//! No secret ever reaches a log: a full run with the real binaries at `RUST_LOG=trace` — PAP,
//! CHAP-MD5 and MS-CHAPv2 users that connect, pass traffic and hang up, a wrong password, a
//! wrong pre-shared key, a clean stop — in the server's human and JSON log formats (the client
//! has one format). The logs are searched for every password and PSK used (also the wrong ones),
//! in clear, as hex, as base64 and as a Rust byte list, and for the NT hashes; and they must
//! show the user names and the connect and disconnect lines, so that the search can fail.
//!
//! Namespaces `l2us…`, removed even on failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

use l2sec_tests::netns::available;
use l2sec_tests::scenario::{Options, Scenario, binary, output};
use ppp::auth::mschapv2::NtHash;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PSK: &str = "Psk-Known-Value-31337";
const WRONG_PSK: &str = "Wrong-Psk-Value-777";
/// (user, password, the method its client accepts, how the users file stores it)
const USERS: [(&str, &str, &str, Stored); 3] = [
    ("pap-user", "Pap-Secret-4711", "pap", Stored::Password),
    (
        "chap-user",
        "Chap-Secret-0815",
        "chap-md5",
        Stored::Password,
    ),
    ("ms-user", "MsChap-Secret-1234", "mschapv2", Stored::NtHash),
];
const WRONG_PASSWORD: &str = "Wrong-Password-999";

#[derive(Clone, Copy)]
enum Stored {
    Password,
    NtHash,
}

/// Kills the server it holds when dropped (a failed assertion included).
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = output(c);
        }
    }
}

fn hex(bytes: &[u8], upper: bool, sep: &str) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect::<Vec<_>>()
        .join(sep)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

/// Every form in which `secret` must not appear.
fn forms(secret: &[u8]) -> Vec<String> {
    let mut f = vec![
        hex(secret, false, ""),
        hex(secret, true, ""),
        hex(secret, false, " "),
        hex(secret, false, ":"),
        base64(secret),
        format!("{secret:?}"),
    ];
    if let Ok(text) = std::str::from_utf8(secret) {
        f.push(text.to_owned());
    }
    // Base64 of a prefix-free stream depends on the alignment: the two other alignments too,
    // without the characters that depend on the bytes before.
    for skip in 1..=2 {
        if secret.len() > skip + 3 {
            let shifted = base64(&[&[0u8; 3][..3 - skip], secret].concat());
            f.push(shifted[4..shifted.len() - 4].to_owned());
        }
    }
    f
}

fn secrets() -> Vec<(String, Vec<String>)> {
    let mut all: Vec<(String, Vec<String>)> = Vec::new();
    let mut passwords: Vec<&str> = USERS.iter().map(|u| u.1).collect();
    passwords.push(WRONG_PASSWORD);
    for p in &passwords {
        all.push((format!("password {p}"), forms(p.as_bytes())));
        let nt = NtHash::of_password(p);
        all.push((format!("NT hash of {p}"), forms(&nt.0)));
    }
    for k in [PSK, WRONG_PSK] {
        all.push((format!("PSK {k}"), forms(k.as_bytes())));
    }
    all
}

/// Starts `l2sec-client connect` as `user` in `mobile` at trace level, accepting only `auth`.
fn client(s: &Scenario, psk: &str, user: &str, password: &str, auth: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &s.topo.ns("mobile")])
        .arg(binary("l2sec-client"))
        .args([
            "connect",
            "--server",
            "2.2.2.2",
            "--user",
            user,
            "--auth",
            auth,
            "--route",
            "192.168.1.0/24",
            "--tun",
            "l2c0",
            "--connect-timeout",
            "10s",
            "--no-reconnect",
            "--pid-file",
        ])
        .arg(s.state.join("client.pid"))
        .env("RUST_LOG", "trace")
        .env("L2SEC_PSK", psk)
        .env("L2SEC_PASSWORD", password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits up to `tenths` × 100 ms for `child` to exit; whether it exited with success.
fn exit_of(child: &mut Child, tenths: u32) -> Option<bool> {
    for _ in 0..tenths {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st.success());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The whole run with the server's log format `format`: (server log, client logs).
fn full_run(tag: &str, format: &str) -> (String, Vec<String>) {
    let s = Scenario::prepare(
        tag,
        &Options {
            // Every method, so that each client's --auth picks its own.
            auth: "mschapv2\", \"chap-md5\", \"pap",
            ..Options::default()
        },
    );
    let config = s.state.join("server.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("psk = \"e2e-psk\"", &format!("psk = \"{PSK}\""));
    std::fs::write(&config, text).unwrap();
    let mut users = String::new();
    for (name, password, _, stored) in USERS {
        users.push_str(&match stored {
            Stored::Password => format!("[[user]]\nname = \"{name}\"\npassword = \"{password}\"\n"),
            Stored::NtHash => format!(
                "[[user]]\nname = \"{name}\"\nnt_hash = \"{}\"\n",
                hex(&NtHash::of_password(password).0, false, "")
            ),
        });
    }
    std::fs::write(s.state.join("users.toml"), users).unwrap();

    let mut server = Server(Some(
        Command::new("ip")
            .args(["netns", "exec", &s.topo.ns("lns")])
            .arg(binary("l2sec-server"))
            .args(["--log-format", format, "run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let tun = format!("{}s", s.topo.ns("x").trim_end_matches("-x"));
    assert!(
        s.wait_for("lns", &tun, "172.16.1.1"),
        "server did not start"
    );

    let mut client_logs = Vec::new();
    for (name, password, auth, _) in USERS {
        let mut c = client(&s, PSK, name, password, auth);
        let up = s.wait_for("mobile", "l2c0", "172.16.1.");
        let ping = up && ping_intranet(&s, "2");
        // A normal hang-up, as a user does it.
        let pid_file = s.state.join("client.pid");
        let _ = s.topo.run(
            "mobile",
            binary("l2sec-client").to_str().unwrap(),
            &["disconnect", "--pid-file", pid_file.to_str().unwrap()],
        );
        let clean = exit_of(&mut c, 100);
        let log = output(c);
        assert!(up && ping, "{name} ({auth}) did not connect:\n{log}");
        assert_eq!(clean, Some(true), "{name}: no clean hang-up:\n{log}");
        client_logs.push(log);
    }
    let mut wrong_password = client(&s, PSK, "ms-user", WRONG_PASSWORD, "mschapv2");
    let refused = exit_of(&mut wrong_password, 200);
    let log = output(wrong_password);
    assert_eq!(refused, Some(false), "a wrong password got in:\n{log}");
    client_logs.push(log);
    let mut wrong_psk = client(&s, WRONG_PSK, "pap-user", "Pap-Secret-4711", "pap");
    let refused = exit_of(&mut wrong_psk, 300);
    let log = output(wrong_psk);
    assert_eq!(refused, Some(false), "a wrong PSK got in:\n{log}");
    client_logs.push(log);

    // A clean stop (SIGTERM), then the whole server log.
    let child = server.0.take().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut child = child;
    let _ = exit_of(&mut child, 100);
    let server_log = output(child);
    (server_log, client_logs)
}

fn check(format: &str, server_log: &str, client_logs: &[String]) {
    // The search can fail: the logs do name the users and the connections.
    for (name, ..) in USERS {
        assert!(
            server_log.contains(name),
            "{format}: {name} is not in the server log"
        );
    }
    assert!(
        server_log.matches("user connected").count() >= USERS.len(),
        "{format}:\n{server_log}"
    );
    assert!(
        server_log.matches("user disconnected").count() >= USERS.len(),
        "{format}:\n{server_log}"
    );
    assert!(server_log.contains("authentication failed"), "{server_log}");
    // Trace logging is really on (the protocol crates trace every message).
    let trace = if format == "json" {
        "\"level\":\"TRACE\""
    } else {
        " TRACE "
    };
    assert!(server_log.contains(trace), "{format}: no trace lines");
    if format == "json" {
        assert!(
            server_log.lines().all(|l| l.starts_with('{')),
            "every line is JSON"
        );
    }
    assert!(client_logs.iter().all(|l| l.contains(" DEBUG ")));
    assert!(client_logs.iter().any(|l| l.contains(" TRACE ")));
    for (what, forms) in secrets() {
        for form in forms {
            for (who, log) in std::iter::once(("server", server_log))
                .chain(client_logs.iter().map(|l| ("client", l.as_str())))
            {
                if let Some(at) = log.find(&form) {
                    let line = log[..at].lines().count();
                    panic!("{format}: the {who} log shows {what} as {form:?} at line {line}");
                }
            }
        }
    }
}

/// The search itself finds a secret in each form (so that the netns tests can fail).
/// Whether `ping -c N 192.168.1.1` from the laptop succeeds once the client has routed the
/// intranet through `l2c0` (it adds that route just after its address; up to 10 s).
fn ping_intranet(s: &Scenario, count: &str) -> bool {
    let routed = (0..100).any(|_| {
        let out = s
            .topo
            .run("mobile", "ip", &["route", "show", "192.168.1.0/24"]);
        let routed = out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("l2c0"));
        if !routed {
            std::thread::sleep(Duration::from_millis(100));
        }
        routed
    });
    routed
        && s.topo
            .run("mobile", "ping", &["-c", count, "-W", "2", "192.168.1.1"])
            .is_ok_and(|o| o.status.success())
}

#[test]
fn the_search_finds_secrets_in_clear_hex_base64_and_as_nt_hash() {
    let names = USERS.map(|u| u.0).join(" ");
    let clean = format!(
        "x TRACE y {names}\nuser connected\nuser connected\nuser connected\nuser disconnected\n\
         user disconnected\nuser disconnected\nauthentication failed\n"
    );
    let client = vec!["a DEBUG b TRACE c".to_owned()];
    check("human", &clean, &client);
    let nt = NtHash::of_password("MsChap-Secret-1234");
    for leak in [
        "Pap-Secret-4711".to_owned(),
        hex(b"Chap-Secret-0815", false, " "),
        base64(b"xPsk-Known-Value-31337"),
        hex(&nt.0, true, ""),
        format!("{:?}", WRONG_PASSWORD.as_bytes()),
    ] {
        let leaked = std::panic::catch_unwind(|| {
            check("human", &format!("{clean}payload={leak}\n"), &client);
        });
        assert!(leaked.is_err(), "{leak} was not found");
        let leaked_by_client = std::panic::catch_unwind(|| {
            check("human", &clean, &[format!("a DEBUG b TRACE {leak}")]);
        });
        assert!(
            leaked_by_client.is_err(),
            "{leak} was not found in a client log"
        );
    }
}

#[test]
fn no_password_psk_or_nt_hash_reaches_a_trace_log_in_human_format() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let (server, clients) = full_run("ush", "human");
    check("human", &server, &clients);
}

#[test]
fn no_password_psk_or_nt_hash_reaches_a_trace_log_in_json_format() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let (server, clients) = full_run("usj", "json");
    check("json", &server, &clients);
}
