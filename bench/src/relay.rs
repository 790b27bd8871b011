//! The tunnel I/O limit: a relay that carries the blaster's packets from a TUN device in the
//! mobile namespace to a TUN device in the LNS namespace, with the same batched I/O as the VPN
//! (`netio`: offloaded TUN reads split into segments, `sendmmsg`/`recvmmsg`, TUN writes
//! coalesced per flow) and nothing else: no cipher, no ESP, no L2TP, no PPP, no policy. Over
//! UDP (with GSO and GRO, as ESP in UDP 4500) or over a raw IP socket (as plain ESP; protocol
//! [`RAW_PROTOCOL`], so that the server's ESP socket sees none of it).
//!
//! ```text
//!  blaster ─▶ {p}ri (mobile, 172.16.9.1) ─ relay in ─ UDP or raw IP ─▶ relay out (lns, :5501) ─▶ {p}ro ─▶ 192.168.1.3 (intranet)
//! ```
//!
//! What it delivers, and its whole-machine CPU per packet, is what a userspace tunnel pays on
//! this machine before it encrypts anything: the I/O share of the gap between the VPN and the
//! plain path, measured beside both in the same round.

use crate::netns::{Topology, ip};
use anyhow::{Context as _, bail};
use netio::batch::{Outbox, RecvBatch};
use netio::esp_socket::RawEsp;
use netio::gso::GsoPlan;
use netio::tun::{Offload, Tun, TunBatch, TunConfig};
use netio::udp::UdpSocket;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Stdio};

/// The UDP port the relay's LNS side listens on.
pub const PORT: u16 = 5501;
/// The IP protocol of the raw relay: 253, for experiments (RFC 3692).
pub const RAW_PROTOCOL: i32 = 253;
/// The mobile side's TUN address, the source of what the blaster sends through the relay.
pub const IN_ADDR: Ipv4Addr = Ipv4Addr::new(172, 16, 9, 1);
/// The LNS side's TUN address.
pub const OUT_ADDR: Ipv4Addr = Ipv4Addr::new(172, 16, 9, 2);

/// Packets read from TUN per batch (as the client's driver), and their slot size.
const TUN_BATCH: usize = 32;
const SLOT: usize = 2048;
/// GRO receive slots (as the server's driver): 16 of 64 KiB.
const GRO_BATCH: usize = 16;
const GRO_SLOT: usize = 65_536;
/// Packets coalesced per TUN write (as the server's driver).
const TUN_WRITE_BATCH: usize = 64;

/// Which end of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// TUN → UDP, in the mobile namespace.
    In,
    /// UDP → TUN, in the LNS namespace.
    Out,
}

/// Runs one end until killed: opens the TUN device `tun`, prints `ready`, and relays.
///
/// # Errors
/// When the device or the socket cannot be opened, or the device has no offloads (the relay
/// measures the offloaded path).
pub fn run(side: Side, tun: &str, peer: SocketAddr, raw: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let address = match side {
            Side::In => IN_ADDR,
            Side::Out => OUT_ADDR,
        };
        let tun = Tun::open(&TunConfig {
            name: Some(tun.to_owned()),
            address,
            prefix_len: 32,
            mtu: 1400,
            offload: Offload::IfAvailable,
        })
        .context("opening the relay's TUN device")?;
        if !tun.offloads() {
            bail!("the relay's TUN device has no offloads");
        }
        let link = if raw {
            Link::Raw(RawEsp::bind_protocol(
                Ipv4Addr::UNSPECIFIED.into(),
                RAW_PROTOCOL,
            )?)
        } else {
            let port = match side {
                Side::In => 0,
                Side::Out => peer.port(),
            };
            Link::Udp(UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port)))?)
        };
        match side {
            Side::In => relay_in(&tun, &link, peer).await,
            Side::Out => relay_out(&tun, &link).await,
        }
    })
}

fn ready() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    Ok(())
}

/// The hop between the two ends.
enum Link {
    Udp(UdpSocket),
    Raw(RawEsp),
}

