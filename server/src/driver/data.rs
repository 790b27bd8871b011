//! The packet loop's batches (STYLE.md §6.2): a whole TUN batch is sealed in place in its
//! slots and leaves with one `sendmmsg` per socket (runs of equal-sized datagrams to one peer
//! as single UDP GSO messages on 4500); a received batch is opened in place, GRO buffers split
//! by their segment size, and what is for the intranet written to TUN in one batch (coalesced
//! per flow when the device has offloads). The engine takes up to [`CHUNK`] packets at a time
//! and spreads their ESP crypto over the [`CryptoPool`]. Nothing here allocates; packet bytes
//! are copied only where the TUN offload interface needs them contiguous (see `netio::tun`).

use super::{Io, arrived_at, now};
use crate::engine::ipsec::{Engine, Out, Route, RxJob, TunJob};
use crate::parallel::CryptoPool;
use netio::batch::{Outbox, RecvBatch};
use netio::gso::GsoPlan;
use netio::sealed::Sealed;
use netio::tun::{TunBatch, TunWriter};
use rand_chacha::ChaCha20Rng;
use std::net::SocketAddr;

/// How a received batch reaches the engine.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arrival {
    /// UDP on this bound address (500, 4500 or 1701).
    Udp(SocketAddr),
    /// IP protocol 50.
    Esp,
}

pub(super) use netio::sealed::MARKER_ROOM;

/// Packets handed to the engine at once (their jobs live on the stack): as many as one
/// `sendmmsg` takes.
const CHUNK: usize = Outbox::CAPACITY;

/// Scratch space of the data path, allocated once, and the crypto threads.
pub(super) struct DataPath {
    plan: GsoPlan,
    /// Decapsulated packets on their way to TUN (used when the device has offloads).
    to_tun: TunWriter,
    pool: CryptoPool,
}

impl DataPath {
    /// `to_tun`: the TUN device's writer.
    pub(super) fn new(to_tun: TunWriter, pool: CryptoPool) -> Self {
        Self {
            plan: GsoPlan::new(Outbox::CAPACITY),
            to_tun,
            pool,
        }
    }

