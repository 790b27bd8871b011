//! The thin tokio driver (STYLE.md §7): owns the sockets, the TUN device and the timer, and
//! moves bytes between them and the [`Engine`]. One task; no locks; buffers allocated once.

use crate::config::Config;
use crate::engine::ipsec::{Engine, HEADROOM, TAILROOM};
use crate::engine::lns::LnsEvent;
use anyhow::Context as _;
use netio::batch::RecvBatch;
use netio::esp_socket::RawEsp;
use netio::route::RouteTable;
use netio::tun::{Offload, Tun, TunBatch, TunConfig};
use netio::udp::UdpSocket;
use rand_chacha::ChaCha20Rng;
use std::net::SocketAddr;
use std::time::Instant;

/// How long a clean stop waits for the StopCCNs to be acknowledged before deleting the IKE
/// SAs (one L2TP retransmission interval).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// Slot size of every packet buffer: an MTU-sized packet plus room for every header we add.
const SLOT: usize = 2048;
/// Datagrams received per system call.
const BATCH: usize = 32;
/// Slot size on the UDP 4500 socket when the kernel coalesces datagrams (`UDP_GRO`): a whole
/// coalesced buffer (up to 64 KiB) plus the headroom.
const GRO_SLOT: usize = 65_536 + HEADROOM;
/// GRO buffers received per system call (16 × 64 KiB).
const GRO_BATCH: usize = 16;
/// Decapsulated packets written to TUN in one batch (coalesced per flow with offloads).
const TUN_WRITE_BATCH: usize = 64;

mod data;
mod dh;
use data::{Arrival, DataPath, MARKER_ROOM};
use dh::DhWorkers;

/// The sockets and the device.
struct Io {
    ike: UdpSocket,
    natt: UdpSocket,
    /// UDP 1701, only when plain L2TP is allowed.
    l2tp: Option<UdpSocket>,
    l2tp_addr: SocketAddr,
    esp: RawEsp,
    tun: Tun,
    ike_addr: SocketAddr,
    natt_addr: SocketAddr,
    /// The RADIUS client's socket (an ephemeral port), when RADIUS is configured.
    radius: Option<UdpSocket>,
    /// Where Disconnect/CoA-Requests arrive (RFC 5176), when configured.
    dae: Option<UdpSocket>,
}

