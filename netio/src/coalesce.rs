//! [`TunWriter`]: the packets of one TUN write, coalesced per flow — generic receive offload in
//! userspace, so that a batch of decapsulated TCP or UDP segments enters the host's stack as a
//! few super-packets (virtio-net GSO) instead of one write per packet.
//!
//! A packet joins the latest super-packet of its flow when the kernel could cut the result back
//! into exactly the packets that went in: same addresses, ports and IP header fields that GSO
//! copies to every segment; a payload no longer than the first one's (the GSO size), after no
//! shorter one; for TCP the next sequence number, the same acknowledgement, options and header
//! length, and only ACK (and PSH on the last) set; checksums valid, since the kernel will treat
//! the super-packet's checksum as its own to compute; at most [`MAX_SEGMENTS`] segments and
//! 64 KiB. Anything else (other protocols, fragments, IPv4 options, IPv6 extension headers, UDP
//! without a checksum) is written as it came. Each payload is copied once, straight into its
//! super-packet's buffer; nothing allocates.

use tun_rs::{
    VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6, VIRTIO_NET_HDR_GSO_UDP_L4, VirtioNetHdr,
};

/// Room in front of each packet for its virtio-net header.
const OFFSET: usize = tun_rs::VIRTIO_NET_HDR_LEN;
/// Most segments in one super-packet.
const MAX_SEGMENTS: u16 = 64;
/// Largest super-packet (the IPv4 total length field; also used for IPv6).
const MAX_LEN: usize = 65_535;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// TCP flags.
const FIN_SYN_RST_URG_ECE_CWR: u8 = 0x01 | 0x02 | 0x04 | 0x20 | 0x40 | 0x80;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
const NEEDS_CSUM: u8 = 1;

/// What the device takes coalesced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// TCP super-packets (TSO: every device with a virtio-net header).
    pub tcp: bool,
    /// UDP super-packets (USO: Linux 6.2 and later).
    pub udp: bool,
}

/// A packet's flow: what must be equal for two packets to share a super-packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Flow {
    v6: bool,
    protocol: u8,
    /// Source and destination addresses (IPv4 in the first 8 bytes).
    addresses: [u8; 32],
    ports: [u8; 4],
    /// IPv4: TOS, TTL and the flags other than MF; IPv6: traffic class, flow label and hop
    /// limit.
    ip_fields: [u8; 5],
}

/// A coalescable packet's layout.
#[derive(Debug, Clone, Copy, Default)]
struct Parsed {
    flow: Flow,
    ip_len: usize,
    l4_len: usize,
    payload: usize,
    /// TCP only.
    seq: u32,
    ack: u32,
    flags: u8,
}

impl Parsed {
    fn headers(&self) -> usize {
        self.ip_len + self.l4_len
    }
}

/// One buffer's state: a packet written as it came, or the head of a super-packet.
#[derive(Debug, Clone, Copy, Default)]
struct Item {
    /// `None`: written as it came.
    head: Option<Parsed>,
    segments: u16,
    /// No segment may join any more (a shorter one or PSH came, or a checksum failed).
    closed: bool,
    /// The head's checksum was verified.
    head_valid: bool,
    /// TCP: the sequence number the next segment must carry.
    next_seq: u32,
    /// TCP: PSH was on a segment that joined.
    psh: bool,
}

