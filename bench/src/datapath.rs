//! Data path: UDP through the tunnel (real `l2sec-server`, the client's engine and driver),
//! upstream (laptop to intranet) and downstream (intranet to laptop, [`Direction`]), each
//! beside, in interleaved rounds, the same traffic forwarded by the same namespaces without
//! the VPN (the I/O limit) and the bare cipher + MAC cost of the suite (the crypto limit).
//!
//! A round of one case (encapsulation × suite × size × flows × direction) is: the throughput of the plain
//! path and of the tunnel (the order alternates between rounds), each found by offering loads
//! and measuring the one that delivers most for `--seconds` (`Bench::throughput`), then the
//! crypto cost measured in-process. Per round:
//! delivered packets/s and Gbit/s at the sink, CPU of the server and client processes
//! (`/proc/<pid>/stat`) per delivered packet, and of the server alone. Each case runs once per
//! `--crypto-threads` value (the server's `[server] crypto_threads`: 1 keeps the ESP crypto
//! on the packet thread, 0 spreads each batch's over one thread per core), so the rows of
//! both stand side by side (`…/<n>flow/crypto-1/…`, `…/<n>flow/crypto-auto/…`). The blaster is
//! one thread, round-robin over the flows' sockets, 64 datagrams per `send` as one UDP GSO
//! buffer where the kernel takes it, unpaced or paced; so the I/O limit is the offloaded one:
//! what the sending side, the kernel's forwarding and the receiving side manage together with
//! segmentation offloads on this machine's cores.

use crate::Settings;
use crate::crypto::{self, Suite};
use crate::netns::{INTRANET_PLAIN, INTRANET_RELAY, INTRANET_VPN, Shape, Topology};
use crate::procfs;
use crate::procs::{Client, Server, ServerOptions, Sink};
use crate::relay::Relay;
use crate::report::{Report, Row, Samples};
use anyhow::{Context as _, bail};
use ike::crypto::DhGroup;
use std::process::Stdio;
use std::time::Duration;

/// How ESP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// IP protocol 50.
    Esp,
    /// UDP 4500, the client behind a masquerade.
    Udp4500,
}

impl Encap {
    const fn name(self) -> &'static str {
        match self {
            Self::Esp => "esp",
            Self::Udp4500 => "udp4500",
        }
    }
}

/// Which way the measured traffic goes through the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the laptop (`mobile`) to the intranet host: the client seals, the server opens.
    Up,
    /// From the intranet host to the laptop's tunnel address: the server seals (its TUN read,
    /// split, crypto and UDP GSO or raw sends), the client opens.
    Down,
}

impl Direction {
    /// What a row's name carries after the case: nothing for `Up` (the names earlier commits
    /// printed), `/down` for `Down`.
    const fn suffix(self) -> &'static str {
        match self {
            Self::Up => "",
            Self::Down => "/down",
        }
    }
}

/// Where one measurement's traffic goes: from the blaster in the namespace `dir` starts at
/// (from address `src` when given) to `dst`, counted by the sink at the other end.
#[derive(Debug, Clone, Copy)]
struct Target<'t> {
    dir: Direction,
    src: Option<&'t str>,
    dst: &'t str,
}

impl<'t> Target<'t> {
    const fn new(dir: Direction, src: Option<&'t str>, dst: &'t str) -> Self {
        Self { dir, src, dst }
    }
}

/// One measurement of one path.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// Packets per second the blaster sent.
    offered: f64,
    pps: f64,
    gbps: f64,
    /// CPU of the server and client processes per delivered packet, ns (VPN path only).
    process_ns: f64,
    /// CPU of the server process alone (all its threads) per delivered packet, ns.
    server_ns: f64,
    /// CPU of the whole machine (every process and the kernel, all cores) per delivered
    /// packet, ns.
    machine_ns: f64,
}

