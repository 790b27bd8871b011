//! `l2sec-client`: connects this machine to an L2TP/IPsec server.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ike::ikev1::main_mode::Refusal;
use ipnet::Ipv4Net;
use l2sec_client::dns;
use l2sec_client::driver::{self, DriverConfig, Signals};
use l2sec_client::engine::{DownReason, Engine, EngineConfig, Stage};
use l2sec_client::profile::{self, AuthMethod, Profile, ProfileError, ProfileFile};
use l2sec_client::status::{self, State, Tracker};
use l2tp::wire::message::CdnResult;
use l2tp::{Origin, SessionDownReason};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// L2TP/IPsec client (IKEv1 PSK, L2TP, PPP) in userspace.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connects and stays connected until Ctrl-C or `disconnect` (needs root or
    /// CAP_NET_ADMIN/CAP_NET_RAW). `connect work` uses the profile `work.toml` from the config
    /// directory; flags override the profile's fields.
    Connect(Box<Connect>),
    /// Tells a running `connect` to tear the connection down cleanly (PPP, L2TP, IKE), waits
    /// until it has restored routes and DNS, and returns. Also cleans up after a client that
    /// died without doing so.
    Disconnect {
        /// The pid file the running client wrote.
        #[arg(long, default_value = DEFAULT_PID_FILE)]
        pid_file: PathBuf,
    },
    /// Shows the running connection: server, stage, address, algorithms, traffic, uptime.
    /// Exits with 3 when no client is running.
    Status {
        /// Print the state file as it is (JSON).
        #[arg(long)]
        json: bool,
        /// The pid file of the running client (its state file sits next to it, `.json`).
        #[arg(long, default_value = DEFAULT_PID_FILE)]
        pid_file: PathBuf,
    },
    /// Lists the profiles in the config directory.
    #[command(alias = "list")]
    Profiles {
        /// Where profiles are (default: /etc/l2sec/client for root, else
        /// $XDG_CONFIG_HOME/l2sec or ~/.config/l2sec).
        #[arg(long, env = "L2SEC_CLIENT_DIR")]
        config_dir: Option<PathBuf>,
    },
}

/// Where `connect` records its pid for `disconnect`; the state file is next to it.
const DEFAULT_PID_FILE: &str = "/run/l2sec-client.pid";

#[derive(Debug, clap::Args)]
struct Connect {
    /// The profile to use: NAME.toml in the config directory.
    #[arg(conflicts_with = "profile")]
    name: Option<String>,
    /// A profile file to use instead of a name.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Where profiles are (default: /etc/l2sec/client for root, else
    /// $XDG_CONFIG_HOME/l2sec or ~/.config/l2sec).
    #[arg(long, env = "L2SEC_CLIENT_DIR")]
    config_dir: Option<PathBuf>,
    /// The server's address or host name.
    #[arg(long)]
    server: Option<String>,
    /// The IPsec pre-shared key (or L2SEC_PSK).
    #[arg(long, env = "L2SEC_PSK", hide_env_values = true)]
    psk: Option<String>,
    /// User name.
    #[arg(long)]
    user: Option<String>,
    /// Password (or L2SEC_PASSWORD).
    #[arg(long, env = "L2SEC_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// PPP authentication methods to accept (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    auth: Vec<AuthMethod>,
    /// Our own address towards the server (default: the one the kernel would use).
    #[arg(long)]
    local: Option<IpAddr>,
    /// A network to route through the tunnel (repeatable; replaces the profile's list). With
    /// no routes at all, all traffic goes through the tunnel.
    #[arg(long = "route")]
    routes: Vec<Ipv4Net>,
    /// Route all traffic through the tunnel (the server's own address stays outside).
    #[arg(long)]
    route_all: bool,
    /// Use the DNS servers the server offers (default with route-all).
    #[arg(long, overrides_with = "no_dns")]
    dns: bool,
    /// Leave DNS alone (default with a route list).
    #[arg(long, overrides_with = "dns")]
    no_dns: bool,
    /// TUN device name (default l2sec-c0).
    #[arg(long)]
    tun: Option<String>,
    /// IKE suites to offer, in order, e.g. aes256-sha256-modp2048 (repeatable or comma
    /// separated; default: a list every common server accepts).
    #[arg(long, value_delimiter = ',')]
    ike: Vec<String>,
    /// ESP transforms to offer, in order, e.g. aes128gcm16 or aes256-sha1 (repeatable or comma
    /// separated; default: GCM, then CBC with SHA-2 and SHA-1).
    #[arg(long, value_delimiter = ',')]
    esp: Vec<String>,
    /// LCP echo interval in seconds: how fast a dead server or path is noticed (4 misses).
    #[arg(long, value_name = "SECONDS")]
    echo_interval: Option<u64>,
    /// The connection must be up within this long (e.g. 30s).
    #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration)]
    connect_timeout: Option<Duration>,
    /// Do not reconnect when the connection breaks (wrong credentials never reconnect).
    #[arg(long)]
    no_reconnect: bool,
    /// Where to record our pid for `l2sec-client disconnect` (the state file for `status` is
    /// written next to it, with the extension `.json`).
    #[arg(long, default_value = DEFAULT_PID_FILE)]
    pid_file: PathBuf,
    /// The resolver file to replace instead of /etc/resolv.conf (always by file, never through
    /// systemd-resolved); for tests.
    #[arg(long, env = "L2SEC_RESOLV_CONF", hide = true)]
    resolv_conf: Option<PathBuf>,
}

