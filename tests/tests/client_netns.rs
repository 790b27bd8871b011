//! The client as a user runs it, end to end in network namespaces: a profile file, `status`,
//! the DNS servers the server offers written to a resolver file and restored, `route_all` with
//! the server kept outside the tunnel, and the clean-up after a client that was killed.
//!
//! The resolver file is a temporary file (`L2SEC_RESOLV_CONF`): the host's /etc/resolv.conf is
//! never touched, and every test checks that.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness"
)]

use l2sec_tests::netns::{Topology, available};
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const ORIGINAL_RESOLV: &str = "# the laptop's own resolver\nnameserver 10.0.0.53\nsearch lan\n";

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p {name}`",
        bin.display()
    );
    bin
}

fn client_bin() -> String {
    binary("l2sec-client").to_str().unwrap().to_owned()
}

fn stderr_of(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    log
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reference topology (optionally behind a NAT) with `l2sec-server` running, offering two
/// DNS servers, and a directory for the client's profile, pid, state and resolver files.
struct Lab {
    topo: Topology,
    dir: PathBuf,
    server: Option<Child>,
    host_resolv: Vec<u8>,
}

impl Lab {
    fn start(tag: &str, nat: bool) -> Self {
        let host_resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        let prefix = format!("l2{tag}{}", std::process::id() % 10_000);
        let topo = if nat {
            Topology::reference_behind_nat(&prefix)
        } else {
            Topology::reference(&prefix)
        }
        .unwrap();
        let dir = std::env::temp_dir().join(format!("{prefix}-client"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("profiles")).unwrap();
        std::fs::write(
            dir.join("users.toml"),
            "[[user]]\nname = \"hb@hb\"\npassword = \"admin@123\"\n",
        )
        .unwrap();
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"2.2.2.2\"\nstate_dir = \"{d}\"\ncontrol_socket = \"{d}/control.sock\"\nip_forward = true\n\n\
                 [ipsec]\npsk = \"e2e-psk\"\n\n[pool]\ndns = [\"192.168.1.1\", \"9.9.9.9\"]\n\n\
                 [users]\nfile = \"{d}/users.toml\"\n\n[tun]\nname = \"{prefix}s\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("resolv.conf"), ORIGINAL_RESOLV).unwrap();
        let server = topo
            .spawn(
                "lns",
                binary("l2sec-server").to_str().unwrap(),
                &["run", "--config", config.to_str().unwrap()],
            )
            .unwrap();
        let lab = Self {
            topo,
            dir,
            server: Some(server),
            host_resolv,
        };
        assert!(
            lab.wait_for_addr("lns", &format!("{prefix}s"), "172.16.1.1"),
            "server did not start"
        );
        lab
    }

    fn wait_for_addr(&self, role: &str, dev: &str, addr: &str) -> bool {
        for _ in 0..100 {
            let out = self.ip(role, &["-4", "addr", "show", "dev", dev]);
            if out.contains(addr) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn ip(&self, role: &str, args: &[&str]) -> String {
        text(&self.topo.run(role, "ip", args).unwrap())
    }

    /// The route the laptop would use to `dst` (`ip route get`).
    fn route_to(&self, dst: &str) -> String {
        self.ip("mobile", &["-4", "route", "get", dst])
    }

    /// Writes profile `name` (mode 600: it holds the PSK and password).
    fn profile(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.dir.join("profiles").join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "server = \"2.2.2.2\"\npsk = \"e2e-psk\"\nuser = \"hb@hb\"\npassword = \"admin@123\"\n\
                 tun = \"l2c0\"\necho_interval = \"2s\"\n{extra}"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn pid_file(&self) -> String {
        self.dir.join("client.pid").to_str().unwrap().to_owned()
    }

    fn resolv(&self) -> String {
        std::fs::read_to_string(self.dir.join("resolv.conf")).unwrap_or_default()
    }

    /// Runs `l2sec-client ARGS` in the laptop namespace with the test's resolver file; the
    /// environment carries no PSK or password, so they come from the profile.
    fn client_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.topo.ns("mobile")])
            .arg(client_bin())
            .args(args)
            .env_remove("L2SEC_PSK")
            .env_remove("L2SEC_PASSWORD")
            .env_remove("L2SEC_CLIENT_DIR")
            .env("L2SEC_RESOLV_CONF", self.dir.join("resolv.conf"));
        cmd
    }

    fn connect(&self, args: &[&str]) -> Child {
        let pid_file = self.pid_file();
        let mut all = vec!["connect"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--pid-file", &pid_file]);
        self.client_command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn client_run(&self, args: &[&str]) -> Output {
        let pid_file = self.pid_file();
        let mut all = args.to_vec();
        all.extend_from_slice(&["--pid-file", &pid_file]);
        self.client_command(&all).output().unwrap()
    }

    /// `status --json` once it says `connected` (it is written after routes and DNS).
    fn wait_connected(&self) -> Option<String> {
        for _ in 0..100 {
            let out = self.client_run(&["status", "--json"]);
            let json = text(&out);
            if out.status.success() && json.contains("\"stage\": \"connected\"") {
                return Some(json);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    fn server_log(&mut self) -> String {
        self.server.take().map(stderr_of).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            stderr_of(s);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // Whatever happened, the host's resolver was not ours to touch.
        if !std::thread::panicking() {
            assert_eq!(
                std::fs::read("/etc/resolv.conf").unwrap_or_default(),
                self.host_resolv,
                "the host's /etc/resolv.conf changed"
            );
        }
    }
}

fn wait_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
    for _ in 0..150 {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn stdout_of(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    out
}

#[test]
fn a_profile_with_routes_and_dns_connects_shows_status_and_restores_dns_on_disconnect() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut lab = Lab::start("cd", false);
    // Pinned proposals: the server must end up with exactly these.
    lab.profile(
        "work",
        "routes = [\"192.168.1.0/24\"]\ndns = true\nike = [\"aes128-sha1-modp2048\"]\nesp = [\"aes128-sha1\"]\n",
    );
    let config_dir = lab.dir.join("profiles");
    let mut client = lab.connect(&["work", "--config-dir", config_dir.to_str().unwrap()]);
    let json = lab.wait_connected();
    let resolv_up = lab.resolv();
    let route = lab.route_to("192.168.1.1");
    let ping = lab
        .topo
        .run("mobile", "ping", &["-c", "2", "-W", "2", "192.168.1.1"])
        .unwrap();
    let human = text(&lab.client_run(&["status"]));
    let disconnect = lab.client_run(&["disconnect"]);
    // `disconnect` returns once the client has exited and put everything back.
    let resolv_after = lab.resolv();
    let route_after = lab.route_to("192.168.1.1");
    let state_left = lab.dir.join("client.json").exists();
    let status_after = lab.client_run(&["status"]);
    let exited = wait_exit(&mut client);
    let progress = stdout_of(&mut client);
    let client_log = stderr_of(client);
    let server_log = lab.server_log();
    let json = json.unwrap_or_else(|| {
        panic!(
            "status never said connected\nclient:\n{progress}{client_log}\nserver:\n{server_log}"
        )
    });

    assert!(json.contains("\"address\": \"172.16.1.2\""), "{json}");
    assert!(json.contains("\"profile\": \"work\""), "{json}");
    assert!(json.contains("\"server\": \"2.2.2.2\""), "{json}");
    assert!(json.contains("\"interface\": \"l2c0\""), "{json}");
    assert!(json.contains("\"192.168.1.0/24\""), "{json}");
    assert!(
        json.contains("\"ike\": \"aes128-sha1-modp2048\""),
        "the profile's IKE suite was negotiated and is shown: {json}"
    );
    assert!(
        json.contains("\"esp\": \"aes128-sha1\""),
        "the profile's ESP transform was negotiated and is shown: {json}"
    );
    assert!(
        json.contains("\"dns_restore\""),
        "the backup is recorded: {json}"
    );
    assert!(
        human.contains("172.16.1.2") && human.contains("connected"),
        "{human}"
    );

    assert!(
        resolv_up.contains("nameserver 192.168.1.1\nnameserver 9.9.9.9\n"),
        "the server's DNS servers are applied:\n{resolv_up}"
    );
    assert!(route.contains("dev l2c0"), "{route}");
    assert!(
        ping.status.success(),
        "ping through the tunnel failed:\n{client_log}"
    );

    assert!(
        disconnect.status.success(),
        "disconnect: {}",
        String::from_utf8_lossy(&disconnect.stderr)
    );
    assert_eq!(
        resolv_after, ORIGINAL_RESOLV,
        "resolv.conf is restored by the time disconnect returns"
    );
    assert!(!route_after.contains("l2c0"), "{route_after}");
    assert!(!state_left, "the state file is removed on exit");
    assert_eq!(
        status_after.status.code(),
        Some(3),
        "status when not connected"
    );
    assert!(
        exited.is_some_and(|st| st.success()),
        "the client exits cleanly:\n{client_log}"
    );
    for stage in [
        "IKE SA established",
        "IPsec SA established",
        "L2TP tunnel and session up",
        "PPP authenticated as hb@hb",
        "address 172.16.1.2 assigned",
        "connected on l2c0",
        "disconnected",
    ] {
        assert!(
            progress
                .lines()
                .any(|l| l.starts_with('[') && l.contains(" s] ") && l.contains(stage)),
            "progress line {stage:?} missing:\n{progress}"
        );
    }
}

#[test]
fn route_all_sends_the_default_route_through_the_tunnel_keeps_the_server_outside_and_restores() {
    if !available() || Command::new("nft").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs root, iproute2 and nftables");
        return;
    }
    // Behind the NAT the laptop has a real default gateway (10.0.0.1).
    let mut lab = Lab::start("ca", true);
    let routes_before = lab.ip("mobile", &["-4", "route", "show"]);
    assert!(lab.route_to("8.8.8.8").contains("via 10.0.0.1"));
    let profile = lab.profile("all", "route_all = true\n");
    let mut client = lab.connect(&["--profile", profile.to_str().unwrap()]);
    let json = lab.wait_connected();
    let default_up = lab.route_to("8.8.8.8");
    let server_up = lab.route_to("2.2.2.2");
    let host_route = lab.ip("mobile", &["-4", "route", "show", "2.2.2.2/32"]);
    let resolv_up = lab.resolv();
    let ping = lab
        .topo
        .run("mobile", "ping", &["-c", "2", "-W", "2", "192.168.1.1"])
        .unwrap();
    let disconnect = lab.client_run(&["disconnect"]);
    let routes_after = lab.ip("mobile", &["-4", "route", "show"]);
    let resolv_after = lab.resolv();
    let exited = wait_exit(&mut client);
    let progress = stdout_of(&mut client);
    let client_log = stderr_of(client);
    let server_log = lab.server_log();
    let json = json.unwrap_or_else(|| {
        panic!(
            "status never said connected\nclient:\n{progress}{client_log}\nserver:\n{server_log}"
        )
    });

    assert!(json.contains("\"0.0.0.0/0\""), "{json}");
    assert!(json.contains("\"nat\": true"), "{json}");
    assert!(json.contains("\"host_route\": \"2.2.2.2\""), "{json}");
    assert!(
        default_up.contains("dev l2c0"),
        "everything else goes into the tunnel: {default_up}"
    );
    assert!(
        server_up.contains("via 10.0.0.1") && !server_up.contains("l2c0"),
        "the server stays outside: {server_up}"
    );
    assert!(host_route.contains("via 10.0.0.1"), "{host_route}");
    assert!(
        resolv_up.contains("nameserver 192.168.1.1"),
        "DNS defaults to on with route_all:\n{resolv_up}"
    );
    assert!(
        ping.status.success(),
        "the intranet is reachable through the default route:\n{client_log}"
    );
    assert!(disconnect.status.success());
    assert!(exited.is_some_and(|st| st.success()), "{client_log}");
    assert_eq!(routes_after, routes_before, "the routing table is restored");
    assert_eq!(resolv_after, ORIGINAL_RESOLV);
}

#[test]
fn after_a_killed_client_disconnect_restores_dns_and_removes_the_host_route() {
    if !available() || Command::new("nft").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs root, iproute2 and nftables");
        return;
    }
    let mut lab = Lab::start("ck", true);
    let routes_before = lab.ip("mobile", &["-4", "route", "show"]);
    let profile = lab.profile("all", "route_all = true\nreconnect = false\n");
    let mut client = lab.connect(&["--profile", profile.to_str().unwrap()]);
    let json = lab.wait_connected();
    let resolv_up = lab.resolv();
    // No chance to clean up.
    let _ = client.kill();
    let _ = client.wait();
    let resolv_dead = lab.resolv();
    let host_route_dead = lab.ip("mobile", &["-4", "route", "show", "2.2.2.2/32"]);
    let status_dead = lab.client_run(&["status"]);
    let disconnect = lab.client_run(&["disconnect"]);
    let resolv_after = lab.resolv();
    let routes_after = lab.ip("mobile", &["-4", "route", "show"]);
    let client_log = stderr_of(client);
    let server_log = lab.server_log();
    assert!(
        json.is_some(),
        "never connected\nclient:\n{client_log}\nserver:\n{server_log}"
    );
    assert!(resolv_up.contains("nameserver 192.168.1.1"), "{resolv_up}");
    assert_eq!(resolv_dead, resolv_up, "a killed client cannot restore DNS");
    assert!(host_route_dead.contains("2.2.2.2"), "{host_route_dead}");
    assert_eq!(status_dead.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&status_dead.stderr).contains("disconnect` cleans up"),
        "status points at the clean-up: {}",
        String::from_utf8_lossy(&status_dead.stderr)
    );
    assert!(
        !disconnect.status.success(),
        "no client was running, and disconnect says so"
    );
    assert!(
        String::from_utf8_lossy(&disconnect.stderr).contains("restored"),
        "{}",
        String::from_utf8_lossy(&disconnect.stderr)
    );
    assert_eq!(resolv_after, ORIGINAL_RESOLV, "restored from the backup");
    assert_eq!(routes_after, routes_before, "the host route is gone");
    assert!(!lab.dir.join("client.json").exists());
}