async fn relay_in(tun: &Tun, link: &Link, peer: SocketAddr) -> anyhow::Result<()> {
    let mut batch = TunBatch::new(tun, TUN_BATCH, SLOT, 0, 0);
    let mut plan = GsoPlan::new(Outbox::CAPACITY);
    ready()?;
    loop {
        let n = tun.recv_batch(&mut batch).await?;
        let mut packets = batch
            .filled_mut()
            .take(n)
            .filter_map(|(range, slot)| {
                let slot: &[u8] = slot;
                slot.get(range)
            })
            .peekable();
        while packets.peek().is_some() {
            let mut out = Outbox::new();
            for packet in packets.by_ref().take(Outbox::CAPACITY) {
                out.push(peer, packet);
            }
            let sent = match link {
                Link::Udp(socket) => socket.send_datagrams(out.as_slice(), &mut plan).await,
                Link::Raw(socket) => socket.send_datagrams(out.as_slice()).await,
            };
            if let Err(e) = sent {
                tracing::debug!(%e, "relay send failed");
            }
        }
    }
}

async fn relay_out(tun: &Tun, link: &Link) -> anyhow::Result<()> {
    let mut batch = if let Link::Udp(socket) = link
        && socket.enable_gro()
    {
        RecvBatch::new(GRO_BATCH, GRO_SLOT, 0)
    } else {
        RecvBatch::new(TUN_BATCH, SLOT, 0)
    };
    let mut writer = tun.writer(TUN_WRITE_BATCH);
    ready()?;
    loop {
        let n = match link {
            Link::Udp(socket) => socket.recv_batch(&mut batch).await?,
            Link::Raw(socket) => socket.recv_batch(&mut batch).await?,
        };
        for (meta, slot) in batch.filled_mut().take(n) {
            if meta.truncated {
                continue;
            }
            for packet in meta.datagrams_mut(slot) {
                if writer.is_full()
                    && let Err(e) = tun.write_batch(&mut writer).await
                {
                    tracing::debug!(%e, "relay TUN write failed");
                }
                writer.push(packet);
            }
        }
        if !writer.is_empty()
            && let Err(e) = tun.write_batch(&mut writer).await
        {
            tracing::debug!(%e, "relay TUN write failed");
        }
    }
}

/// Both ends running in a topology, with the routes that send the blaster's packets for
/// `dst` through them; killed on drop.
#[derive(Debug)]
pub struct Relay {
    children: Vec<Child>,
}

impl Relay {
    /// Starts the LNS end, then the mobile end, each once it said `ready`, and routes `dst`
    /// (an intranet address) through them.
    ///
    /// # Errors
    /// When an end does not start or a route cannot be added.
    pub fn start(topo: &Topology, server: Ipv4Addr, dst: &str, raw: bool) -> anyhow::Result<Self> {
        let mut relay = Self {
            children: Vec::new(),
        };
        let (tun_in, tun_out) = (
            format!("{}ri", topo.prefix()),
            format!("{}ro", topo.prefix()),
        );
        let peer = SocketAddr::from((server, PORT));
        relay.spawn(topo, "lns", "out", &tun_out, peer, raw)?;
        ip(&[
            "-n",
            &topo.ns("lns"),
            "route",
            "add",
            &format!("{IN_ADDR}/32"),
            "dev",
            &tun_out,
        ])?;
        relay.spawn(topo, "mobile", "in", &tun_in, peer, raw)?;
        ip(&[
            "-n",
            &topo.ns("mobile"),
            "route",
            "add",
            &format!("{dst}/32"),
            "dev",
            &tun_in,
            "src",
            &IN_ADDR.to_string(),
        ])?;
        Ok(relay)
    }

    fn spawn(
        &mut self,
        topo: &Topology,
        role: &str,
        side: &str,
        tun: &str,
        peer: SocketAddr,
        raw: bool,
    ) -> anyhow::Result<()> {
        let me = std::env::current_exe()?;
        let mut command = topo.command(role, &me.to_string_lossy());
        command
            .args(["relay", "--side", side, "--tun", tun, "--peer"])
            .arg(peer.to_string());
        if raw {
            command.arg("--raw");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the relay's {side} end"))?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "the relay's {side} end did not start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        self.children.push(child);
        Ok(())
    }

    /// The processes' ids, for their CPU time.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
