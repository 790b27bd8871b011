//! The bench's own traffic: a UDP blaster (run in the laptop's namespace) and a UDP sink (run
//! in the intranet host's namespace) that counts what arrives. Sizes are inner IP packet
//! sizes: a 1400 B packet is 1372 B of UDP payload.

use anyhow::Context as _;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{BufRead as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// IPv4 and UDP headers.
pub const IP_UDP_HEADERS: usize = 28;
/// First UDP port of the sink; flow `i` goes to `BASE_PORT + i`.
pub const BASE_PORT: u16 = 5201;
/// Socket buffers of blaster and sink.
const SOCKET_BUFFER: usize = 4 << 20;

fn udp(bind: SocketAddr) -> anyhow::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&bind.into())
        .with_context(|| format!("binding {bind}"))?;
    Ok(s.into())
}

/// Datagrams per send when the kernel takes UDP GSO sends.
const GSO_SEGMENTS: usize = 64;
/// Most UDP payload one GSO send carries.
const GSO_MAX_PAYLOAD: usize = 65_507;

/// Sends `size`-byte IP packets to `dst` on `flows` ports for `seconds` (from `src` when given,
/// else from the address the route picks), as fast as the sockets
/// take them or, with `rate`, paced to that many packets per second; prints
/// `sent <packets> <errors>` at the end. Each send carries up to 64 datagrams as one UDP GSO
/// buffer (the kernel cuts it into `size`-byte packets), so that the generator, not the path
/// under test, is no longer the limit; plain one-datagram sends where the kernel refuses GSO.
///
/// Pacing matters on a machine whose cores the path under test shares with the generator: an
/// unpaced generator spins on a core of its own and whatever the path cannot take is dropped,
/// CPU spent for nothing. Paced, the generator sleeps between sends; a short delay is made up,
/// a long one is not, so no burst follows it ([`Pacer`]).
///
/// # Errors
/// When a socket cannot be opened.
pub fn blast(
    src: Option<Ipv4Addr>,
    dst: Ipv4Addr,
    flows: u16,
    size: usize,
    seconds: f64,
    rate: Option<f64>,
) -> anyhow::Result<()> {
    let datagram = size.saturating_sub(IP_UDP_HEADERS).max(1);
    let sockets = (0..flows)
        .map(|i| {
            let s = udp(SocketAddr::from((src.unwrap_or(Ipv4Addr::UNSPECIFIED), 0)))?;
            s.connect(SocketAddrV4::new(dst, BASE_PORT + i))?;
            Ok(s)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let segment = u16::try_from(datagram).unwrap_or(u16::MAX);
    let gso = sockets
        .iter()
        .all(|s| netio::udp::set_send_segment_size(s, segment).is_ok());
    let per_send = if gso {
        GSO_SEGMENTS.min(GSO_MAX_PAYLOAD / datagram).max(1)
    } else {
        1
    };
    let payload = vec![0xa5u8; datagram * per_send];
    #[expect(clippy::cast_precision_loss, reason = "at most 64")]
    let interval = rate
        .filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| Duration::from_secs_f64(per_send as f64 / r));
    let per_send = per_send as u64;
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut pacer = interval.map(|i| Pacer::new(start, i));
    'outer: loop {
        for _ in 0..64 {
            for s in &sockets {
                if let Some(pacer) = &mut pacer {
                    let wait = pacer.wait(Instant::now());
                    if !wait.is_zero() {
                        std::thread::sleep(wait);
                    }
                }
                match s.send(&payload) {
                    Ok(_) => sent += per_send,
                    Err(_) => errors += 1,
                }
            }
            if pacer.is_some() && Instant::now() >= until {
                break 'outer;
            }
        }
        if Instant::now() >= until {
            break 'outer;
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "sent {sent} {errors}")?;
    Ok(())
}

/// When the next send of a paced blaster may go: one send every `interval`. Sends that fell
/// behind (a sleep that overslept, the thread descheduled on a busy machine) are made up by
/// going at once, up to [`Pacer::CATCH_UP`] intervals' worth; beyond that the schedule restarts
/// from now, so that no long burst follows.
#[derive(Debug, Clone, Copy)]
struct Pacer {
    next: Instant,
    interval: Duration,
}

impl Pacer {
    /// Most intervals a late blaster makes up.
    const CATCH_UP: u32 = 4;

    const fn new(start: Instant, interval: Duration) -> Self {
        Self {
            next: start,
            interval,
        }
    }

    /// How long to wait before the send due next, at `now`; books that send.
    fn wait(&mut self, now: Instant) -> Duration {
        let wait = self.next.saturating_duration_since(now);
        if now > self.next + self.interval * Self::CATCH_UP {
            self.next = now;
        }
        self.next += self.interval;
        wait
    }
}

/// Counts IP packets and bytes arriving on ports `BASE_PORT..BASE_PORT + flows`; answers
/// each line on stdin with `<packets> <bytes>` (totals so far); exits at end of input.
///
/// One thread per flow receives with `recvmmsg` and `UDP_GRO`: datagrams of a flow that
/// arrive as one coalesced buffer (a GSO send forwarded whole, or TUN writes the server
/// coalesced) are counted from their segment size without being cut apart, so that the sink's
/// own cost per packet, which the path under test pays for on the same cores, stays small.
///
/// # Errors
/// When a socket cannot be bound.
pub fn sink(flows: u16) -> anyhow::Result<()> {
    let packets = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    for i in 0..flows {
        let (p, b) = (Arc::clone(&packets), Arc::clone(&bytes));
        let bind = SocketAddr::from(([0, 0, 0, 0], BASE_PORT + i));
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("sink{i}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build();
                let Ok(runtime) = runtime else {
                    let _ = bound_tx.send(Err(anyhow::anyhow!("sink runtime")));
                    return;
                };
                runtime.block_on(async move {
                    let s = match netio::udp::UdpSocket::bind(bind) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = bound_tx.send(Err(anyhow::Error::from(e)));
                            return;
                        }
                    };
                    let gro = s.enable_gro();
                    let _ = bound_tx.send(Ok(()));
                    let slot = if gro { 65_536 } else { 2048 };
                    let mut batch = netio::RecvBatch::new(16, slot, 0);
                    while let Ok(n) = s.recv_batch(&mut batch).await {
                        let (mut count, mut len) = (0u64, 0u64);
                        for (meta, _) in batch.filled_mut().take(n) {
                            for d in meta.datagrams() {
                                count += 1;
                                len += (d.len() + IP_UDP_HEADERS) as u64;
                            }
                        }
                        p.fetch_add(count, Ordering::Relaxed);
                        b.fetch_add(len, Ordering::Relaxed);
                    }
                });
            })?;
        bound_rx
            .recv()
            .context("sink thread")?
            .with_context(|| format!("binding {bind}"))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        writeln!(
            out,
            "{} {}",
            packets.load(Ordering::Relaxed),
            bytes.load(Ordering::Relaxed)
        )?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pacer_spaces_sends_by_its_interval() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut p = Pacer::new(t0, ms);
        assert_eq!(p.wait(t0), Duration::ZERO, "the first send goes at once");
        assert_eq!(p.wait(t0), ms, "the second waits one interval");
        // Sent on time at t0 + 1 ms: the third is due at t0 + 2 ms.
        assert_eq!(p.wait(t0 + ms), ms);
    }

    #[test]
    fn a_pacer_makes_up_a_short_delay_but_not_a_long_one() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut p = Pacer::new(t0, ms);
        assert_eq!(p.wait(t0), Duration::ZERO);
        // Due at t0 + 1 ms, asked at t0 + 3.5 ms (2.5 intervals late): that send and the two
        // that fell behind go at once, and the next is still due at t0 + 4 ms.
        let late = t0 + Duration::from_micros(3_500);
        for _ in 0..3 {
            assert_eq!(p.wait(late), Duration::ZERO);
        }
        assert_eq!(p.wait(late), Duration::from_micros(500));
        // Due at t0 + 5 ms, asked at t0 + 20 ms (15 intervals late, more than the pacer makes
        // up): goes at once and the schedule restarts, so the next waits a whole interval
        // instead of fifteen sends going in a burst.
        assert_eq!(p.wait(t0 + 20 * ms), Duration::ZERO);
        assert_eq!(p.wait(t0 + 20 * ms), ms);
    }
}
