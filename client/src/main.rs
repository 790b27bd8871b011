//! `l2sec-client`: connects this machine to an L2TP/IPsec server.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ike::ikev1::main_mode::Refusal;
use ipnet::Ipv4Net;
use l2sec_client::driver::{self, DriverConfig};
use l2sec_client::engine::{DownReason, Engine, EngineConfig, Stage};
use ppp::auth::Password;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::rand::{SecureRandom, SystemRandom};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// L2TP/IPsec client (IKEv1 PSK, L2TP, PPP) in userspace.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connects and stays connected until Ctrl-C (needs root or CAP_NET_ADMIN/CAP_NET_RAW).
    Connect(Connect),
    /// Tells a running `connect` to tear the connection down cleanly (PPP, L2TP, IKE) and exit.
    Disconnect {
        /// The pid file the running client wrote.
        #[arg(long, default_value = DEFAULT_PID_FILE)]
        pid_file: std::path::PathBuf,
    },
}

/// Where `connect` records its pid for `disconnect`.
const DEFAULT_PID_FILE: &str = "/run/l2sec-client.pid";

#[derive(Debug, clap::Args)]
struct Connect {
    /// The server's address.
    #[arg(long)]
    server: IpAddr,
    /// The IPsec pre-shared key (or L2SEC_PSK).
    #[arg(long, env = "L2SEC_PSK", hide_env_values = true)]
    psk: String,
    /// User name.
    #[arg(long)]
    user: String,
    /// Password (or L2SEC_PASSWORD).
    #[arg(long, env = "L2SEC_PASSWORD", hide_env_values = true)]
    password: String,
    /// Our own address towards the server (default: the one the kernel would use).
    #[arg(long)]
    local: Option<IpAddr>,
    /// Networks to route through the tunnel (repeatable); none means all traffic.
    #[arg(long = "route")]
    routes: Vec<Ipv4Net>,
    /// TUN device name.
    #[arg(long, default_value = "l2sec-c0")]
    tun: String,
    /// LCP echo interval in seconds: how fast a dead server or path is noticed (4 misses).
    #[arg(long, default_value_t = 30)]
    echo_interval: u64,
    /// Do not reconnect when the connection breaks (wrong credentials never reconnect).
    #[arg(long)]
    no_reconnect: bool,
    /// Where to record our pid for `l2sec-client disconnect`.
    #[arg(long, default_value = DEFAULT_PID_FILE)]
    pid_file: std::path::PathBuf,
}

fn main() -> ExitCode {
    // Colours only for a terminal: logs piped to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let args = match Cli::parse().command {
        Command::Connect(args) => args,
        Command::Disconnect { pid_file } => return disconnect(&pid_file),
    };
    if let Err(e) = std::fs::write(&args.pid_file, format!("{}\n", std::process::id())) {
        tracing::warn!(%e, path = %args.pid_file.display(), "cannot write the pid file; `disconnect` will not find us");
    }
    let result = connect(&args);
    let _ = std::fs::remove_file(&args.pid_file);
    match result {
        Ok((Stage::Disconnected, DownReason::Requested)) => ExitCode::SUCCESS,
        Ok((stage, reason)) => {
            tracing::error!(?stage, ?reason, "connection failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sends SIGTERM to the client recorded in `pid_file`: it disconnects in order and exits.
fn disconnect(pid_file: &std::path::Path) -> ExitCode {
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    let Some(pid) = pid else {
        tracing::error!(path = %pid_file.display(), "no running client found");
        return ExitCode::FAILURE;
    };
    match std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
    {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        _ => {
            tracing::error!(pid, "could not signal the client");
            ExitCode::FAILURE
        }
    }
}

/// The address the kernel would send to `server` from.
async fn local_towards(server: IpAddr) -> anyhow::Result<IpAddr> {
    let any = if server.is_ipv4() {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from([0u16; 8])
    };
    let probe = tokio::net::UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    probe.connect(SocketAddr::new(server, 500)).await?;
    Ok(probe.local_addr()?.ip())
}

/// Failures that another attempt cannot fix: wrong credentials, nothing in common, no address.
fn permanent(reason: DownReason) -> bool {
    matches!(
        reason,
        DownReason::Requested
            | DownReason::NoAuthenticationReply
            | DownReason::Refused(Refusal::AuthenticationFailed | Refusal::NoProposalChosen)
            | DownReason::Ppp(ppp::DownReason::AuthFailed | ppp::DownReason::NoCommonAuth)
    )
}

fn connect(args: &Connect) -> anyhow::Result<(Stage, DownReason)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let local = match args.local {
            Some(l) => l,
            None => local_towards(args.server).await.context("no route to the server")?,
        };
        let driver = DriverConfig {
            local: SocketAddr::new(local, 500),
            tun_name: args.tun.clone(),
            routes: args.routes.clone(),
            server: args.server,
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let mut seed = [0u8; 32];
            SystemRandom::new().fill(&mut seed).map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
            let mut config = EngineConfig::new(
                SocketAddr::new(args.server, 500),
                SocketAddr::new(local, 500),
                args.psk.as_bytes(),
                args.user.clone(),
                Password::new(args.password.as_bytes()),
            );
            let mut ppp = (*config.ppp).clone();
            ppp.link.echo_interval = Some(Duration::from_secs(args.echo_interval.max(1)));
            config.ppp = Arc::new(ppp);
            let now = tokio::time::Instant::now().into_std();
            let engine = Engine::new(config, ChaCha20Rng::from_seed(seed), now);
            tracing::info!(server = %args.server, %local, "connecting");
            let started = tokio::time::Instant::now();
            let ended = driver::run(&driver, engine).await?;
            if args.no_reconnect || permanent(ended.reason) {
                return Ok((ended.stage, ended.reason));
            }
            // A connection that lasted a while starts the backoff over.
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            tracing::warn!(stage = ?ended.stage, reason = ?ended.reason, retry_in = ?backoff, "connection lost; reconnecting");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = tokio::signal::ctrl_c() => return Ok((Stage::Disconnected, DownReason::Requested)),
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    })
}
