//! The thin tokio driver of the client (STYLE.md §7): UDP 500/4500, the raw ESP socket, the TUN
//! device once an address is assigned, routes, the timer and Ctrl-C — moved through the
//! [`Engine`].

use crate::engine::{
    ClientEvent, DownReason, Engine, HEADROOM, Out, Route, Stage, TAILROOM, TRANSMIT_BUF_LEN,
};
use anyhow::Context as _;
use ipnet::Ipv4Net;
use netio::batch::{RecvBatch, SendBatch};
use netio::esp_socket::RawEsp;
use netio::route::RouteTable;
use netio::tun::{Tun, TunConfig};
use netio::udp::UdpSocket;
use rand_chacha::ChaCha20Rng;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

const SLOT: usize = 2048;
const BATCH: usize = 16;

/// What the driver sets up around the engine.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Our IKE address (ports 500 and 4500 are bound on its IP).
    pub local: SocketAddr,
    /// TUN device name.
    pub tun_name: String,
    /// Networks routed through the tunnel; empty means all traffic (the server stays outside).
    pub routes: Vec<Ipv4Net>,
    /// The server's address (pinned outside the tunnel when all traffic goes through it).
    pub server: IpAddr,
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

struct Io {
    ike: UdpSocket,
    natt: UdpSocket,
    esp: RawEsp,
}

