//! The batch path against the one-packet-at-a-time path: two seeded worlds, identical up to
//! the first data packet, take the same traffic, one packet by packet and one by the batch on a
//! two-thread crypto pool; every output byte, every result and every counter must agree.

use super::*;
use crate::engine::ipsec::{RxJob, TunJob};
use crate::parallel::CryptoPool;
use crate::testing::udp_packet;
use ike::crypto::{CipherAlgorithm, IntegrityAlgorithm};
use ike::esp::Transform;

/// A world whose laptop proposes only `transform`, driven until the laptop has its address.
fn connected(transform: Transform) -> World {
    let now = t0();
    let mut w = World::new(now, server());
    let mut config = ike::endpoint::Config::new(PSK);
    config.phase2.transforms = vec![transform];
    w.laptop = Laptop::with_config(now, "203.0.113.5:500".parse().unwrap(), config);
    assert!(w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some()));
    w
}

fn gcm() -> Transform {
    Transform::new(CipherAlgorithm::AesGcm16_128, None).unwrap()
}

fn cbc_sha1() -> Transform {
    Transform::new(
        CipherAlgorithm::AesCbc128,
        Some(IntegrityAlgorithm::HmacSha1_96),
    )
    .unwrap()
}

const INTRANET: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const SIZES: [usize; 8] = [28, 64, 200, 577, 1000, 1279, 1300, 1400];

/// What a TUN packet became: its route and sealed bytes, or the drop.
type Sealed = Result<(Route, Vec<u8>), Drop>;

fn tun_packets(to: Ipv4Addr, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| {
            // Every seventh packet is for an address nobody holds: dropped by the LNS.
            let dst = if n % 7 == 6 {
                Ipv4Addr::new(172, 16, 1, 99)
            } else {
                to
            };
            udp_packet(INTRANET, dst, SIZES[n % SIZES.len()], n)
        })
        .collect()
}

fn slot_for(packet: &[u8]) -> Vec<u8> {
    let mut slot = vec![0u8; HEADROOM + 1400 + TAILROOM];
    slot[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    slot
}

fn seal_one_by_one(w: &mut World, packets: &[Vec<u8>]) -> Vec<Sealed> {
    packets
        .iter()
        .map(|p| {
            let mut slot = slot_for(p);
            w.server
                .handle_tun(&mut slot, HEADROOM..HEADROOM + p.len())
                .map(|out| (out.route, slot[out.range].to_vec()))
        })
        .collect()
}

fn seal_by_the_batch(w: &mut World, pool: &CryptoPool, packets: &[Vec<u8>]) -> Vec<Sealed> {
    let mut slots: Vec<Vec<u8>> = packets.iter().map(|p| slot_for(p)).collect();
    let mut jobs: Vec<TunJob<'_>> = slots
        .iter_mut()
        .zip(packets)
        .map(|(slot, p)| TunJob::new(slot, HEADROOM..HEADROOM + p.len()))
        .collect();
    w.server.handle_tun_batch(pool, &mut jobs);
    jobs.iter()
        .map(|job| {
            job.result()
                .clone()
                .map(|out| (out.route, job.slot()[out.range].to_vec()))
        })
        .collect()
}

/// ESP datagrams of the laptop carrying `packets` to the intranet, in order.
fn laptop_esp(w: &mut World, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .map(|p| {
            let mut buf = vec![0u8; LNS_HEADROOM + p.len()];
            buf[LNS_HEADROOM..].copy_from_slice(p);
            let end = buf.len();
            let ppp = w.laptop.ppp.as_ref().unwrap();
            let frame = ppp
                .encapsulate(Protocol::IPV4, &mut buf, LNS_HEADROOM..end)
                .unwrap();
            let range = w.laptop.data.unwrap().encapsulate(&mut buf, frame).unwrap();
            w.laptop.seal(&buf[range]).unwrap().1
        })
        .collect()
}

/// How each datagram of a received batch arrives.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// IP protocol 50.
    Esp,
    /// UDP 4500.
    NatT,
}

const LAPTOP: &str = "203.0.113.5:4500";
const SERVER_NATT: &str = "2.2.2.2:4500";

/// What a received datagram became: the packet for TUN, or the drop.
type Opened = Result<Option<Vec<u8>>, Drop>;

fn open_one_by_one(w: &mut World, way: Way, datagrams: &[Vec<u8>]) -> Vec<Opened> {
    let now = w.now;
    datagrams
        .iter()
        .map(|d| {
            let mut bytes = d.clone();
            let result = match way {
                Way::Esp => w
                    .server
                    .handle_esp(now, "203.0.113.5".parse().unwrap(), &mut bytes),
                Way::NatT => w.server.handle_udp(
                    now,
                    SERVER_NATT.parse().unwrap(),
                    LAPTOP.parse().unwrap(),
                    &mut bytes,
                ),
            };
            result.map(|r| r.map(|r| bytes[r].to_vec()))
        })
        .collect()
}

fn open_by_the_batch(
    w: &mut World,
    pool: &CryptoPool,
    way: Way,
    datagrams: &[Vec<u8>],
) -> Vec<Opened> {
    let now = w.now;
    let mut bufs = datagrams.to_vec();
    let mut jobs: Vec<RxJob<'_>> = bufs
        .iter_mut()
        .map(|b| match way {
            Way::Esp => RxJob::esp(b, "203.0.113.5".parse().unwrap()),
            Way::NatT => RxJob::udp(b, SERVER_NATT.parse().unwrap(), LAPTOP.parse().unwrap()),
        })
        .collect();
    w.server.handle_rx_batch(now, pool, &mut jobs);
    jobs.iter()
        .map(|job| {
            job.result()
                .clone()
                .map(|r| r.map(|_| job.delivered().unwrap().to_vec()))
        })
        .collect()
}

