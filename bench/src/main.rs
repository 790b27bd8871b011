//! `l2sec-bench`: the data path, the control plane and scale of the real binaries in network
//! namespaces, each figure printed beside the limit measured in the same run (issue 8).
//!
//! `l2sec-bench [--only datapath|control|scale] [--rounds N] [--seconds S] [--quick]
//! [--json FILE]`; needs root (namespaces, TUN) and the release binaries of `l2sec-server`
//! next to it (`cargo build --release -p l2sec-server -p l2sec-client -p l2sec-bench`).
//! The hidden subcommands are the pieces it runs inside the namespaces.
#![forbid(unsafe_code)]

use l2sec_bench::{
    Settings, agent, control, crypto, datapath, netns, procfs, procs, report, traffic,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Measures l2sec against the limits of this machine, in one run.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Throughput through the tunnel vs the I/O and crypto limits.
    Datapath,
    /// DH cost, connect latency, connects per second.
    Control,
    /// Memory and CPU while holding N sessions.
    Scale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EncapArg {
    Esp,
    Udp4500,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DirectionArg {
    Up,
    Down,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run only these sections (repeatable; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Rounds per figure (median and spread are over these).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds of traffic per data-path measurement.
    #[arg(long)]
    seconds: Option<f64>,
    /// A fast smoke configuration: one suite, one size, one flow, one round, a few connects,
    /// a few sessions. Its figures are not worth quoting.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON (issue 8 schema).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where `l2sec-server` and `l2sec-client` are (default: next to this binary).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// ESP suites (aes128gcm16, aes128cbc-sha1, aes256cbc-sha256; default: all three).
    #[arg(long = "suite", value_delimiter = ',')]
    suites: Vec<String>,
    /// Encapsulations (default: both).
    #[arg(long = "encap", value_enum, value_delimiter = ',')]
    encaps: Vec<EncapArg>,
    /// Inner IP packet sizes in bytes (default: 1400,64).
    #[arg(long = "size", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Flow counts (default: 1,8).
    #[arg(long = "flows", value_delimiter = ',')]
    flows: Vec<u16>,
    /// Which way the data-path traffic goes: up (laptop to intranet) and down (intranet to
    /// laptop; default: both).
    #[arg(long = "direction", value_enum, value_delimiter = ',')]
    directions: Vec<DirectionArg>,
    /// The server's `[server] crypto_threads` for the data path, side by side (0: one per
    /// core; default: 1, the server's default; `1,0` for both; with --quick: 0).
    #[arg(long = "crypto-threads", value_delimiter = ',')]
    crypto_threads: Vec<usize>,
    /// Connects for the latency figure (real binaries, one after another).
    #[arg(long)]
    connects: Option<usize>,
    /// Connects the load generator makes per group for connects per second.
    #[arg(long)]
    load_connects: Option<usize>,
    /// Sessions held for the scale figures (default: 10000,50000; with --quick: 50).
    #[arg(long = "sessions", value_delimiter = ',')]
    sessions: Vec<usize>,
    /// Seconds the scale section holds the sessions while measuring CPU (default 30: one period
    /// of the 30-s DPD and LCP echo of every session when the fill took less).
    #[arg(long)]
    hold_seconds: Option<f64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// (internal) The client engine and driver with a pinned proposal.
    #[command(hide = true)]
    AgentClient {
        #[arg(long)]
        server: Ipv4Addr,
        #[arg(long)]
        local: Ipv4Addr,
        #[arg(long)]
        suite: String,
        #[arg(long, default_value = "modp2048")]
        group: String,
        #[arg(long)]
        tun: String,
        #[arg(long = "route")]
        routes: Vec<ipnet::Ipv4Net>,
        #[arg(long)]
        state: PathBuf,
    },
    /// (internal) UDP traffic generator.
    #[command(hide = true)]
    Blast {
        /// The address to send from (default: the one the route picks).
        #[arg(long)]
        src: Option<Ipv4Addr>,
        #[arg(long)]
        dst: Ipv4Addr,
        #[arg(long)]
        flows: u16,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        seconds: f64,
        /// Packets per second (default: as fast as the sockets take them).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// (internal) UDP traffic sink.
    #[command(hide = true)]
    Sink {
        #[arg(long)]
        flows: u16,
    },
    /// (internal) One end of the relay (the tunnel I/O limit).
    #[command(hide = true)]
    Relay {
        #[arg(long, value_parser = ["in", "out"])]
        side: String,
        #[arg(long)]
        tun: String,
        /// The LNS end's address and port (the in end sends to it, the out end listens on
        /// its port).
        #[arg(long)]
        peer: std::net::SocketAddr,
        /// Over a raw IP socket instead of UDP.
        #[arg(long)]
        raw: bool,
    },
    /// (internal) Many client engines in one process against a server.
    #[command(hide = true)]
    Loadgen(control::LoadArgs),
}

fn settings(args: &RunArgs) -> anyhow::Result<Settings> {
    {
        let q = args.quick;
        let or = |v: &[usize], quick: &[usize], full: &[usize]| -> Vec<usize> {
            if !v.is_empty() {
                v.to_vec()
            } else if q {
                quick.to_vec()
            } else {
                full.to_vec()
            }
        };
        let mut suites = datapath::pick_suites(&args.suites);
        if suites.is_empty() {
            bail!("no known suite in {:?}", args.suites);
        }
        if q && args.suites.is_empty() {
            suites.truncate(1);
        }
        let encaps = if args.encaps.is_empty() {
            if q {
                vec![datapath::Encap::Udp4500]
            } else {
                vec![datapath::Encap::Esp, datapath::Encap::Udp4500]
            }
        } else {
            args.encaps
                .iter()
                .map(|e| match e {
                    EncapArg::Esp => datapath::Encap::Esp,
                    EncapArg::Udp4500 => datapath::Encap::Udp4500,
                })
                .collect()
        };
        let flows = if !args.flows.is_empty() {
            args.flows.clone()
        } else if q {
            vec![1]
        } else {
            vec![1, 8]
        };
        let directions = if args.directions.is_empty() {
            vec![datapath::Direction::Up, datapath::Direction::Down]
        } else {
            args.directions
                .iter()
                .map(|d| match d {
                    DirectionArg::Up => datapath::Direction::Up,
                    DirectionArg::Down => datapath::Direction::Down,
                })
                .collect()
        };
        Ok(Settings {
            rounds: args.rounds.unwrap_or(if q { 1 } else { 3 }).max(1),
            seconds: args.seconds.unwrap_or(if q { 0.3 } else { 2.0 }).max(0.05),
            suites,
            encaps,
            sizes: or(&args.sizes, &[1400], &[1400, 64]),
            flows,
            directions,
            crypto_threads: if !args.crypto_threads.is_empty() {
                args.crypto_threads.clone()
            } else if q {
                vec![0]
            } else {
                vec![1]
            },
            connects: args.connects.unwrap_or(if q { 2 } else { 20 }).max(1),
            load_connects: args
                .load_connects
                .unwrap_or(if q { 20 } else { 2000 })
                .max(1),
            sessions: or(&args.sessions, &[50], &[10_000, 50_000]),
            hold_seconds: args.hold_seconds.unwrap_or(if q { 1.0 } else { 30.0 }),
            bins: procs::bin_dir(args.bin_dir.as_deref()),
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let internal = cli.command.is_some();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Some(Command::AgentClient {
            server,
            local,
            suite,
            group,
            tun,
            routes,
            state,
        }) => agent_client(server, local, &suite, &group, tun, routes, state),
        Some(Command::Blast {
            src,
            dst,
            flows,
            size,
            seconds,
            rate,
        }) => traffic::blast(src, dst, flows, size, seconds, rate),
        Some(Command::Sink { flows }) => traffic::sink(flows),
        Some(Command::Relay {
            side,
            tun,
            peer,
            raw,
        }) => {
            let side = if side == "in" {
                l2sec_bench::relay::Side::In
            } else {
                l2sec_bench::relay::Side::Out
            };
            l2sec_bench::relay::run(side, &tun, peer, raw)
        }
        Some(Command::Loadgen(args)) => control::loadgen(&args),
        None => bench(&cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !internal {
                netns::cleanup_all();
            }
            tracing::error!("{e:#}");
            report::say(&format!("l2sec-bench: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn agent_client(
    server: Ipv4Addr,
    local: Ipv4Addr,
    suite: &str,
    group: &str,
    tun: String,
    routes: Vec<ipnet::Ipv4Net>,
    state: PathBuf,
) -> anyhow::Result<()> {
    let transform = crypto::suites()
        .into_iter()
        .find(|s| s.name == suite)
        .with_context(|| format!("unknown suite {suite}"))?
        .transform;
    let group = datapath::group(group).with_context(|| format!("unknown group {group}"))?;
    agent::run(&agent::AgentArgs {
        server,
        local,
        transform,
        group,
        tun,
        routes,
        state,
    })
}

fn bench(args: &RunArgs) -> anyhow::Result<()> {
    let settings = settings(args)?;
    if !netns::available() {
        bail!("l2sec-bench needs root and iproute2 (network namespaces, TUN devices)");
    }
    netns::install_signal_cleanup()?;
    let machine = procfs::Machine::describe();
    let started = Instant::now();
    let mut report = report::Report::default();
    let wanted = |s: Section| args.only.is_empty() || args.only.contains(&s);
    report::say(&format!(
        "l2sec-bench: {} rounds, {} s per measurement{}; binaries from {}",
        settings.rounds,
        settings.seconds,
        if args.quick { " (--quick)" } else { "" },
        settings.bins.display()
    ));
    if wanted(Section::Datapath)
        && let Err(e) = datapath::run(&settings, &mut report)
    {
        report.note(format!("datapath: {e:#}"));
    }
    if wanted(Section::Control)
        && let Err(e) = control::run(&settings, &mut report)
    {
        report.note(format!("control: {e:#}"));
    }
    if wanted(Section::Scale)
        && let Err(e) = control::scale(&settings, &mut report)
    {
        report.note(format!("scale: {e:#}"));
    }
    report.print_table(&machine);
    report::say(&format!("total {:.0} s", started.elapsed().as_secs_f64()));
    if let Some(path) = &args.json {
        report
            .write_json(path, &machine)
            .with_context(|| format!("writing {}", path.display()))?;
        report::say(&format!("wrote {}", path.display()));
    }
    Ok(())
}
