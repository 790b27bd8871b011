//! Data packets by the batch, with the ESP crypto of a whole batch spread over several threads
//! (the design of userspace WireGuard): everything stateful runs on the calling thread in
//! packet order, only the pure crypto runs elsewhere, and the results come back in order.
//!
//! ```text
//! TUN batch:  in order: LNS, L2TP, UDP, Sa::frame (sequence number, padding, CBC IV)
//!             spread:   Sa::encrypt                         (&SaDb, one packet per item)
//!             in order: counters; the driver sends
//! ESP batch:  in order: which datagrams are ESP (IKE, keepalives, plain L2TP go one by one)
//!             spread:   SaDb::verify: replay check, ICV, decryption   (&SaDb)
//!             in order: Sa::accept (the replay window again), NAT mapping, LNS, counters
//! ```
//!
//! The bytes and the order of what comes out are those of the one-packet-at-a-time path
//! ([`Engine::handle_tun`], [`Engine::handle_udp`], [`Engine::handle_esp`]), which share their
//! code with this one. Nothing here allocates.

use super::{Drop, Engine, EspFrame, Framing, Out};
use ike::esp::{Discard, SaDb, Spi, Udp4500, Verified, classify_udp4500};
use rand_core::CryptoRng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::time::Instant;

/// Runs a closure over every item of a slice, each item exactly once, on several threads or on
/// this one; returns when all are done. The engine hands it only the pure crypto of a batch.
pub trait Spread {
    /// Calls `f` on every item of `items`.
    fn for_each<T: Send, F: Fn(&mut T) + Sync + Send>(&self, items: &mut [T], f: F);
}

/// Everything on the calling thread, in order: the one-thread configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serial;

impl Spread for Serial {
    fn for_each<T: Send, F: Fn(&mut T) + Sync + Send>(&self, items: &mut [T], f: F) {
        items.iter_mut().for_each(f);
    }
}

/// One packet read from TUN, in its slot, on its way through [`Engine::handle_tun_batch`].
#[derive(Debug)]
pub struct TunJob<'a> {
    slot: &'a mut [u8],
    packet: Range<usize>,
    /// Set between framing and encryption.
    framed: Option<EspFrame>,
    result: Result<Out, Drop>,
}

impl Default for TunJob<'_> {
    fn default() -> Self {
        Self::new(&mut [], 0..0)
    }
}

impl<'a> TunJob<'a> {
    /// The IP packet at `slot[packet]`, with [`super::HEADROOM`] before and
    /// [`super::TAILROOM`] after it inside `slot`.
    pub fn new(slot: &'a mut [u8], packet: Range<usize>) -> Self {
        Self {
            slot,
            packet,
            framed: None,
            result: Err(Drop::NoRoom),
        }
    }

    /// What the packet became (as [`Engine::handle_tun`] returns it); `out.range` is a range
    /// of the slot.
    pub const fn result(&self) -> &Result<Out, Drop> {
        &self.result
    }

    /// The slot, with the sealed datagram at the range [`TunJob::result`] gives.
    pub fn slot(&self) -> &[u8] {
        self.slot
    }
}

/// Where a received datagram came from.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    /// UDP to `local` (500, 4500 or 1701) from `remote`.
    Udp {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// IP protocol 50 from `remote`.
    Esp { remote: IpAddr },
}

/// One received datagram, in place, on its way through [`Engine::handle_rx_batch`].
#[derive(Debug)]
pub struct RxJob<'a> {
    bytes: &'a mut [u8],
    arrival: Arrival,
    /// What the crypto said, between the spread step and the ordered one.
    verdict: Option<Result<(Spi, Verified), Discard>>,
    result: Result<Option<Range<usize>>, Drop>,
}

