//! The data path allocates nothing per packet (STYLE.md §6), proved with a counting global
//! allocator: the client's engine and the server's engine are connected in memory, warmed up,
//! and then 100,000 packets go each way (TUN → `handle_tun` → ESP → `handle_esp`/`handle_udp` →
//! TUN), through the batch framing the drivers use (`netio::gso` send plans, GRO splitting,
//! the TUN batch writer's queue), while every allocation on this thread is counted. Both
//! encapsulations are covered: plain ESP and ESP in UDP 4500 behind a NAT. The server's batch
//! path (`handle_tun_batch`, `handle_rx_batch`) is covered too, with its ESP crypto spread
//! over a two-thread pool whose other thread steals the jobs of this one: nothing on this
//! thread allocates per batch.

#![allow(
    clippy::unwrap_used,
    reason = "a test: a failed setup step should panic with its location"
)]

use l2sec_client::engine::{
    ClientEvent, Engine as Client, EngineConfig, HEADROOM, Route, TAILROOM, TRANSMIT_BUF_LEN,
};
use l2sec_server::engine::ipsec::{
    Engine as Server, HEADROOM as SERVER_HEADROOM, Route as ServerRoute, RxJob,
    TAILROOM as SERVER_TAILROOM, TunJob,
};
use l2sec_server::parallel::CryptoPool;
use l2sec_server::testing::{ServerSetup, reference_server, udp_packet};
use netio::RecvMeta;
use netio::gso::GsoPlan;
use netio::tun::{Offloads, TunWriter};
use ppp::auth::Password;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Allocations made by `f` on this thread (`allocation-counter` installs a counting global
/// allocator in this test binary and counts per thread, so parallel tests do not interfere).
fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

const PSK: &[u8] = b"no-alloc-test-psk";
const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(2, 2, 2, 2));
const LAPTOP_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
/// The NAT's public address; it maps port P to P + 40000.
const NAT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const INTRANET: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const PACKETS: usize = 100_000;
const SLOT: usize = 2048;

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

/// The reference server, with this test's pre-shared key.
fn server() -> Server<ChaCha20Rng> {
    let setup = ServerSetup {
        ike: ike::endpoint::Config::new(PSK),
        ..ServerSetup::default()
    };
    reference_server(setup, 1)
}

/// A connected client and server, in memory.
struct Pair {
    now: Instant,
    server: Server<ChaCha20Rng>,
    client: Client<ChaCha20Rng>,
    nat: bool,
    address: Option<Ipv4Addr>,
}

