//! The packet loop's batches (STYLE.md §6.2), as in the server: a whole TUN batch is sealed in
//! place in its slots and leaves with one `sendmmsg` (equal-sized runs on UDP 4500 as single
//! UDP GSO messages); a received batch is opened in place, GRO buffers split by their segment
//! size, and what is for us written to TUN in one batch (coalesced per flow when the device has
//! offloads). Nothing here allocates; packet bytes are copied only where the TUN offload
//! interface needs them contiguous (see `netio::tun`).

use super::{Io, now};
use crate::engine::{Engine, Out, Route};
use crate::status::Tracker;
use netio::batch::{Outbox, RecvBatch};
use netio::gso::GsoPlan;
use netio::sealed::Sealed;
use netio::tun::{Tun, TunBatch, TunWriter};
use rand_chacha::ChaCha20Rng;
use std::net::SocketAddr;
use std::ops::Range;

pub(super) use netio::sealed::MARKER_ROOM;
/// Decapsulated packets written to TUN in one batch.
const TUN_WRITE_BATCH: usize = 64;

/// How a received batch reaches the engine.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arrival {
    /// UDP on this bound address (500 or 4500).
    Udp(SocketAddr),
    /// IP protocol 50.
    Esp,
}

/// Scratch space of the data path, allocated once (the TUN parts when the device opens).
pub(super) struct DataPath {
    outs: Box<[Option<Out>]>,
    plan: GsoPlan,
    to_tun: Option<TunWriter>,
}

impl DataPath {
    pub(super) fn new() -> Self {
        Self {
            outs: Box::default(),
            plan: GsoPlan::new(Outbox::CAPACITY),
            to_tun: None,
        }
    }

    /// The TUN device is open: sizes the per-batch state for its batches.
    pub(super) fn tun_opened(&mut self, tun: &Tun, batch: &TunBatch) {
        self.outs = vec![None; batch.capacity()].into_boxed_slice();
        self.to_tun = Some(tun.writer(TUN_WRITE_BATCH));
    }

    /// Seals every packet of a TUN batch in its own slot and sends them, one `sendmmsg` per
    /// socket for each [`Outbox::CAPACITY`] packets.
    pub(super) async fn seal_and_send(
        &mut self,
        io: &Io,
        engine: &mut Engine<ChaCha20Rng>,
        batch: &mut TunBatch,
        n: usize,
        tracker: &mut Tracker,
    ) {
        for (i, out) in self.outs.iter_mut().enumerate() {
            *out = None;
            if i >= n {
                continue;
            }
            let Some((range, slot)) = batch.get_mut(i) else {
                continue;
            };
            let len = range.len();
            *out = engine.handle_tun(slot, range).ok();
            if out.is_some() {
                tracker.count_out(len);
            }
        }
        let outs = &self.outs[..n.min(self.outs.len())];
        let sealed = outs.iter().enumerate().filter_map(|(i, out)| {
            let out = out.as_ref()?;
            let to = sealed_to(out.route)?;
            // The client's sockets are its own: the kernel picks the source by route.
            Some((to, None, batch.slot(i)?.get(out.range.clone())?))
        });
        netio::sealed::send_sealed(&io.natt, &io.esp, &mut self.plan, sealed).await;
        // IKE-port UDP: not data; one send each.
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
    /// in place and writes what is for us to TUN.
    pub(super) async fn open_and_deliver(
        &mut self,
        tun: Option<&Tun>,
        engine: &mut Engine<ChaCha20Rng>,
        batch: &mut RecvBatch,
        (n, arrival): (usize, Arrival),
        tracker: &mut Tracker,
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
                    Arrival::Udp(bound) => engine.handle_udp(now(), bound, meta.from, bytes),
                    Arrival::Esp => engine.handle_esp(now(), meta.from.ip(), bytes),
                };
                if let (Ok(Some(ip)), Some(tun)) = (result, tun)
                    && let Some(packet) = slot.get(shift(ip, datagram.start))
                {
                    tracker.count_in(packet.len());
                    self.write(tun, packet).await;
                }
            }
        }
        if let Some(tun) = tun {
            self.flush_tun(tun).await;
        }
    }

    /// One packet for TUN: queued for the batch write with offloads, written now without.
    async fn write(&mut self, tun: &Tun, packet: &[u8]) {
        match &mut self.to_tun {
            Some(writer) if tun.offloads() => {
                if writer.is_full()
                    && let Err(e) = tun.write_batch(writer).await
                {
                    tracing::debug!(%e, "TUN write failed");
                }
                writer.push(packet);
            }
            Some(_) | None => {
                if let Err(e) = tun.send(packet).await {
                    tracing::debug!(%e, "TUN write failed");
                }
            }
        }
    }

    async fn flush_tun(&mut self, tun: &Tun) {
        if let Some(writer) = &mut self.to_tun
            && !writer.is_empty()
            && let Err(e) = tun.write_batch(writer).await
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

/// Sends one datagram the engine wrote into `buf` after [`MARKER_ROOM`] free bytes, with the
/// non-ESP marker written there when the route needs it (IKE on port 4500).
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
    let result = match out.route {
        Route::Udp { local, remote, .. } => {
            let socket = if local.port() == 4500 {
                &io.natt
            } else {
                &io.ike
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