impl Default for RxJob<'_> {
    fn default() -> Self {
        Self::esp(&mut [], IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

impl<'a> RxJob<'a> {
    /// A UDP datagram that arrived on `local` from `remote` (see [`Engine::handle_udp`]).
    pub fn udp(bytes: &'a mut [u8], local: SocketAddr, remote: SocketAddr) -> Self {
        Self::with(bytes, Arrival::Udp { local, remote })
    }

    /// An IP protocol 50 packet from `remote`, after its IP header (see
    /// [`Engine::handle_esp`]).
    pub fn esp(bytes: &'a mut [u8], remote: IpAddr) -> Self {
        Self::with(bytes, Arrival::Esp { remote })
    }

    const fn with(bytes: &'a mut [u8], arrival: Arrival) -> Self {
        Self {
            bytes,
            arrival,
            verdict: None,
            result: Ok(None),
        }
    }

    /// What came of it, as [`Engine::handle_udp`] or [`Engine::handle_esp`] return it: an IP
    /// packet for TUN is a range of [`RxJob::bytes`].
    pub const fn result(&self) -> &Result<Option<Range<usize>>, Drop> {
        &self.result
    }

    /// The datagram's bytes (decrypted in place once handled).
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// The IP packet for TUN, if the datagram carried one.
    pub fn delivered(&self) -> Option<&[u8]> {
        match &self.result {
            Ok(Some(range)) => self.bytes.get(range.clone()),
            Ok(None) | Err(_) => None,
        }
    }

    /// Whether the datagram goes through the batch's ESP path.
    fn is_esp(&self) -> bool {
        match self.arrival {
            Arrival::Udp { local, .. } => {
                local.port() == 4500 && matches!(classify_udp4500(self.bytes), Ok(Udp4500::Esp))
            }
            Arrival::Esp { .. } => true,
        }
    }
}

impl<R: CryptoRng> Engine<R> {
    /// Seals a batch of IP packets read from TUN, each in its own slot: per packet in order the
    /// LNS, L2TP, UDP and ESP framing; then the encryption of every framed packet through
    /// `spread`; then the counters. Each job's [`TunJob::result`] is what
    /// [`Engine::handle_tun`] would have returned for it, byte for byte.
    pub fn handle_tun_batch<S: Spread>(&mut self, spread: &S, jobs: &mut [TunJob<'_>]) {
        for job in jobs.iter_mut() {
            job.framed = None;
            let framing = self
                .lns
                .handle_tun(job.slot, job.packet.clone())
                .map_err(Drop::Lns)
                .and_then(|(peer, l2tp)| self.frame(peer, job.slot, l2tp));
            job.result = match framing {
                Ok(Framing::Plain(out)) => Ok(out),
                Ok(Framing::Esp(esp)) => {
                    job.framed = Some(esp);
                    Err(Drop::NoRoom)
                }
                Err(e) => Err(e),
            };
        }
        let sadb = &self.sadb;
        spread.for_each(jobs, |job| {
            if let Some(esp) = &job.framed {
                job.result = esp.encrypt(sadb, job.slot);
            }
        });
        for job in jobs.iter() {
            if job.framed.is_some()
                && let Ok(out) = &job.result
            {
                self.stats.sent(out.range.len());
            }
            self.stats.tun_result(&job.result);
        }
    }

    /// Handles a batch of received datagrams in place. Each run of ESP datagrams is verified
    /// and decrypted through `spread`, then accepted, checked for a moved NAT mapping and
    /// handed to the LNS in order; any other datagram (IKE, a NAT keepalive, plain L2TP) takes
    /// the one-by-one path where it stands, so the order of everything is kept. Each job's
    /// [`RxJob::result`] is what [`Engine::handle_udp`] or [`Engine::handle_esp`] would have
    /// returned for it.
    pub fn handle_rx_batch<S: Spread>(&mut self, now: Instant, spread: &S, jobs: &mut [RxJob<'_>]) {
        let mut at = 0;
        while let Some(rest) = jobs.get_mut(at..)
            && !rest.is_empty()
        {
            let run = rest.iter().take_while(|job| job.is_esp()).count();
            if let Some(esp) = rest.get_mut(..run)
                && !esp.is_empty()
            {
                self.open_run(now, spread, esp);
                at += run;
                continue;
            }
            if let Some(job) = rest.first_mut() {
                job.result = match job.arrival {
                    Arrival::Udp { local, remote } => {
                        self.handle_udp(now, local, remote, job.bytes)
                    }
                    Arrival::Esp { remote } => self.handle_esp(now, remote, job.bytes),
                };
            }
            at += 1;
        }
    }

    /// A run of ESP datagrams: the crypto spread, the rest in order.
    fn open_run<S: Spread>(&mut self, now: Instant, spread: &S, jobs: &mut [RxJob<'_>]) {
        let sadb: &SaDb = &self.sadb;
        spread.for_each(jobs, |job| job.verdict = Some(sadb.verify(job.bytes)));
        for job in jobs.iter_mut() {
            let verdict = job.verdict.take().unwrap_or(Err(Discard::Truncated));
            job.result = match job.arrival {
                Arrival::Udp { local, remote } => {
                    let result = self.esp_accept(now, remote, job.bytes, verdict);
                    self.count_udp(now, local, remote, job.bytes, &result);
                    result
                }
                Arrival::Esp { remote } => {
                    let result =
                        self.esp_accept(now, SocketAddr::new(remote, 0), job.bytes, verdict);
                    self.stats.result(&result, Some(remote));
                    result
                }
            };
        }
    }
}
