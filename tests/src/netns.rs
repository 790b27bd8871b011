//! Network namespaces for end-to-end tests: the reference topology, created with unique names and
//! deleted when the guard drops (also when the test fails).
//!
//! ```text
//!  {p}-mobile (2.2.2.10) ──veth── (2.2.2.2) {p}-lns (192.168.1.254) ──veth── (192.168.1.1) {p}-intranet
//! ```
//!
//! With a NAT ([`Topology::reference_behind_nat`]) the laptop sits in 10.0.0.0/24 behind
//! `{p}-nat`, which masquerades it to 2.2.2.3 with nftables. A `{p}-dmz` host (10.99.0.1, behind
//! the LNS at 10.99.0.254) is a network the default policy does not open to the pool.

use std::io;
use std::process::{Command, Output};

/// Runs `ip` with `args` and fails on a non-zero exit.
///
/// # Errors
/// When `ip` is missing or the command fails.
pub fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether this process can create namespaces (root with `ip` available).
#[must_use]
pub fn available() -> bool {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// The reference topology; dropping it deletes every namespace it made.
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    made: Vec<String>,
}

impl Topology {
    /// Creates `{prefix}-mobile`, `{prefix}-lns` and `{prefix}-intranet` with their links.
    ///
    /// # Errors
    /// When a namespace or link cannot be created (whatever was made is removed).
    pub fn reference(prefix: &str) -> io::Result<Self> {
        Self::build(prefix, false)
    }

    /// The reference topology with the laptop behind a masquerading NAT.
    ///
    /// # Errors
    /// As [`Topology::reference`], or when nftables is missing.
    pub fn reference_behind_nat(prefix: &str) -> io::Result<Self> {
        Self::build(prefix, true)
    }