impl Pair {
    fn connect(nat: bool) -> Self {
        let now = t0();
        let mut config = EngineConfig::new(
            SocketAddr::new(SERVER_IP, 500),
            SocketAddr::new(LAPTOP_IP, 500),
            PSK,
            "hb@hb",
            Password::new("admin@123"),
        );
        // No periodic traffic of its own while the packets run.
        config.ike.dpd_interval = None;
        let mut ppp = (*config.ppp).clone();
        ppp.link.echo_interval = None;
        config.ppp = Arc::new(ppp);
        config.l2tp = Arc::new(l2tp::Config {
            hello_interval: Duration::from_secs(3600),
            ..l2tp::Config::default()
        });
        let client = Client::new(config, ChaCha20Rng::seed_from_u64(10), now);
        let mut pair = Self {
            now,
            server: server(),
            client,
            nat,
            address: None,
        };
        let end = now + Duration::from_secs(120);
        while pair.address.is_none() && pair.now < end {
            pair.exchange();
            let next = [pair.client.poll_timeout(), pair.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            if pair.address.is_some() {
                break;
            }
            let Some(next) = next else { break };
            pair.now = pair.now.max(next);
            pair.server.handle_timeout(pair.now);
            pair.client.handle_timeout(pair.now);
        }
        assert!(pair.address.is_some(), "the client got no address");
        assert_eq!(pair.client.encapsulated(), nat);
        pair
    }

    /// The client's source address as the server sees it.
    fn outside(&self, local: SocketAddr) -> SocketAddr {
        if self.nat {
            SocketAddr::new(NAT_IP, local.port() + 40_000)
        } else {
            local
        }
    }

    fn inside(&self, to: SocketAddr) -> SocketAddr {
        if self.nat {
            SocketAddr::new(LAPTOP_IP, to.port() - 40_000)
        } else {
            to
        }
    }

    /// Delivers control traffic both ways until both sides are quiet.
    fn exchange(&mut self) {
        let mut buf = vec![0u8; TRANSMIT_BUF_LEN];
        loop {
            let mut moved = false;
            while let Some(out) = self.client.poll_transmit(self.now, &mut buf) {
                moved = true;
                let bytes = buf[out.range.clone()].to_vec();
                self.deliver_to_server(out.route, bytes);
            }
            while let Some(e) = self.client.poll_event() {
                if let ClientEvent::AddressAssigned { local, .. } = e {
                    self.address = Some(local);
                }
            }
            while let Some(out) = self.server.poll_transmit(self.now, &mut buf) {
                moved = true;
                let bytes = buf[out.range.clone()].to_vec();
                self.deliver_to_client(out.route, bytes);
            }
            while self.server.lns_mut().poll_event().is_some() {}
            if !moved {
                return;
            }
        }
    }

    fn deliver_to_server(&mut self, route: Route, bytes: Vec<u8>) {
        match route {
            Route::Udp {
                local,
                remote,
                non_esp_marker,
            } => {
                let mut bytes = with_marker(bytes, non_esp_marker);
                let from = self.outside(local);
                let _ = self.server.handle_udp(self.now, remote, from, &mut bytes);
            }
            Route::Esp { .. } => {
                let mut bytes = bytes;
                let _ = self.server.handle_esp(self.now, LAPTOP_IP, &mut bytes);
            }
        }
    }

    fn deliver_to_client(&mut self, route: ServerRoute, bytes: Vec<u8>) {
        let marker = matches!(
            route,
            ServerRoute::Udp {
                non_esp_marker: true,
                ..
            }
        );
        let _ = self.hand_to_client(route, &mut with_marker(bytes, marker));
    }

    /// Hands the client what the server sent on `route`; the range of what came out for TUN.
    fn hand_to_client(&mut self, route: ServerRoute, datagram: &mut [u8]) -> Option<Range<usize>> {
        let got = match route {
            ServerRoute::Udp { local, remote, .. } => {
                let to = self.inside(remote);
                self.client.handle_udp(self.now, to, local, datagram)
            }
            ServerRoute::Esp { .. } => self.client.handle_esp(self.now, SERVER_IP, datagram),
        };
        got.ok().flatten()
    }
}

/// A control datagram as it goes out on port 4500: behind the non-ESP marker (RFC 3948 §2.2).
fn with_marker(mut bytes: Vec<u8>, non_esp_marker: bool) -> Vec<u8> {
    if non_esp_marker {
        bytes.splice(0..0, [0u8; 4]);
    }
    bytes
}

/// A client and server connected through a NAT or not, and the traffic both tests send: sizes
/// from a bare header to what the 1400-byte MTU leaves, and the sizes that need ESP padding of
/// every length.
fn connected_with_traffic(nat: bool) -> (Pair, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let pair = Pair::connect(nat);
    let address = pair.address.unwrap();
    let sizes = [28, 64, 200, 577, 1000, 1279, 1280, 1300];
    let up = sizes
        .iter()
        .map(|&len| udp_packet(address, INTRANET, len, 0))
        .collect();
    let down = sizes
        .iter()
        .map(|&len| udp_packet(INTRANET, address, len, 0))
        .collect();
    (pair, up, down)
}

/// Counts of packets that made it each way, and the bytes that came out wrong.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    up: usize,
    down: usize,
    wrong: usize,
}

impl Tally {
    /// `n` packets each way, all intact.
    const fn intact(n: usize) -> Self {
        Self {
            up: n,
            down: n,
            wrong: 0,
        }
    }
}

/// Packets the client seals per batch (as one TUN batch in the driver).
const BATCH: usize = 8;