/// Largest RADIUS packet (RFC 2865 §3).
const RADIUS_SLOT: usize = 4096;
/// How long a clean stop waits for the accounting records to be answered.
const ACCOUNTING_OFF_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs the server until Ctrl-C or SIGTERM.
///
/// # Errors
/// When a socket, the TUN device or a route cannot be set up.
pub async fn run(config: &Config, mut engine: Engine<ChaCha20Rng>) -> anyhow::Result<()> {
    // First: refuse to start over another running server's control socket.
    let mut control = crate::control::Control::bind(config).context("control socket")?;
    let tun = Tun::open(&TunConfig {
        name: Some(config.tun_name.clone()),
        address: config.local_address,
        prefix_len: 32,
        mtu: config.tun_mtu,
        offload: Offload::IfAvailable,
    })
    .context("opening the TUN device (needs CAP_NET_ADMIN)")?;
    let mut routes = RouteTable::new().context("route table")?;
    routes
        .add_via_device(config.pool_net(), tun.name())
        .context("routing the pool to the TUN device")?;
    if config.ip_forward {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("enabling IPv4 forwarding")?;
    }
    let ike_addr = SocketAddr::new(config.listen, 500);
    let natt_addr = SocketAddr::new(config.listen, 4500);
    let l2tp_addr = SocketAddr::new(config.listen, 1701);
    let l2tp = if config.allow_plain_l2tp {
        tracing::warn!("plain L2TP on UDP 1701 is allowed: those sessions are NOT encrypted");
        Some(UdpSocket::bind(l2tp_addr).with_context(|| format!("binding {l2tp_addr}"))?)
    } else {
        None
    };
    let radius = match &config.radius {
        Some(r) => {
            let addr = SocketAddr::new(r.source, 0);
            Some(
                UdpSocket::bind(addr)
                    .with_context(|| format!("binding the RADIUS socket {addr}"))?,
            )
        }
        None => None,
    };
    let dae = match config.radius.as_ref().and_then(|r| r.dae_listen) {
        Some(addr) => Some(
            UdpSocket::bind(addr)
                .with_context(|| format!("binding the Disconnect/CoA socket {addr}"))?,
        ),
        None => None,
    };
    let io = Io {
        ike: UdpSocket::bind(ike_addr).with_context(|| format!("binding {ike_addr}"))?,
        natt: UdpSocket::bind(natt_addr).with_context(|| format!("binding {natt_addr}"))?,
        l2tp,
        l2tp_addr,
        esp: RawEsp::bind(config.listen).context("opening the raw ESP socket")?,
        tun,
        ike_addr,
        natt_addr,
        radius,
        dae,
    };
    if let Some(r) = &config.radius {
        let names: Vec<String> = r.servers.iter().map(|s| s.address.to_string()).collect();
        tracing::info!(servers = %names.join(","), order = ?r.order, dae = ?r.dae_listen, "RADIUS client ready");
    }
    tracing::info!(listen = %config.listen, tun = io.tun.name(), pool = %config.pool_net(), "l2sec-server running");
    if let Some(path) = &config.keylog_file {
        tracing::warn!(path = %path.display(), "ISAKMP and ESP keys are written to a key log (FILE and FILE.ikev1): anyone who reads them can decrypt the traffic");
    }
    let mut keylog = config
        .keylog_file
        .as_deref()
        .map(crate::keylog::KeyLog::open)
        .transpose()?;
    // The metrics address is bound while we still may; its thread starts after the drop,
    // since capabilities are per thread and the drop clears only the threads that exist.
    let observe = crate::metrics::Observer::bind(config.metrics_listen)?;
    // Everything that needs root is open: give it up before the first packet is read.
    crate::privileges::drop_root(config)?;
    let observe = observe.start()?;
    // Started after the drop too: the workers hold no privilege.
    let mut dh = DhWorkers::start(config.dh_threads).context("Diffie-Hellman workers")?;
    engine.offload_dh();
    // The crypto threads too: they start unprivileged.
    let pool = crate::parallel::CryptoPool::new(config.crypto_threads)
        .context("starting the ESP crypto threads")?;
    tracing::info!(threads = pool.threads(), "ESP crypto threads");
    let data = DataPath::new(io.tun.writer(TUN_WRITE_BATCH), pool);
    let result = serve(
        &io,
        &mut engine,
        keylog.as_mut(),
        observe,
        &mut control,
        &mut dh,
        data,
    )
    .await;
    routes.restore();
    result
}