/// Connects and keeps the tunnel up until Ctrl-C, SIGTERM or a failure.
///
/// # Errors
/// When sockets, the TUN device or routes cannot be set up.
pub async fn run(config: &DriverConfig, mut engine: Engine<ChaCha20Rng>) -> anyhow::Result<Ended> {
    let ike_addr = SocketAddr::new(config.local.ip(), 500);
    let natt_addr = SocketAddr::new(config.local.ip(), 4500);
    let io = Io {
        ike: UdpSocket::bind(ike_addr).with_context(|| format!("binding {ike_addr}"))?,
        natt: UdpSocket::bind(natt_addr).with_context(|| format!("binding {natt_addr}"))?,
        esp: RawEsp::bind(config.local.ip()).context("opening the raw ESP socket")?,
    };
    let mut tun: Option<Tun> = None;
    let mut routes = RouteTable::new().context("route table")?;
    let (mut ike_in, mut natt_in, mut esp_in) = (
        RecvBatch::new(BATCH, SLOT, HEADROOM),
        RecvBatch::new(BATCH, SLOT, HEADROOM),
        RecvBatch::new(BATCH, SLOT, HEADROOM),
    );
    let mut tun_buf = vec![0u8; SLOT];
    let mut out_buf = vec![0u8; TRANSMIT_BUF_LEN];
    let mut esp_out = SendBatch::new(4, SLOT);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stopping = false;
    let ended = loop {
        flush(&io, &mut engine, &mut out_buf, &mut esp_out).await;
        let mut finished = None;
        while let Some(event) = engine.poll_event() {
            match event {
                ClientEvent::IkeUp { suite, nat } => {
                    tracing::info!(?suite, nat = nat.encapsulate(), "IKE SA up")
                }
                ClientEvent::IpsecUp {
                    encapsulated,
                    transform,
                } => tracing::info!(encapsulated, ?transform, "IPsec SA up"),
                ClientEvent::L2tpUp => tracing::info!("L2TP tunnel and session up"),
                ClientEvent::Authenticated { method } => {
                    tracing::info!(method = method.name(), "authenticated")
                }
                ClientEvent::AddressAssigned { local, peer, dns } => {
                    tracing::info!(%local, %peer, ?dns, "address assigned");
                    let device = Tun::open(&TunConfig {
                        name: Some(config.tun_name.clone()),
                        address: local,
                        prefix_len: 32,
                        mtu: 1400,
                    })
                    .context("opening the TUN device")?;
                    // The PPP peer (the server's side of the link) is reachable through the link.
                    if let Ok(peer_net) = Ipv4Net::new(peer, 32) {
                        routes
                            .add_via_device(peer_net, device.name())
                            .context("route to the PPP peer")?;
                    }
                    if config.routes.is_empty() {
                        if let IpAddr::V4(server) = config.server {
                            routes
                                .pin_host_route(server)
                                .context("pinning the server route")?;
                        }
                        routes
                            .route_all_via(device.name())
                            .context("routing all traffic")?;
                    } else {
                        for net in &config.routes {
                            routes
                                .add_via_device(*net, device.name())
                                .with_context(|| format!("route {net}"))?;
                        }
                    }
                    tun = Some(device);
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
            match &tun {
                Some(t) => t.recv(&mut tun_buf[HEADROOM..SLOT - TAILROOM]).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = io.ike.recv_batch(&mut ike_in) => {
                for i in 0..r? {
                    let Some((meta, slot)) = ike_in.get_mut(i) else { continue };
                    let got = engine.handle_udp(now(), ike_addr, meta.from, &mut slot[meta.range.clone()]);
                    deliver(tun.as_ref(), got.ok().flatten().map(|r| r.start + meta.range.start..r.end + meta.range.start), slot).await;
                }
            }
            r = io.natt.recv_batch(&mut natt_in) => {
                for i in 0..r? {
                    let Some((meta, slot)) = natt_in.get_mut(i) else { continue };
                    let got = engine.handle_udp(now(), natt_addr, meta.from, &mut slot[meta.range.clone()]);
                    deliver(tun.as_ref(), got.ok().flatten().map(|r| r.start + meta.range.start..r.end + meta.range.start), slot).await;
                }
            }
            r = io.esp.recv_batch(&mut esp_in) => {
                for i in 0..r? {
                    let Some((meta, slot)) = esp_in.get_mut(i) else { continue };
                    let got = engine.handle_esp(now(), meta.from.ip(), &mut slot[meta.range.clone()]);
                    deliver(tun.as_ref(), got.ok().flatten().map(|r| r.start + meta.range.start..r.end + meta.range.start), slot).await;
                }
            }
            r = tun_recv => {
                let n = r?;
                if let Ok(out) = engine.handle_tun(&mut tun_buf, HEADROOM..HEADROOM + n) {
                    send(&io, &out, &tun_buf, &mut esp_out).await;
                }
            }
            () = sleep => engine.handle_timeout(now()),
            _ = tokio::signal::ctrl_c(), if !stopping => {
                tracing::info!("disconnecting");
                stopping = true;
                engine.disconnect(now());
            }
            _ = terminate.recv(), if !stopping => {
                stopping = true;
                engine.disconnect(now());
            }
        }
    };
    flush(&io, &mut engine, &mut out_buf, &mut esp_out).await;
    routes.restore();
    Ok(ended)
}

async fn flush(io: &Io, engine: &mut Engine<ChaCha20Rng>, buf: &mut [u8], esp: &mut SendBatch) {
    while let Some(out) = engine.poll_transmit(now(), buf) {
        send(io, &out, buf, esp).await;
    }
}

async fn deliver(tun: Option<&Tun>, packet: Option<std::ops::Range<usize>>, slot: &[u8]) {
    if let (Some(tun), Some(p)) = (tun, packet.and_then(|r| slot.get(r)))
        && let Err(e) = tun.send(p).await
    {
        tracing::debug!(%e, "TUN write failed");
    }
}

async fn send(io: &Io, out: &Out, buf: &[u8], esp: &mut SendBatch) {
    let Some(bytes) = buf.get(out.range.clone()) else {
        return;
    };
    let result = match out.route {
        Route::Udp {
            local,
            remote,
            non_esp_marker,
        } => {
            let socket = if local.port() == 4500 {
                &io.natt
            } else {
                &io.ike
            };
            if non_esp_marker {
                let mut marked = Vec::with_capacity(bytes.len() + 4);
                marked.extend_from_slice(&[0; 4]);
                marked.extend_from_slice(bytes);
                socket.send_to(&marked, remote).await
            } else {
                socket.send_to(bytes, remote).await
            }
        }
        Route::Esp { remote } => {
            esp.clear();
            if let Some(slot) = esp.next_slot().and_then(|s| s.get_mut(..bytes.len())) {
                slot.copy_from_slice(bytes);
                esp.push(SocketAddr::new(remote, 0), 0..bytes.len());
            }
            io.esp.send_batch(esp).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%e, "send failed");
    }
}