    /// Seals every packet of a TUN batch in its own slot and sends them, one `sendmmsg` per
    /// socket for each [`CHUNK`] packets.
    pub(super) async fn seal_and_send(
        &mut self,
        io: &Io,
        engine: &mut Engine<ChaCha20Rng>,
        batch: &mut TunBatch,
        n: usize,
    ) {
        let mut slots = batch.filled_mut().take(n);
        loop {
            let mut jobs: [TunJob<'_>; CHUNK] = std::array::from_fn(|_| TunJob::default());
            let mut count = 0;
            for (job, (range, slot)) in jobs.iter_mut().zip(slots.by_ref()) {
                *job = TunJob::new(slot, range);
                count += 1;
            }
            let Some(jobs) = jobs.get_mut(..count).filter(|j| !j.is_empty()) else {
                return;
            };
            engine.handle_tun_batch(&self.pool, jobs);
            let sealed = jobs.iter().filter_map(|job| {
                let out = job.result().as_ref().ok()?;
                let to = sealed_to(out.route)?;
                Some((
                    to,
                    source(io, out.route),
                    job.slot().get(out.range.clone())?,
                ))
            });
            netio::sealed::send_sealed(&io.natt, &io.esp, &mut self.plan, sealed).await;
            // Plain L2TP (1701): rare and only when allowed; one send each.
            for job in jobs.iter() {
                if let Ok(out) = job.result()
                    && sealed_to(out.route).is_none()
                    && let Some(bytes) = job.slot().get(out.range.clone())
                {
                    send_one(io, out, bytes).await;
                }
            }
            if count < CHUNK {
                return;
            }
        }
    }

    /// Feeds every datagram of a received batch (each GRO segment on its own) to the engine
    /// in place, [`CHUNK`] at a time, and writes what is for the intranet to TUN.
    pub(super) async fn open_and_deliver(
        &mut self,
        io: &Io,
        engine: &mut Engine<ChaCha20Rng>,
        batch: &mut RecvBatch,
        n: usize,
        arrival: Arrival,
    ) {
        let mut datagrams = batch
            .filled_mut()
            .take(n)
            .filter(|(meta, _)| !meta.truncated)
            .flat_map(move |(meta, slot)| {
                let from = meta.from;
                let local = meta.local;
                meta.datagrams_mut(slot).map(move |bytes| match arrival {
                    Arrival::Udp(bound) => RxJob::udp(bytes, arrived_at(bound, local), from),
                    Arrival::Esp => RxJob::esp(bytes, from.ip()),
                })
            });
        loop {
            let mut jobs: [RxJob<'_>; CHUNK] = std::array::from_fn(|_| RxJob::default());
            let mut count = 0;
            for (job, next) in jobs.iter_mut().zip(datagrams.by_ref()) {
                *job = next;
                count += 1;
            }
            let Some(jobs) = jobs.get_mut(..count).filter(|j| !j.is_empty()) else {
                break;
            };
            engine.handle_rx_batch(now(), &self.pool, jobs);
            for job in jobs.iter() {
                if let Some(packet) = job.delivered() {
                    self.write(io, packet).await;
                }
            }
            if count < CHUNK {
                break;
            }
        }
        self.flush_tun(io).await;
    }

    /// One packet for TUN: queued for the batch write with offloads, written now without.
    async fn write(&mut self, io: &Io, packet: &[u8]) {
        if !io.tun.offloads() {
            if let Err(e) = io.tun.send(packet).await {
                tracing::debug!(%e, "TUN write failed");
            }
            return;
        }
        if self.to_tun.is_full() {
            self.flush_tun(io).await;
        }
        self.to_tun.push(packet);
    }

    async fn flush_tun(&mut self, io: &Io) {
        if !self.to_tun.is_empty()
            && let Err(e) = io.tun.write_batch(&mut self.to_tun).await
        {
            tracing::debug!(%e, "TUN write failed");
        }
    }
}

/// Where a sealed data packet goes; `None` for plain UDP (sent one by one).
fn sealed_to(route: Route) -> Option<Sealed> {
    match route {
        Route::Udp { local, remote, .. } if local.port() == 4500 => Some(Sealed::NatT(remote)),
        Route::Esp { remote, .. } => Some(Sealed::Esp(remote)),
        Route::Udp { .. } => None,
    }
}

/// The address a datagram must leave from: on sockets bound to the wildcard address, ours as
/// the peer knows it (the kernel's route lookup would pick the outgoing interface's primary
/// address, and a peer that talks to another of ours drops what comes from it); `None` when
/// the sockets are bound to one address, which is then the source anyway.
fn source(io: &Io, route: Route) -> Option<std::net::IpAddr> {
    let local = match route {
        Route::Udp { local, .. } => local.ip(),
        Route::Esp { local, .. } => local,
    };
    (io.ike_addr.ip().is_unspecified() && !local.is_unspecified()).then_some(local)
}

/// Sends one datagram the engine wrote into `buf` (control traffic, plain L2TP). IKE on port
/// 4500 needs the 4-byte non-ESP marker in front (RFC 3948 §2.2): the caller leaves
/// [`MARKER_ROOM`] bytes free before the engine's output, and the marker is written there.
pub(super) async fn send_control(io: &Io, out: &Out, buf: &mut [u8]) {
    let range = match out.route {
        Route::Udp {
            non_esp_marker: true,
            ..
        } => {
            let Some(range) = netio::sealed::with_non_esp_marker(buf, out.range.clone()) else {
                return;
            };
            range
        }
        Route::Udp { .. } | Route::Esp { .. } => out.range.clone(),
    };
    if let Some(bytes) = buf.get(range) {
        send_one(io, out, bytes).await;
    }
}

async fn send_one(io: &Io, out: &Out, bytes: &[u8]) {
    let from = source(io, out.route);
    let result = match out.route {
        Route::Udp { local, remote, .. } => {
            let socket = match (local.port(), &io.l2tp) {
                (4500, _) => &io.natt,
                (1701, Some(l2tp)) => l2tp,
                _ => &io.ike,
            };
            socket.send_from(bytes, from, remote).await
        }
        Route::Esp { remote, .. } => {
            let mut one = Outbox::new();
            one.push_from(from, SocketAddr::new(remote, 0), bytes);
            io.esp.send_datagrams(one.as_slice()).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%e, "send failed");
    }
}