async fn serve(
    io: &Io,
    engine: &mut Engine<ChaCha20Rng>,
    mut keylog: Option<&mut crate::keylog::KeyLog>,
    mut observe: crate::metrics::Observer,
    control: &mut crate::control::Control,
    dh: &mut DhWorkers,
    mut data: DataPath,
) -> anyhow::Result<()> {
    let mut ike_in = RecvBatch::new(BATCH, SLOT, HEADROOM);
    let mut natt_in = if io.natt.enable_gro() {
        RecvBatch::new(GRO_BATCH, GRO_SLOT, HEADROOM)
    } else {
        RecvBatch::new(BATCH, SLOT, HEADROOM)
    };
    let mut esp_in = RecvBatch::new(BATCH, SLOT, HEADROOM);
    let mut l2tp_in = RecvBatch::new(BATCH, SLOT, HEADROOM);
    let mut tun_in = TunBatch::new(&io.tun, BATCH, SLOT, HEADROOM, TAILROOM);
    // The engine writes control datagrams after MARKER_ROOM bytes, where the non-ESP marker
    // goes when one is needed.
    let mut out_buf = vec![0u8; SLOT + MARKER_ROOM];
    let mut radius_in = RecvBatch::new(8, RADIUS_SLOT, 0);
    let mut dae_in = RecvBatch::new(8, RADIUS_SLOT, 0);
    let mut radius_out = vec![0u8; RADIUS_SLOT];
    #[expect(
        clippy::disallowed_methods,
        reason = "the driver owns the clocks: the wall clock once, for Event-Timestamp"
    )]
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    engine.lns_mut().set_wall_clock(now(), unix);
    engine.lns_mut().accounting_on(now());
    send_radius(io, engine, &mut radius_out).await;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Set at the first Ctrl-C / SIGTERM when tunnels were open: until then their StopCCNs may
    // be acknowledged; a second signal stops at once.
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let deadline = engine.poll_timeout().map(tokio::time::Instant::from_std);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = io.ike.recv_batch(&mut ike_in) => {
                data.open_and_deliver(io, engine, &mut ike_in, r?, Arrival::Udp(io.ike_addr)).await;
            }
            r = io.natt.recv_batch(&mut natt_in) => {
                data.open_and_deliver(io, engine, &mut natt_in, r?, Arrival::Udp(io.natt_addr)).await;
            }
            r = async { match &io.l2tp { Some(s) => s.recv_batch(&mut l2tp_in).await, None => std::future::pending().await } } => {
                data.open_and_deliver(io, engine, &mut l2tp_in, r?, Arrival::Udp(io.l2tp_addr)).await;
            }
            r = io.esp.recv_batch(&mut esp_in) => {
                // IKE waiting on UDP 500 goes first: a client sends Quick Mode message 3 and
                // at once its first ESP packet on another socket, and when both wait here that
                // packet must find the SA message 3 installs (else it is dropped and its L2TP
                // message comes again a second later). One batch per ESP batch: a flood on
                // port 500 cannot starve ESP.
                let ike = io.ike.try_recv_batch(&mut ike_in)?;
                if ike > 0 {
                    data.open_and_deliver(io, engine, &mut ike_in, ike, Arrival::Udp(io.ike_addr)).await;
                }
                data.open_and_deliver(io, engine, &mut esp_in, r?, Arrival::Esp).await;
            }
            r = io.tun.recv_batch(&mut tun_in) => {
                let n = r?;
                data.seal_and_send(io, engine, &mut tun_in, n).await;
            }
            r = async { match &io.radius { Some(s) => s.recv_batch(&mut radius_in).await, None => std::future::pending().await } } => {
                let n = r?;
                for i in 0..n {
                    let Some((meta, slot)) = radius_in.get_mut(i) else { continue };
                    match engine.lns_mut().handle_radius(now(), meta.from, &slot[meta.range.clone()]) {
                        // Not from a configured server: noise, or a flood; not worth a warning.
                        Err(e @ radius::Discard::UnknownSource) => tracing::debug!(from = %meta.from, %e, "RADIUS datagram dropped"),
                        Err(e) => tracing::warn!(from = %meta.from, %e, "RADIUS answer dropped"),
                        Ok(()) => {}
                    }
                }
            }
            r = async { match &io.dae { Some(s) => s.recv_batch(&mut dae_in).await, None => std::future::pending().await } } => {
                let n = r?;
                for i in 0..n {
                    let Some((meta, slot)) = dae_in.get_mut(i) else { continue };
                    let datagram = slot[meta.range.clone()].to_vec();
                    if let Some(len) = engine.lns_mut().handle_dae(now(), meta.from, &datagram, &mut radius_out)
                        && let (Some(s), Some(answer)) = (&io.dae, radius_out.get(..len))
                        && let Err(e) = s.send_to(answer, meta.from).await
                    {
                        tracing::debug!(%e, "Disconnect/CoA answer not sent");
                    }
                }
            }
            () = sleep => engine.handle_timeout(now()),
            Some(done) = dh.recv() => {
                engine.handle_dh_done(now(), done);
                while let Some(done) = dh.try_recv() {
                    engine.handle_dh_done(now(), done);
                }
            }
            Some(job) = control.recv() => crate::control::answer(engine, now(), job),
            _ = async { match stopping { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => break,
            _ = async { tokio::select! { r = tokio::signal::ctrl_c() => r.ok(), r = terminate.recv() => r } } => {
                if stopping.is_some() {
                    break;
                }
                tracing::info!(tunnels = engine.lns().tunnels(), "stopping: every tunnel gets StopCCN, then every IKE SA a Delete");
                if engine.begin_shutdown(now()) {
                    stopping = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                } else {
                    break;
                }
            }
        }
        while let Some(job) = engine.poll_dh_job() {
            dh.submit(job);
        }
        flush_control(io, engine, &mut out_buf).await;
        send_radius(io, engine, &mut radius_out).await;
        while let Some(event) = engine.poll_event(now()) {
            log(&event);
        }
        observe.turn(now(), engine.snapshot());
        if let Some(k) = keylog.as_deref_mut() {
            k.write(engine.take_keylog());
        }
    }
    engine.finish_shutdown(now());
    flush_control(io, engine, &mut out_buf).await;
    while let Some(event) = engine.poll_event(now()) {
        log(&event);
    }
    tracing::info!("shutting down");
    if engine.lns().has_radius() {
        engine.lns_mut().accounting_off(now());
        drain_radius(io, engine, &mut radius_in, &mut radius_out).await;
    }
    Ok(())
}

