//! The packet loop's batches (STYLE.md §6.2), as in the server: a whole TUN batch is sealed in
//! place in its slots and leaves with one `sendmmsg` (equal-sized runs on UDP 4500 as single
//! UDP GSO messages); a received batch is opened in place, GRO buffers split by their segment
//! size. Nothing here allocates or copies packet bytes.

use super::{Io, now};
use crate::engine::{Engine, Out, Route, TAILROOM};
use crate::status::Tracker;
use netio::batch::{Outbox, RecvBatch};
use netio::gso::GsoPlan;
use netio::tun::Tun;
use rand_chacha::ChaCha20Rng;
use std::net::SocketAddr;
use std::ops::Range;

/// Bytes the non-ESP marker takes (RFC 3948 §2.2).
pub(super) const MARKER_ROOM: usize = 4;
/// Room a TUN batch leaves after each packet for ESP padding and the ICV.
pub(super) const TUN_TAILROOM: usize = TAILROOM;

/// How a received batch reaches the engine.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arrival {
    /// UDP on this bound address (500 or 4500).
    Udp(SocketAddr),
    /// IP protocol 50.
    Esp,
}

/// Scratch space of the data path, allocated once.
pub(super) struct DataPath {
    outs: Box<[Option<Out>]>,
    plan: GsoPlan,
}

impl DataPath {
    pub(super) fn new(batch: usize) -> Self {
        Self {
            outs: vec![None; batch].into_boxed_slice(),
            plan: GsoPlan::new(Outbox::CAPACITY),
        }
    }

    /// Seals every packet of a TUN batch in its own slot and sends them all.
    pub(super) async fn seal_and_send(
        &mut self,
        io: &Io,
        engine: &mut Engine<ChaCha20Rng>,
        batch: &mut RecvBatch,
        n: usize,
        tracker: &mut Tracker,
    ) {
        for (i, out) in self.outs.iter_mut().enumerate() {
            *out = None;
            if i >= n {
                continue;
            }
            let Some((meta, slot)) = batch.get_mut(i) else {
                continue;
            };
            let len = meta.range.len();
            *out = engine.handle_tun(slot, meta.range).ok();
            if out.is_some() {
                tracker.count_out(len);
            }
        }
        let mut natt = Outbox::new();
        let mut esp = Outbox::new();
        for (i, out) in self.outs.iter().enumerate().take(n) {
            let Some(out) = out else { continue };
            let Some(bytes) = batch.slot(i).and_then(|s| s.get(out.range.clone())) else {
                continue;
            };
            match out.route {
                Route::Udp { local, remote, .. } if local.port() == 4500 => {
                    natt.push(remote, bytes);
                }
                Route::Esp { remote } => {
                    esp.push(SocketAddr::new(remote, 0), bytes);
                }
                Route::Udp { .. } => send_one(io, out, bytes).await,
            }
        }
        if !natt.is_empty()
            && let Err(e) = io
                .natt
                .send_datagrams(natt.as_slice(), &mut self.plan)
                .await
        {
            tracing::debug!(%e, "UDP 4500 send failed");
        }
        if !esp.is_empty()
            && let Err(e) = io.esp.send_datagrams(esp.as_slice()).await
        {
            tracing::debug!(%e, "ESP send failed");
        }
    }
}

/// Feeds every datagram of a received batch (each GRO segment on its own) to the engine in
/// place and writes what is for us to TUN.
pub(super) async fn into_engine(
    tun: Option<&Tun>,
    engine: &mut Engine<ChaCha20Rng>,
    batch: &mut RecvBatch,
    n: usize,
    arrival: Arrival,
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
            if let Ok(Some(ip)) = result {
                to_tun(tun, slot, shift(ip, datagram.start), tracker).await;
            }
        }
    }
}

fn shift(r: Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

async fn to_tun(tun: Option<&Tun>, slot: &[u8], packet: Range<usize>, tracker: &mut Tracker) {
    if let (Some(tun), Some(p)) = (tun, slot.get(packet)) {
        match tun.send(p).await {
            Ok(_) => tracker.count_in(p.len()),
            Err(e) => tracing::debug!(%e, "TUN write failed"),
        }
    }
}

/// Sends one datagram the engine wrote into `buf` after [`MARKER_ROOM`] free bytes, with the
/// non-ESP marker written there when the route needs it (IKE on port 4500).
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