/// Buffers allocated once, before counting starts.
struct Scratch {
    /// The slots of one TUN batch.
    slots: Vec<Vec<u8>>,
    /// What each slot's packet became.
    sealed: Vec<Option<Range<usize>>>,
    /// One receive buffer: where the kernel's GSO send and GRO receive would leave a run.
    gro: Vec<u8>,
    plan: GsoPlan,
    /// Decapsulated packets queued for TUN (the offload path's batch write).
    to_tun: TunWriter,
}

impl Scratch {
    fn new() -> Self {
        Self {
            slots: vec![vec![0u8; SLOT]; BATCH],
            sealed: vec![None; BATCH],
            gro: vec![0u8; HEADROOM + BATCH * SLOT],
            plan: GsoPlan::new(BATCH),
            // Coalescing as for a device with TCP and UDP segmentation offloads.
            to_tun: TunWriter::with_offloads(
                16,
                Offloads {
                    tcp: true,
                    udp: true,
                },
            ),
        }
    }
}

/// Pushes `count` packets (a multiple of [`BATCH`]) each way as the drivers do. Up: a batch
/// of equal-sized packets is sealed in its slots and planned into GSO runs; each run is laid
/// end to end in one buffer, as the kernel's GSO and GRO deliver it (plain ESP: one packet per
/// buffer), split by its segment size and opened in place; what comes out is queued for TUN.
/// Down: one packet at a time.
fn run(
    pair: &mut Pair,
    scratch: &mut Scratch,
    count: usize,
    traffic: (&[Vec<u8>], &[Vec<u8>]),
    tally: &mut Tally,
) {
    let (up, down) = traffic;
    let now = pair.now;
    let esp = !pair.nat;
    let from = pair.outside(SocketAddr::new(LAPTOP_IP, 4500));
    for n in (0..count).step_by(BATCH) {
        // Client TUN → server TUN.
        let packet = &up[(n / BATCH) % up.len()];
        scratch.plan.clear();
        let mut to = SocketAddr::new(SERVER_IP, 0);
        for (slot, sealed) in scratch.slots.iter_mut().zip(scratch.sealed.iter_mut()) {
            let range = HEADROOM..HEADROOM + packet.len();
            slot[range.clone()].copy_from_slice(packet);
            *sealed = pair.client.handle_tun(slot, range).ok().map(|out| {
                to = match out.route {
                    Route::Udp { remote, .. } => remote,
                    Route::Esp { remote } => SocketAddr::new(remote, 0),
                };
                out.range
            });
            let len = sealed.as_ref().map_or(0, Range::len);
            scratch.plan.push(to, len);
        }
        for run in scratch.plan.runs() {
            let members = run.first..run.first + run.count;
            if esp {
                // Raw ESP has no GSO: each packet leaves and arrives on its own.
                for k in members {
                    let Some(sealed) = scratch.sealed[k].clone() else {
                        tally.wrong += 1;
                        continue;
                    };
                    let datagram = &mut scratch.slots[k][sealed];
                    let to_tun = scratch_tun(&mut scratch.to_tun);
                    deliver_up(pair, now, (to, from), datagram, packet, to_tun, tally);
                }
                continue;
            }
            let mut len = 0;
            for k in members {
                let Some(sealed) = scratch.sealed[k].clone() else {
                    tally.wrong += 1;
                    continue;
                };
                let bytes = &scratch.slots[k][sealed];
                scratch.gro[HEADROOM + len..HEADROOM + len + bytes.len()].copy_from_slice(bytes);
                len += bytes.len();
            }
            let meta = RecvMeta {
                from,
                local: None,
                range: HEADROOM..HEADROOM + len,
                truncated: false,
                segment_size: if run.count == 1 { 0 } else { run.segment_size },
            };
            for d in meta.datagrams() {
                let to_tun = scratch_tun(&mut scratch.to_tun);
                deliver_up(
                    pair,
                    now,
                    (to, from),
                    &mut scratch.gro[d],
                    packet,
                    to_tun,
                    tally,
                );
            }
        }
        // Server TUN → client TUN.
        for k in 0..BATCH {
            let packet = &down[(n + k) % down.len()];
            let slot = scratch.slots[0].as_mut_slice();
            let range = SERVER_HEADROOM..SERVER_HEADROOM + packet.len();
            slot[range.clone()].copy_from_slice(packet);
            let Ok(out) = pair.server.handle_tun(slot, range) else {
                tally.wrong += 1;
                continue;
            };
            let datagram = &mut slot[out.range];
            match pair.hand_to_client(out.route, datagram) {
                Some(r) if datagram.get(r.clone()) == Some(packet.as_slice()) => {
                    tally.down += 1;
                }
                _ => tally.wrong += 1,
            }
        }
    }
}

