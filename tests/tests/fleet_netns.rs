//! Several laptops at once, four of them behind one NAT, against one `l2sec-server`; and a pool
//! too small for everyone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

use l2sec_tests::netns::{Fleet, available};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

fn stop(mut child: Child) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    log
}

fn skip() -> bool {
    if !available() || Command::new("nft").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs root, iproute2 and nftables");
        return true;
    }
    false
}

struct Run {
    fleet: Fleet,
    state: PathBuf,
    server: Option<Child>,
}

impl Run {
    fn start(tag: &str, nat: usize, direct: usize, pool_last: &str) -> Self {
        let prefix = format!("l2{tag}{}", std::process::id() % 10_000);
        let fleet = Fleet::new(&prefix, nat, direct).unwrap();
        let state = std::env::temp_dir().join(format!("{prefix}-state"));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            state.join("users.toml"),
            "[[user]]\nname = \"hb@hb\"\npassword = \"admin@123\"\n",
        )
        .unwrap();
        let config = state.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"2.2.2.2\"\nstate_dir = \"{s}\"\ncontrol_socket = \"{s}/control.sock\"\nip_forward = true\n\n[ipsec]\npsk = \"fleet-psk\"\n\n[pool]\nrange = \"172.16.1.2-{pool_last}\"\n\n[users]\nfile = \"{s}/users.toml\"\n\n[tun]\nname = \"{prefix}s\"\n",
                s = state.display()
            ),
        )
        .unwrap();
        let server = fleet
            .topology
            .spawn(
                "lns",
                binary("l2sec-server").to_str().unwrap(),
                &["run", "--config", config.to_str().unwrap()],
            )
            .unwrap();
        let run = Self {
            fleet,
            state,
            server: Some(server),
        };
        assert!(
            run.address("lns", &format!("{prefix}s"), 50).is_some(),
            "server did not start"
        );
        run
    }

    /// The IPv4 address on `dev` in namespace `role`, waiting up to `tries` × 100 ms.
    fn address(&self, role: &str, dev: &str, tries: u32) -> Option<String> {
        for _ in 0..tries {
            let out = self
                .fleet
                .topology
                .run(role, "ip", &["-4", "-o", "addr", "show", "dev", dev])
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(addr) = text.split_whitespace().skip_while(|w| *w != "inet").nth(1) {
                return Some(addr.split('/').next().unwrap_or_default().to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    fn client(&self, role: &str) -> Child {
        self.client_with(role, &[])
    }

    fn client_with(&self, role: &str, extra: &[&str]) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.fleet.topology.ns(role),
                binary("l2sec-client").to_str().unwrap(),
            ])
            .args([
                "connect",
                "--server",
                "2.2.2.2",
                "--user",
                "hb@hb",
                "--route",
                "192.168.1.0/24",
                "--route",
                "172.16.1.0/24",
                "--tun",
                "l2c0",
            ])
            .args(extra)
            .env("L2SEC_PSK", "fleet-psk")
            .env("L2SEC_PASSWORD", "admin@123")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn ping(&self, role: &str, target: &str) -> bool {
        self.fleet
            .topology
            .run(role, "ping", &["-c", "1", "-W", "2", target])
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            stop(s);
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

#[test]
fn four_laptops_behind_one_nat_and_one_outside_each_get_their_own_address() {
    if skip() {
        return;
    }
    let mut run = Run::start("f", 4, 1, "172.16.1.100");
    let roles: Vec<String> = run
        .fleet
        .behind_nat
        .iter()
        .chain(&run.fleet.direct)
        .cloned()
        .collect();
    let mut clients: Vec<(String, Child)> =
        roles.iter().map(|r| (r.clone(), run.client(r))).collect();
    let addresses: Vec<Option<String>> =
        roles.iter().map(|r| run.address(r, "l2c0", 100)).collect();
    let pings: Vec<bool> = roles.iter().map(|r| run.ping(r, "192.168.1.1")).collect();
    // Pool addresses never talk to each other: the policy only opens the intranet.
    let cross = match (&addresses[0], &addresses[1]) {
        (Some(_), Some(b)) => run.ping(&roles[0], b),
        _ => false,
    };
    // One laptop behind the NAT leaves; the others stay up.
    let (role0, first) = clients.remove(0);
    let first_log = stop(first);
    std::thread::sleep(Duration::from_millis(500));
    let others_still: Vec<bool> = roles[1..]
        .iter()
        .map(|r| run.ping(r, "192.168.1.1"))
        .collect();
    let logs: Vec<String> = clients.into_iter().map(|(_, c)| stop(c)).collect();
    let server_log = stop(run.server.take().unwrap());
    let got: Vec<String> = addresses.iter().flatten().cloned().collect();
    assert_eq!(
        got.len(),
        5,
        "every laptop gets an address: {addresses:?}\nserver:\n{server_log}\nlogs:\n{first_log}\n{}",
        logs.join("\n")
    );
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "addresses are unique: {got:?}");
    assert!(
        pings.iter().all(|p| *p),
        "every laptop reaches the intranet: {pings:?} ({role0} first)"
    );
    assert!(
        !cross,
        "one laptop must not reach another through the server"
    );
    assert!(
        others_still.iter().all(|p| *p),
        "the others stay connected: {others_still:?}"
    );
    assert_eq!(
        server_log.matches("user connected").count(),
        5,
        "{server_log}"
    );
    assert!(
        server_log.contains("peer=2.2.2.3:"),
        "NATed laptops appear as the NAT's address"
    );
}

#[test]
fn a_pool_of_two_refuses_the_third_laptop_clearly() {
    if skip() {
        return;
    }
    let mut run = Run::start("q", 0, 3, "172.16.1.3");
    let a = run.client("d0");
    let b = run.client("d1");
    let got_a = run.address("d0", "l2c0", 100);
    let got_b = run.address("d1", "l2c0", 100);
    let mut c = run.client_with("d2", &["--no-reconnect"]);
    let mut status = None;
    for _ in 0..200 {
        if let Ok(Some(st)) = c.try_wait() {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let c_log = stop(c);
    let ab_still = run.ping("d0", "192.168.1.1") && run.ping("d1", "192.168.1.1");
    stop(a);
    stop(b);
    let server_log = stop(run.server.take().unwrap());
    assert!(
        got_a.is_some() && got_b.is_some(),
        "the first two get addresses\n{server_log}"
    );
    let status = status.unwrap_or_else(|| panic!("the third client did not give up:\n{c_log}"));
    assert!(!status.success());
    assert!(
        c_log.contains("NoAddress"),
        "the third client says why:\n{c_log}"
    );
    assert!(ab_still, "the first two are unaffected");
}

#[test]
fn a_killed_laptop_is_found_dead_and_its_address_is_freed() {
    if skip() {
        return;
    }
    let prefix = format!("l2k{}", std::process::id() % 10_000);
    let fleet = Fleet::new(&prefix, 0, 1).unwrap();
    let state = std::env::temp_dir().join(format!("{prefix}-state"));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("users.toml"),
        "[[user]]\nname = \"hb@hb\"\npassword = \"admin@123\"\n",
    )
    .unwrap();
    let config = state.join("server.toml");
    // Short keepalives so the test takes seconds: LCP echo every 1 s, dead after 2 misses.
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"2.2.2.2\"\nstate_dir = \"{s}\"\ncontrol_socket = \"{s}/control.sock\"\n\n[ipsec]\npsk = \"fleet-psk\"\n\n[ppp]\necho_interval = \"1s\"\necho_failures = 2\n\n[users]\nfile = \"{s}/users.toml\"\n\n[tun]\nname = \"{prefix}s\"\n",
            s = state.display()
        ),
    )
    .unwrap();
    let server = fleet
        .topology
        .spawn(
            "lns",
            binary("l2sec-server").to_str().unwrap(),
            &["run", "--config", config.to_str().unwrap()],
        )
        .unwrap();
    let mut run = Run {
        fleet,
        state,
        server: Some(server),
    };
    assert!(run.address("lns", &format!("{prefix}s"), 50).is_some());
    let mut laptop = run.client("d0");
    let first = run.address("d0", "l2c0", 100);
    // SIGKILL: no CDN, no StopCCN, no IKE delete.
    let _ = laptop.kill();
    let _ = laptop.wait();
    std::thread::sleep(Duration::from_secs(8));
    // The laptop can come back and connect again.
    let _ = run.fleet.topology.run("d0", "ip", &["link", "del", "l2c0"]);
    let again = run.client("d0");
    let second = run.address("d0", "l2c0", 100);
    stop(again);
    let server_log = stop(run.server.take().unwrap());
    let released = server_log
        .lines()
        .find(|l| l.contains("user disconnected"))
        .is_some_and(|l| {
            l.contains(&format!(
                "address=Some({})",
                first.clone().unwrap_or_default()
            )) && l.contains("EchoTimeout")
        });
    assert!(first.is_some(), "{server_log}");
    assert!(
        released,
        "the dead laptop was noticed by LCP echo and its address released:\n{server_log}"
    );
    assert!(second.is_some(), "the laptop connects again:\n{server_log}");
}

#[test]
fn the_laptop_reconnects_by_itself_after_the_server_restarts() {
    if skip() {
        return;
    }
    let mut run = Run::start("r", 0, 1, "172.16.1.100");
    let laptop = run.client_with("d0", &["--echo-interval", "1"]);
    let first = run.address("d0", "l2c0", 100);
    // Restart the server: all its state is gone; the laptop notices by LCP echo and comes back.
    let old_log = stop(run.server.take().unwrap());
    let config = run.state.join("server.toml");
    let server = run
        .fleet
        .topology
        .spawn(
            "lns",
            binary("l2sec-server").to_str().unwrap(),
            &["run", "--config", config.to_str().unwrap()],
        )
        .unwrap();
    run.server = Some(server);
    let mut back = false;
    for _ in 0..300 {
        let ping = run
            .fleet
            .topology
            .run("d0", "ping", &["-c", "1", "-W", "1", "192.168.1.1"])
            .unwrap();
        if ping.status.success() {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let laptop_log = stop(laptop);
    let new_log = stop(run.server.take().unwrap());
    assert!(first.is_some(), "{old_log}");
    assert!(
        back,
        "the laptop did not come back:\n{laptop_log}\nserver:\n{new_log}"
    );
    assert!(laptop_log.contains("reconnecting"), "{laptop_log}");
    assert!(new_log.contains("user connected"), "{new_log}");
}
