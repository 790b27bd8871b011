//! Bodies of the fuzz targets (STYLE.md §10.6), shared by `netio/fuzz` and the corpus replay
//! test.

use crate::coalesce::Offloads;
use crate::tun::{TunWriter, VNET_HEADER_LEN};

/// `tun_coalesce`: the TUN writer's coalescing over hostile decapsulated packets. The first
/// byte picks the offloads (bit 0 TCP, bit 1 UDP); then packets follow, each a big-endian
/// 16-bit length and its bytes. Every packet must be taken, and every buffer written must hold
/// exactly as many packets as went in: a super-packet's header must be one the kernel accepts
/// (tun-rs's `gso_split`, the kernel's rules, must cut it), into as many segments as joined.
///
/// # Panics
/// When a packet is lost, duplicated, or a super-packet does not split.
pub fn coalesce(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let offloads = Offloads {
        tcp: flags & 1 != 0,
        udp: flags & 2 != 0,
    };
    let mut writer = TunWriter::with_offloads(8, offloads);
    let mut pushed = 0;
    let mut written = 0;
    let mut split = vec![vec![0u8; 65_536]; 64];
    let mut sizes = vec![0usize; 64];
    let mut check = |bufs: &[Vec<u8>], written: &mut usize| {
        for buf in bufs {
            let header = tun_rs::VirtioNetHdr::decode(&buf[..VNET_HEADER_LEN])
                .expect("every buffer starts with a header");
            let mut packet = buf[VNET_HEADER_LEN..].to_vec();
            if header.gso_type == 0 {
                *written += 1;
                continue;
            }
            let v6 = packet.first().is_some_and(|b| b >> 4 == 6);
            let n = tun_rs::gso_split(&mut packet, header, &mut split, &mut sizes, 0, v6)
                .expect("a super-packet the kernel can cut");
            assert!(n >= 2, "a super-packet holds at least two segments");
            *written += n;
        }
    };
    while let Some((len, body)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(body.len());
        let (packet, next) = body.split_at(len);
        rest = next;
        if !writer.push(packet) {
            check(writer.finish(), &mut written);
            assert!(writer.push(packet), "an empty writer takes any packet");
        }
        pushed += 1;
    }
    check(writer.finish(), &mut written);
    assert_eq!(written, pushed, "every packet written once");
}

#[cfg(test)]
mod tests {
    codec::corpus_replay!();

    #[test]
    fn committed_corpus_replays() {
        replay("tun_coalesce", super::coalesce);
    }
}