/// Reads the flow and layout of `packet` if `offloads` could coalesce it.
fn parse(packet: &[u8], offloads: Offloads) -> Option<Parsed> {
    let mut flow = Flow::default();
    let ip_len = match packet.first()? >> 4 {
        4 => {
            let h = packet.get(..20)?;
            // No options, no fragments, the length as received.
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if h[0] != 0x45 || h[6] & 0x3f != 0 || h[7] != 0 || total != packet.len() {
                return None;
            }
            flow.protocol = h[9];
            flow.addresses[..8].copy_from_slice(&h[12..20]);
            // DF and the reserved bit (segmentation copies the head's to every segment).
            flow.ip_fields = [h[1], h[8], h[6] & 0xc0, 0, 0];
            20
        }
        6 => {
            let h = packet.get(..40)?;
            let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
            if payload + 40 != packet.len() {
                return None;
            }
            flow.v6 = true;
            flow.protocol = h[6];
            flow.addresses.copy_from_slice(&h[8..40]);
            flow.ip_fields = [h[0] & 0x0f, h[1], h[2], h[3], h[7]];
            40
        }
        _ => return None,
    };
    let l4 = packet.get(ip_len..)?;
    let mut parsed = Parsed {
        ip_len,
        ..Parsed::default()
    };
    match flow.protocol {
        PROTO_UDP if offloads.udp => {
            let h = l4.get(..8)?;
            // The UDP length must be the rest of the packet, and a checksum present.
            if usize::from(u16::from_be_bytes([h[4], h[5]])) != l4.len() || h[6..8] == [0, 0] {
                return None;
            }
            parsed.l4_len = 8;
        }
        PROTO_TCP if offloads.tcp => {
            let h = l4.get(..20)?;
            let len = usize::from(h[12] >> 4) * 4;
            let flags = h[13];
            if len < 20
                || l4.len() < len
                || flags & FIN_SYN_RST_URG_ECE_CWR != 0
                || flags & ACK == 0
            {
                return None;
            }
            parsed.l4_len = len;
            parsed.seq = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
            parsed.ack = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            parsed.flags = flags;
        }
        _ => return None,
    }
    flow.ports.copy_from_slice(l4.get(..4)?);
    parsed.flow = flow;
    parsed.payload = packet.len() - parsed.headers();
    (parsed.payload > 0).then_some(parsed)
}

/// Whether the TCP/UDP checksum of `packet` (laid out as `p`) verifies.
fn checksum_valid(packet: &[u8], p: &Parsed) -> bool {
    let (addresses, l4) = (
        &p.flow.addresses[..if p.flow.v6 { 32 } else { 8 }],
        &packet[p.ip_len..],
    );
    let Ok(len) = u16::try_from(l4.len()) else {
        return false;
    };
    tun_rs::checksum(l4, pseudo_header(addresses, p.flow.protocol, len)) == 0xffff
}

/// Packets queued for one `Tun::write_batch`, each behind room for its virtio-net header, in
/// buffers allocated once with room for a whole super-packet. TCP or UDP segments of one flow
/// are coalesced as they are pushed, as far as the writer's [`Offloads`] allow (`Tun::writer`
/// gives a writer its device's): each payload is copied once, straight into its super-packet.
pub struct TunWriter {
    bufs: Box<[Vec<u8>]>,
    items: Box<[Item]>,
    len: usize,
    offloads: Offloads,
}

impl std::fmt::Debug for TunWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunWriter")
            .field("buffers", &self.len)
            .field("offloads", &self.offloads)
            .finish_non_exhaustive()
    }
}