/// The peer's inbound SA at the server (the one the laptop seals to).
fn server_inbound_stats(w: &World) -> ike::esp::SaStats {
    let spi = *w.server.newest.values().next().unwrap();
    w.server.sadb.inbound(Spi(spi)).unwrap().stats()
}

fn serial_and_parallel_agree_byte_for_byte(transform: Transform) {
    let mut serial = connected(transform);
    let mut parallel = connected(transform);
    let address = serial.laptop.ipv4().unwrap();
    assert_eq!(parallel.laptop.ipv4(), Some(address));
    // Batch sizes around the pool's threshold: 1 stays on this thread, the rest spread.
    let pool = CryptoPool::new(2).unwrap().with_min_batch(2);
    for (round, count) in [1usize, 2, 7, 32, 64, 5].into_iter().enumerate() {
        let down = tun_packets(address, count);
        let expected = seal_one_by_one(&mut serial, &down);
        let got = seal_by_the_batch(&mut parallel, &pool, &down);
        assert_eq!(got, expected, "{transform:?}, TUN batch {round} of {count}");
        assert!(
            expected.iter().filter(|r| r.is_ok()).count() >= count * 6 / 7,
            "most packets were sealed"
        );

        let up: Vec<Vec<u8>> = (0..count)
            .map(|n| udp_packet(address, INTRANET, SIZES[n % SIZES.len()], n + round))
            .collect();
        let datagrams = laptop_esp(&mut serial, &up);
        let way = if round % 2 == 0 { Way::Esp } else { Way::NatT };
        let expected = open_one_by_one(&mut serial, way, &datagrams);
        let got = open_by_the_batch(&mut parallel, &pool, way, &datagrams);
        assert_eq!(got, expected, "{transform:?}, ESP batch {round} of {count}");
        let delivered: Vec<Vec<u8>> = got.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert_eq!(
            delivered, up,
            "every packet reaches TUN intact and in order"
        );
        assert_eq!(parallel.server.snapshot(), serial.server.snapshot());
        assert_eq!(
            server_inbound_stats(&parallel),
            server_inbound_stats(&serial)
        );
    }
}

#[test]
fn a_gcm_batch_on_two_threads_matches_one_packet_at_a_time_byte_for_byte() {
    serial_and_parallel_agree_byte_for_byte(gcm());
}

#[test]
fn a_cbc_sha1_batch_on_two_threads_matches_one_packet_at_a_time_byte_for_byte() {
    serial_and_parallel_agree_byte_for_byte(cbc_sha1());
}

#[test]
fn two_copies_of_a_packet_in_one_batch_are_accepted_once() {
    for transform in [gcm(), cbc_sha1()] {
        let mut w = connected(transform);
        let address = w.laptop.ipv4().unwrap();
        let pool = CryptoPool::new(2).unwrap().with_min_batch(2);
        let up: Vec<Vec<u8>> = (0..6)
            .map(|n| udp_packet(address, INTRANET, 300, n))
            .collect();
        let esp = laptop_esp(&mut w, &up);
        // 0 1 2 1 3 4 5 1: the second and third copies of packet 1 are replays.
        let batch: Vec<Vec<u8>> = [0, 1, 2, 1, 3, 4, 5, 1]
            .iter()
            .map(|&i| esp[i].clone())
            .collect();
        let before = server_inbound_stats(&w);
        let got = open_by_the_batch(&mut w, &pool, Way::Esp, &batch);
        let replay = Err(Drop::Esp(ike::esp::Discard::Replay));
        assert_eq!(
            got,
            vec![
                Ok(Some(up[0].clone())),
                Ok(Some(up[1].clone())),
                Ok(Some(up[2].clone())),
                replay.clone(),
                Ok(Some(up[3].clone())),
                Ok(Some(up[4].clone())),
                Ok(Some(up[5].clone())),
                replay,
            ],
            "{transform:?}"
        );
        let after = server_inbound_stats(&w);
        assert_eq!(after.packets - before.packets, 6);
        assert_eq!(after.replay_drops - before.replay_drops, 2);
    }
}

#[test]
fn a_corrupted_packet_in_a_batch_is_dropped_and_counted_and_the_rest_delivered_in_order() {
    for transform in [gcm(), cbc_sha1()] {
        let mut w = connected(transform);
        let address = w.laptop.ipv4().unwrap();
        let pool = CryptoPool::new(2).unwrap().with_min_batch(2);
        let up: Vec<Vec<u8>> = (0..8)
            .map(|n| udp_packet(address, INTRANET, 100 + 150 * n, n))
            .collect();
        let mut batch = laptop_esp(&mut w, &up);
        let middle = batch[3].len() / 2;
        batch[3][middle] ^= 0x40;
        // And a NAT keepalive in the middle of the UDP 4500 batch, handled where it stands.
        batch.insert(5, vec![0xff]);
        let before = server_inbound_stats(&w);
        let dropped_before = w.server.snapshot().stats;
        let got = open_by_the_batch(&mut w, &pool, Way::NatT, &batch);
        assert_eq!(got[3], Err(Drop::Esp(ike::esp::Discard::Integrity)));
        assert_eq!(got[5], Err(Drop::Keepalive));
        let delivered: Vec<Vec<u8>> = got
            .iter()
            .filter_map(|r| r.clone().ok().flatten())
            .collect();
        let expected: Vec<Vec<u8>> = up
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != 3)
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(delivered, expected, "{transform:?}");
        let after = server_inbound_stats(&w);
        assert_eq!(after.integrity_drops - before.integrity_drops, 1);
        assert_eq!(after.packets - before.packets, 7);
        assert_ne!(
            w.server.snapshot().stats,
            dropped_before,
            "the engine counted the batch"
        );
    }
}
