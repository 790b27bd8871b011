//! `l2sec-client`: connects this machine to an L2TP/IPsec server.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ipnet::Ipv4Net;
use l2sec_client::driver::{self, DriverConfig};
use l2sec_client::engine::{DownReason, Engine, EngineConfig, Stage};
use ppp::auth::Password;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::rand::{SecureRandom, SystemRandom};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

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
    Connect {
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
    },
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
    let Command::Connect {
        server,
        psk,
        user,
        password,
        local,
        routes,
        tun,
    } = Cli::parse().command;
    match connect(
        server,
        &psk,
        user,
        Password::new(password.into_bytes()),
        local,
        routes,
        tun,
    ) {
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

/// The address the kernel would send to `server` from.
async fn local_towards(server: IpAddr) -> anyhow::Result<IpAddr> {
    let probe = tokio::net::UdpSocket::bind(SocketAddr::new(
        if server.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            IpAddr::from([0u16; 8])
        },
        0,
    ))
    .await?;
    probe.connect(SocketAddr::new(server, 500)).await?;
    Ok(probe.local_addr()?.ip())
}

fn connect(
    server: IpAddr,
    psk: &str,
    user: String,
    password: Password,
    local: Option<IpAddr>,
    routes: Vec<Ipv4Net>,
    tun_name: String,
) -> anyhow::Result<(Stage, DownReason)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let local = match local {
            Some(l) => l,
            None => local_towards(server)
                .await
                .context("no route to the server")?,
        };
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        let config = EngineConfig::new(
            SocketAddr::new(server, 500),
            SocketAddr::new(local, 500),
            psk.as_bytes(),
            user,
            password,
        );
        let now = tokio::time::Instant::now().into_std();
        let engine = Engine::new(config, ChaCha20Rng::from_seed(seed), now);
        let driver = DriverConfig {
            local: SocketAddr::new(local, 500),
            tun_name,
            routes,
            server,
        };
        tracing::info!(%server, %local, "connecting");
        let ended = driver::run(&driver, engine).await?;
        Ok((ended.stage, ended.reason))
    })
}