/// The writer, its batch finished (headers written, as before a TUN write) once it is full.
fn scratch_tun(writer: &mut TunWriter) -> &mut TunWriter {
    if writer.is_full() {
        std::hint::black_box(writer.finish());
    }
    writer
}

/// Opens one datagram at the server and queues what comes out for TUN.
fn deliver_up(
    pair: &mut Pair,
    now: Instant,
    (to, from): (SocketAddr, SocketAddr),
    datagram: &mut [u8],
    packet: &[u8],
    to_tun: &mut TunWriter,
    tally: &mut Tally,
) {
    let got = if pair.nat {
        pair.server.handle_udp(now, to, from, datagram)
    } else {
        pair.server.handle_esp(now, LAPTOP_IP, datagram)
    };
    match got {
        Ok(Some(r)) if datagram.get(r.clone()) == Some(packet) => {
            tally.up += 1;
            to_tun.push(&datagram[r]);
        }
        _ => tally.wrong += 1,
    }
}

fn no_allocation_on_the_data_path(nat: bool) {
    let (mut pair, up, down) = connected_with_traffic(nat);
    // The traffic is what the TUN writer coalesces (valid checksums), so the count below
    // covers the coalescing too.
    let mut probe = Scratch::new().to_tun;
    for _ in 0..3 {
        assert!(probe.push(&down[4]));
    }
    assert_eq!(
        probe.len(),
        1,
        "three segments of one flow, one super-packet"
    );
    assert!(1300 + HEADROOM.max(SERVER_HEADROOM) + TAILROOM.max(SERVER_TAILROOM) <= SLOT);
    // Warm up: first-packet work (learning the client's inner port, …) happens here.
    let mut scratch = Scratch::new();
    let mut warm = Tally::default();
    run(&mut pair, &mut scratch, 1000, (&up, &down), &mut warm);
    assert_eq!(warm, Tally::intact(1000));
    let mut tally = Tally::default();
    let count = allocations(|| run(&mut pair, &mut scratch, PACKETS, (&up, &down), &mut tally));
    assert_eq!(tally, Tally::intact(PACKETS), "every packet arrives intact");
    assert_eq!(
        count, 0,
        "allocations while {PACKETS} packets went each way"
    );
}

#[test]
fn plain_esp_moves_100000_packets_each_way_without_allocating() {
    no_allocation_on_the_data_path(false);
}

#[test]
fn udp_4500_esp_moves_100000_packets_each_way_without_allocating() {
    no_allocation_on_the_data_path(true);
}

#[test]
fn the_counter_sees_an_allocation() {
    let count = allocations(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(100));
        std::hint::black_box(&v);
    });
    assert_eq!(count, 1);
}

/// Packets per batch on the server's batch path (a TUN read, a `recvmmsg`).
const SERVER_BATCH: usize = 32;

