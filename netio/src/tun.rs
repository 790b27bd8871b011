//! The TUN device through which decapsulated IP packets reach the host's stack.
//!
//! With [`Offload::IfAvailable`] the device is opened with `IFF_VNET_HDR` and the TCP (and,
//! from Linux 6.2, UDP) segmentation offloads (`TUNSETOFFLOAD`), through `tun-rs`: a TCP
//! super-packet of up to 64 KiB crosses the device in one read and is split into MTU-sized
//! segments here ([`TunBatch`], tun-rs's `gso_split`), and packets written in one batch are
//! coalesced per flow into such super-packets ([`TunWriter`], netio's own coalescing in
//! `coalesce`: tun-rs's allocates and copies every packet once more), so the kernel boundary
//! is paid per batch rather than per packet. Both cost one copy per packet (the split and the
//! coalescing need contiguous segments, which is what the kernel interface asks for). Without
//! offloads (refused by the kernel, or [`Offload::Off`]) every packet is one `read`/`write`,
//! straight from the slot.

use std::io;
use std::io::IoSlice;
use std::net::Ipv4Addr;
use std::ops::Range;

pub use crate::coalesce::{Offloads, TunWriter};

/// Whether to ask for the device's segmentation offloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offload {
    /// Plain packets, one per read and write.
    Off,
    /// `IFF_VNET_HDR` and TSO/USO when the kernel grants them; plain otherwise.
    IfAvailable,
}

/// How to create the TUN device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name (the kernel picks `tunN` when `None`).
    pub name: Option<String>,
    /// Our address on the device.
    pub address: Ipv4Addr,
    /// Prefix length of the device's network (the kernel adds the connected route).
    pub prefix_len: u8,
    /// MTU of the device.
    pub mtu: u16,
    /// Segmentation offloads.
    pub offload: Offload,
}

/// Length of the virtio-net header in front of every packet when offloads are on.
pub const VNET_HEADER_LEN: usize = tun_rs::VIRTIO_NET_HDR_LEN;
/// Most segments one offloaded read can split into (64 KiB over a 1,000-byte MSS); a read is
/// only attempted while a [`TunBatch`] has this many free slots.
const MAX_SEGMENTS_PER_READ: usize = 64;
/// Room for one offloaded read: the header and a 64 KiB super-packet.
const RAW_LEN: usize = VNET_HEADER_LEN + 65_535;

/// An up, addressed TUN device registered with the current tokio runtime.
pub struct Tun {
    dev: tun_rs::AsyncDevice,
    name: String,
    /// `IFF_VNET_HDR` is on: every read and write carries a virtio-net header.
    vnet: bool,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("offloads", &self.vnet)
            .finish_non_exhaustive()
    }
}

impl Tun {
    /// Creates the device, gives it `config.address/prefix_len` and the MTU, and brings it up,
    /// with offloads when asked for and granted. Needs `CAP_NET_ADMIN` and `/dev/net/tun`.
    pub fn open(config: &TunConfig) -> io::Result<Self> {
        let build = |offload: bool| {
            let mut builder = tun_rs::DeviceBuilder::new()
                .ipv4(config.address, config.prefix_len, None)
                .mtu(config.mtu)
                .packet_information(false)
                .offload(offload);
            if let Some(name) = &config.name {
                builder = builder.name(name.clone());
            }
            builder.build_async()
        };
        let dev = match config.offload {
            Offload::IfAvailable => match build(true) {
                Ok(dev) => dev,
                Err(e) => {
                    tracing::debug!(%e, "TUN offloads refused; plain packets");
                    build(false)?
                }
            },
            Offload::Off => build(false)?,
        };
        let name = dev.name()?;
        let vnet = dev.tcp_gso();
        Ok(Self { dev, name, vnet })
    }

    /// The interface name the kernel gave the device.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether segmentation offloads are on (reads split, [`Self::write_batch`] coalesces).
    #[must_use]
    pub const fn offloads(&self) -> bool {
        self.vnet
    }

    /// Waits until a packet is there, then reads as many as are ready into the slots of
    /// `batch`, splitting offloaded super-packets into segments. A packet the device hands
    /// over malformed (a GSO packet that does not split) is dropped, not an error.
    pub async fn recv_batch(&self, batch: &mut TunBatch) -> io::Result<usize> {
        loop {
            self.dev.readable().await?;
            batch.filled = 0;
            let result = if self.vnet {
                self.read_offloaded(batch)
            } else {
                self.read_plain(batch)
            };
            match result {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(e) => return Err(e),
            }
        }
    }