    fn build(prefix: &str, nat: bool) -> io::Result<Self> {
        let mut t = Self {
            prefix: prefix.to_owned(),
            made: Vec::new(),
        };
        let names: &[&str] = if nat {
            &["mobile", "nat", "lns", "intranet", "dmz"]
        } else {
            &["mobile", "lns", "intranet", "dmz"]
        };
        for name in names {
            let ns = t.ns(name);
            let _ = ip(&["netns", "del", &ns]);
            ip(&["netns", "add", &ns])?;
            t.made.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let (mobile, lns, intranet) = (t.ns("mobile"), t.ns("lns"), t.ns("intranet"));
        if nat {
            let router = t.ns("nat");
            t.link(&mobile, "10.0.0.2/24", &router, "10.0.0.1/24", "m")?;
            t.link(&router, "2.2.2.3/24", &lns, "2.2.2.2/24", "o")?;
            ip(&["-n", &mobile, "route", "add", "default", "via", "10.0.0.1"])?;
            let out = Command::new("ip")
                .args(["netns", "exec", &router, "sh", "-c"])
                .arg(format!(
                    "echo 1 > /proc/sys/net/ipv4/ip_forward && nft add table ip nat && \
                     nft 'add chain ip nat post {{ type nat hook postrouting priority 100; }}' && \
                     nft add rule ip nat post oifname {p}oa masquerade",
                    p = t.prefix
                ))
                .output()?;
            if !out.status.success() {
                return Err(io::Error::other(format!(
                    "nftables: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        } else {
            t.link(&mobile, "2.2.2.10/24", &lns, "2.2.2.2/24", "m")?;
        }
        t.link(&lns, "192.168.1.254/24", &intranet, "192.168.1.1/24", "i")?;
        ip(&[
            "-n",
            &intranet,
            "route",
            "add",
            "172.16.1.0/24",
            "via",
            "192.168.1.254",
        ])?;
        Ok(t)
    }

    /// The full name of namespace `role`.
    #[must_use]
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str, tag: &str) -> io::Result<()> {
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

    /// Runs `program args…` inside namespace `role` and waits for it.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn run(&self, role: &str, program: &str, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(role), program])
            .args(args)
            .output()
    }

    /// Starts `program args…` inside namespace `role` in the background.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn spawn(
        &self,
        role: &str,
        program: &str,
        args: &[&str],
    ) -> io::Result<std::process::Child> {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(role), program])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.made.drain(..) {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

/// Many laptops: `nat` of them behind one masquerading NAT, `direct` of them on the outside
/// network, all reaching the LNS at 2.2.2.2 (which also reaches `{p}-intranet` 192.168.1.1).
///
/// ```text
///  {p}-m0..  10.0.0.10+i ─┐
///                  br in {p}-nat (10.0.0.1 | 2.2.2.3, masquerade) ─┐
///  {p}-d0..  2.2.2.20+j ────────────────────────── br in {p}-lns (2.2.2.2) ── {p}-intranet
/// ```
#[derive(Debug)]
pub struct Fleet {
    /// The namespaces (deleted on drop).
    pub topology: Topology,
    /// Laptop namespace roles behind the NAT (`m0`, `m1`, …).
    pub behind_nat: Vec<String>,
    /// Laptop namespace roles on the outside (`d0`, …).
    pub direct: Vec<String>,
}

impl Fleet {
    /// Builds it.
    ///
    /// # Errors
    /// When a namespace, link or the nftables rule cannot be created.
    pub fn new(prefix: &str, nat: usize, direct: usize) -> io::Result<Self> {
        let mut t = Topology {
            prefix: prefix.to_owned(),
            made: Vec::new(),
        };
        let behind: Vec<String> = (0..nat).map(|i| format!("m{i}")).collect();
        let outside: Vec<String> = (0..direct).map(|j| format!("d{j}")).collect();
        let mut roles: Vec<String> = vec!["nat".into(), "lns".into(), "intranet".into()];
        roles.extend(behind.iter().cloned());
        roles.extend(outside.iter().cloned());
        for role in &roles {
            let ns = t.ns(role);
            let _ = ip(&["netns", "del", &ns]);
            ip(&["netns", "add", &ns])?;
            t.made.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let (router, lns, intranet) = (t.ns("nat"), t.ns("lns"), t.ns("intranet"));
        // A bridge on each side: the NAT's inside, and the "internet" in front of the LNS.
        for (ns, br, addr) in [
            (&router, "brin", "10.0.0.1/24"),
            (&lns, "brout", "2.2.2.2/24"),
        ] {
            ip(&["-n", ns, "link", "add", br, "type", "bridge"])?;
            ip(&["-n", ns, "addr", "add", addr, "dev", br])?;
            ip(&["-n", ns, "link", "set", br, "up"])?;
        }
        let attach =
            |ns: &str, addr: &str, bridge_ns: &str, bridge: &str, tag: &str| -> io::Result<()> {
                let (a, b) = (format!("{prefix}{tag}a"), format!("{prefix}{tag}b"));
                ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])?;
                ip(&["link", "set", &a, "netns", ns])?;
                ip(&["link", "set", &b, "netns", bridge_ns])?;
                ip(&["-n", ns, "addr", "add", addr, "dev", &a])?;
                ip(&["-n", ns, "link", "set", &a, "up"])?;
                ip(&["-n", bridge_ns, "link", "set", &b, "master", bridge])?;
                ip(&["-n", bridge_ns, "link", "set", &b, "up"])
            };
        attach(&router, "2.2.2.3/24", &lns, "brout", "o")?;
        for (i, role) in behind.iter().enumerate() {
            let ns = t.ns(role);
            attach(
                &ns,
                &format!("10.0.0.{}/24", 10 + i),
                &router,
                "brin",
                &format!("m{i}"),
            )?;
            ip(&["-n", &ns, "route", "add", "default", "via", "10.0.0.1"])?;
        }
        for (j, role) in outside.iter().enumerate() {
            attach(
                &t.ns(role),
                &format!("2.2.2.{}/24", 20 + j),
                &lns,
                "brout",
                &format!("d{j}"),
            )?;
        }
        t.link(&lns, "192.168.1.254/24", &intranet, "192.168.1.1/24", "i")?;
        ip(&[
            "-n",
            &intranet,
            "route",
            "add",
            "172.16.1.0/24",
            "via",
            "192.168.1.254",
        ])?;
        let out = Command::new("ip")
            .args(["netns", "exec", &router, "sh", "-c"])
            .arg(format!(
                "echo 1 > /proc/sys/net/ipv4/ip_forward && nft add table ip nat && \
                 nft 'add chain ip nat post {{ type nat hook postrouting priority 100; }}' && \
                 nft add rule ip nat post oifname {prefix}oa masquerade"
            ))
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "nftables: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Self {
            topology: t,
            behind_nat: behind,
            direct: outside,
        })
    }
}