impl Connect {
    /// The command-line values as a profile layer (unset flags are `None`).
    fn as_profile(&self) -> ProfileFile {
        ProfileFile {
            server: self.server.clone(),
            psk: self.psk.clone().map(Zeroizing::new),
            user: self.user.clone(),
            password: self.password.clone().map(Zeroizing::new),
            auth: (!self.auth.is_empty()).then(|| self.auth.clone()),
            routes: (!self.routes.is_empty()).then(|| self.routes.clone()),
            route_all: self.route_all.then_some(true),
            use_dns: if self.dns {
                Some(true)
            } else {
                self.no_dns.then_some(false)
            },
            reconnect: self.no_reconnect.then_some(false),
            connect_timeout: self.connect_timeout,
            echo_interval: self.echo_interval.map(Duration::from_secs),
            tun_name: self.tun.clone(),
            local: self.local,
            ike: (!self.ike.is_empty()).then(|| self.ike.clone()),
            esp: (!self.esp.is_empty()).then(|| self.esp.clone()),
        }
    }

    /// The profile file named on the command line, if any, and a name for it.
    fn profile_file(&self) -> Result<Option<(String, PathBuf)>, ProfileError> {
        if let Some(path) = &self.profile {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            return Ok(Some((stem.unwrap_or_default(), path.clone())));
        }
        let Some(name) = &self.name else {
            return Ok(None);
        };
        let dir = config_dir(self.config_dir.as_deref());
        let path = profile::profile_path(&dir, name)?;
        if !path.exists() {
            return Err(ProfileError {
                source_name: name.clone(),
                line: None,
                message: format!(
                    "no such profile ({} does not exist; `l2sec-client profiles` lists them)",
                    path.display()
                ),
            });
        }
        Ok(Some((name.trim_end_matches(".toml").to_owned(), path)))
    }

    /// The profile: the file (if any) under the command-line values; a missing password or
    /// PSK is asked for when a terminal is there to answer.
    fn load(&self) -> Result<(Option<String>, Profile), ProfileError> {
        let (name, source, merged) = match self.profile_file()? {
            Some((name, path)) => {
                let file = ProfileFile::load(&path)?;
                (
                    Some(name),
                    path.display().to_string(),
                    self.as_profile().or(file),
                )
            }
            None => (None, "command line".to_owned(), self.as_profile()),
        };
        let mut merged = merged;
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            if merged.psk.is_none() {
                merged.psk = ask_secret("IPsec pre-shared key: ");
            }
            if merged.password.is_none() {
                let user = merged.user.as_deref().unwrap_or("the user");
                merged.password = ask_secret(&format!("password for {user}: "));
            }
        }
        Ok((name, merged.finish(&source)?))
    }
}

