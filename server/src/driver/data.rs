//! The packet loop's batches (STYLE.md §6.2): a whole TUN batch is sealed in place in its
//! slots and leaves with one `sendmmsg` per socket (runs of equal-sized datagrams to one peer
//! as single UDP GSO messages on 4500); a received batch is opened in place, GRO buffers split
//! by their segment size, and what is for the intranet written to TUN in one batch (coalesced
//! per flow when the device has offloads). Nothing here allocates; packet bytes are copied
//! only where the TUN offload interface needs them contiguous (see `netio::tun`).

use super::{Io, arrived_at, now};
use crate::engine::ipsec::{Engine, Out, Route};
use netio::batch::{Outbox, RecvBatch};
use netio::gso::GsoPlan;
use netio::sealed::Sealed;
use netio::tun::{TunBatch, TunWriter};
use rand_chacha::ChaCha20Rng;
use std::net::SocketAddr;
use std::ops::Range;

/// How a received batch reaches the engine.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arrival {
    /// UDP on this bound address (500, 4500 or 1701).
    Udp(SocketAddr),
    /// IP protocol 50.
    Esp,
}

/// Bytes the non-ESP marker takes (RFC 3948 §2.2).
pub(super) const MARKER_ROOM: usize = 4;

/// Scratch space of the data path, allocated once.
pub(super) struct DataPath {
    /// What each slot of the current TUN batch became.
    outs: Box<[Option<Out>]>,
    plan: GsoPlan,
    /// Decapsulated packets on their way to TUN (used when the device has offloads).
    to_tun: TunWriter,
}

impl DataPath {
    pub(super) fn new(tun_batch: &TunBatch, rx_batch: usize) -> Self {
        Self {
            outs: vec![None; tun_batch.capacity()].into_boxed_slice(),
            plan: GsoPlan::new(Outbox::CAPACITY),
            to_tun: TunWriter::new(rx_batch),
        }
    }

    /// Seals every packet of a TUN batch in its own slot and sends them, one `sendmmsg` per
    /// socket for each [`Outbox::CAPACITY`] packets.
    pub(super) async fn seal_and_send(
        &mut self,
        io: &Io,
        engine: &mut Engine<ChaCha20Rng>,
        batch: &mut TunBatch,
        n: usize,
    ) {
        for (i, out) in self.outs.iter_mut().enumerate() {
            *out = None;
            if i >= n {
                continue;
            }
            if let Some((range, slot)) = batch.get_mut(i) {
                *out = engine.handle_tun(slot, range).ok();
            }
        }
        let outs = &self.outs[..n.min(self.outs.len())];
        let sealed = outs.iter().enumerate().filter_map(|(i, out)| {
            let out = out.as_ref()?;
            let to = sealed_to(out.route)?;
            Some((to, batch.slot(i)?.get(out.range.clone())?))
        });
        netio::sealed::send_sealed(&io.natt, &io.esp, &mut self.plan, sealed).await;
        // Plain L2TP (1701): rare and only when allowed; one send each.
        for (i, out) in outs.iter().enumerate() {
            if let Some(out) = out
                && sealed_to(out.route).is_none()
                && let Some(bytes) = batch.slot(i).and_then(|s| s.get(out.range.clone()))
            {
                send_one(io, out, bytes).await;
            }
        }
    }

    /// Feeds every datagram of a received batch (each GRO segment on its own) to the engine
    /// in place and writes what is for the intranet to TUN.
    pub(super) async fn open_and_deliver(
        &mut self,
        io: &Io,
        engine: &mut Engine<ChaCha20Rng>,
        batch: &mut RecvBatch,
        n: usize,
        arrival: Arrival,
    ) {
        for i in 0..n {
            let Some((meta, slot)) = batch.get_mut(i) else {
                continue;
            };
            if meta.truncated {
                continue;
            }
            for datagram in meta.datagrams() {
                let Some(bytes) = slot.get_mut(datagram.clone()) else {
                    continue;
                };
                let result = match arrival {
                    Arrival::Udp(bound) => {
                        engine.handle_udp(now(), arrived_at(bound, meta.local), meta.from, bytes)
                    }
                    Arrival::Esp => engine.handle_esp(now(), meta.from.ip(), bytes),
                };
                if let Ok(Some(ip)) = result
                    && let Some(packet) = slot.get(shift(ip, datagram.start))
                {
                    self.write(io, packet).await;
                }
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
        Route::Esp { remote } => Some(Sealed::Esp(remote)),
        Route::Udp { .. } => None,
    }
}

fn shift(r: Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
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
            let Some(start) = out.range.start.checked_sub(MARKER_ROOM) else {
                return;
            };
            if let Some(marker) = buf.get_mut(start..out.range.start) {
                marker.fill(0);
            }
            start..out.range.end
        }
        Route::Udp { .. } | Route::Esp { .. } => out.range.clone(),
    };
    if let Some(bytes) = buf.get(range) {
        send_one(io, out, bytes).await;
    }
}

async fn send_one(io: &Io, out: &Out, bytes: &[u8]) {
    let result = match out.route {
        Route::Udp { local, remote, .. } => {
            let socket = match (local.port(), &io.l2tp) {
                (4500, _) => &io.natt,
                (1701, Some(l2tp)) => l2tp,
                _ => &io.ike,
            };
            socket.send_to(bytes, remote).await
        }
        Route::Esp { remote } => {
            let mut one = Outbox::new();
            one.push(SocketAddr::new(remote, 0), bytes);
            io.esp.send_datagrams(one.as_slice()).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%e, "send failed");
    }
}