    fn read_plain(&self, batch: &mut TunBatch) -> io::Result<usize> {
        let (headroom, tailroom) = (batch.headroom, batch.tailroom);
        for (slot, size) in batch.slots.iter_mut().zip(batch.sizes.iter_mut()) {
            let end = slot.len().saturating_sub(tailroom).max(headroom);
            let Some(space) = slot.get_mut(headroom..end) else {
                break;
            };
            match self.dev.try_recv(space) {
                Ok(n) => {
                    *size = n;
                    batch.filled += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if batch.filled == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(batch.filled)
    }

    fn read_offloaded(&self, batch: &mut TunBatch) -> io::Result<usize> {
        while batch.slots.len() - batch.filled >= MAX_SEGMENTS_PER_READ {
            let (slots, sizes) = (
                &mut batch.slots[batch.filled..],
                &mut batch.sizes[batch.filled..],
            );
            match self
                .dev
                .try_recv_multiple(&mut batch.raw, slots, sizes, batch.headroom)
            {
                Ok(k) => batch.filled += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // tun-rs reports what it cannot split as Other/InvalidInput: one bad packet.
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::Other | io::ErrorKind::InvalidInput)
                        && e.raw_os_error().is_none() =>
                {
                    tracing::debug!(%e, "TUN packet dropped");
                }
                Err(e) if batch.filled == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(batch.filled)
    }

    /// Writes one IP packet to the host's stack (with an empty virtio-net header when
    /// offloads are on).
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        if self.vnet {
            let header = [0u8; VNET_HEADER_LEN];
            let n = self
                .dev
                .send_vectored(&[IoSlice::new(&header), IoSlice::new(packet)])
                .await?;
            Ok(n.saturating_sub(VNET_HEADER_LEN))
        } else {
            self.dev.send(packet).await
        }
    }

    /// What this device takes coalesced: TCP with the virtio-net header, UDP when the kernel
    /// also took the UDP segmentation offload.
    #[must_use]
    pub fn offloads_for_writes(&self) -> Offloads {
        Offloads {
            tcp: self.vnet,
            udp: self.vnet && self.dev.udp_gso(),
        }
    }

    /// A writer with room for `capacity` packets or super-packets, coalescing what this
    /// device takes.
    #[must_use]
    pub fn writer(&self, capacity: usize) -> TunWriter {
        TunWriter::with_offloads(capacity, self.offloads_for_writes())
    }

    /// Writes every packet and super-packet queued in `writer` (one `write` each) and empties
    /// it. A write the kernel refuses loses that (super-)packet, as a full queue would; the
    /// others still go, and the last error is returned. A writer that coalesces what this
    /// device does not take (one made for another device) is refused (`InvalidInput`) and
    /// emptied.
    pub async fn write_batch(&self, writer: &mut TunWriter) -> io::Result<usize> {
        let (mine, device) = (writer.offloads(), self.offloads_for_writes());
        if (mine.tcp && !device.tcp) || (mine.udp && !device.udp) {
            writer.clear();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the writer coalesces for offloads this device lacks",
            ));
        }
        let skip = if self.vnet { 0 } else { VNET_HEADER_LEN };
        let mut total = 0;
        let mut result = Ok(());
        for buf in writer.finish() {
            let Some(bytes) = buf.get(skip..) else {
                continue;
            };
            match self.dev.send(bytes).await {
                Ok(n) => total += n,
                Err(e) => result = Err(e),
            }
        }
        result.map(|()| total)
    }
}

/// Slots for one batch of packets read from TUN, each at `headroom` with `tailroom` left free
/// after it for ESP; allocated once.
pub struct TunBatch {
    slots: Box<[Vec<u8>]>,
    sizes: Box<[usize]>,
    /// Where an offloaded read lands before it is split (allocated only with offloads).
    raw: Vec<u8>,
    headroom: usize,
    tailroom: usize,
    filled: usize,
}

impl std::fmt::Debug for TunBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunBatch")
            .field("slots", &self.slots.len())
            .field("filled", &self.filled)
            .finish_non_exhaustive()
    }
}

