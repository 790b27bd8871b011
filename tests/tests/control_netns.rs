//! The control socket with the real binaries in the reference topology: `l2sec-server status`
//! (table and JSON), `reload` and SIGHUP while a session keeps pinging, a bad file refused,
//! `kick` ending the laptop's session for good (the client exits, status 4, and does not come
//! back), and the socket's mode.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

use l2sec_tests::netns::available;
use l2sec_tests::scenario::{Options, Scenario, binary, output};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::process::Output;
use std::time::Duration;

/// `l2sec-server ARGS --socket <the scenario's socket>`.
fn ctl(s: &Scenario, args: &[&str]) -> Output {
    std::process::Command::new(binary("l2sec-server"))
        .args(args)
        .arg("--socket")
        .arg(s.control_socket())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sessions(s: &Scenario) -> Vec<serde_json::Value> {
    let o = ctl(s, &["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["sessions"].as_array().unwrap().clone()
}

fn ping(s: &Scenario, to: &str) -> bool {
    s.topo
        .run("mobile", "ping", &["-c", "2", "-W", "2", to])
        .is_ok_and(|o| o.status.success())
}

/// Waits up to 10 s for `f` to hold.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..50 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A policy without the intranet: only the LNS's own address answers.
const LNS_ONLY: &str = "[policy]\nrules = [\"allow pool -> lns proto icmp\"]\n";

#[test]
fn status_reload_sighup_and_kick_through_the_control_socket() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::with(
        "lf",
        &Options {
            auth: "pap",
            ..Options::default()
        },
    );
    let socket = s.control_socket();
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    assert!(ctl(&s, &["status"]).stdout.starts_with(b"no sessions"));

    let mut client = s.client("admin@123");
    assert!(
        s.wait_for("mobile", "l2c0", "172.16.1.2"),
        "client did not connect:\n{}\n{}",
        output(client),
        s.server_log()
    );
    assert!(ping(&s, "192.168.1.1"));

    // status --json: the session with its address, peer, algorithms and traffic.
    let list = sessions(&s);
    assert_eq!(list.len(), 1, "{list:?}");
    let one = &list[0];
    assert_eq!(one["user"], "hb@hb");
    assert_eq!(one["address"], "172.16.1.2");
    assert!(
        one["peer"].as_str().unwrap().starts_with("2.2.2.10:"),
        "{one}"
    );
    assert_eq!(one["nat"], false);
    assert_eq!(one["auth"], "PAP");
    assert_eq!(one["state"], "connected");
    assert!(
        one["ike"].as_str().unwrap().split('-').count() == 3,
        "{one}"
    );
    assert!(!one["esp"].as_str().unwrap().is_empty(), "{one}");
    assert!(one["bytes_in"].as_u64().unwrap() > 0, "{one}");
    assert!(one["bytes_out"].as_u64().unwrap() > 0, "{one}");
    assert!(one["packets_in"].as_u64().unwrap() >= 2, "{one}");
    assert!(
        one["connected_since"].as_str().unwrap().ends_with('Z'),
        "{one}"
    );
    let identity = (one["tunnel_id"].clone(), one["session_id"].clone());

    // The table (and what a status round trip costs: a figure, not an assertion).
    let started = std::time::Instant::now();
    let table = ctl(&s, &["status"]);
    eprintln!(
        "figure: `l2sec-server status` round trip (process start included): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let shown = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.status.success(), "{}", text(&table));
    assert!(
        shown.starts_with("USER") && shown.contains("hb@hb") && shown.contains("172.16.1.2"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 2, "{shown}");

    // reload: another user, and the intranet closed, while the session lives on.
    let config = s.state.join("server.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{original}\n{LNS_ONLY}")).unwrap();
    let users = s.state.join("users.toml");
    let mut u = std::fs::read_to_string(&users).unwrap();
    u.push_str("[[user]]\nname = \"carol\"\npassword = \"carol-pw\"\n");
    std::fs::write(&users, u).unwrap();
    let r = ctl(&s, &["reload"]);
    assert!(r.status.success(), "{}", text(&r));
    let said = String::from_utf8_lossy(&r.stdout);
    assert!(
        said.contains("users: 2") && said.contains("policy: 1 rule(s)"),
        "{said}"
    );
    assert!(
        !ping(&s, "192.168.1.1"),
        "the new policy applies to the live session"
    );
    assert!(ping(&s, "172.16.1.1"), "the session is alive");

    // SIGHUP: the intranet open again.
    std::fs::write(&config, &original).unwrap();
    let pid = s.server_pid().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        eventually(|| ping(&s, "192.168.1.1")),
        "SIGHUP reloaded the policy"
    );

    // A bad file is refused; the running configuration and the session stay.
    std::fs::write(
        &config,
        format!("{original}\n[pool]\nrange = \"172.16.1.9-172.16.1.2\"\n"),
    )
    .unwrap();
    let bad = ctl(&s, &["reload"]);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("pool.range"),
        "{}",
        text(&bad)
    );
    std::fs::write(&config, &original).unwrap();
    assert!(ping(&s, "192.168.1.1"));
    let list = sessions(&s);
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["tunnel_id"].clone(), list[0]["session_id"].clone()),
        identity,
        "the same session throughout"
    );

    // kick: unknown user refused; hb@hb's session ends, the laptop takes it as final (exits
    // with status 4 instead of reconnecting), the address returns.
    let none = ctl(&s, &["kick", "nobody"]);
    assert!(!none.status.success(), "{}", text(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no session of user \"nobody\""),
        "{}",
        text(&none)
    );
    let started = std::time::Instant::now();
    let kick = ctl(&s, &["kick", "172.16.1.2"]);
    assert!(kick.status.success(), "{}", text(&kick));
    assert!(
        String::from_utf8_lossy(&kick.stdout).contains("kicked 1 session(s)"),
        "{}",
        text(&kick)
    );
    // The kicked session is gone at once (the laptop is told by LCP Terminate-Request and a
    // CDN for administrative reasons), and the client exits: it does not reconnect.
    let gone = eventually(|| {
        sessions(&s)
            .iter()
            .all(|x| (x["tunnel_id"].clone(), x["session_id"].clone()) != identity)
    });
    eprintln!(
        "figure: kick to the session gone from status: {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut kicked_exit = None;
    let exited = eventually(|| {
        kicked_exit = client.try_wait().unwrap();
        kicked_exit.is_some()
    });
    eprintln!(
        "figure: kick to the client's exit: {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    // Nobody comes back: no new session (from the exited client or one mid-reconnect).
    std::thread::sleep(Duration::from_secs(3));
    let stayed_out = sessions(&s).is_empty();
    let kicked_log = output(client);
    // A new client connects; removing the user from the file kicks it, and it cannot come
    // back either.
    let client = s.client("admin@123");
    let back = s.wait_for("mobile", "l2c0", "172.16.1.2");
    std::fs::write(
        &users,
        "[[user]]\nname = \"carol\"\npassword = \"carol-pw\"\n",
    )
    .unwrap();
    let r = ctl(&s, &["reload"]);
    let removed = eventually(|| sessions(&s).is_empty());
    std::thread::sleep(Duration::from_secs(3));
    let still_out = sessions(&s).is_empty();
    let client_log = output(client);
    let log = s.stop_server();
    assert!(gone, "the kicked session ended:\n{log}");
    assert!(
        exited,
        "the kicked client exited within 10 s:\n{kicked_log}\nserver:\n{log}"
    );
    assert_eq!(
        kicked_exit.and_then(|e| e.code()),
        Some(4),
        "exit status 4 after an administrative disconnect:\n{kicked_log}"
    );
    assert!(stayed_out, "no new session after the kick:\n{log}");
    // One tunnel per client process: neither sent a new SCCRQ after its administrative end.
    assert_eq!(
        log.matches("L2TP tunnel established").count(),
        2,
        "no reconnection attempt:\n{log}"
    );
    assert!(
        kicked_log.contains("administrative reasons") && kicked_log.contains("not reconnecting"),
        "the client said why:\n{kicked_log}"
    );
    assert!(
        !kicked_log.contains("reconnecting in") && !kicked_log.contains("connection lost"),
        "the client did not try again:\n{kicked_log}"
    );
    assert!(back, "a new client connected after the kick:\n{log}");
    assert!(
        client_log.contains("administrative reasons"),
        "the laptop noticed:\n{client_log}"
    );
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stdout)
            .contains("user \"hb@hb\" is no longer in the users file: kicked"),
        "{}",
        text(&r)
    );
    assert!(removed && still_out, "a removed user stays out:\n{log}");
    assert!(log.contains("session kicked by the operator"), "{log}");
    assert!(
        log.contains("address=Some(172.16.1.2) reason=Closed"),
        "the kicked session's address went back to the pool:\n{log}"
    );
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("reload refused"), "{log}");
    // The server gave up root, so the file may stay in its root-owned directory; nobody
    // answers on it any more, and the next start replaces it.
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_err(),
        "nothing answers on the socket after exit"
    );
}