/// Sends what the RADIUS client has queued.
async fn send_radius(io: &Io, engine: &mut Engine<ChaCha20Rng>, buf: &mut [u8]) {
    let Some(socket) = &io.radius else {
        return;
    };
    while let Some((to, len)) = engine.lns_mut().poll_radius_transmit(buf) {
        if let Some(datagram) = buf.get(..len)
            && let Err(e) = socket.send_to(datagram, to).await
        {
            tracing::debug!(%to, %e, "RADIUS send failed");
        }
    }
}

/// At a clean stop: lets the Stop and Accounting-Off records be answered, for at most
/// [`ACCOUNTING_OFF_WAIT`].
async fn drain_radius(
    io: &Io,
    engine: &mut Engine<ChaCha20Rng>,
    rx: &mut RecvBatch,
    tx: &mut [u8],
) {
    let Some(socket) = &io.radius else {
        return;
    };
    let until = tokio::time::Instant::now() + ACCOUNTING_OFF_WAIT;
    send_radius(io, engine, tx).await;
    while engine.lns().radius_pending() > 0 && tokio::time::Instant::now() < until {
        let wake = engine
            .lns()
            .poll_timeout()
            .map_or(until, |t| tokio::time::Instant::from_std(t).min(until));
        tokio::select! {
            r = socket.recv_batch(rx) => {
                let Ok(n) = r else { break };
                for i in 0..n {
                    let Some((meta, slot)) = rx.get_mut(i) else { continue };
                    let _ = engine.lns_mut().handle_radius(now(), meta.from, &slot[meta.range.clone()]);
                }
            }
            () = tokio::time::sleep_until(wake) => engine.lns_mut().handle_timeout(now()),
        }
        send_radius(io, engine, tx).await;
    }
    let left = engine.lns().radius_pending();
    if left > 0 {
        tracing::warn!(left, "RADIUS accounting records unanswered at shutdown");
    }
}

/// Sends every control datagram the engine has queued.
async fn flush_control(io: &Io, engine: &mut Engine<ChaCha20Rng>, buf: &mut [u8]) {
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

fn log(event: &LnsEvent) {
    match event {
        LnsEvent::Connected {
            peer,
            user,
            address,
            method,
        } => {
            tracing::info!(%peer, %user, %address, method = method.name(), "user connected");
        }
        LnsEvent::Disconnected {
            peer,
            user,
            address,
            reason,
            duration,
            bytes,
        } => {
            let duration_s = duration.map(|d| d.as_secs());
            tracing::info!(%peer, user = user.as_deref().unwrap_or("-"), address = ?address, ?reason, duration_s, bytes_in = bytes.0, bytes_out = bytes.1, "user disconnected");
        }
        LnsEvent::AddressRefused { peer, user, why } => {
            tracing::warn!(%peer, %user, why, "no address for the user");
        }
        LnsEvent::AuthFailed { peer, user, why } => {
            tracing::warn!(%peer, %user, why, "authentication failed");
        }
        LnsEvent::Radius { what } => tracing::info!("{what}"),
    }
}

/// The address a datagram was sent to: the socket's port with the destination address the
/// kernel reported (`IP_PKTINFO`). With a wildcard listen address the bound address says
/// nothing, and IKE needs the real one for its NAT-D hashes (else every peer looks NATed and
/// plain ESP is never chosen) and for its own ID.
fn arrived_at(bound: SocketAddr, local: Option<std::net::IpAddr>) -> SocketAddr {
    match local {
        Some(ip) if bound.ip().is_unspecified() => SocketAddr::new(ip, bound.port()),
        _ => bound,
    }
}