impl TunWriter {
    /// Room for `capacity` packets, written one by one (for a device without offloads).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self::with_offloads(capacity, Offloads::default())
    }

    /// Room for `capacity` packets or super-packets, coalescing what `offloads` allows (a
    /// device's are `Tun::offloads_for_writes`).
    #[must_use]
    pub fn with_offloads(capacity: usize, offloads: Offloads) -> Self {
        let capacity = capacity.max(1);
        Self {
            bufs: (0..capacity)
                .map(|_| Vec::with_capacity(OFFSET + MAX_LEN))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
            items: vec![Item::default(); capacity].into_boxed_slice(),
            len: 0,
            offloads,
        }
    }

    /// What this writer coalesces.
    #[must_use]
    pub const fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// Buffers in use: packets, or super-packets counted once.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Drops everything queued.
    pub const fn clear(&mut self) {
        self.len = 0;
    }

    /// Whether nothing is queued.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every buffer is in use (a packet may still join a super-packet, but write the
    /// batch before pushing more).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    /// Queues `packet`, joined to its flow's super-packet where it can be; false when it
    /// needs a buffer of its own and all are taken (write the batch first).
    pub fn push(&mut self, packet: &[u8]) -> bool {
        let parsed = if self.offloads.tcp || self.offloads.udp {
            parse(packet, self.offloads)
        } else {
            None
        };
        if let Some(p) = parsed
            && self.join(packet, &p)
        {
            return true;
        }
        let (Some(buf), Some(item)) = (self.bufs.get_mut(self.len), self.items.get_mut(self.len))
        else {
            return false;
        };
        buf.clear();
        buf.resize(OFFSET, 0);
        buf.extend_from_slice(packet);
        *item = Item {
            head: parsed,
            segments: 1,
            // A head with PSH, or one whose checksum already failed, takes nothing more.
            closed: parsed.is_none_or(|p| p.flags & PSH != 0),
            head_valid: false,
            next_seq: parsed.map_or(0, |p| p.seq.wrapping_add(payload_u32(&p))),
            psh: false,
        };
        self.len += 1;
        true
    }

    /// Appends `packet`'s payload to the latest super-packet of its flow if it may join.
    fn join(&mut self, packet: &[u8], p: &Parsed) -> bool {
        let n = self.len;
        let Some(at) = self.items[..n]
            .iter()
            .rposition(|item| item.head.is_some_and(|h| h.flow == p.flow))
        else {
            return false;
        };
        let (item, buf) = (&mut self.items[at], &mut self.bufs[at]);
        let Some(head) = item.head else {
            return false;
        };
        if item.closed
            || item.segments >= MAX_SEGMENTS
            || p.payload > head.payload
            || p.headers() != head.headers()
            || buf.len() - OFFSET + p.payload > MAX_LEN
        {
            return false;
        }
        if p.flow.protocol == PROTO_TCP
            && (p.seq != item.next_seq
                || p.ack != head.ack
                || packet[p.ip_len + 20..p.headers()]
                    != buf[OFFSET + head.ip_len + 20..OFFSET + head.headers()])
        {
            return false;
        }
        if !item.head_valid {
            if !checksum_valid(&buf[OFFSET..], &head) {
                item.closed = true;
                return false;
            }
            item.head_valid = true;
        }
        if !checksum_valid(packet, p) {
            return false;
        }
        buf.extend_from_slice(&packet[p.headers()..]);
        item.segments += 1;
        item.next_seq = p.seq.wrapping_add(payload_u32(p));
        if p.payload < head.payload || p.flags & PSH != 0 {
            item.closed = true;
        }
        item.psh |= p.flags & PSH != 0;
        true
    }

    /// Writes each buffer's virtio-net header and, for super-packets, their IP and transport
    /// headers as GSO wants them (lengths for the whole, the transport checksum holding the
    /// pseudo-header sum for the kernel to finish per segment), and returns the buffers to
    /// write as they are, header in front; the writer is then empty.
    pub fn finish(&mut self) -> &[Vec<u8>] {
        let n = std::mem::take(&mut self.len);
        for (buf, item) in self.bufs[..n].iter_mut().zip(self.items[..n].iter()) {
            let mut header = VirtioNetHdr::default();
            if let Some(head) = item.head
                && item.segments > 1
            {
                finish_super_packet(&mut buf[OFFSET..], &head, item.psh);
                header = VirtioNetHdr {
                    flags: NEEDS_CSUM,
                    gso_type: match (head.flow.protocol, head.flow.v6) {
                        (PROTO_UDP, _) => VIRTIO_NET_HDR_GSO_UDP_L4,
                        (_, false) => VIRTIO_NET_HDR_GSO_TCPV4,
                        (_, true) => VIRTIO_NET_HDR_GSO_TCPV6,
                    },
                    hdr_len: u16_of(head.headers()),
                    gso_size: u16_of(head.payload),
                    csum_start: u16_of(head.ip_len),
                    csum_offset: if head.flow.protocol == PROTO_UDP {
                        6
                    } else {
                        16
                    },
                };
            }
            // The buffer always holds OFFSET (the header's length) bytes in front.
            let _ = header.encode(&mut buf[..OFFSET]);
        }
        &self.bufs[..n]
    }
}

