//! `l2sec-server`: the L2TP/IPsec LNS.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use l2sec_server::config::Config;
use l2sec_server::logging::{self, LogFormat};
use l2sec_server::{control, driver, setup, state};
use std::path::PathBuf;
use std::process::ExitCode;

/// L2TP/IPsec server for the built-in VPN clients of Windows, macOS, iOS, Android and Linux.
#[derive(Debug, Parser)]
#[command(version, about, after_long_help = l2sec_server::config::REFERENCE)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server (needs root or CAP_NET_ADMIN + CAP_NET_RAW + CAP_NET_BIND_SERVICE).
    #[command(after_long_help = l2sec_server::config::REFERENCE)]
    Run {
        /// Configuration file (TOML); every field is optional.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Adds, deletes, lists users and sets passwords in the users file (NT hashes, never
    /// plaintext).
    User(l2sec_server::users_cli::UserArgs),
    /// Checks a configuration file and exits.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Shows the sessions of the running server (through its control socket).
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: control::SocketArgs,
    },
    /// Ends the sessions of a user, or the session holding an address (LCP Terminate, CDN,
    /// StopCCN and IKE Delete); exits non-zero when there is none.
    Kick {
        /// A user name or an assigned IPv4 address.
        target: String,
        #[command(flatten)]
        socket: control::SocketArgs,
    },
    /// Re-reads the configuration and the users file without dropping sessions (as SIGHUP
    /// does); a bad file is refused and the running configuration kept.
    Reload {
        #[command(flatten)]
        socket: control::SocketArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, "info");
    let result = match cli.command {
        Command::CheckConfig { file } => check(&file),
        Command::Run { config } => run(config),
        Command::User(args) => l2sec_server::users_cli::run(args, env).map_err(anyhow::Error::from),
        Command::Status { json, socket } => control::status(&socket, json, &mut std::io::stdout()),
        Command::Kick { target, socket } => control::kick(&socket, &target, &mut std::io::stdout()),
        Command::Reload { socket } => control::reload_cli(&socket, &mut std::io::stdout()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn check(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(Some(file), env)?;
    tracing::info!(pool = %config.pool_net(), rules = config.policy.rules().len(), "configuration is valid");
    Ok(())
}

fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(path.as_deref(), env)?;
    let secrets = state::secrets(&config).context("preparing the PSK and users")?;
    let engine = setup::engine(&config, secrets, state::seed()?).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(driver::run(&config, engine))
}
