//! The client side of the data-path bench: `l2sec-client`'s own engine and driver
//! (`l2sec_client::driver::run`), started with one ESP transform and one phase-1 suite in its
//! proposal. `l2sec-client` has no flag or profile key that pins the proposal, so the bench
//! runs the client library under this small `main` instead (everything below `main` — engine,
//! driver, TUN, sockets — is the client's).

use anyhow::Context as _;
use ike::crypto::{CipherAlgorithm, DhGroup, HashAlgorithm};
use ike::esp::Transform;
use ike::ikev1::proposal::Phase1Suite;
use l2sec_client::driver::{self, DriverConfig, Signals};
use l2sec_client::engine::{Engine, EngineConfig};
use l2sec_client::status::Tracker;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The pre-shared key of every bench run.
pub const PSK: &str = "l2sec-bench-psk";
/// The PPP user of every bench run.
pub const USER: &str = "bench";
/// Its password.
pub const PASSWORD: &str = "bench-password";

/// A client configuration proposing only `transform` in Quick Mode and only AES-128/SHA-256
/// with `group` in Main Mode.
#[must_use]
pub fn engine_config(
    server: SocketAddr,
    local: SocketAddr,
    transform: Transform,
    group: DhGroup,
) -> EngineConfig {
    let mut config = EngineConfig::new(
        server,
        local,
        PSK.as_bytes(),
        USER,
        ppp::auth::Password::new(PASSWORD.as_bytes()),
    );
    config.ike.phase1.policy.suites = vec![Phase1Suite {
        cipher: CipherAlgorithm::AesCbc128,
        hash: HashAlgorithm::Sha256,
        group,
    }];
    config.ike.phase2.transforms = vec![transform];
    let mut ppp = (*config.ppp).clone();
    ppp.request_dns = true;
    config.ppp = Arc::new(ppp);
    config.connect_timeout = Duration::from_secs(30);
    config
}

/// What `agent-client` is told.
#[derive(Debug, Clone)]
pub struct AgentArgs {
    /// The server.
    pub server: Ipv4Addr,
    /// Our address towards it.
    pub local: Ipv4Addr,
    /// The ESP transform to propose.
    pub transform: Transform,
    /// The phase-1 group.
    pub group: DhGroup,
    /// TUN device name.
    pub tun: String,
    /// Networks routed into the tunnel.
    pub routes: Vec<ipnet::Ipv4Net>,
    /// The state file (`l2sec-client status` format).
    pub state: PathBuf,
}

/// Connects and stays up until SIGINT/SIGTERM or a failure.
///
/// # Errors
/// When sockets or the TUN device cannot be set up.
pub fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut signals = Signals::new().context("signal handlers")?;
        let server = SocketAddr::new(IpAddr::V4(args.server), 500);
        let local = SocketAddr::new(IpAddr::V4(args.local), 500);
        let config = engine_config(server, local, args.transform, args.group);
        let now = tokio::time::Instant::now().into_std();
        let engine = Engine::new(config, ChaCha20Rng::from_seed(seed()), now);
        let mut tracker = Tracker::new(Some(args.state.clone()), None, false);
        tracker.attempt(server.ip(), local.ip());
        let driver = DriverConfig {
            local,
            tun_name: args.tun.clone(),
            routes: args.routes.clone(),
            route_all: false,
            server: server.ip(),
            dns: None,
            user: USER.to_owned(),
        };
        let ended = driver::run(&driver, engine, &mut tracker, &mut signals).await?;
        tracing::info!(stage = ?ended.stage, reason = ?ended.reason, "agent-client ended");
        Ok(())
    })
}

/// 32 bytes from the system's generator.
#[must_use]
pub fn seed() -> [u8; 32] {
    use ring::rand::SecureRandom as _;
    let mut seed = [0u8; 32];
    // A failing system generator leaves a fixed seed: the bench's keys are not secrets.
    let _ = ring::rand::SystemRandom::new().fill(&mut seed);
    seed
}
