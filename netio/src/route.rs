//! Routes and DNS for the client, through the system's own tools (`ip`, `resolvectl`), with
//! guards that undo every change when dropped — on clean shutdown, on error, and on reconnect.
//!
//! Linux is implemented and tested here (iproute2). macOS and Windows need their own small
//! implementations of the same three operations (`route add`, `netsh`); they are not written yet
//! and [`RouteTable::new`] returns an `Unsupported` error on them.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use ipnet::Ipv4Net;

/// Routes we added, removed again on drop (last added, first removed).
#[derive(Debug, Default)]
pub struct RouteTable {
    added: Vec<Vec<String>>,
    dns: Option<DnsChange>,
}

#[derive(Debug)]
enum DnsChange {
    /// We ran `resolvectl dns/domain` on this interface; the link going away undoes it.
    Resolved,
    /// We replaced /etc/resolv.conf; this is the original content.
    ResolvConf(Vec<u8>),
}

impl RouteTable {
    /// An empty set of changes.
    pub fn new() -> io::Result<Self> {
        if cfg!(target_os = "linux") {
            Ok(Self::default())
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "routes are only implemented on Linux so far",
            ))
        }
    }

    /// Routes `net` through the TUN device `dev`.
    pub fn add_via_device(&mut self, net: Ipv4Net, dev: &str) -> io::Result<()> {
        self.add(vec![
            "route".into(),
            "replace".into(),
            net.to_string(),
            "dev".into(),
            dev.into(),
        ])
    }

    /// Keeps `server` reachable outside the tunnel: a host route through whatever path reaches it
    /// now (the gateway and device `ip route get` reports), so that routing "all traffic" into the
    /// tunnel does not swallow the tunnel's own packets.
    pub fn pin_host_route(&mut self, server: Ipv4Addr) -> io::Result<()> {
        let out = run_output(&["route", "get", &server.to_string()])?;
        let words: Vec<&str> = out.split_whitespace().collect();
        let mut args = vec![
            "route".to_owned(),
            "replace".to_owned(),
            format!("{server}/32"),
        ];
        if let Some(i) = words.iter().position(|w| *w == "via") {
            args.extend([
                "via".to_owned(),
                words.get(i + 1).copied().unwrap_or_default().to_owned(),
            ]);
        }
        let i = words
            .iter()
            .position(|w| *w == "dev")
            .ok_or_else(|| io::Error::other(format!("no route to {server}: {out}")))?;
        args.extend([
            "dev".to_owned(),
            words.get(i + 1).copied().unwrap_or_default().to_owned(),
        ]);
        self.add(args)
    }

    /// Sends all IPv4 traffic through `dev` with two /1 routes (they win over the default route
    /// without replacing it, so nothing needs restoring if we die).
    pub fn route_all_via(&mut self, dev: &str) -> io::Result<()> {
        for half in ["0.0.0.0/1", "128.0.0.0/1"] {
            self.add(vec![
                "route".into(),
                "replace".into(),
                half.into(),
                "dev".into(),
                dev.into(),
            ])?;
        }
        Ok(())
    }

    /// Points name resolution at `servers` for as long as this table lives: per-link through
    /// systemd-resolved when it runs, otherwise by replacing `/etc/resolv.conf` (restored on drop).
    pub fn set_dns(&mut self, dev: &str, servers: &[IpAddr]) -> io::Result<()> {
        if servers.is_empty() || self.dns.is_some() {
            return Ok(());
        }
        let resolved = std::path::Path::new("/run/systemd/resolve/io.systemd.Resolve").exists();
        if resolved {
            let mut args = vec!["dns".to_owned(), dev.to_owned()];
            args.extend(servers.iter().map(ToString::to_string));
            let status = Command::new("resolvectl").args(&args).status()?;
            if status.success() {
                let _ = Command::new("resolvectl")
                    .args(["domain", dev, "~."])
                    .status();
                self.dns = Some(DnsChange::Resolved);
                return Ok(());
            }
        }
        let original = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        let mut text = String::from("# written by l2sec-client; restored when it disconnects\n");
        for s in servers {
            text.push_str(&format!("nameserver {s}\n"));
        }
        std::fs::write("/etc/resolv.conf", text)?;
        self.dns = Some(DnsChange::ResolvConf(original));
        Ok(())
    }

    /// Undoes every change now (also done on drop).
    pub fn restore(&mut self) {
        while let Some(mut args) = self.added.pop() {
            if let Some(verb) = args.get_mut(1) {
                *verb = "del".to_owned();
            }
            let _ = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        if let Some(DnsChange::ResolvConf(original)) = self.dns.take() {
            let _ = std::fs::write("/etc/resolv.conf", original);
        }
    }

    fn add(&mut self, args: Vec<String>) -> io::Result<()> {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        self.added.push(args);
        Ok(())
    }
}

impl Drop for RouteTable {
    fn drop(&mut self) {
        self.restore();
    }
}

fn run(args: &[&str]) -> io::Result<()> {
    run_output(args).map(|_| ())
}

fn run_output(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