/// Lengths, the IPv4 header checksum, PSH, and the transport checksum field set to the
/// pseudo-header sum (not complemented) for a super-packet in `packet`.
fn finish_super_packet(packet: &mut [u8], head: &Parsed, psh: bool) {
    let total = packet.len();
    let l4_total = total - head.ip_len;
    if head.flow.v6 {
        packet[4..6].copy_from_slice(&u16_of(l4_total).to_be_bytes());
    } else {
        packet[2..4].copy_from_slice(&u16_of(total).to_be_bytes());
        packet[10..12].fill(0);
        let sum = !tun_rs::checksum(&packet[..20], 0);
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    let l4 = head.ip_len;
    let csum_at = if head.flow.protocol == PROTO_UDP {
        packet[l4 + 4..l4 + 6].copy_from_slice(&u16_of(l4_total).to_be_bytes());
        l4 + 6
    } else {
        if psh {
            packet[l4 + 13] |= PSH;
        }
        l4 + 16
    };
    let addresses = &head.flow.addresses[..if head.flow.v6 { 32 } else { 8 }];
    let partial = tun_rs::checksum(
        &[],
        pseudo_header(addresses, head.flow.protocol, u16_of(l4_total)),
    );
    packet[csum_at..csum_at + 2].copy_from_slice(&partial.to_be_bytes());
}

/// The unfolded sum of the pseudo-header (RFC 768, RFC 793, RFC 8200 §8.1): both addresses,
/// the protocol and the transport length.
fn pseudo_header(addresses: &[u8], protocol: u8, len: u16) -> u64 {
    let [hi, lo] = len.to_be_bytes();
    tun_rs::checksum_no_fold(
        &[0, protocol, hi, lo],
        tun_rs::checksum_no_fold(addresses, 0),
    )
}

/// A length known to be at most [`MAX_LEN`] as `u16`.
fn u16_of(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn payload_u32(p: &Parsed) -> u32 {
    u32::try_from(p.payload).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Offloads = Offloads {
        tcp: true,
        udp: true,
    };

    /// Sets the IPv4 header checksum and the transport checksum of `p` (IPv4 or IPv6, no
    /// options or extension headers).
    fn seal_checksums(p: &mut [u8]) {
        let v6 = p[0] >> 4 == 6;
        let (ip_len, protocol) = if v6 { (40, p[6]) } else { (20, p[9]) };
        if !v6 {
            p[10..12].fill(0);
            let sum = !tun_rs::checksum(&p[..20], 0);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let at = ip_len
            + match protocol {
                PROTO_UDP => 6,
                PROTO_TCP => 16,
                _ => return,
            };
        p[at..at + 2].fill(0);
        let addresses = if v6 {
            p[8..40].to_vec()
        } else {
            p[12..20].to_vec()
        };
        let len = u16::try_from(p.len() - ip_len).unwrap();
        let mut sum = !tun_rs::checksum(&p[ip_len..], pseudo_header(&addresses, protocol, len));
        if sum == 0 && protocol == PROTO_UDP {
            sum = 0xffff;
        }
        p[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }

    fn ip(v6: bool, protocol: u8, id: u16, l4: &[u8]) -> Vec<u8> {
        let mut p = if v6 {
            let mut h = vec![0x60, 0, 0, 0, 0, 0, protocol, 64];
            h[4..6].copy_from_slice(&u16::try_from(l4.len()).unwrap().to_be_bytes());
            h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            h
        } else {
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0];
            h[2..4].copy_from_slice(&u16::try_from(20 + l4.len()).unwrap().to_be_bytes());
            h[4..6].copy_from_slice(&id.to_be_bytes());
            h.extend_from_slice(&[172, 16, 1, 51, 192, 168, 1, 1]);
            h
        };
        p.extend_from_slice(l4);
        seal_checksums(&mut p);
        p
    }

    fn udp(v6: bool, id: u16, sport: u16, payload: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&5001u16.to_be_bytes());
        l4.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        ip(v6, PROTO_UDP, id, &l4)
    }

    fn tcp(v6: bool, id: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&40000u16.to_be_bytes());
        l4.extend_from_slice(&443u16.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&ack.to_be_bytes());
        // 32-byte header: NOP, NOP, timestamps.
        l4.extend_from_slice(&[0x80, flags, 0x10, 0x00, 0, 0, 0, 0]);
        l4.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
        l4.extend_from_slice(payload);
        ip(v6, PROTO_TCP, id, &l4)
    }

    /// Pushes every packet into a writer with `offloads`, finishes, and returns each buffer
    /// written: its header and the packets the kernel would make of it (split by
    /// `tun_rs::gso_split`, the same rules as the kernel's segmentation, as an independent
    /// oracle).
    fn run(packets: &[Vec<u8>], offloads: Offloads) -> Vec<(VirtioNetHdr, Vec<Vec<u8>>)> {
        let mut w = TunWriter::with_offloads(64, offloads);
        for p in packets {
            assert!(w.push(p), "room for every packet");
        }
        w.finish()
            .iter()
            .map(|buf| {
                let header = VirtioNetHdr::decode(&buf[..OFFSET]).unwrap();
                let mut packet = buf[OFFSET..].to_vec();
                if header.gso_type == 0 {
                    assert_eq!(header.flags, 0, "a packet written as it came");
                    return (header, vec![packet]);
                }
                let mut out = vec![vec![0u8; 2048]; 80];
                let mut sizes = vec![0; 80];
                let v6 = packet[0] >> 4 == 6;
                let n =
                    tun_rs::gso_split(&mut packet, header, &mut out, &mut sizes, 0, v6).unwrap();
                let segments = (0..n).map(|i| out[i][..sizes[i]].to_vec()).collect();
                (header, segments)
            })
            .collect()
    }
    #[test]
    fn a_flows_udp_segments_become_one_super_packet_that_splits_back_into_them() {
        for v6 in [false, true] {
            let mut packets: Vec<Vec<u8>> = (0..5u8)
                .map(|i| udp(v6, u16::from(i), 7000, &[i; 1000]))
                .collect();
            packets.push(udp(v6, 5, 7000, &[9; 300]));
            let written = run(&packets, ALL);
            assert_eq!(written.len(), 1, "one write for the flow (v6 {v6})");
            let (header, segments) = &written[0];
            assert_eq!(header.gso_type, VIRTIO_NET_HDR_GSO_UDP_L4);
            assert_eq!(header.gso_size, 1000);
            assert_eq!(header.flags, NEEDS_CSUM);
            assert_eq!(
                segments, &packets,
                "the kernel gets back exactly what went in"
            );
        }
    }

    #[test]
    fn a_flows_tcp_segments_join_in_sequence_and_psh_ends_the_super_packet() {
        for v6 in [false, true] {
            let seg = |i: u32, flags: u8, len: usize| {
                tcp(
                    v6,
                    u16::try_from(i).unwrap(),
                    1000 + i * 1200,
                    77,
                    flags,
                    &vec![u8::try_from(i).unwrap(); len],
                )
            };
            let packets = vec![
                seg(0, ACK, 1200),
                seg(1, ACK, 1200),
                seg(2, ACK | PSH, 1200),
                // After PSH: a super-packet of its own.
                seg(3, ACK, 1200),
                seg(4, ACK, 1200),
            ];
            let written = run(&packets, ALL);
            assert_eq!(written.len(), 2, "v6 {v6}");
            let want_type = if v6 {
                VIRTIO_NET_HDR_GSO_TCPV6
            } else {
                VIRTIO_NET_HDR_GSO_TCPV4
            };
            assert_eq!(written[0].0.gso_type, want_type);
            assert_eq!(written[0].0.gso_size, 1200);
            assert_eq!(
                written[0].1,
                packets[..3],
                "PSH stays on the last segment only"
            );
            assert_eq!(written[1].1, packets[3..]);
        }
    }

    #[test]
    fn tcp_segments_that_do_not_follow_on_are_not_joined() {
        // (IPv4 IDs count up, as the kernel's segmentation makes them.)
        let base =
            |id: u16, seq: u32, ack: u32, len: usize| tcp(false, id, seq, ack, ACK, &vec![1; len]);
        // A gap in the sequence, another acknowledgement, a longer segment after a shorter:
        // each starts a super-packet of its own.
        for (packets, writes) in [
            (vec![base(0, 0, 5, 100), base(1, 200, 5, 100)], 2),
            (vec![base(0, 0, 5, 100), base(1, 100, 6, 100)], 2),
            (
                vec![base(0, 0, 5, 100), base(1, 100, 5, 50), base(2, 150, 5, 50)],
                2,
            ),
            (vec![base(0, 0, 5, 100), base(1, 100, 5, 101)], 2),
            (vec![base(0, 0, 5, 100), base(1, 100, 5, 100)], 1),
        ] {
            let written = run(&packets, ALL);
            assert_eq!(written.len(), writes);
            let out: Vec<Vec<u8>> = written.into_iter().flat_map(|(_, s)| s).collect();
            assert_eq!(out, packets, "every packet arrives, in order");
        }
        // Other flags (SYN, FIN, RST, URG, ECE, CWR) or no ACK: written as they came.
        for flags in [
            0x02 | ACK,
            0x01 | ACK,
            0x04,
            0x20 | ACK,
            0x40 | ACK,
            0x80 | ACK,
            PSH,
        ] {
            let packets = vec![
                tcp(false, 0, 0, 5, flags, &[1; 100]),
                tcp(false, 1, 100, 5, flags, &[1; 100]),
            ];
            let written = run(&packets, ALL);
            assert_eq!(written.len(), 2, "flags {flags:#x}");
            assert!(written.iter().all(|(h, _)| h.gso_type == 0));
        }
    }

    #[test]
    fn interleaved_flows_each_get_their_own_super_packet_in_order() {
        let a = |i: u8| udp(false, u16::from(i), 7000, &[i; 500]);
        let b = |i: u8| udp(false, u16::from(i), 7001, &[i; 400]);
        let packets = vec![a(0), b(0), a(1), b(1), a(2), b(2)];
        let written = run(&packets, ALL);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].1, vec![a(0), a(1), a(2)]);
        assert_eq!(written[1].1, vec![b(0), b(1), b(2)]);
    }

    #[test]
    fn a_bad_checksum_keeps_a_packet_out_and_everything_still_arrives() {
        let good = |i: u8| udp(false, u16::from(i), 7000, &[i; 500]);
        let mut bad = good(1);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        // The bad one neither joins the first nor takes the third.
        let packets = vec![good(0), bad.clone(), good(2)];
        let written = run(&packets, ALL);
        let out: Vec<Vec<u8>> = written.iter().flat_map(|(_, s)| s.clone()).collect();
        assert_eq!(out, packets);
        assert!(
            written
                .iter()
                .any(|(h, s)| h.gso_type == 0 && s == &vec![bad.clone()]),
            "the bad packet is written untouched, for the stack to drop"
        );
        // A bad head takes nothing either.
        let packets = vec![bad.clone(), good(2), good(3)];
        let written = run(&packets, ALL);
        let out: Vec<Vec<u8>> = written.iter().flat_map(|(_, s)| s.clone()).collect();
        assert_eq!(out, packets);
        assert_eq!(written[0].0.gso_type, 0);
    }

    #[test]
    fn what_cannot_be_coalesced_is_written_as_it_came() {
        let mut fragment = udp(false, 0, 7000, &[1; 100]);
        fragment[6] |= 0x20; // more fragments
        seal_checksums(&mut fragment);
        let mut no_checksum = udp(false, 1, 7000, &[1; 100]);
        no_checksum[26..28].fill(0);
        let icmp = ip(false, 1, 2, &[8, 0, 0, 0, 0, 1, 0, 1]);
        for packets in [
            vec![fragment.clone(), fragment.clone()],
            vec![no_checksum.clone(), no_checksum.clone()],
            vec![icmp.clone(), icmp.clone()],
        ] {
            let written = run(&packets, ALL);
            assert_eq!(written.len(), 2);
            for ((h, s), p) in written.iter().zip(&packets) {
                assert_eq!((h.gso_type, s), (0, &vec![p.clone()]));
            }
        }
        // UDP without the UDP offload, anything without offloads: one write each.
        let packets = vec![
            udp(false, 0, 7000, &[1; 100]),
            udp(false, 1, 7000, &[1; 100]),
        ];
        let tcp_only = Offloads {
            tcp: true,
            udp: false,
        };
        assert_eq!(run(&packets, tcp_only).len(), 2);
        let segments = vec![
            tcp(false, 0, 0, 5, ACK, &[1; 100]),
            tcp(false, 1, 100, 5, ACK, &[1; 100]),
        ];
        assert_eq!(run(&segments, Offloads::default()).len(), 2);
        assert_eq!(run(&segments, tcp_only).len(), 1);
    }

    #[test]
    fn a_super_packet_stops_at_64_segments_and_64_kib() {
        let small: Vec<Vec<u8>> = (0..70u16).map(|i| udp(false, i, 7000, &[3; 10])).collect();
        let written = run(&small, ALL);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].1.len(), usize::from(MAX_SEGMENTS));
        assert_eq!(
            written
                .iter()
                .flat_map(|(_, s)| s.clone())
                .collect::<Vec<_>>(),
            small
        );
        let big: Vec<Vec<u8>> = (0..50u16)
            .map(|i| udp(false, i, 7000, &[4; 1400]))
            .collect();
        let written = run(&big, ALL);
        assert!(written.len() >= 2);
        for (h, s) in &written {
            assert!(20 + 8 + s.len() * 1400 <= MAX_LEN, "{h:?}");
        }
        assert_eq!(
            written
                .iter()
                .flat_map(|(_, s)| s.clone())
                .collect::<Vec<_>>(),
            big
        );
    }

    #[test]
    fn a_full_writer_refuses_a_packet_that_needs_a_buffer_but_takes_one_that_joins() {
        let mut w = TunWriter::with_offloads(2, ALL);
        let a = |i: u8| udp(false, u16::from(i), 7000, &[i; 100]);
        let b = |i: u8| udp(false, u16::from(i), 7001, &[i; 100]);
        assert!(w.push(&a(0)));
        assert!(w.push(&b(0)));
        assert!(w.push(&a(1)), "joins a's super-packet");
        let icmp = ip(false, 1, 2, &[8, 0, 0, 0, 0, 1, 0, 1]);
        assert!(!w.push(&icmp), "no buffer left");
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn malformed_packets_never_panic_and_are_written_as_they_came() {
        let good = udp(false, 0, 7000, &[1; 100]);
        let mut w = TunWriter::with_offloads(64, ALL);
        for cut in 0..good.len() {
            let mut p = good[..cut].to_vec();
            assert!(w.push(&p));
            if let Some(b) = p.get_mut(0) {
                *b = 0x46; // options claimed
            }
            w.len = 0;
            assert!(w.push(&p));
            w.len = 0;
        }
        let t = tcp(false, 0, 0, 1, ACK, &[1; 10]);
        let mut bad_offset = t.clone();
        bad_offset[32] = 0xf0; // data offset 60 > the segment
        let mut short = t;
        short[32] = 0x40; // data offset 16 < 20
        for p in [bad_offset, short] {
            w.len = 0;
            assert!(w.push(&p));
            assert!(w.items[0].head.is_none());
        }
    }
}