impl TunBatch {
    /// `slots` slots of `slot_len` bytes for `tun` (at least [`MAX_SEGMENTS_PER_READ`] when
    /// it has offloads, so one read always fits).
    #[must_use]
    pub fn new(tun: &Tun, slots: usize, slot_len: usize, headroom: usize, tailroom: usize) -> Self {
        let slots = if tun.vnet {
            slots.max(2 * MAX_SEGMENTS_PER_READ)
        } else {
            slots.max(1)
        };
        Self {
            slots: vec![vec![0u8; slot_len]; slots].into_boxed_slice(),
            sizes: vec![0; slots].into_boxed_slice(),
            raw: if tun.vnet {
                vec![0u8; RAW_LEN]
            } else {
                Vec::new()
            },
            headroom,
            tailroom,
            filled: 0,
        }
    }

    /// Number of slots.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The `i`-th packet read: its range and its whole slot, mutable for sealing in place.
    pub fn get_mut(&mut self, i: usize) -> Option<(Range<usize>, &mut [u8])> {
        if i >= self.filled {
            return None;
        }
        let size = *self.sizes.get(i)?;
        let slot = self.slots.get_mut(i)?;
        Some((self.headroom..self.headroom + size, slot))
    }

    /// The `i`-th slot, read-only (after the engine worked in place in it).
    #[must_use]
    pub fn slot(&self, i: usize) -> Option<&[u8]> {
        if i >= self.filled {
            return None;
        }
        self.slots.get(i).map(Vec::as_slice)
    }

    /// Every packet read: its range and its whole slot, in order, as disjoint `&mut` slots so
    /// that the packets of a batch can be sealed side by side (on several threads).
    pub fn filled_mut(&mut self) -> impl Iterator<Item = (Range<usize>, &mut [u8])> {
        let headroom = self.headroom;
        self.slots
            .iter_mut()
            .zip(self.sizes.iter())
            .take(self.filled)
            .map(move |(slot, &size)| (headroom..headroom + size, slot.as_mut_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// An IPv4/UDP packet with valid header and UDP checksums.
    fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (src, dst) else {
            unreachable!("IPv4 only")
        };
        let total = u16::try_from(28 + payload.len()).unwrap();
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src.ip().octets());
        p.extend_from_slice(&dst.ip().octets());
        let sum = p
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap();
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&src.port().to_be_bytes());
        p.extend_from_slice(&dst.port().to_be_bytes());
        p.extend_from_slice(&(total - 20).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        let mut pseudo = p[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(total - 20).to_be_bytes());
        let sum = !tun_rs::checksum(&p[20..], tun_rs::checksum_no_fold(&pseudo, 0));
        p[26..28].copy_from_slice(&(if sum == 0 { 0xffff } else { sum }).to_be_bytes());
        p
    }

    /// Runs `body` on a thread of its own in a network namespace of its own (`unshare
    /// (CLONE_NEWNET)` affects only the calling thread), so the TUN device, its address and
    /// route and every socket the body opens exist only there, never in the namespace the
    /// tests run in. Nothing needs removing: the namespace goes with the thread and its last
    /// socket, even when the body panics (the panic is passed on). `None` without
    /// CAP_SYS_ADMIN.
    fn in_private_netns<T: Send>(body: impl FnOnce() -> T + Send) -> Option<T> {
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
                    eprintln!("skipped: no network namespace ({e})");
                    return None;
                }
                Some(body())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Whether a network device called `name` is listed in `/proc/<which>/net/dev`.
    fn listed(which: &str, name: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{which}/net/dev"))
            .unwrap()
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{name}:")))
    }

    /// A device named `lf<pid><tag>` on 198.18.0.1/30 (a benchmarking range) in the calling
    /// thread's namespace; asserts that the namespace is a private one, not the process's.
    /// `None` without CAP_NET_ADMIN.
    fn device(tag: u8, offload: Offload) -> Option<(Tun, Ipv4Addr)> {
        let name = format!("lf{}{tag}", std::process::id() % 100_000);
        let address = Ipv4Addr::new(198, 18, 0, 1);
        let tun = match Tun::open(&TunConfig {
            name: Some(name.clone()),
            address,
            prefix_len: 30,
            mtu: 1400,
            offload,
        }) {
            Ok(tun) => tun,
            Err(e) => {
                eprintln!("skipped: no TUN device ({e})");
                return None;
            }
        };
        assert!(
            listed("thread-self", &name),
            "the device is in this thread's namespace"
        );
        assert!(
            !listed("self", &name),
            "the device is not in the namespace the process runs in"
        );
        Some((tun, address))
    }

    /// Moves packets both ways; returns whether offloads were on (`None`: no device here).
    /// A packet that never arrives fails the test after 10 s instead of hanging it.
    async fn both_directions(tag: u8, offload: Offload) -> Option<bool> {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            both_directions_unbounded(tag, offload),
        )
        .await
        .expect("every packet crossed the device within 10 s")
    }