/// Reads one line from the terminal without echo (`stty -echo`: this crate has no unsafe code).
fn ask_secret(prompt: &str) -> Option<Zeroizing<String>> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let hidden = stty("-echo");
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().read_line(&mut line);
    if hidden {
        stty("echo");
    }
    let _ = writeln!(err);
    let secret = line.trim_end_matches(['\r', '\n']);
    (read.is_ok() && !secret.is_empty()).then(|| Zeroizing::new(secret.to_owned()))
}

fn config_dir(flag: Option<&Path>) -> PathBuf {
    flag.map_or_else(
        || profile::default_config_dir(is_root(), |k| std::env::var(k).ok()),
        Path::to_path_buf,
    )
}

/// Whether we run with effective uid 0 (read from /proc: this crate has no unsafe code).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn main() -> ExitCode {
    // Colours only for a terminal: logs piped to files stay plain text. On a terminal the
    // progress lines tell the story; logs say only what goes wrong (RUST_LOG overrides).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let default_level = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let args = match Cli::parse().command {
        Command::Connect(args) => args,
        Command::Disconnect { pid_file } => return disconnect(&pid_file),
        Command::Status { json, pid_file } => return show_status(&pid_file, json),
        Command::Profiles { config_dir: dir } => return list_profiles(&config_dir(dir.as_deref())),
    };
    let (name, profile) = match args.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            complain(&e.to_string());
            return ExitCode::from(2);
        }
    };
    recover(&args.pid_file);
    if let Err(e) = std::fs::write(&args.pid_file, format!("{}\n", std::process::id())) {
        tracing::warn!(%e, path = %args.pid_file.display(), "cannot write the pid file; `disconnect` will not find us");
    }
    let mut tracker = Tracker::new(Some(status::state_path(&args.pid_file)), name, true);
    let result = connect(&args, &profile, &mut tracker);
    tracker.remove();
    let _ = std::fs::remove_file(&args.pid_file);
    match result {
        Ok((Stage::Disconnected, DownReason::Requested)) => ExitCode::SUCCESS,
        Ok((_, reason)) if administrative(reason) => {
            tracing::error!(
                ?reason,
                "the server ended the session for administrative reasons (an operator's kick or a RADIUS Disconnect-Request): not reconnecting"
            );
            ExitCode::from(EXIT_ADMINISTRATIVE)
        }
        Ok((stage, reason)) => {
            tracing::error!(
                ?stage,
                ?reason,
                "connection failed at the {} stage: {}",
                status::stage_name(stage),
                status::explain(stage, reason)
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A one-line message for the person at the command line.
fn complain(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "l2sec-client: {message}");
}

/// Cleans up after a client that died without restoring DNS or its host route, as recorded in
/// the state file next to `pid_file`. Returns whether there was anything to clean.
fn recover(pid_file: &Path) -> bool {
    let path = status::state_path(pid_file);
    let Ok(state) = State::read(&path) else {
        return false;
    };
    if status::is_client_running(state.pid) {
        if state.pid != std::process::id() {
            tracing::warn!(
                pid = state.pid,
                path = %pid_file.display(),
                "another l2sec-client uses this pid file; `disconnect` and `status` will see only the newest (give each connection its own --pid-file)"
            );
        }
        return false;
    }
    let mut cleaned = false;
    if let Some(change) = &state.dns_restore {
        match dns::restore_file(change) {
            Ok(()) => tracing::warn!(
                pid = state.pid,
                "restored {} left behind by a client that did not exit cleanly",
                change.path.display()
            ),
            Err(e) => tracing::warn!("DNS left by pid {}: {e}", state.pid),
        }
        cleaned = true;
    }
    if let Some(server) = state.host_route {
        driver::remove_host_route(server);
        tracing::warn!(pid = state.pid, %server, "removed the host route left behind by a client that did not exit cleanly");
        cleaned = true;
    }
    let _ = std::fs::remove_file(&path);
    cleaned
}

/// Sends SIGTERM to the client recorded in `pid_file` and waits until it has exited (torn
/// down in order, routes and DNS restored).
fn disconnect(pid_file: &Path) -> ExitCode {
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|pid| status::is_client_running(*pid));
    let Some(pid) = pid else {
        if recover(pid_file) {
            tracing::warn!("no running client; cleaned up after one that died");
        }
        tracing::error!(path = %pid_file.display(), "no running client found");
        return ExitCode::FAILURE;
    };
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if !signalled {
        tracing::error!(pid, "could not signal the client");
        return ExitCode::FAILURE;
    }
    // The teardown takes a few seconds at most (each step is bounded); give it room.
    #[expect(
        clippy::disallowed_methods,
        reason = "a one-shot command polling another process, no runtime"
    )]
    for _ in 0..200 {
        if !status::is_client_running(pid) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::error!(pid, "the client is still running 10 s after SIGTERM");
    ExitCode::FAILURE
}

