//! Network namespaces for the bench, named `lb<pid><tag>-<role>` so that they never meet the
//! test suite's or another run's. Every namespace made is recorded in a process-wide registry
//! and removed (after killing whatever still runs inside it) when its [`Topology`] drops, on
//! an error, and on Ctrl-C or SIGTERM ([`install_signal_cleanup`]).
//!
//! ```text
//!  reference:  {p}-mobile 2.2.2.10 ──veth── 2.2.2.2 {p}-lns 192.168.1.254 ──veth── 192.168.1.1 {p}-intranet
//!  nat:        {p}-mobile 10.0.0.2 ── 10.0.0.1 {p}-nat 2.2.2.3 (masquerade) ── 2.2.2.2 {p}-lns … (as above)
//! ```
//!
//! The intranet host also answers at 192.168.1.2, and the laptop reaches that address by a host
//! route around the tunnel: the same veths and the same forwarding namespaces, no VPN — the
//! path that measures the I/O limit. Downstream, the intranet host reaches the laptop's own
//! address (2.2.2.10, or 10.0.0.2 routed through the NAT namespace without translation) from
//! 192.168.1.2 the same way. At 192.168.1.3 it is reached through the bench's relay
//! when one runs (`relay`).

use anyhow::{Context as _, bail};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// Namespaces alive now, for cleanup from the signal handler.
static MADE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The address of the intranet host reached through the tunnel.
pub const INTRANET_VPN: &str = "192.168.1.1";
/// The address of the intranet host reached around the tunnel (plain forwarding).
pub const INTRANET_PLAIN: &str = "192.168.1.2";
/// The address of the intranet host reached through the relay (the tunnel I/O limit: the
/// same batched I/O as the VPN, no cipher and no protocol; see `relay`).
pub const INTRANET_RELAY: &str = "192.168.1.3";
/// The server's public address.
pub const SERVER: &str = "2.2.2.2";

/// Runs `ip args…`, failing on a non-zero exit.
///
/// # Errors
/// When `ip` is missing or fails.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Whether namespaces can be made here (root, `ip` present).
#[must_use]
pub fn available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    root && Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Kills every process inside `ns` and deletes it.
fn destroy(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).output();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
}

/// Removes every namespace still recorded (the signal path; drops do it one by one).
pub fn cleanup_all() {
    let names: Vec<String> = MADE
        .lock()
        .map(|mut m| m.drain(..).collect())
        .unwrap_or_default();
    for ns in names {
        destroy(&ns);
    }
}

/// On SIGINT or SIGTERM: remove every namespace made so far and exit with 130.
///
/// # Errors
/// When the handler thread cannot be started.
pub fn install_signal_cleanup() -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                cleanup_all();
                std::process::exit(130);
            });
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Which reference topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The laptop on the server's network: ESP over IP protocol 50.
    Direct,
    /// The laptop behind an nftables masquerade: ESP in UDP 4500.
    BehindNat,
    /// One namespace, the server and the load generator on its loopback.
    Loopback,
}

/// Namespaces of one shape; dropping it removes them and everything running in them.
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    made: Vec<String>,
}