    async fn both_directions_unbounded(tag: u8, offload: Offload) -> Option<bool> {
        let (tun, address) = device(tag, offload)?;
        let peer = Ipv4Addr::new(198, 18, 0, 2);
        let socket = tokio::net::UdpSocket::bind((address, 0)).await.unwrap();
        let local = socket.local_addr().unwrap();
        let remote = SocketAddr::from((peer, 7000));
        // Writes: one alone, then batches of packets of one flow. The device's writer
        // coalesces what it takes (with offloads, UDP from Linux 6.2), and the kernel cuts the
        // super-packet back into the datagrams; a writer without offloads writes them one by
        // one.
        tun.send(&udp(remote, local, b"alone")).await.unwrap();
        let mut buf = [0u8; 2000];
        let (n, from) = socket.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"alone"[..], remote));
        for round in 0..2u8 {
            let mut writer = if round == 0 {
                TunWriter::with_offloads(8, Offloads::default())
            } else {
                tun.writer(8)
            };
            for i in 0..5u8 {
                let size = if i == 4 { 700 } else { 1000 };
                assert!(writer.push(&udp(remote, local, &vec![round * 10 + i; size])));
            }
            let coalesced = round == 1 && tun.offloads_for_writes().udp;
            assert_eq!(writer.len(), if coalesced { 1 } else { 5 }, "round {round}");
            tun.write_batch(&mut writer).await.unwrap();
            assert!(writer.is_empty());
            for i in 0..5u8 {
                let size = if i == 4 { 700 } else { 1000 };
                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                assert_eq!(from, remote);
                assert_eq!(
                    &buf[..n],
                    &vec![round * 10 + i; size][..],
                    "datagram {i} of round {round} intact and in order"
                );
            }
        }
        // Reads: datagrams routed to the peer come out of the device, one per slot.
        for i in 0..3u8 {
            socket.send_to(&[i; 300], remote).await.unwrap();
        }
        let mut batch = TunBatch::new(&tun, 8, 2048, 64, 64);
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let n = tun.recv_batch(&mut batch).await.unwrap();
            for i in 0..n {
                let (range, slot) = batch.get_mut(i).unwrap();
                assert_eq!(range.start, 64, "packets land after the headroom");
                let packet = &slot[range];
                // Skip what the stack sends on its own (IPv6 router solicitations, …).
                if packet.first() == Some(&0x45) && packet.get(9) == Some(&17) {
                    seen.push(packet[28..].to_vec());
                }
            }
        }
        assert_eq!(seen, (0..3u8).map(|i| vec![i; 300]).collect::<Vec<_>>());
        Some(tun.offloads())
    }

    /// [`both_directions`] in a private namespace, on a runtime of that namespace's thread.
    fn both_directions_in_private_netns(tag: u8, offload: Offload) -> Option<bool> {
        in_private_netns(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(both_directions(tag, offload))
        })
        .flatten()
    }

    #[test]
    fn with_offloads_packets_cross_both_ways_and_a_batch_write_arrives_intact() {
        let offloads = both_directions_in_private_netns(0, Offload::IfAvailable);
        // Linux has granted IFF_VNET_HDR and TSO since 2.6.32.
        assert_ne!(offloads, Some(false), "offloads were refused");
    }

    #[test]
    fn without_offloads_the_plain_path_moves_the_same_packets() {
        let offloads = both_directions_in_private_netns(1, Offload::Off);
        assert_ne!(offloads, Some(true), "offloads were not asked for");
    }
}
