//! Users managed with `l2sec-server user …` log in, and the server runs without root: the
//! built binaries in the reference topology (namespaces `l2us…`), removed even on failure.
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
use std::io::Write as _;
use std::process::{Child, Command, Stdio};

/// Runs `l2sec-server user --config <scenario config> ARGS`, with `stdin` on its standard input.
fn user_cli(s: &Scenario, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(binary("l2sec-server"))
        .arg("user")
        .arg("--config")
        .arg(s.state.join("server.toml"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `id -u NAME` / `id -g NAME`.
fn id_of(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `(Uid, Gid, CapEff, CapPrm, CapAmb)` lines of every thread of `pid`.
fn thread_credentials(pid: u32) -> Vec<Creds> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        // A thread that ended since the listing has nothing left to check.
        let Ok(status) = std::fs::read_to_string(task.unwrap().path().join("status")) else {
            continue;
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {status}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push((
            field("Uid:"),
            field("Gid:"),
            field("CapEff:"),
            field("CapPrm:"),
            field("CapAmb:"),
        ));
    }
    out
}

/// Whether `ping -c N 192.168.1.1` from the laptop succeeds once the client has routed the
/// intranet through `l2c0` (it adds that route just after its address; up to 10 s).
fn ping_intranet(s: &Scenario, count: &str) -> bool {
    let routed = (0..100).any(|_| {
        let out = s
            .topo
            .run("mobile", "ip", &["route", "show", "192.168.1.0/24"]);
        let routed = out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("l2c0"));
        if !routed {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        routed
    });
    routed
        && s.topo
            .run("mobile", "ping", &["-c", count, "-W", "2", "192.168.1.1"])
            .is_ok_and(|o| o.status.success())
}

#[test]
fn a_user_added_with_the_cli_logs_in_with_mschapv2_to_a_server_that_dropped_root() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::prepare(
        "usm",
        &Options {
            auth: "mschapv2",
            server: "user = \"nobody\"",
            ..Options::default()
        },
    );
    let password = "Alice's \"first\" pass phrase";
    let added = user_cli(
        &s,
        &[
            "add",
            "alice",
            "--address",
            "172.16.1.42",
            "--password-stdin",
        ],
        &format!("{password}\n"),
    );
    assert!(added.status.success(), "{added:?}");
    assert!(
        String::from_utf8_lossy(&added.stdout).contains("l2sec-server reload"),
        "the operator is told how to apply it: {added:?}"
    );
    let users = std::fs::read_to_string(s.state.join("users.toml")).unwrap();
    assert!(
        users.contains("nt_hash") && !users.contains("first"),
        "{users}"
    );
    // A static address outside the pool is refused, and the file is left as it was.
    let refused = user_cli(
        &s,
        &["add", "bob", "--address", "10.1.2.3", "--password-stdin"],
        "pw\n",
    );
    assert!(!refused.status.success());
    assert_eq!(
        std::fs::read_to_string(s.state.join("users.toml")).unwrap(),
        users
    );

    s.launch();
    let pid = s.server_pid().unwrap();
    let client = s.client_as("alice", password);
    let up = s.wait_for("mobile", "l2c0", "172.16.1.42");
    let ping = up && ping_intranet(&s, "3");
    let transfer = up.then(|| s.tcp_round_trip(1_000_000));
    let threads = thread_credentials(pid);
    let server_log = s.stop_server();
    let client_log = output(client);
    assert!(
        up && ping,
        "alice did not get her static address or no ping\nclient:\n{client_log}\nserver:\n{server_log}"
    );
    if let Some(Err(e)) = transfer {
        panic!("1 MB round trip after the drop: {e}\nserver:\n{server_log}");
    }
    assert!(
        server_log.contains("user connected") && server_log.contains("alice"),
        "{server_log}"
    );
    let (uid, gid) = (id_of("-u", "nobody"), id_of("-g", "nobody"));
    assert!(!threads.is_empty());
    for (uids, gids, eff, prm, amb) in &threads {
        assert_eq!(uids, &format!("{uid} {uid} {uid} {uid}"), "{threads:?}");
        assert_eq!(gids, &format!("{gid} {gid} {gid} {gid}"), "{threads:?}");
        assert_eq!(eff, "0000000000000000", "CapEff: {threads:?}");
        assert_eq!(prm, "0000000000000000", "CapPrm: {threads:?}");
        assert_eq!(amb, "0000000000000000", "CapAmb: {threads:?}");
    }
    assert!(server_log.contains("dropped root"), "{server_log}");
    assert!(!server_log.contains("ERROR"), "{server_log}");
    // The pool route went with the TUN device, although the unprivileged server could not
    // delete it itself.
    let routes = s.topo.run("lns", "ip", &["-4", "route", "show"]).unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(!routes.contains("172.16.1."), "{routes}");
}

#[test]
fn a_user_added_with_the_cli_logs_in_with_pap_and_a_deleted_one_no_longer_can() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::prepare(
        "usp",
        &Options {
            auth: "pap",
            ..Options::default()
        },
    );
    for (name, password) in [("carol@corp", "carol pw"), ("dave", "dave pw")] {
        let added = user_cli(
            &s,
            &["add", name, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(added.status.success(), "{added:?}");
    }
    let deleted = user_cli(&s, &["del", "dave"], "");
    assert!(deleted.status.success(), "{deleted:?}");
    let listed = user_cli(&s, &["list", "--json"], "");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("\"carol@corp\"")
            && listed.contains("\"hb@hb\"")
            && !listed.contains("dave"),
        "{listed}"
    );
    assert!(listed.contains("password (plaintext!)"), "{listed}");
    assert!(
        !listed.contains("carol pw") && !listed.contains("admin@123"),
        "{listed}"
    );

    s.launch();
    let client = s.client_as("carol@corp", "carol pw");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let ping = up && ping_intranet(&s, "3");
    let client_log = output(client);
    // The deleted user is refused.
    let mut dave = s.client_as("dave", "dave pw");
    let mut refused = None;
    for _ in 0..150 {
        if let Ok(Some(st)) = dave.try_wait() {
            refused = Some(st);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let dave_log = output(dave);
    let server_log = s.server_log();
    assert!(
        up && ping,
        "carol did not connect\nclient:\n{client_log}\nserver:\n{server_log}"
    );
    assert!(
        refused.is_some_and(|st| !st.success()),
        "dave was deleted but:\n{dave_log}\nserver:\n{server_log}"
    );
    assert!(
        server_log.contains("authentication failed") && server_log.contains("dave"),
        "{server_log}"
    );
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

/// Starts the prepared scenario's server in `lns` under `wrapper` (a command that ends with
/// `--`, such as `setpriv … --`); waits for its TUN device.
fn launch_under(s: &Scenario, wrapper: &[&str]) -> Server {
    let mut server = Server(Some(
        Command::new("ip")
            .args(["netns", "exec", &s.topo.ns("lns")])
            .args(wrapper)
            .arg(binary("l2sec-server"))
            .args(["run", "--config"])
            .arg(s.state.join("server.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let tun = format!("{}s", s.topo.ns("x").trim_end_matches("-x"));
    if !s.wait_for("lns", &tun, "172.16.1.1") {
        let log = server.0.take().map(output).unwrap_or_default();
        panic!("server did not start:\n{log}");
    }
    server
}

/// Connects hb@hb, pings through the tunnel, reads the server's credentials, stops it.
fn connect_and_inspect(s: &Scenario, mut server: Server) -> (bool, Vec<Creds>, String) {
    let pid = server.0.as_ref().unwrap().id();
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let ping = up && ping_intranet(s, "3");
    let threads = thread_credentials(pid);
    let _ = output(client);
    let log = server.0.take().map(output).unwrap_or_default();
    (ping, threads, log)
}

type Creds = (String, String, String, String, String);

const NO_CAPS: &str = "0000000000000000";

#[test]
fn a_server_started_like_systemd_as_a_user_with_ambient_capabilities_gives_them_up() {
    if !available() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs root, iproute2 and setpriv");
        return;
    }
    // With the metrics endpoint on, the server has a second thread at the drop, and with two
    // crypto threads a third: capabilities are per thread, so those threads must not exist
    // yet when they are cleared.
    let s = Scenario::prepare(
        "usa",
        &Options {
            auth: "mschapv2",
            server: "crypto_threads = 2",
            config: "[metrics]\nlisten = \"127.0.0.1:9108\"\n",
            ..Options::default()
        },
    );
    // What systemd does for User=nobody with AmbientCapabilities= and CapabilityBoundingSet= of
    // the unit's three capabilities; plus CAP_DAC_OVERRIDE when /dev/net/tun is not mode 0666
    // (udev's default) on this machine, since a non-root user must open it.
    let world_rw = std::fs::metadata("/dev/net/tun").is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt as _;
        m.permissions().mode() & 0o006 == 0o006
    });
    let caps = if world_rw {
        "+net_admin,+net_raw,+net_bind_service"
    } else {
        "+net_admin,+net_raw,+net_bind_service,+dac_override"
    };
    let server = launch_under(
        &s,
        &[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
            &format!("--bounding-set=-all,{caps}"),
            "--",
        ],
    );
    let (ping, threads, log) = connect_and_inspect(&s, server);
    assert!(ping, "no traffic through the tunnel:\n{log}");
    assert!(log.contains("not started as root"), "{log}");
    assert!(
        threads.len() >= 3,
        "the metrics and crypto threads run: {threads:?}"
    );
    let uid = id_of("-u", "nobody");
    for (uids, _, eff, prm, amb) in &threads {
        assert_eq!(uids, &format!("{uid} {uid} {uid} {uid}"), "{threads:?}");
        assert_eq!(
            (eff.as_str(), prm.as_str(), amb.as_str()),
            (NO_CAPS, NO_CAPS, NO_CAPS)
        );
    }
}

#[test]
fn a_root_server_that_may_not_change_its_ids_keeps_uid_0_without_any_capability() {
    if !available() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs root, iproute2 and setpriv");
        return;
    }
    let s = Scenario::prepare(
        "usr",
        &Options {
            auth: "mschapv2",
            ..Options::default()
        },
    );
    // A container started with --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW.
    let server = launch_under(&s, &["setpriv", "--bounding-set=-setuid,-setgid", "--"]);
    let (ping, threads, log) = connect_and_inspect(&s, server);
    assert!(ping, "no traffic through the tunnel:\n{log}");
    assert!(
        log.contains("WARN") && log.contains("still uid 0") && log.contains("SETUID"),
        "the operator is told loudly:\n{log}"
    );
    for (uids, _, eff, prm, amb) in &threads {
        assert_eq!(uids, "0 0 0 0", "{threads:?}");
        assert_eq!(
            (eff.as_str(), prm.as_str(), amb.as_str()),
            (NO_CAPS, NO_CAPS, NO_CAPS)
        );
    }
}

/// Whether, within 10 s, the terminal of the `l2sec-server` editing `file` has echo off.
fn echo_is_off(file: &std::path::Path) -> bool {
    let needle = file.to_string_lossy().into_owned();
    (0..200).any(|_| {
        let off = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|p| {
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                if !cmdline.contains("l2sec-server")
                    || !cmdline.contains(&needle)
                    || cmdline.contains("script")
                {
                    return false;
                }
                let Ok(tty) = std::fs::read_link(p.path().join("fd/0")) else {
                    return false;
                };
                Command::new("stty")
                    .arg("-a")
                    .arg("-F")
                    .arg(&tty)
                    .output()
                    .is_ok_and(|o| {
                        String::from_utf8_lossy(&o.stdout)
                            .split_whitespace()
                            .any(|w| w == "-echo")
                    })
            });
        if !off {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        off
    })
}

/// Drives `l2sec-server user … add NAME` on a pseudo-terminal (`script`), typing `first` after
/// the first prompt and `again` after the second; returns (success, what the terminal showed).
fn add_on_a_terminal(
    file: &std::path::Path,
    name: &str,
    first: &str,
    again: &str,
) -> (bool, String) {
    use std::io::Read as _;
    let command = format!(
        "{} user --users-file {} add {name}",
        binary("l2sec-server").display(),
        file.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    // Type each answer only once its prompt is shown, i.e. once echo is off.
    for (prompt, answer) in [("Password for", first), ("Again:", again)] {
        while !String::from_utf8_lossy(&shown).contains(prompt) {
            let mut byte = [0u8; 1];
            if stdout.read(&mut byte).unwrap() == 0 {
                break;
            }
            shown.push(byte[0]);
        }
        // The prompt is printed just before echo is turned off: wait for the terminal to say
        // `-echo` (typing earlier would be echoed by the terminal, not by us).
        assert!(echo_is_off(file), "echo never turned off: {shown:?}");
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    let _ = stdout.read_to_end(&mut shown);
    let status = child.wait().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&shown).into_owned(),
    )
}

#[test]
fn on_a_terminal_the_password_is_asked_twice_without_echo() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs script (util-linux)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("l2us-tty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.toml");
    let (ok, shown) = add_on_a_terminal(&file, "erin", "tty-pass-1", "tty-pass-2");
    assert!(!ok && shown.contains("do not match"), "{shown}");
    assert!(!file.exists() || !std::fs::read_to_string(&file).unwrap().contains("erin"));
    let (ok, shown) = add_on_a_terminal(&file, "erin", "tty-pass-1", "tty-pass-1");
    let users = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{shown}");
    assert!(
        shown.contains("Password for erin") && shown.contains("Again:"),
        "{shown}"
    );
    assert!(
        !shown.contains("tty-pass"),
        "the password was echoed: {shown}"
    );
    let hash = NtHash::of_password("tty-pass-1").0;
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    assert!(users.contains(&hex), "{users}");
}
