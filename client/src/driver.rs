//! The thin tokio driver of the client (STYLE.md §7): UDP 500/4500, the raw ESP socket, the TUN
//! device once an address is assigned, routes and DNS, the timer and the signals — moved through
//! the [`Engine`]. Progress and the state file are kept by a [`Tracker`].

use crate::dns::{self, Applied};
use crate::engine::{ClientEvent, DownReason, Engine, HEADROOM, Stage, TAILROOM, TRANSMIT_BUF_LEN};
use crate::status::Tracker;
use anyhow::Context as _;
use ipnet::Ipv4Net;
use netio::batch::RecvBatch;
use netio::esp_socket::RawEsp;
use netio::route::RouteTable;
use netio::tun::{Offload, Tun, TunBatch, TunConfig};
use netio::udp::UdpSocket;
use rand_chacha::ChaCha20Rng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal, SignalKind, signal};

const SLOT: usize = 2048;
const BATCH: usize = 32;
/// Slot size on the UDP 4500 socket when the kernel coalesces datagrams (`UDP_GRO`).
const GRO_SLOT: usize = 65_536 + HEADROOM;
/// GRO buffers received per system call.
const GRO_BATCH: usize = 16;

mod data;
use data::{Arrival, DataPath, MARKER_ROOM};
/// How often traffic counters reach the state file.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// What the driver sets up around the engine.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Our IKE address (ports 500 and 4500 are bound on its IP).
    pub local: SocketAddr,
    /// TUN device name.
    pub tun_name: String,
    /// Networks routed through the tunnel.
    pub routes: Vec<Ipv4Net>,
    /// All traffic through the tunnel, the server's own address kept outside by a host route
    /// through the path that reaches it now.
    pub route_all: bool,
    /// The server's address.
    pub server: IpAddr,
    /// Apply the DNS servers the server offers, and how; `None` leaves DNS alone.
    pub dns: Option<dns::Settings>,
    /// The PPP user name (for the progress display).
    pub user: String,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The stage it ended in.
    pub stage: Stage,
    /// Why.
    pub reason: DownReason,
}

/// SIGINT (Ctrl-C) and SIGTERM (`l2sec-client disconnect`, systemd), registered once for the
/// whole process so that none is lost between connection attempts.
#[derive(Debug)]
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Installs the handlers.
    ///
    /// # Errors
    /// When the runtime cannot register them.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either (cancellation-safe).
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

struct Io {
    ike: UdpSocket,
    natt: UdpSocket,
    esp: RawEsp,
}

/// What the driver changed on the system for one connection; undone by [`Net::undo`].
struct Net {
    tun: Option<Tun>,
    routes: RouteTable,
    dns: Option<Applied>,
}

impl Net {
    fn undo(&mut self, tracker: &mut Tracker) {
        if let Some(applied) = self.dns.take() {
            match dns::restore(&applied) {
                Ok(()) => tracker.set_dns_restore(None),
                Err(e) => tracing::warn!("DNS: {e}"),
            }
        }
        self.routes.restore();
        if tracker.state().host_route.is_some() {
            tracker.set_host_route(None);
        }
        // Closing the TUN device removes the routes through it, whatever happened above.
        self.tun = None;
    }
}

/// Connects and keeps the tunnel up until a signal or a failure, then undoes routes and DNS.
///
/// # Errors
/// When sockets, the TUN device or routes cannot be set up.
pub async fn run(
    config: &DriverConfig,
    mut engine: Engine<ChaCha20Rng>,
    tracker: &mut Tracker,
    signals: &mut Signals,
) -> anyhow::Result<Ended> {
    let mut net = Net {
        tun: None,
        routes: RouteTable::new().context("route table")?,
        dns: None,
    };
    let result = drive(config, &mut engine, &mut net, tracker, signals).await;
    net.undo(tracker);
    result
}