/// Everything one case collects over its rounds.
#[derive(Debug, Default)]
struct Case {
    /// What the blaster sent in the measurement that counts.
    vpn_offered: Samples,
    /// Delivered when unpaced (the first probe).
    vpn_unpaced_pps: Samples,
    io_offered: Samples,
    io_unpaced_pps: Samples,
    vpn_gbps: Samples,
    vpn_pps: Samples,
    io_gbps: Samples,
    io_pps: Samples,
    crypto_pps: Samples,
    crypto_ns: Samples,
    process_ns: Samples,
    server_ns: Samples,
    ratio_io: Samples,
    ratio_crypto: Samples,
    ratio_cpu: Samples,
    /// Whole-machine CPU per delivered packet on the plain path and through the tunnel.
    io_machine_ns: Samples,
    vpn_machine_ns: Samples,
    /// The highest ratio to the I/O limit any VPN could reach in the round (`ceiling`).
    ceiling: Samples,
    /// The relay (`crate::relay`: the VPN's batched I/O without cipher or protocol), when it
    /// runs: what it delivers, against the plain path; its machine CPU per packet; the VPN
    /// against it; and the highest ratio to the I/O limit a tunnel on that I/O could reach.
    relay_gbps: Samples,
    relay_ratio_io: Samples,
    relay_machine_ns: Samples,
    vpn_ratio_relay: Samples,
    relay_ceiling: Samples,
    relay_ceiling_crypto: Samples,
}

struct Bench<'a> {
    topo: &'a Topology,
    /// The sink in `intranet` (upstream traffic) and, when downstream is measured, in `mobile`.
    up_sink: Sink,
    down_sink: Option<Sink>,
    ticks: u64,
    /// Cores this process may run on, as `f64` for the ceiling.
    cores: f64,
    /// The relay's two processes, when it runs.
    relay_pids: Option<Vec<u32>>,
    settings: &'a Settings,
}

/// Most paced probes after the unpaced one: 15 % up each, 1.15^12 ≈ 5.35 × the first probe.
/// A path that loses packets ends the climb at once, so the bound only matters when the first
/// probe was far below what the path takes (seen here: 1.1 M pkt/s unpaced on a path that
/// carries 3.2 M, when the blaster and the sink shared a core for that probe).
const MAX_PROBES: usize = 12;