fn show_status(pid_file: &Path, json: bool) -> ExitCode {
    let path = status::state_path(pid_file);
    let text = std::fs::read_to_string(&path).ok();
    let state = text
        .as_deref()
        .and_then(|t| serde_json::from_str::<State>(t).ok());
    let mut out = std::io::stdout().lock();
    match (text, state) {
        (Some(text), Some(state)) if status::is_client_running(state.pid) => {
            let _ = if json {
                out.write_all(text.as_bytes())
            } else {
                out.write_all(state.render(status::unix_now()).as_bytes())
            };
            ExitCode::SUCCESS
        }
        (_, Some(state)) => {
            complain(&format!(
                "not connected: the client that wrote {} (pid {}) is gone; `l2sec-client disconnect` cleans up after it",
                path.display(),
                state.pid
            ));
            ExitCode::from(3)
        }
        _ => {
            complain("not connected");
            ExitCode::from(3)
        }
    }
}

fn list_profiles(dir: &Path) -> ExitCode {
    let found = match profile::list(dir) {
        Ok(found) => found,
        Err(e) => {
            tracing::error!("{}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if found.is_empty() {
        let _ = writeln!(out, "no profiles in {}", dir.display());
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(out, "{:<16} {:<24} {:<16} ROUTES", "NAME", "SERVER", "USER");
    for (name, path) in found {
        let line = match ProfileFile::load(&path) {
            Ok(file) => {
                let routes = match (&file.routes, file.route_all) {
                    (_, Some(true)) => "all traffic".to_owned(),
                    (Some(r), _) if !r.is_empty() => r
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    (_, Some(false)) => "none".to_owned(),
                    _ => "all traffic".to_owned(),
                };
                format!(
                    "{name:<16} {:<24} {:<16} {routes}",
                    file.server.as_deref().unwrap_or("-"),
                    file.user.as_deref().unwrap_or("-")
                )
            }
            Err(e) => format!("{name:<16} unusable: {e}"),
        };
        let _ = writeln!(out, "{line}");
    }
    ExitCode::SUCCESS
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

/// The server's address: literal, or the first IPv4 (else IPv6) address of a host name.
async fn resolve(server: &str) -> anyhow::Result<IpAddr> {
    if let Some(ip) = profile::literal_address(server) {
        return Ok(ip);
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((server, 500))
        .await
        .with_context(|| format!("cannot resolve the server name {server:?}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| found.first())
        .map(SocketAddr::ip)
        .with_context(|| format!("the server name {server:?} has no address"))
}

/// The exit status after the server ended the session administratively.
const EXIT_ADMINISTRATIVE: u8 = 4;

/// Whether the server ended the call for administrative reasons (CDN Result Code 3, RFC 2661
/// §4.4.2): an operator's `kick` or a RADIUS Disconnect-Request. Final: reconnecting would
/// undo what the operator did. (l2sec-server sends other codes for a lost peer or a
/// Session-Timeout, after which we do reconnect.)
const fn administrative(reason: DownReason) -> bool {
    matches!(
        reason,
        DownReason::Session(SessionDownReason::Disconnected {
            origin: Origin::Peer,
            result: CdnResult::ADMINISTRATIVE,
            ..
        })
    )
}

/// Failures that another attempt cannot fix: wrong credentials, nothing in common, no address.
const fn permanent(reason: DownReason) -> bool {
    matches!(
        reason,
        DownReason::Requested
            | DownReason::NoAuthenticationReply
            | DownReason::Refused(Refusal::AuthenticationFailed | Refusal::NoProposalChosen)
            | DownReason::Ppp(ppp::DownReason::AuthFailed | ppp::DownReason::NoCommonAuth)
    )
}

fn connect(
    args: &Connect,
    profile: &Profile,
    tracker: &mut Tracker,
) -> anyhow::Result<(Stage, DownReason)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut signals = Signals::new().context("installing signal handlers")?;
        let server = resolve(&profile.server).await?;
        let local = match profile.local {
            Some(l) => l,
            None => local_towards(server).await.context("no route to the server")?,
        };
        let dns = profile.use_dns.then(|| dns::Settings {
            backend: args
                .resolv_conf
                .clone()
                .map_or(dns::Backend::Auto, dns::Backend::File),
            backup: status::resolv_backup_path(&args.pid_file),
            all_domains: profile.route_all,
        });
        let driver = DriverConfig {
            local: SocketAddr::new(local, 500),
            tun_name: profile.tun_name.clone(),
            routes: profile.routes.clone(),
            route_all: profile.route_all,
            server,
            dns,
            user: profile.user.clone(),
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let mut seed = [0u8; 32];
            SystemRandom::new()
                .fill(&mut seed)
                .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
            let mut config = EngineConfig::from_profile(
                profile,
                SocketAddr::new(server, 500),
                SocketAddr::new(local, 500),
            );
            let mut ppp = (*config.ppp).clone();
            ppp.link.echo_interval = Some(profile.echo_interval);
            config.ppp = Arc::new(ppp);
            let now = tokio::time::Instant::now().into_std();
            let engine = Engine::new(config, ChaCha20Rng::from_seed(seed), now);
            tracing::info!(%server, %local, "connecting");
            tracker.attempt(server, local);
            let started = tokio::time::Instant::now();
            let ended = driver::run(&driver, engine, tracker, &mut signals).await?;
            if !profile.reconnect || permanent(ended.reason) || administrative(ended.reason) {
                return Ok((ended.stage, ended.reason));
            }
            // A connection that lasted a while starts the backoff over.
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            tracing::warn!(stage = ?ended.stage, reason = ?ended.reason, retry_in = ?backoff, "connection lost; reconnecting");
            tracker.reconnecting(backoff);
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = signals.recv() => return Ok((Stage::Disconnected, DownReason::Requested)),
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdn(origin: Origin, result: CdnResult) -> DownReason {
        DownReason::Session(SessionDownReason::Disconnected {
            origin,
            result,
            error: None,
        })
    }

    #[test]
    fn only_the_servers_cdn_for_administrative_reasons_is_final() {
        assert!(administrative(cdn(Origin::Peer, CdnResult::ADMINISTRATIVE)));
        // Ours, or the server's for a loss or a timeout: reconnect.
        for reason in [
            cdn(Origin::Local, CdnResult::ADMINISTRATIVE),
            cdn(Origin::Peer, CdnResult::LOST_CARRIER),
            cdn(Origin::Peer, CdnResult::GENERAL_ERROR),
            DownReason::Session(SessionDownReason::TunnelDown),
            DownReason::Timeout,
            DownReason::ServerUnreachable,
            DownReason::Ppp(ppp::DownReason::PeerTerminated),
            DownReason::Ppp(ppp::DownReason::EchoTimeout),
        ] {
            assert!(!administrative(reason), "{reason:?}");
            assert!(!permanent(reason), "{reason:?}");
        }
    }
}