async fn drive(
    config: &DriverConfig,
    engine: &mut Engine<ChaCha20Rng>,
    net: &mut Net,
    tracker: &mut Tracker,
    signals: &mut Signals,
) -> anyhow::Result<Ended> {
    let ike_addr = SocketAddr::new(config.local.ip(), 500);
    let natt_addr = SocketAddr::new(config.local.ip(), 4500);
    let io = Io {
        ike: UdpSocket::bind(ike_addr).with_context(|| format!("binding {ike_addr}"))?,
        natt: UdpSocket::bind(natt_addr).with_context(|| format!("binding {natt_addr}"))?,
        esp: RawEsp::bind(config.local.ip()).context("opening the raw ESP socket")?,
    };
    let natt_in = if io.natt.enable_gro() {
        RecvBatch::new(GRO_BATCH, GRO_SLOT, HEADROOM)
    } else {
        RecvBatch::new(BATCH, SLOT, HEADROOM)
    };
    let (mut ike_in, mut natt_in, mut esp_in) = (
        RecvBatch::new(BATCH, SLOT, HEADROOM),
        natt_in,
        RecvBatch::new(BATCH, SLOT, HEADROOM),
    );
    // The TUN side is sized when the device opens (its batches depend on its offloads).
    let mut tun_in: Option<TunBatch> = None;
    let mut data = DataPath::new();
    // Control datagrams are written after MARKER_ROOM bytes, where the non-ESP marker goes.
    let mut out_buf = vec![0u8; TRANSMIT_BUF_LEN + MARKER_ROOM];
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    let mut failure = None;
    let ended = loop {
        flush(&io, engine, &mut out_buf).await;
        let mut finished = None;
        while let Some(event) = engine.poll_event() {
            tracker.event(&event, &config.user);
            match event {
                ClientEvent::IkeUp { suite, nat } => {
                    tracing::info!(?suite, nat = nat.encapsulate(), "IKE SA up");
                }
                ClientEvent::IpsecUp {
                    encapsulated,
                    transform,
                } => tracing::info!(encapsulated, ?transform, "IPsec SA up"),
                ClientEvent::L2tpUp => tracing::info!("L2TP tunnel and session up"),
                ClientEvent::Authenticated { method } => {
                    tracing::info!(method = method.name(), "authenticated");
                }
                ClientEvent::AddressAssigned { local, peer, dns } => {
                    tracing::info!(%local, %peer, ?dns, "address assigned");
                    let servers: Vec<Ipv4Addr> = dns.iter().flatten().copied().collect();
                    let opened = set_up(config, net, tracker, local, peer, &servers);
                    if let (Ok(()), Some(tun)) = (&opened, &net.tun) {
                        let batch = TunBatch::new(tun, BATCH, SLOT, HEADROOM, TAILROOM);
                        data.tun_opened(tun, &batch);
                        tun_in = Some(batch);
                    }
                    if let Err(e) = opened {
                        // Tell the server we are leaving rather than vanish; report `e` after.
                        tracing::error!("{e:#}; disconnecting");
                        failure = Some(e);
                        stopping = true;
                        tracker.disconnecting();
                        engine.disconnect(now());
                    }
                }
                ClientEvent::Down { stage, reason } => finished = Some(Ended { stage, reason }),
            }
        }
        if let Some(ended) = finished {
            break ended;
        }
        let deadline = engine.poll_timeout().map(tokio::time::Instant::from_std);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let tun_recv = async {
            match (&net.tun, tun_in.as_mut()) {
                (Some(t), Some(batch)) => t.recv_batch(batch).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            r = io.ike.recv_batch(&mut ike_in) => {
                data.open_and_deliver(net.tun.as_ref(), engine, &mut ike_in, (r?, Arrival::Udp(ike_addr)), tracker).await;
            }
            r = io.natt.recv_batch(&mut natt_in) => {
                data.open_and_deliver(net.tun.as_ref(), engine, &mut natt_in, (r?, Arrival::Udp(natt_addr)), tracker).await;
            }
            r = io.esp.recv_batch(&mut esp_in) => {
                // IKE waiting on UDP 500 first: the server's Quick Mode message 3 (a rekey it
                // started) must install the SA its next ESP packets use (see the server's loop).
                let ike = io.ike.try_recv_batch(&mut ike_in)?;
                if ike > 0 {
                    data.open_and_deliver(net.tun.as_ref(), engine, &mut ike_in, (ike, Arrival::Udp(ike_addr)), tracker).await;
                }
                data.open_and_deliver(net.tun.as_ref(), engine, &mut esp_in, (r?, Arrival::Esp), tracker).await;
            }
            r = tun_recv => {
                let n = r?;
                if let Some(batch) = tun_in.as_mut() {
                    data.seal_and_send(&io, engine, batch, n, tracker).await;
                }
            }
            () = sleep => engine.handle_timeout(now()),
            _ = status_tick.tick() => tracker.flush(),
            () = signals.recv(), if !stopping => {
                tracing::info!("disconnecting");
                stopping = true;
                tracker.disconnecting();
                engine.disconnect(now());
            }
        }
    };
    flush(&io, engine, &mut out_buf).await;
    match failure {
        Some(e) => Err(e),
        None => Ok(ended),
    }
}

/// The address is assigned: opens the TUN device, installs routes and DNS.
fn set_up(
    config: &DriverConfig,
    net: &mut Net,
    tracker: &mut Tracker,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    dns_servers: &[Ipv4Addr],
) -> anyhow::Result<()> {
    let device = Tun::open(&TunConfig {
        name: Some(config.tun_name.clone()),
        address: local,
        prefix_len: 32,
        mtu: 1400,
        offload: Offload::IfAvailable,
    })
    .context("opening the TUN device")?;
    let dev = device.name().to_owned();
    net.tun = Some(device);
    let routes = &mut net.routes;
    // The PPP peer (the server's side of the link) is reachable through the link.
    if let Ok(peer_net) = Ipv4Net::new(peer, 32) {
        routes
            .add_via_device(peer_net, &dev)
            .context("route to the PPP peer")?;
    }
    let mut shown = Vec::new();
    if config.route_all {
        if let IpAddr::V4(server) = config.server {
            // Recorded first: a crash right after still leaves a way to remove it.
            tracker.set_host_route(Some(server));
            routes
                .pin_host_route(server)
                .context("pinning the server route")?;
        }
        routes.route_all_via(&dev).context("routing all traffic")?;
        shown.push("0.0.0.0/0".to_owned());
    }
    for net in &config.routes {
        routes
            .add_via_device(*net, &dev)
            .with_context(|| format!("route {net}"))?;
        shown.push(net.to_string());
    }
    let mut applied = None;
    match (&config.dns, dns_servers.is_empty()) {
        (Some(settings), false) => {
            match dns::apply(settings, &dev, dns_servers, &mut |c| {
                tracker.set_dns_restore(c)
            }) {
                Ok(a) => {
                    applied = Some(a.describe());
                    net.dns = Some(a);
                }
                Err(e) => tracing::warn!("DNS not applied: {e}"),
            }
        }
        (Some(_), true) => tracing::info!("the server offered no DNS servers"),
        (None, _) => {}
    }
    tracker.connected(&dev, shown, applied);
    Ok(())
}

/// Removes a host route to `server` left behind by a client that died (`ip route del`).
pub fn remove_host_route(server: Ipv4Addr) {
    let _ = std::process::Command::new("ip")
        .args(["route", "del", &format!("{server}/32")])
        .output();
}

/// Sends every datagram the engine has queued (control traffic, keepalives).
async fn flush(io: &Io, engine: &mut Engine<ChaCha20Rng>, buf: &mut [u8]) {
    loop {
        let Some(space) = buf.get_mut(MARKER_ROOM..) else {
            return;
        };
        let Some(mut out) = engine.poll_transmit(now(), space) else {
            return;
        };
        out.range = out.range.start + MARKER_ROOM..out.range.end + MARKER_ROOM;
        data::send_control(io, &out, buf).await;
    }
}