/// Pushes `count` packets (a multiple of [`SERVER_BATCH`]) each way through the server's batch
/// path with its ESP crypto spread over `pool`: up, the client seals a batch one by one and the
/// server opens it as one received batch; down, the server seals a TUN batch and the client
/// opens each packet.
fn run_server_batches(
    pair: &mut Pair,
    pool: &CryptoPool,
    slots: &mut [Vec<u8>],
    count: usize,
    traffic: (&[Vec<u8>], &[Vec<u8>]),
    tally: &mut Tally,
) {
    let (up, down) = traffic;
    let now = pair.now;
    let from = pair.outside(SocketAddr::new(LAPTOP_IP, 4500));
    let natt = SocketAddr::new(SERVER_IP, 4500);
    for n in (0..count).step_by(SERVER_BATCH) {
        // Client TUN → server, one received batch.
        let mut sealed: [Range<usize>; SERVER_BATCH] = std::array::from_fn(|_| 0..0);
        for (k, (slot, range)) in slots.iter_mut().zip(sealed.iter_mut()).enumerate() {
            let packet = &up[(n + k) % up.len()];
            slot[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
            match pair
                .client
                .handle_tun(slot, HEADROOM..HEADROOM + packet.len())
            {
                Ok(out) => *range = out.range,
                Err(_) => tally.wrong += 1,
            }
        }
        let mut jobs: [RxJob<'_>; SERVER_BATCH] = std::array::from_fn(|_| RxJob::default());
        for ((job, slot), range) in jobs.iter_mut().zip(slots.iter_mut()).zip(&sealed) {
            let datagram = &mut slot[range.clone()];
            *job = if pair.nat {
                RxJob::udp(datagram, natt, from)
            } else {
                RxJob::esp(datagram, LAPTOP_IP)
            };
        }
        pair.server.handle_rx_batch(now, pool, &mut jobs);
        for (k, job) in jobs.iter().enumerate() {
            if job.delivered() == Some(up[(n + k) % up.len()].as_slice()) {
                tally.up += 1;
            } else {
                tally.wrong += 1;
            }
        }
        // Server TUN batch → client.
        let mut tun: [TunJob<'_>; SERVER_BATCH] = std::array::from_fn(|_| TunJob::default());
        for (k, (job, slot)) in tun.iter_mut().zip(slots.iter_mut()).enumerate() {
            let packet = &down[(n + k) % down.len()];
            let range = SERVER_HEADROOM..SERVER_HEADROOM + packet.len();
            slot[range.clone()].copy_from_slice(packet);
            *job = TunJob::new(slot, range);
        }
        pair.server.handle_tun_batch(pool, &mut tun);
        let mut opened = [false; SERVER_BATCH];
        for (k, job) in tun.iter().enumerate() {
            let Ok(out) = job.result() else { continue };
            let mut datagram = [0u8; SLOT];
            let Some(bytes) = job.slot().get(out.range.clone()) else {
                continue;
            };
            datagram[..bytes.len()].copy_from_slice(bytes);
            let datagram = &mut datagram[..bytes.len()];
            let got = pair.hand_to_client(out.route, datagram);
            let packet = &down[(n + k) % down.len()];
            opened[k] =
                matches!(got, Some(r) if datagram.get(r.clone()) == Some(packet.as_slice()));
        }
        for ok in opened {
            if ok {
                tally.down += 1;
            } else {
                tally.wrong += 1;
            }
        }
    }
}

fn no_allocation_on_the_servers_batch_path(nat: bool) {
    let (mut pair, up, down) = connected_with_traffic(nat);
    // Two crypto threads (this one and one more), every batch spread.
    let pool = CryptoPool::new(2).unwrap().with_min_batch(2);
    assert_eq!(pool.threads(), 2);
    let mut slots = vec![vec![0u8; SLOT]; SERVER_BATCH];
    let mut warm = Tally::default();
    run_server_batches(&mut pair, &pool, &mut slots, 1024, (&up, &down), &mut warm);
    assert_eq!(warm, Tally::intact(1024));
    let mut tally = Tally::default();
    let count = allocations(|| {
        run_server_batches(
            &mut pair,
            &pool,
            &mut slots,
            PACKETS,
            (&up, &down),
            &mut tally,
        );
    });
    let packets = PACKETS / SERVER_BATCH * SERVER_BATCH;
    assert_eq!(tally, Tally::intact(packets), "every packet arrives intact");
    assert_eq!(
        count, 0,
        "allocations while {packets} packets went each way in batches of {SERVER_BATCH}"
    );
}

#[test]
fn the_servers_batch_path_on_two_crypto_threads_moves_plain_esp_without_allocating() {
    no_allocation_on_the_servers_batch_path(false);
}

#[test]
fn the_servers_batch_path_on_two_crypto_threads_moves_udp_4500_esp_without_allocating() {
    no_allocation_on_the_servers_batch_path(true);
}