impl Topology {
    /// Builds `shape` under the prefix `lb<pid><tag>`.
    ///
    /// # Errors
    /// When a namespace, link, route or the nftables rule cannot be made (what was made is
    /// removed).
    pub fn build(tag: char, shape: Shape) -> anyhow::Result<Self> {
        let mut t = Self {
            prefix: format!("lb{}{tag}", std::process::id()),
            made: Vec::new(),
        };
        let roles: &[&str] = match shape {
            Shape::Direct => &["mobile", "lns", "intranet"],
            Shape::BehindNat => &["mobile", "nat", "lns", "intranet"],
            Shape::Loopback => &["lns"],
        };
        for role in roles {
            let ns = t.ns(role);
            ip(&["netns", "add", &ns])?;
            t.made.push(ns.clone());
            if let Ok(mut m) = MADE.lock() {
                m.push(ns.clone());
            }
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        if shape == Shape::Loopback {
            return Ok(t);
        }
        let (mobile, lns, intranet) = (t.ns("mobile"), t.ns("lns"), t.ns("intranet"));
        match shape {
            Shape::BehindNat => {
                let router = t.ns("nat");
                t.link(&mobile, "10.0.0.2/24", &router, "10.0.0.1/24", "m")?;
                t.link(&router, "2.2.2.3/24", &lns, "2.2.2.2/24", "o")?;
                ip(&["-n", &mobile, "route", "add", "default", "via", "10.0.0.1"])?;
                ip(&[
                    "-n",
                    &router,
                    "route",
                    "add",
                    "192.168.1.0/24",
                    "via",
                    "2.2.2.2",
                ])?;
                // The laptop's own address is routed (not translated) from the intranet side:
                // the plain path of downstream traffic.
                ip(&["-n", &lns, "route", "add", "10.0.0.0/24", "via", "2.2.2.3"])?;
                t.sh(
                    "nat",
                    &format!(
                        "echo 1 > /proc/sys/net/ipv4/ip_forward && nft add table ip nat && \
                         nft 'add chain ip nat post {{ type nat hook postrouting priority 100; }}' && \
                         nft add rule ip nat post oifname {p}oa masquerade",
                        p = t.prefix
                    ),
                )?;
            }
            Shape::Direct | Shape::Loopback => {
                t.link(&mobile, "2.2.2.10/24", &lns, "2.2.2.2/24", "m")?;
            }
        }
        t.link(&lns, "192.168.1.254/24", &intranet, "192.168.1.1/24", "i")?;
        for extra in [INTRANET_PLAIN, INTRANET_RELAY] {
            ip(&[
                "-n",
                &intranet,
                "addr",
                "add",
                &format!("{extra}/24"),
                "dev",
                &format!("{}ib", t.prefix),
            ])?;
        }
        for net in ["172.16.0.0/12", "2.2.2.0/24", "10.0.0.0/24"] {
            ip(&["-n", &intranet, "route", "add", net, "via", "192.168.1.254"])?;
        }
        let via = if shape == Shape::BehindNat {
            "10.0.0.1"
        } else {
            "2.2.2.2"
        };
        // More specific than the client's 192.168.1.0/24 through the TUN device.
        ip(&[
            "-n",
            &mobile,
            "route",
            "add",
            &format!("{INTRANET_PLAIN}/32"),
            "via",
            via,
        ])?;
        t.sh("lns", "echo 1 > /proc/sys/net/ipv4/ip_forward")?;
        Ok(t)
    }

    /// The full name of namespace `role`.
    #[must_use]
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// The prefix (also used for device names).
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str, tag: &str) -> anyhow::Result<()> {
        let (ea, eb) = (
            format!("{}{tag}a", self.prefix),
            format!("{}{tag}b", self.prefix),
        );
        ip(&["link", "add", &ea, "type", "veth", "peer", "name", &eb])?;
        ip(&["link", "set", &ea, "netns", a])?;
        ip(&["link", "set", &eb, "netns", b])?;
        ip(&["-n", a, "addr", "add", a_addr, "dev", &ea])?;
        ip(&["-n", b, "addr", "add", b_addr, "dev", &eb])?;
        ip(&["-n", a, "link", "set", &ea, "up"])?;
        ip(&["-n", b, "link", "set", &eb, "up"])
    }

    /// Runs a shell command inside `role`, failing on a non-zero exit.
    ///
    /// # Errors
    /// When it fails.
    pub fn sh(&self, role: &str, script: &str) -> anyhow::Result<Output> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(role), "sh", "-c", script])
            .output()
            .context("ip netns exec")?;
        if !out.status.success() {
            bail!("{script}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(out)
    }

    /// A command that runs `program` inside `role` (`ip netns exec` execs it: the child's pid
    /// is the program's).
    #[must_use]
    pub fn command(&self, role: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(role), program])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.made.drain(..) {
            destroy(&ns);
            if let Ok(mut m) = MADE.lock() {
                m.retain(|n| *n != ns);
            }
        }
    }
}