impl Bench<'_> {
    /// The highest rate the path delivers, found the way RFC 2544 finds a device's throughput:
    /// by offering loads and keeping the one that gets the most through, in probes of a quarter
    /// of `--seconds`. First unpaced (which
    /// on a machine whose cores the blaster shares with the path costs the path the core the
    /// blaster spins on), then paced from 1.15 × what that delivered, up by 15 % while the path
    /// delivers at least 97 % of what the blaster sent (at most [`MAX_PROBES`] times, so that
    /// an unpaced probe that came out low, the blaster and the sink sharing a core for a
    /// moment, is climbed out of). The load that delivered most is measured
    /// again for `--seconds`: that measurement is the result (a maximum over short noisy probes
    /// would flatter it). Returns it and the unpaced probe.
    fn throughput(
        &mut self,
        to: Target<'_>,
        size: usize,
        flows: u16,
        pids: &[u32],
    ) -> anyhow::Result<(Sample, Sample)> {
        let probe = (self.settings.seconds / 4.0).max(0.05);
        let unpaced = self.measure(to, size, flows, pids, None, probe)?;
        let (mut best, mut best_rate) = (unpaced.pps, None);
        let mut rate = unpaced.pps * 1.15;
        for _ in 0..MAX_PROBES {
            if !(rate.is_finite() && rate > 0.0) {
                break;
            }
            let s = self.measure(to, size, flows, pids, Some(rate), probe)?;
            if s.pps > best {
                (best, best_rate) = (s.pps, Some(rate));
            }
            // Lossless so far: offer more. What the blaster sent, not what it was asked for,
            // is what the path was offered (a blaster sharing busy cores falls short).
            let offered = if s.offered.is_finite() {
                s.offered
            } else {
                rate
            };
            if s.pps < 0.97 * offered {
                break;
            }
            rate *= 1.15;
        }
        let result = self.measure(to, size, flows, pids, best_rate, self.settings.seconds)?;
        Ok((result, unpaced))
    }

    /// Blasts `to` for `seconds` (paced to `rate` packets/s if given) and measures what
    /// arrives.
    fn measure(
        &mut self,
        to: Target<'_>,
        size: usize,
        flows: u16,
        pids: &[u32],
        rate: Option<f64>,
        seconds: f64,
    ) -> anyhow::Result<Sample> {
        let me = std::env::current_exe()?;
        let cpu = |pids: &[u32]| -> Duration {
            pids.iter()
                .filter_map(|p| procfs::cpu_time(*p, self.ticks))
                .sum()
        };
        let (from, sink) = match to.dir {
            Direction::Up => ("mobile", &mut self.up_sink),
            Direction::Down => (
                "intranet",
                self.down_sink.as_mut().context("no sink in mobile")?,
            ),
        };
        let (p0, b0) = sink.counters()?;
        let c0 = cpu(pids);
        let s0 = cpu(pids.get(..1).unwrap_or_default());
        let m0 = procfs::machine_busy(self.ticks);
        let mut blast = self.topo.command(from, &me.to_string_lossy());
        blast.args([
            "blast",
            "--dst",
            to.dst,
            "--flows",
            &flows.to_string(),
            "--size",
            &size.to_string(),
            "--seconds",
            &seconds.to_string(),
        ]);
        if let Some(src) = to.src {
            blast.args(["--src", src]);
        }
        if let Some(rate) = rate {
            blast.args(["--rate", &format!("{rate:.0}")]);
        }
        let out = blast
            .stdout(Stdio::piped())
            .output()
            .context("running the blaster")?;
        if !out.status.success() {
            bail!(
                "the blaster failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Let queues drain into the sink.
        std::thread::sleep(Duration::from_millis(100));
        let (p1, b1) = sink.counters()?;
        let c1 = cpu(pids);
        let s1 = cpu(pids.get(..1).unwrap_or_default());
        let m1 = procfs::machine_busy(self.ticks);
        #[expect(clippy::cast_precision_loss, reason = "counters far below 2^52")]
        let (packets, bytes) = ((p1 - p0) as f64, (b1 - b0) as f64);
        let sent = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        let secs = seconds;
        Ok(Sample {
            offered: sent / secs,
            pps: packets / secs,
            gbps: bytes * 8.0 / secs / 1e9,
            process_ns: (c1.saturating_sub(c0)).as_secs_f64() * 1e9 / packets,
            server_ns: (s1.saturating_sub(s0)).as_secs_f64() * 1e9 / packets,
            machine_ns: match (m0, m1) {
                (Some(m0), Some(m1)) => m1.saturating_sub(m0).as_secs_f64() * 1e9 / packets,
                _ => f64::NAN,
            },
        })
    }
}

/// Runs the data-path section.
///
/// # Errors
/// When the namespaces or the server cannot be set up (a failing case is noted and skipped).
pub fn run(settings: &Settings, report: &mut Report) -> anyhow::Result<()> {
    crypto_choices(settings, report)?;
    for encap in &settings.encaps {
        let (tag, shape, local) = match encap {
            Encap::Esp => ('e', Shape::Direct, "2.2.2.10"),
            Encap::Udp4500 => ('n', Shape::BehindNat, "10.0.0.2"),
        };
        let topo = Topology::build(tag, shape)?;
        let up_sink = Sink::start(&topo, "intranet", 8)?;
        let down_sink = if settings.directions.contains(&Direction::Down) {
            Some(Sink::start(&topo, "mobile", 8)?)
        } else {
            None
        };
        // The relay measures the tunnel's I/O on the path and the kind of socket ESP takes.
        let relay = Relay::start(
            &topo,
            crate::netns::SERVER.parse()?,
            INTRANET_RELAY,
            *encap == Encap::Esp,
        )
        .map_err(|e| report.note(format!("datapath/{}: no relay: {e:#}", encap.name())))
        .ok();
        let mut bench = Bench {
            topo: &topo,
            up_sink,
            down_sink,
            ticks: procfs::clock_ticks(),
            #[expect(clippy::cast_precision_loss, reason = "a handful of cores")]
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64,
            settings,
            relay_pids: relay.as_ref().map(Relay::pids),
        };
        for &threads in &settings.crypto_threads {
            let server = Server::start_with(
                &topo,
                &settings.bins,
                &ServerOptions {
                    listen: crate::netns::SERVER,
                    ipsec: String::new(),
                    ppp: String::new(),
                },
                &format!("crypto_threads = {threads}"),
            )?;
            for suite in &settings.suites {
                let case = Setup {
                    encap: *encap,
                    suite,
                    threads,
                };
                if let Err(e) = run_suite(&mut bench, &server, &case, local, report) {
                    report.note(format!(
                        "datapath/{}/{}/{}: {e:#} (server: {})",
                        encap.name(),
                        suite.name,
                        threads_name(threads),
                        server.log_tail()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What one data-path case runs with.
struct Setup<'a> {
    encap: Encap,
    suite: &'a Suite,
    /// The server's `crypto_threads`.
    threads: usize,
}

/// `crypto-auto` for 0 (one per core), `crypto-N` otherwise.
fn threads_name(threads: usize) -> String {
    match threads {
        0 => "crypto-auto".to_owned(),
        n => format!("crypto-{n}"),
    }
}

fn run_suite(
    bench: &mut Bench<'_>,
    server: &Server,
    setup: &Setup<'_>,
    local: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (encap, suite) = (setup.encap, setup.suite);
    let topo = bench.topo;
    let state_file = std::env::temp_dir().join(format!("{}-client.json", topo.prefix()));
    let log = std::env::temp_dir().join(format!("{}-client.log", topo.prefix()));
    let _ = std::fs::remove_file(&state_file);
    let me = std::env::current_exe()?;
    let child = topo
        .command("mobile", &me.to_string_lossy())
        .args([
            "agent-client",
            "--server",
            crate::netns::SERVER,
            "--local",
            local,
            "--suite",
            suite.name,
            "--tun",
            &format!("{}c", topo.prefix()),
            "--route",
            "192.168.1.0/24",
            "--state",
        ])
        .arg(&state_file)
        .env("RUST_LOG", "warn")
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting the client agent")?;
    let mut client = Client::new(child, state_file, log);
    let state = client.wait_connected(Duration::from_secs(30))?;
    let want_nat = encap == Encap::Udp4500;
    if state.nat.unwrap_or(false) != want_nat {
        bail!(
            "ESP went {} a NAT (nat = {:?})",
            if want_nat { "without" } else { "through" },
            state.nat
        );
    }
    crate::report::say(&format!(
        "datapath/{}/{}/{}: connected (esp {}, ike {}, nat {})",
        encap.name(),
        suite.name,
        threads_name(setup.threads),
        state.esp.as_deref().unwrap_or("?"),
        state.ike.as_deref().unwrap_or("?"),
        want_nat
    ));
    let pids = [server.pid(), client.pid()];
    let tunnel_address = state.address.map(|a| a.to_string());
    for &dir in &bench.settings.directions {
        // Up: to the intranet host through the tunnel, around it, through the relay. Down:
        // from the intranet host to the laptop's tunnel address, and to its own address around
        // the tunnel (from 192.168.1.2, which the laptop routes around the tunnel too); the
        // relay carries one way only.
        let (vpn_to, plain_to, relay_to) = match dir {
            Direction::Up => (
                Target::new(dir, None, INTRANET_VPN),
                Target::new(dir, None, INTRANET_PLAIN),
                Some(Target::new(dir, None, INTRANET_RELAY)),
            ),
            Direction::Down => (
                Target::new(
                    dir,
                    Some(INTRANET_VPN),
                    tunnel_address
                        .as_deref()
                        .context("the client's state has no tunnel address")?,
                ),
                Target::new(dir, Some(INTRANET_PLAIN), local),
                None,
            ),
        };
        run_direction(bench, setup, &pids, (vpn_to, plain_to, relay_to), report)?;
    }
    client.stop();
    Ok(())
}

/// Every size × flows case of one direction, over the rounds, into rows.
fn run_direction(
    bench: &mut Bench<'_>,
    setup: &Setup<'_>,
    pids: &[u32],
    (vpn_to, plain_to, relay_to): (Target<'_>, Target<'_>, Option<Target<'_>>),
    report: &mut Report,
) -> anyhow::Result<()> {
    let suite = setup.suite;
    for &size in &bench.settings.sizes {
        for &flows in &bench.settings.flows {
            let mut case = Case::default();
            for round in 0..bench.settings.rounds {
                let vpn_first = round % 2 == 1;
                let (mut vpn, mut vpn_unpaced) = (Sample::default(), Sample::default());
                let (mut io, mut io_unpaced) = (Sample::default(), Sample::default());
                let relay = match (bench.relay_pids.clone(), relay_to) {
                    (Some(pids), Some(to)) => Some(bench.throughput(to, size, flows, &pids)?.0),
                    _ => None,
                };
                for step in 0..2 {
                    if (step == 0) == vpn_first {
                        (vpn, vpn_unpaced) = bench.throughput(vpn_to, size, flows, pids)?;
                    } else {
                        (io, io_unpaced) = bench.throughput(plain_to, size, flows, &[])?;
                    }
                }
                let crypto_ns = crypto::packet_cost(
                    suite.transform,
                    size,
                    Duration::from_secs_f64((bench.settings.seconds / 10.0).clamp(0.05, 0.3)),
                )?;
                let crypto_pps = 1e9 / crypto_ns;
                case.vpn_offered.push(vpn.offered);
                case.vpn_unpaced_pps.push(vpn_unpaced.pps);
                case.io_offered.push(io.offered);
                case.io_unpaced_pps.push(io_unpaced.pps);
                case.vpn_gbps.push(vpn.gbps);
                case.vpn_pps.push(vpn.pps);
                case.io_gbps.push(io.gbps);
                case.io_pps.push(io.pps);
                case.crypto_pps.push(crypto_pps);
                case.crypto_ns.push(crypto_ns);
                case.process_ns.push(vpn.process_ns);
                case.server_ns.push(vpn.server_ns);
                case.ratio_io.push(vpn.pps / io.pps);
                case.ratio_crypto.push(vpn.pps / crypto_pps);
                case.ratio_cpu.push(vpn.process_ns / crypto_ns);
                case.io_machine_ns.push(io.machine_ns);
                case.vpn_machine_ns.push(vpn.machine_ns);
                case.ceiling.push(at_most_one(ceiling(
                    io.pps,
                    io.machine_ns,
                    crypto_ns,
                    bench.cores,
                )));
                if let Some(relay) = relay {
                    case.relay_gbps.push(relay.gbps);
                    case.relay_ratio_io.push(relay.pps / io.pps);
                    case.relay_machine_ns.push(relay.machine_ns);
                    case.vpn_ratio_relay.push(vpn.pps / relay.pps);
                    case.relay_ceiling.push(at_most_one(ceiling(
                        io.pps,
                        relay.machine_ns,
                        crypto_ns,
                        bench.cores,
                    )));
                    // The same bound as a share of the crypto limit (the CBC target's).
                    case.relay_ceiling_crypto.push(ceiling(
                        crypto_pps,
                        relay.machine_ns,
                        crypto_ns,
                        bench.cores,
                    ));
                }
            }
            add_rows(report, setup, vpn_to.dir, size, flows, &case);
        }
    }
    Ok(())
}

fn add_rows(
    report: &mut Report,
    setup: &Setup<'_>,
    dir: Direction,
    size: usize,
    flows: u16,
    case: &Case,
) {
    let (encap, suite) = (setup.encap, setup.suite);
    let p = format!(
        "datapath/{}/{}/{size}B/{flows}flow/{}{}",
        encap.name(),
        suite.name,
        threads_name(setup.threads),
        dir.suffix()
    );
    let gcm_4500 = encap == Encap::Udp4500 && suite.name == "aes128gcm16";
    let mut gbps = Row::new(format!("{p}/throughput"), "Gbit/s", &case.vpn_gbps).limit(
        "I/O (no VPN)",
        case.io_gbps.median(),
        &case.ratio_io,
    );
    if gcm_4500 && size >= 1000 {
        gbps = gbps.target_ratio(0.7).target_min(2.0);
    }
    report.add(gbps);
    let mut pps = Row::new(format!("{p}/packets"), "pkt/s", &case.vpn_pps).limit(
        "crypto 1 core",
        case.crypto_pps.median(),
        &case.ratio_crypto,
    );
    // The CBC target is about crypto being the wall, as it is for full-size packets; at 64 B
    // the crypto limit is above the I/O limit itself (over 1.7 M against under 1 M pkt/s
    // here), so no path could reach 0.8 × it and the ratio says nothing of l2sec.
    if suite.name == "aes128cbc-sha1" && size >= 1000 {
        pps = pps.target_ratio(0.8);
    }
    report.add(pps);
    report.add(
        Row::new(format!("{p}/io_limit_packets"), "pkt/s", &case.io_pps).limit(
            "",
            f64::NAN,
            &Samples::default(),
        ),
    );
    // How the figures above were found: the load offered in the measurement that counts,
    // and what the unpaced first probe delivered.
    for (name, samples) in [
        ("offered_packets", &case.vpn_offered),
        ("unpaced_packets", &case.vpn_unpaced_pps),
        ("io_limit_offered_packets", &case.io_offered),
        ("io_limit_unpaced_packets", &case.io_unpaced_pps),
    ] {
        report.add(Row::new(format!("{p}/{name}"), "pkt/s", samples));
    }
    report.add(
        Row::new(format!("{p}/cpu_per_packet"), "ns", &case.process_ns).limit(
            "crypto ns/pkt",
            case.crypto_ns.median(),
            &case.ratio_cpu,
        ),
    );
    report.add(Row::new(
        format!("{p}/server_cpu_per_packet"),
        "ns",
        &case.server_ns,
    ));
    report.add(Row::new(
        format!("{p}/machine_cpu_per_packet"),
        "ns",
        &case.vpn_machine_ns,
    ));
    report.add(Row::new(
        format!("{p}/io_limit_machine_cpu_per_packet"),
        "ns",
        &case.io_machine_ns,
    ));
    report.add(Row::new(
        format!("{p}/ceiling_ratio_to_io"),
        "ratio",
        &case.ceiling,
    ));
    if !case.relay_gbps.values().is_empty() {
        report.add(
            Row::new(format!("{p}/relay_throughput"), "Gbit/s", &case.relay_gbps).limit(
                "I/O (no VPN)",
                case.io_gbps.median(),
                &case.relay_ratio_io,
            ),
        );
        report.add(Row::new(
            format!("{p}/relay_machine_cpu_per_packet"),
            "ns",
            &case.relay_machine_ns,
        ));
        report.add(Row::new(
            format!("{p}/vpn_to_relay"),
            "ratio",
            &case.vpn_ratio_relay,
        ));
        report.add(Row::new(
            format!("{p}/ceiling_on_relay_io"),
            "ratio",
            &case.relay_ceiling,
        ));
        report.add(Row::new(
            format!("{p}/ceiling_on_relay_io_to_crypto"),
            "ratio",
            &case.relay_ceiling_crypto,
        ));
    }
}

/// The highest ratio to `limit_pps` (a limit of the round) that a tunnel could reach whose every
/// packet costs at least `floor_ns` of whole-machine CPU plus one seal and one open with the
/// suite's bare primitives (`crypto_ns`), on `cores` cores: `cores / (floor_ns + crypto_ns)`
/// packets per second, as a share of `limit_pps` (capped at 1 by the callers whose limit is a
/// path's, as nothing delivers more than the path carries). Two floors are measured in a round,
/// each at its own path's peak:
/// - the plain path's CPU per packet (the blaster's send, the kernel's forwarding, the sink's
///   receive), which any VPN pays too: the ceiling for any tunnel whatever its I/O;
/// - the relay's (`crate::relay`: the VPN's batched TUN and socket I/O, no cipher, no
///   protocol): the ceiling for a tunnel built on that I/O.
///
/// An estimate, not a proof: a path's CPU per packet is taken as its cost at any rate, while
/// at lower rates (where a slower tunnel runs) it can be somewhat lower. NaN when the
/// machine's CPU time could not be read.
fn ceiling(limit_pps: f64, floor_ns: f64, crypto_ns: f64, cores: f64) -> f64 {
    if !(floor_ns.is_finite() && limit_pps > 0.0) {
        return f64::NAN;
    }
    let best_pps = cores * 1e9 / (floor_ns + crypto_ns);
    best_pps / limit_pps
}

/// The implementation choices behind the crypto limit, measured in this run: HMAC-SHA1 from
/// ring and from RustCrypto (`ike` uses the faster), and AES-128-CBC's two directions.
fn crypto_choices(settings: &Settings, report: &mut Report) -> anyhow::Result<()> {
    // A tenth of a data-path measurement per figure and round (20 ms with `--quick`).
    let budget = Duration::from_secs_f64((settings.seconds / 10.0).clamp(0.02, 0.3));
    for size in &settings.sizes {
        for which in [crypto::Sha1Impl::Ring, crypto::Sha1Impl::RustCrypto] {
            let mut s = Samples::default();
            for _ in 0..settings.rounds {
                s.push(crypto::hmac_sha1_cost(which, *size, budget));
            }
            report.add(Row::new(
                format!("datapath/crypto/hmac-sha1/{}/{size}B", which.name()),
                "ns",
                &s,
            ));
        }
        let (mut enc, mut dec) = (Samples::default(), Samples::default());
        for _ in 0..settings.rounds {
            let (e, d) = crypto::aes_cbc_cost(*size, budget)?;
            enc.push(e);
            dec.push(d);
        }
        report.add(Row::new(
            format!("datapath/crypto/aes128-cbc-encrypt/{size}B"),
            "ns",
            &enc,
        ));
        report.add(Row::new(
            format!("datapath/crypto/aes128-cbc-decrypt/{size}B"),
            "ns",
            &dec,
        ));
    }
    Ok(())
}

/// The suites `--suite` names.
#[must_use]
pub fn pick_suites(names: &[String]) -> Vec<Suite> {
    let all = crypto::suites();
    if names.is_empty() {
        return all;
    }
    all.into_iter()
        .filter(|s| names.iter().any(|n| n == s.name))
        .collect()
}

/// A DH group by name.
#[must_use]
pub fn group(name: &str) -> Option<DhGroup> {
    match name {
        "modp1024" => Some(DhGroup::Modp1024),
        "modp2048" => Some(DhGroup::Modp2048),
        "ecp256" => Some(DhGroup::Ecp256),
        "curve25519" => Some(DhGroup::Curve25519),
        _ => None,
    }
}

/// `x` capped at 1, NaN kept (`f64::min` would turn it into 1).
fn at_most_one(x: f64) -> f64 {
    if x > 1.0 { 1.0 } else { x }
}

#[cfg(test)]
mod tests {
    use super::{at_most_one, ceiling};

    #[test]
    fn the_ceiling_adds_the_cipher_to_the_plain_path_on_every_core() {
        // 2 cores, the plain path 2.5 M pkt/s at 800 ns of machine CPU each, 460 ns of
        // crypto: at most 2e9 / 1260 = 1.587 M pkt/s through any tunnel, 0.635 of the plain.
        let c = ceiling(2.5e6, 800.0, 460.0, 2.0);
        assert!((c - 0.6349).abs() < 1e-3, "{c}");
        // A plain path that left a core idle leaves room: above 1 (the callers cap it).
        assert!((ceiling(1.0e6, 800.0, 460.0, 2.0) - 1.587).abs() < 1e-3);
        // No machine CPU figure, no bound.
        assert!(ceiling(2.5e6, f64::NAN, 460.0, 2.0).is_nan());
        assert!(ceiling(0.0, 800.0, 460.0, 2.0).is_nan());
        assert!(at_most_one(f64::NAN).is_nan());
        assert!((at_most_one(1.587) - 1.0).abs() < f64::EPSILON);
        assert!((at_most_one(0.5) - 0.5).abs() < f64::EPSILON);
    }
}
