//! The server's configuration file (TOML) and its validated, typed form.
//!
//! Every field is optional and has an embedded default, so an empty file (or no file) is a
//! working configuration for the reference scenario. Unknown keys and bad values are refused
//! with the file name, the line and column, and a message saying what was expected. A few
//! settings that containers set can be overridden from the environment ([`ENV_OVERRIDES`]).
//!
//! ```toml
//! [ipsec]
//! psk = "a long random secret"
//!
//! # Optional: keys chosen by the peer's address (the most specific prefix wins; `psk` above
//! # is the key for every other address; without it, only these peers can connect).
//! [[ipsec.peer]]
//! address = "203.0.113.7"           # or a prefix: "198.51.100.0/24", "2001:db8::/48"
//! id = "laptop.example.com"         # optional: the ID it must present (FQDN, user@domain,
//! psk = "its own secret"            #   an address or dn:C=.., O=.., CN=..); or psk_file = "…"
//!
//! [pool]
//! range = "172.16.1.2-172.16.1.100"
//! local = "172.16.1.1"
//! dns = ["192.168.1.1"]
//!
//! [policy]
//! networks = { intranet = ["192.168.1.0/24"] }
//! rules = ["allow pool -> intranet", "allow pool -> lns proto icmp"]
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::engine::policy::{Policy, Proto, Rule};
use crate::engine::pool::Pool;
use ike::ikev1::keys::Secret;
use ike::ikev1::main_mode::{AddressPrefix, PeerId, PskEntry, PskTable, PskTableError};

/// The most threads `[server] crypto_threads` may ask for.
pub const MAX_CRYPTO_THREADS: usize = 64;

/// Every key of the configuration file with its default, for `--help` (kept beside the
/// sections below; a test checks that each key listed here parses).
pub const REFERENCE: &str = "\
Configuration file (TOML; every key optional, defaults shown):

[server]
  listen = \"0.0.0.0\"            address for UDP 500/4500 and raw ESP
  state_dir = \"/var/lib/l2sec\"  generated PSK and user live here
  allow_plain_l2tp = false        accept L2TP on UDP 1701 without IPsec (unencrypted!)
  ip_forward = false              enable IPv4 forwarding at start-up
  crypto_threads = 1              threads for the ESP crypto of a packet batch, the packet
                                  thread included (1: all on the packet thread, best where
                                  client and traffic share 2 cores; 0: one per available
                                  core; at most 64)
  user = \"nobody\"               unprivileged user to switch to once sockets, TUN device and
                                  routes are set up (\"root\": keep root); it must be able to
                                  read the config and users files for reload
  control_socket = \"/run/l2sec/control.sock\"  for status, kick, reload (root only: directory
                                  0700 when created, socket 0600; `reload` or SIGHUP re-reads
                                  users, pool.range (growing), pool.dns, policy.rules and
                                  networks, ipsec psk/peer keys; the rest needs a restart)
[ipsec]
  psk = \"...\" | psk_file = \"...\" default pre-shared key (env L2SEC_PSK)
  ike_lifetime = \"8h\"           phase 1; longer proposals are rekeyed by the server
  sa_lifetime = \"1h\"            phase 2; shorter than proposed is announced (RESPONDER-LIFETIME)
  dpd_interval = \"30s\"          idle time before a DPD R-U-THERE
  dpd_timeout = \"120s\"          unanswered DPD this long: the peer is dead
  nat_keepalive = \"20s\"         NAT-T keepalive interval
  max_dh_per_second = 500         DH computations/s for unauthenticated peers (0: no limit)
  dh_threads = 0                  threads for Diffie-Hellman work, off the packet thread
                                  (0: one per CPU core; at most 64)
  max_ike_sas = 65536             established IKE SAs in total (one per connected client)
  max_half_open = 1024            IKE exchanges in progress   max_half_open_per_address = 32
  keylog_file = \"...\"           DEBUG ONLY: Wireshark esp_sa rows (and FILE.ikev1)
  esp_sha256_96_peers = []        addresses/prefixes whose ESP HMAC-SHA2-256 is 96-bit (old Android)
[[ipsec.peer]]                    a key for the peers at an address or prefix
  address = \"198.51.100.0/24\"   id = \"name\" (optional)   psk = \"...\" | psk_file = \"...\"
[l2tp]
  host_name = \"l2sec\"           secret = \"...\" (tunnel authentication, optional)
  hello_interval = \"60s\"        max_tunnels = 65000   max_tunnels_per_peer = 256
  max_sessions_per_tunnel = 16
[ppp]
  auth = [\"mschapv2\", \"chap-md5\", \"pap\"]   methods offered, in order
  mru = 1500   echo_interval = \"20s\"   echo_failures = 5   auth_failure_delay = \"2s\"
[pool]
  range = \"172.16.1.2-172.16.1.100\"   local = \"172.16.1.1\"   dns = []   nbns = []
[users]
  file = \"...\"                   [[user]] name, password | nt_hash, address (optional)
[policy]
  networks = { intranet = [\"192.168.1.0/24\"] }
  rules = [\"allow pool -> intranet\", \"allow pool -> lns proto icmp\"]
[tun]
  name = \"l2sec0\"   mtu = 1400
[pool.named]                      address pools for RADIUS Framed-Pool, inside pool.range
  staff = \"172.16.1.90-172.16.1.100\"
[policy.filters]                  rule sets for RADIUS Filter-Id (replace policy.rules)
  contractors = [\"allow pool -> intranet proto tcp port 443\"]
[radius]                          RADIUS authentication and accounting (RFC 2865/2866)
  order = \"local-first\"         local-first | radius-first (local file when no server
                                  answers) | radius-only
  nas_identifier = \"l2sec\"      default: l2tp.host_name
  nas_ip_address = \"...\"        default: server.listen when it is an IPv4 address
  source = \"0.0.0.0\"            address of the RADIUS socket
  timeout = \"3s\"   retries = 2   dead_time = \"30s\"   per request and server
  accounting = true               Start, Interim-Update, Stop, Accounting-On/Off
  interim_interval = \"0s\"       when the server sends no Acct-Interim-Interval (0: none)
  dae_listen = \"0.0.0.0:3799\"   Disconnect/CoA-Request (RFC 5176), off by default
[[radius.server]]                 in order of preference; failover to the next
  address = \"192.0.2.10\"   auth_port = 1812   acct_port = 1813 (0: not this service)
  secret = \"...\" | secret_file = \"...\"
  require_message_authenticator = true   drop answers without it (BlastRADIUS)
[[radius.dae_client]]             who may send Disconnect/CoA-Request
  address = \"192.0.2.10\"   secret = \"...\" | secret_file = \"...\"
[metrics]                         Prometheus metrics, off unless listen is set
  listen = \"127.0.0.1:9108\"     GET /metrics (text format); keep it off the Internet

Environment: L2SEC_PSK, L2SEC_USERS_FILE, L2SEC_POOL (FIRST-LAST), L2SEC_POOL_LOCAL,
L2SEC_DNS (comma-separated), L2SEC_STATE_DIR override the file.";

/// Where the control socket is when the configuration does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/l2sec/control.sock";

/// Environment variables that override the file (name, what it sets).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("L2SEC_PSK", "ipsec.psk"),
    ("L2SEC_USERS_FILE", "users.file"),
    ("L2SEC_POOL", "pool.range (FIRST-LAST)"),
    ("L2SEC_POOL_LOCAL", "pool.local"),
    ("L2SEC_DNS", "pool.dns (comma-separated)"),
    ("L2SEC_STATE_DIR", "server.state_dir"),
];

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or bad values (the message carries the
    /// line and column).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// toml's message, with line, column and the offending excerpt.
        message: String,
    },
    /// A value parsed but makes no sense (e.g. a pool whose end is before its start).
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file (or `environment`).
        path: String,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The file as written: every section and field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    server: ServerSection,
    ipsec: IpsecSection,
    l2tp: L2tpSection,
    ppp: PppSection,
    pool: PoolSection,
    users: UsersSection,
    policy: PolicySection,
    tun: TunSection,
    radius: RadiusSection,
    metrics: MetricsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MetricsSection {
    listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerSection {
    listen: IpAddr,
    state_dir: PathBuf,
    allow_plain_l2tp: bool,
    ip_forward: bool,
    crypto_threads: usize,
    user: String,
    control_socket: PathBuf,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            state_dir: PathBuf::from("/var/lib/l2sec"),
            allow_plain_l2tp: false,
            ip_forward: false,
            crypto_threads: 1,
            user: "nobody".to_owned(),
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct IpsecSection {
    psk: Option<String>,
    psk_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    ike_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    sa_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    dpd_interval: Duration,
    #[serde(with = "humantime_serde")]
    dpd_timeout: Duration,
    #[serde(with = "humantime_serde")]
    nat_keepalive: Duration,
    max_dh_per_second: u32,
    dh_threads: usize,
    max_ike_sas: usize,
    max_half_open: usize,
    max_half_open_per_address: usize,
    keylog_file: Option<PathBuf>,
    esp_sha256_96_peers: Vec<String>,
    peer: Vec<PeerSection>,
}

/// One `[[ipsec.peer]]`: a pre-shared key for the peers at an address or prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerSection {
    address: String,
    id: Option<String>,
    psk: Option<String>,
    psk_file: Option<PathBuf>,
}

impl Default for IpsecSection {
    fn default() -> Self {
        Self {
            psk: None,
            psk_file: None,
            ike_lifetime: Duration::from_secs(8 * 3600),
            sa_lifetime: Duration::from_secs(3600),
            dpd_interval: Duration::from_secs(30),
            dpd_timeout: Duration::from_secs(120),
            nat_keepalive: Duration::from_secs(20),
            max_dh_per_second: 500,
            dh_threads: 0,
            max_ike_sas: 65_536,
            max_half_open: 1024,
            max_half_open_per_address: 32,
            keylog_file: None,
            esp_sha256_96_peers: Vec::new(),
            peer: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct L2tpSection {
    host_name: String,
    secret: Option<String>,
    #[serde(with = "humantime_serde")]
    hello_interval: Duration,
    max_tunnels: u32,
    max_tunnels_per_peer: u32,
    max_sessions_per_tunnel: u32,
}

impl Default for L2tpSection {
    fn default() -> Self {
        Self {
            host_name: "l2sec".to_owned(),
            secret: None,
            hello_interval: Duration::from_secs(60),
            max_tunnels: 65_000,
            max_tunnels_per_peer: 256,
            max_sessions_per_tunnel: 16,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PppSection {
    auth: Vec<AuthMethod>,
    mru: u16,
    #[serde(with = "humantime_serde")]
    echo_interval: Duration,
    echo_failures: u32,
    #[serde(with = "humantime_serde")]
    auth_failure_delay: Duration,
}

impl Default for PppSection {
    fn default() -> Self {
        Self {
            auth: vec![AuthMethod::MsChapV2, AuthMethod::ChapMd5, AuthMethod::Pap],
            mru: 1500,
            echo_interval: Duration::from_secs(20),
            echo_failures: 5,
            auth_failure_delay: Duration::from_secs(2),
        }
    }
}

/// A PPP authentication method the server may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// MS-CHAPv2 (RFC 2759).
    #[serde(rename = "mschapv2")]
    MsChapV2,
    /// CHAP with MD5 (RFC 1994).
    ChapMd5,
    /// PAP (RFC 1334).
    Pap,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PoolSection {
    range: String,
    local: Ipv4Addr,
    dns: Vec<Ipv4Addr>,
    nbns: Vec<Ipv4Addr>,
    named: std::collections::BTreeMap<String, String>,
}

impl Default for PoolSection {
    fn default() -> Self {
        Self {
            range: "172.16.1.2-172.16.1.100".to_owned(),
            local: Ipv4Addr::new(172, 16, 1, 1),
            dns: Vec::new(),
            nbns: Vec::new(),
            named: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct UsersSection {
    file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PolicySection {
    networks: std::collections::BTreeMap<String, Vec<Ipv4Net>>,
    rules: Vec<String>,
    filters: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            networks: [(
                "intranet".to_owned(),
                vec![Ipv4Net::new(Ipv4Addr::new(192, 168, 1, 0), 24).unwrap_or_default()],
            )]
            .into_iter()
            .collect(),
            rules: vec![
                "allow pool -> intranet".to_owned(),
                "allow pool -> lns proto icmp".to_owned(),
            ],
            filters: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RadiusSection {
    order: RadiusOrder,
    nas_identifier: Option<String>,
    nas_ip_address: Option<Ipv4Addr>,
    source: Option<IpAddr>,
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    retries: u32,
    #[serde(with = "humantime_serde")]
    dead_time: Duration,
    accounting: bool,
    #[serde(with = "humantime_serde")]
    interim_interval: Duration,
    dae_listen: Option<std::net::SocketAddr>,
    server: Vec<RadiusServerSection>,
    dae_client: Vec<DaeClientSection>,
}

impl Default for RadiusSection {
    fn default() -> Self {
        Self {
            order: RadiusOrder::LocalFirst,
            nas_identifier: None,
            nas_ip_address: None,
            source: None,
            timeout: Duration::from_secs(3),
            retries: 2,
            dead_time: Duration::from_secs(30),
            accounting: true,
            interim_interval: Duration::ZERO,
            dae_listen: None,
            server: Vec::new(),
            dae_client: Vec::new(),
        }
    }
}

/// One `[[radius.server]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RadiusServerSection {
    address: IpAddr,
    #[serde(default = "default_auth_port")]
    auth_port: u16,
    #[serde(default = "default_acct_port")]
    acct_port: u16,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default = "default_true")]
    require_message_authenticator: bool,
}

const fn default_true() -> bool {
    true
}

const fn default_auth_port() -> u16 {
    1812
}

const fn default_acct_port() -> u16 {
    1813
}

/// One `[[radius.dae_client]]`: who may send Disconnect-Request and CoA-Request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaeClientSection {
    address: IpAddr,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
}

/// Which users the local users file answers for and which go to RADIUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RadiusOrder {
    /// A user in the local file is checked there (and only there); everybody else goes to
    /// RADIUS.
    LocalFirst,
    /// Every user goes to RADIUS; the local file is not consulted.
    RadiusOnly,
    /// Every user goes to RADIUS; when no server answers, the local file decides.
    RadiusFirst,
}

/// A RADIUS server of `[[radius.server]]`.
#[derive(Debug, Clone)]
pub struct RadiusServer {
    /// Its address.
    pub address: IpAddr,
    /// Authentication port (0: this server does no authentication).
    pub auth_port: u16,
    /// Accounting port (0: this server does no accounting).
    pub acct_port: u16,
    /// The shared secret.
    pub secret: SecretString,
    /// Drop Access-Accept/Reject without Message-Authenticator (BlastRADIUS, CVE-2024-3596).
    pub require_message_authenticator: bool,
}

/// A Dynamic Authorization client (RFC 5176) of `[[radius.dae_client]]`.
#[derive(Debug, Clone)]
pub struct DaeClient {
    /// The address its requests come from.
    pub address: IpAddr,
    /// The shared secret.
    pub secret: SecretString,
}

/// The validated `[radius]` section; present when at least one server is configured.
#[derive(Debug, Clone)]
pub struct RadiusConfig {
    /// Local file or RADIUS first.
    pub order: RadiusOrder,
    /// Servers in order of preference.
    pub servers: Vec<RadiusServer>,
    /// NAS-Identifier (default: the L2TP host name).
    pub nas_identifier: String,
    /// NAS-IP-Address (default: the listen address when it is a specific IPv4 address).
    pub nas_ip_address: Option<Ipv4Addr>,
    /// Address the RADIUS socket is bound to (port chosen by the system).
    pub source: IpAddr,
    /// Wait for an answer before retransmitting.
    pub timeout: Duration,
    /// Retransmissions to one server before the next.
    pub retries: u32,
    /// How long a silent server is skipped.
    pub dead_time: Duration,
    /// Send accounting (Start, Interim-Update, Stop, Accounting-On/Off).
    pub accounting: bool,
    /// Interim-Update interval when the server sends no Acct-Interim-Interval (zero: none).
    pub interim_interval: Duration,
    /// Where Disconnect-Request and CoA-Request are received, if anywhere.
    pub dae_listen: Option<std::net::SocketAddr>,
    /// Who may send them.
    pub dae_clients: Vec<DaeClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TunSection {
    name: String,
    mtu: u16,
}

impl Default for TunSection {
    fn default() -> Self {
        Self {
            name: "l2sec0".to_owned(),
            mtu: 1400,
        }
    }
}

/// A secret string from the configuration; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// The secret's bytes.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A pre-shared key for the peers at an address or prefix (`[[ipsec.peer]]`).
#[derive(Debug, Clone)]
pub struct PeerPsk {
    /// The peers' address or prefix, as the server sees it (a NAT's public address for peers
    /// behind one).
    pub address: AddressPrefix,
    /// The ID the peer must present in Main Mode, if any.
    pub id: Option<PeerId>,
    /// The key.
    pub psk: SecretString,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind UDP 500/4500 (and the raw ESP socket) to.
    pub listen: IpAddr,
    /// Directory for generated secrets and the users file.
    pub state_dir: PathBuf,
    /// Accept L2TP on UDP 1701 that did not arrive inside ESP (off by default).
    pub allow_plain_l2tp: bool,
    /// Enable IPv4 forwarding on start-up.
    pub ip_forward: bool,
    /// Threads that share the ESP crypto of a packet batch, the packet thread included: 1 (the
    /// default) keeps everything on the packet thread, 0 is one per available core (at most
    /// [`MAX_CRYPTO_THREADS`]). The default is what measured best on the project's 2-core
    /// machine, where the server shares its cores with the traffic.
    pub crypto_threads: usize,
    /// The user the server switches to once its sockets, TUN device and routes are set up
    /// (`"root"`: stay root). Files read after that (the configuration and users file on
    /// reload) must be readable by this user.
    pub user: String,
    /// The pre-shared key for every peer no [`Config::peer_psks`] entry covers (from the file,
    /// `psk_file` or `L2SEC_PSK`); `None` means "generate" when there are no per-peer keys,
    /// and "no default" when there are.
    pub psk: Option<SecretString>,
    /// Pre-shared keys chosen by the peer's address (in file order; the most specific prefix
    /// covering a peer's address wins).
    pub peer_psks: Vec<PeerPsk>,
    /// Lifetime of ISAKMP SAs we accept or propose.
    pub ike_lifetime: Duration,
    /// Lifetime of IPsec SAs.
    pub sa_lifetime: Duration,
    /// DPD idle interval.
    pub dpd_interval: Duration,
    /// DPD: a peer silent this long is dead.
    pub dpd_timeout: Duration,
    /// NAT keepalive interval.
    pub nat_keepalive: Duration,
    /// Diffie-Hellman computations per second for peers not yet authenticated (0: no limit).
    pub max_dh_per_second: u32,
    /// Threads doing Diffie-Hellman work, off the packet thread (0: one per CPU core).
    pub dh_threads: usize,
    /// Established IKE SAs in total.
    pub max_ike_sas: usize,
    /// IKE exchanges in progress, in total and per source address.
    pub max_half_open: usize,
    /// See [`Config::max_half_open`].
    pub max_half_open_per_address: usize,
    /// Wireshark key-log file (debugging only; warned about loudly).
    pub keylog_file: Option<PathBuf>,
    /// Peers (addresses or prefixes) whose ESP HMAC-SHA2-256 is truncated to 96 bits.
    pub esp_sha256_96_peers: Vec<AddressPrefix>,
    /// Our L2TP host name.
    pub l2tp_host_name: String,
    /// L2TP tunnel secret (tunnel authentication and hidden AVPs), if any.
    pub l2tp_secret: Option<SecretString>,
    /// L2TP HELLO interval.
    pub hello_interval: Duration,
    /// Tunnels in total.
    pub max_tunnels: u32,
    /// Tunnels per peer address.
    pub max_tunnels_per_peer: u32,
    /// Sessions per tunnel.
    pub max_sessions_per_tunnel: u32,
    /// PPP authentication methods, in order of preference.
    pub auth: Vec<AuthMethod>,
    /// Our MRU.
    pub mru: u16,
    /// LCP echo interval.
    pub echo_interval: Duration,
    /// Unanswered echoes before the link is declared dead.
    pub echo_failures: u32,
    /// Delay before a failed authentication is answered and the link closed.
    pub auth_failure_delay: Duration,
    /// First and last pool address.
    pub pool_range: (Ipv4Addr, Ipv4Addr),
    /// The LNS's own PPP address.
    pub local_address: Ipv4Addr,
    /// DNS servers offered through IPCP.
    pub dns: Vec<Ipv4Addr>,
    /// NBNS (WINS) servers offered through IPCP.
    pub nbns: Vec<Ipv4Addr>,
    /// The users file.
    pub users_file: PathBuf,
    /// The policy on decapsulated traffic.
    pub policy: Policy,
    /// TUN device name.
    pub tun_name: String,
    /// TUN device MTU.
    pub tun_mtu: u16,
    /// Named address pools inside `pool_range` (RADIUS Framed-Pool), reserved from the
    /// general pool.
    pub named_pools: Vec<(String, (Ipv4Addr, Ipv4Addr))>,
    /// Named rule sets (RADIUS Filter-Id) that replace `policy` for the sessions they name.
    pub filters: std::collections::BTreeMap<String, Policy>,
    /// RADIUS, when at least one server is configured.
    pub radius: Option<RadiusConfig>,
    /// Where Prometheus metrics are served (`[metrics] listen`); `None`: nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The control socket (`status`, `kick`, `reload`).
    pub control_socket: PathBuf,
    /// The file this was loaded from (what `reload` re-reads); `None` for the defaults.
    pub source: Option<PathBuf>,
}

impl Config {
    /// The smallest network holding the pool and the local address (routed to the TUN device).
    #[must_use]
    pub fn pool_net(&self) -> Ipv4Net {
        covering_net(self.pool_range, self.local_address)
    }

    /// Loads `path` (or only the defaults when `None`), then applies the environment overrides
    /// read through `env` (a parameter so tests need not touch the process environment).
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let (name, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?,
            ),
            None => ("(defaults)".to_owned(), String::new()),
        };
        let mut config = Self::parse(&name, &text, env)?;
        config.source = path.map(Path::to_owned);
        Ok(config)
    }

    /// Parses the text of a configuration file named `name` (for messages).
    pub fn parse(
        name: &str,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: name.to_owned(),
            message: toml_message(text, &e),
        })?;
        let invalid = |path: &str, key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };

        if let Some(v) = env("L2SEC_PSK") {
            file.ipsec.psk = Some(v);
        }
        if let Some(v) = env("L2SEC_USERS_FILE") {
            file.users.file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("L2SEC_POOL") {
            file.pool.range = v;
        }
        if let Some(v) = env("L2SEC_POOL_LOCAL") {
            file.pool.local = v
                .parse()
                .map_err(|e| invalid("environment", "L2SEC_POOL_LOCAL", format!("{v:?}: {e}")))?;
        }
        if let Some(v) = env("L2SEC_DNS") {
            file.pool.dns = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|e| invalid("environment", "L2SEC_DNS", format!("{s:?}: {e}")))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env("L2SEC_STATE_DIR") {
            file.server.state_dir = PathBuf::from(v);
        }

        let psk = match (file.ipsec.psk, &file.ipsec.psk_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    name,
                    "ipsec.psk",
                    "set either psk or psk_file, not both".to_owned(),
                ));
            }
            (Some(p), None) => Some(p),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| invalid(name, "ipsec.psk_file", format!("{}: {e}", f.display())))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if psk.as_ref().is_some_and(String::is_empty) {
            return Err(invalid(
                name,
                "ipsec.psk",
                "the pre-shared key is empty".to_owned(),
            ));
        }
        let peer_psks = peer_psks(name, &file.ipsec.peer)?;
        if file.ipsec.dh_threads > 64 {
            return Err(invalid(
                name,
                "ipsec.dh_threads",
                format!("{} is more than 64", file.ipsec.dh_threads),
            ));
        }
        let esp_sha256_96_peers = file
            .ipsec
            .esp_sha256_96_peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse::<AddressPrefix>()
                    .map_err(|e| ConfigError::Invalid {
                        path: name.to_owned(),
                        key: format!("ipsec.esp_sha256_96_peers[{i}]"),
                        message: format!("{p:?}: {e}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let pool_range =
            parse_range(&file.pool.range).map_err(|m| invalid(name, "pool.range", m))?;
        Pool::new(pool_range.0, pool_range.1, &[file.pool.local], &[])
            .map_err(|m| invalid(name, "pool.range", m))?;
        if file.ppp.auth.is_empty() {
            return Err(invalid(
                name,
                "ppp.auth",
                "at least one authentication method is needed".to_owned(),
            ));
        }
        if file.ppp.mru < 576 {
            return Err(invalid(
                name,
                "ppp.mru",
                format!("{} is below the IPv4 minimum of 576", file.ppp.mru),
            ));
        }
        if file.server.user.is_empty() {
            return Err(invalid(
                name,
                "server.user",
                "must name a user (\"root\" keeps root)".to_owned(),
            ));
        }
        if file.server.crypto_threads > MAX_CRYPTO_THREADS {
            return Err(invalid(
                name,
                "server.crypto_threads",
                format!(
                    "{} is more than {MAX_CRYPTO_THREADS}",
                    file.server.crypto_threads
                ),
            ));
        }
        if file.tun.mtu < 576 {
            return Err(invalid(
                name,
                "tun.mtu",
                format!("{} is below the IPv4 minimum of 576", file.tun.mtu),
            ));
        }
        if file.ipsec.dpd_timeout < file.ipsec.dpd_interval {
            return Err(invalid(
                name,
                "ipsec.dpd_timeout",
                "must not be shorter than dpd_interval".to_owned(),
            ));
        }

        let pool_net = covering_net(pool_range, file.pool.local);
        let lns_net = Ipv4Net::new(file.pool.local, 32)
            .map_err(|e| invalid(name, "pool.local", e.to_string()))?;
        let mut rules = Vec::new();
        for (i, text) in file.policy.rules.iter().enumerate() {
            let key = format!("policy.rules[{i}]");
            rules.push(
                parse_rule(text, &file.policy.networks, pool_net, lns_net)
                    .map_err(|m| invalid(name, &key, m))?,
            );
        }

        let mut filters = std::collections::BTreeMap::new();
        for (set, texts) in &file.policy.filters {
            let mut rules = Vec::new();
            for (i, text) in texts.iter().enumerate() {
                let key = format!("policy.filters.{set}[{i}]");
                rules.push(
                    parse_rule(text, &file.policy.networks, pool_net, lns_net)
                        .map_err(|m| invalid(name, &key, m))?,
                );
            }
            filters.insert(set.clone(), Policy::new(rules));
        }
        let mut named_pools: Vec<(String, (Ipv4Addr, Ipv4Addr))> = Vec::new();
        for (pool, text) in &file.pool.named {
            let key = format!("pool.named.{pool}");
            let range = parse_range(text).map_err(|m| invalid(name, &key, m))?;
            Pool::new(range.0, range.1, &[], &[]).map_err(|m| invalid(name, &key, m))?;
            let inside = |a: Ipv4Addr| pool_range.0 <= a && a <= pool_range.1;
            if !inside(range.0) || !inside(range.1) {
                return Err(invalid(
                    name,
                    &key,
                    format!("{text} is not inside pool.range {}", file.pool.range),
                ));
            }
            if let Some((other, _)) = named_pools
                .iter()
                .find(|(_, r)| r.0 <= range.1 && range.0 <= r.1)
            {
                return Err(invalid(name, &key, format!("overlaps pool.named.{other}")));
            }
            named_pools.push((pool.clone(), range));
        }
        let radius = radius_config(name, file.radius, &file.server, &file.l2tp)?;

        let users_file = file
            .users
            .file
            .unwrap_or_else(|| file.server.state_dir.join("users.toml"));
        Ok(Self {
            listen: file.server.listen,
            state_dir: file.server.state_dir,
            allow_plain_l2tp: file.server.allow_plain_l2tp,
            ip_forward: file.server.ip_forward,
            crypto_threads: file.server.crypto_threads,
            user: file.server.user,
            psk: psk.map(SecretString),
            peer_psks,
            ike_lifetime: file.ipsec.ike_lifetime,
            sa_lifetime: file.ipsec.sa_lifetime,
            dpd_interval: file.ipsec.dpd_interval,
            dpd_timeout: file.ipsec.dpd_timeout,
            nat_keepalive: file.ipsec.nat_keepalive,
            max_dh_per_second: file.ipsec.max_dh_per_second,
            dh_threads: file.ipsec.dh_threads,
            max_ike_sas: file.ipsec.max_ike_sas,
            max_half_open: file.ipsec.max_half_open,
            max_half_open_per_address: file.ipsec.max_half_open_per_address,
            keylog_file: file.ipsec.keylog_file,
            esp_sha256_96_peers,
            l2tp_host_name: file.l2tp.host_name,
            l2tp_secret: file.l2tp.secret.map(SecretString),
            hello_interval: file.l2tp.hello_interval,
            max_tunnels: file.l2tp.max_tunnels,
            max_tunnels_per_peer: file.l2tp.max_tunnels_per_peer,
            max_sessions_per_tunnel: file.l2tp.max_sessions_per_tunnel,
            auth: file.ppp.auth,
            mru: file.ppp.mru,
            echo_interval: file.ppp.echo_interval,
            echo_failures: file.ppp.echo_failures,
            auth_failure_delay: file.ppp.auth_failure_delay,
            pool_range,
            local_address: file.pool.local,
            dns: file.pool.dns,
            nbns: file.pool.nbns,
            users_file,
            policy: Policy::new(rules),
            tun_name: file.tun.name,
            tun_mtu: file.tun.mtu,
            named_pools,
            filters,
            radius,
            metrics_listen: file.metrics.listen,
            control_socket: file.server.control_socket,
            source: None,
        })
    }
}

/// A secret from `secret` or `secret_file` (one of them, not empty).
fn secret_of(
    value: Option<&String>,
    file: Option<&PathBuf>,
    invalid: impl Fn(&str, String) -> ConfigError,
) -> Result<SecretString, ConfigError> {
    let secret = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "secret",
                "set either secret or secret_file, not both".to_owned(),
            ));
        }
        (Some(k), None) => k.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| invalid("secret_file", format!("{}: {e}", f.display())))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        (None, None) => return Err(invalid("secret", "a shared secret is needed".to_owned())),
    };
    if secret.is_empty() {
        return Err(invalid("secret", "the shared secret is empty".to_owned()));
    }
    Ok(SecretString(secret))
}

/// Validates `[radius]`: `None` when no server is configured (and nothing else is set that
/// needs one).
fn radius_config(
    name: &str,
    r: RadiusSection,
    server: &ServerSection,
    l2tp: &L2tpSection,
) -> Result<Option<RadiusConfig>, ConfigError> {
    let invalid = |key: String, message: String| ConfigError::Invalid {
        path: name.to_owned(),
        key,
        message,
    };
    if r.server.is_empty() {
        if r.order != RadiusOrder::LocalFirst || r.dae_listen.is_some() || !r.dae_client.is_empty()
        {
            return Err(invalid(
                "radius.server".to_owned(),
                "RADIUS settings need at least one [[radius.server]]".to_owned(),
            ));
        }
        return Ok(None);
    }
    if r.timeout.is_zero() {
        return Err(invalid(
            "radius.timeout".to_owned(),
            "must be positive".to_owned(),
        ));
    }
    let mut servers = Vec::new();
    for (i, s) in r.server.iter().enumerate() {
        let field = |f: &str, m: String| invalid(format!("radius.server[{i}].{f}"), m);
        let secret = secret_of(s.secret.as_ref(), s.secret_file.as_ref(), field)?;
        if s.auth_port == 0 && s.acct_port == 0 {
            return Err(field(
                "auth_port",
                "auth_port and acct_port are both 0".to_owned(),
            ));
        }
        servers.push(RadiusServer {
            address: s.address,
            auth_port: s.auth_port,
            acct_port: s.acct_port,
            secret,
            require_message_authenticator: s.require_message_authenticator,
        });
    }
    if r.order != RadiusOrder::LocalFirst && servers.iter().all(|s| s.auth_port == 0) {
        return Err(invalid(
            "radius.order".to_owned(),
            "no [[radius.server]] has an auth_port".to_owned(),
        ));
    }
    // Without an accounting port anywhere there is nobody to account to.
    let accounting = r.accounting && servers.iter().any(|s| s.acct_port != 0);
    let mut dae_clients = Vec::new();
    for (i, c) in r.dae_client.iter().enumerate() {
        let field = |f: &str, m: String| invalid(format!("radius.dae_client[{i}].{f}"), m);
        let secret = secret_of(c.secret.as_ref(), c.secret_file.as_ref(), field)?;
        dae_clients.push(DaeClient {
            address: c.address,
            secret,
        });
    }
    if r.dae_listen.is_some() == dae_clients.is_empty() {
        return Err(invalid(
            "radius.dae_listen".to_owned(),
            "dae_listen and [[radius.dae_client]] go together".to_owned(),
        ));
    }
    let nas_ip_address = r.nas_ip_address.or(match server.listen {
        IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    });
    Ok(Some(RadiusConfig {
        order: r.order,
        servers,
        nas_identifier: r.nas_identifier.unwrap_or_else(|| l2tp.host_name.clone()),
        nas_ip_address,
        source: r.source.unwrap_or(match server.listen {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }),
        timeout: r.timeout,
        retries: r.retries,
        dead_time: r.dead_time,
        accounting,
        interim_interval: r.interim_interval,
        dae_listen: r.dae_listen,
        dae_clients,
    }))
}

/// Validates `[[ipsec.peer]]`: an address or prefix, an optional ID, a key from `psk` or
/// `psk_file` (not both, not empty), no prefix twice. The keys are checked by building the
/// table the IKE endpoint will use.
fn peer_psks(name: &str, peers: &[PeerSection]) -> Result<Vec<PeerPsk>, ConfigError> {
    let mut table = PskTable::new();
    let mut out = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: name.to_owned(),
            key: format!("ipsec.peer[{i}].{field}"),
            message,
        };
        let address: AddressPrefix = p
            .address
            .parse()
            .map_err(|e: PskTableError| invalid("address", e.to_string()))?;
        let id =
            p.id.as_deref()
                .map(str::parse::<PeerId>)
                .transpose()
                .map_err(|e| invalid("id", e.to_string()))?;
        let psk = match (&p.psk, &p.psk_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "psk",
                    "set either psk or psk_file, not both".to_owned(),
                ));
            }
            (Some(k), None) => k.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| invalid("psk_file", format!("{}: {e}", f.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            (None, None) => return Err(invalid("psk", "a key is needed".to_owned())),
        };
        if psk.is_empty() {
            return Err(invalid("psk", "the pre-shared key is empty".to_owned()));
        }
        table
            .insert(PskEntry {
                peer: address,
                id: id.clone(),
                secret: Secret::new(psk.as_bytes()),
            })
            .map_err(|e| invalid("address", e.to_string()))?;
        out.push(PeerPsk {
            address,
            id,
            psk: SecretString(psk),
        });
    }
    Ok(out)
}

/// toml's position and message, without the quoted source line (it may hold a secret).
pub(crate) fn toml_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before.len() - line_start + 1;
            let key = text[line_start..]
                .split('=')
                .next()
                .unwrap_or_default()
                .trim();
            // serde's messages quote the offending value; never when it is a secret.
            let message = if ["psk", "secret", "password", "nt_hash"].contains(&key) {
                format!("bad value for {key} (not shown: it is a secret)")
            } else {
                e.message().to_owned()
            };
            format!("line {line}, column {column}: {message}")
        }
        None => e.message().to_owned(),
    }
}

fn parse_range(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected FIRST-LAST, e.g. 172.16.1.2-172.16.1.100"))?;
    let a: Ipv4Addr = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: Ipv4Addr = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
    Ok((a, b))
}

/// The smallest network holding the whole pool and the LNS address: what `pool` means in rules.
fn covering_net((first, last): (Ipv4Addr, Ipv4Addr), local: Ipv4Addr) -> Ipv4Net {
    let lo = u32::from(first).min(u32::from(local));
    let hi = u32::from(last).max(u32::from(local));
    let prefix = u8::try_from((lo ^ hi).leading_zeros()).unwrap_or(32);
    Ipv4Net::new(Ipv4Addr::from(lo), prefix)
        .map(|n| n.trunc())
        .unwrap_or_default()
}

/// `allow FROM -> TO [proto icmp|tcp|udp|any] [port N|N-M]`; FROM and TO are `pool`, `lns`,
/// a network name, or a CIDR.
fn parse_rule(
    text: &str,
    networks: &std::collections::BTreeMap<String, Vec<Ipv4Net>>,
    pool: Ipv4Net,
    lns: Ipv4Net,
) -> Result<Rule, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (from, to, rest) = match words.as_slice() {
        ["allow", from, "->", to, rest @ ..] => (*from, *to, rest),
        _ => {
            return Err(format!(
                "{text:?}: expected `allow FROM -> TO [proto P] [port N[-M]]`"
            ));
        }
    };
    let resolve = |name: &str| -> Result<Vec<Ipv4Net>, String> {
        match name {
            "pool" => Ok(vec![pool]),
            "lns" => Ok(vec![lns]),
            n => networks.get(n).cloned().map_or_else(
                || {
                    n.parse::<Ipv4Net>()
                        .map(|net| vec![net])
                        .map_err(|_| format!("{n:?} is neither a network name nor a CIDR"))
                },
                Ok,
            ),
        }
    };
    let mut rule = Rule {
        from: resolve(from)?,
        to: resolve(to)?,
        proto: Proto::Any,
        ports: None,
    };
    let mut rest = rest.iter();
    while let Some(word) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| format!("{text:?}: {word} needs a value"))?;
        match *word {
            "proto" => {
                rule.proto = match *value {
                    "any" => Proto::Any,
                    "icmp" => Proto::Icmp,
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    p => {
                        return Err(format!(
                            "{text:?}: unknown protocol {p:?} (any, icmp, tcp, udp)"
                        ));
                    }
                }
            }
            "port" => {
                let (lo, hi) = value.split_once('-').unwrap_or((value, value));
                let lo: u16 = lo
                    .parse()
                    .map_err(|_| format!("{text:?}: bad port {value:?}"))?;
                let hi: u16 = hi
                    .parse()
                    .map_err(|_| format!("{text:?}: bad port {value:?}"))?;
                if hi < lo {
                    return Err(format!("{text:?}: port range {value} is reversed"));
                }
                rule.ports = Some((lo, hi));
            }
            w => return Err(format!("{text:?}: unexpected {w:?}")),
        }
    }
    if rule.ports.is_some() && !matches!(rule.proto, Proto::Tcp | Proto::Udp) {
        return Err(format!("{text:?}: a port filter needs proto tcp or udp"));
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn an_empty_file_is_the_reference_scenario() {
        let c = Config::parse("empty.toml", "", no_env).unwrap();
        assert_eq!(
            c.pool_range,
            (Ipv4Addr::new(172, 16, 1, 2), Ipv4Addr::new(172, 16, 1, 100))
        );
        assert_eq!(c.local_address, Ipv4Addr::new(172, 16, 1, 1));
        assert_eq!(
            c.auth,
            vec![AuthMethod::MsChapV2, AuthMethod::ChapMd5, AuthMethod::Pap]
        );
        assert!(c.psk.is_none(), "no PSK means one is generated at start-up");
        assert!(!c.allow_plain_l2tp);
        assert!(
            c.policy
                .check_outbound(&ping([172, 16, 1, 51], [192, 168, 1, 1]))
                .is_ok()
        );
        assert!(
            c.policy
                .check_outbound(&ping([172, 16, 1, 51], [192, 168, 2, 1]))
                .is_err()
        );
        assert!(
            c.policy
                .check_outbound(&ping([172, 16, 1, 51], [172, 16, 1, 1]))
                .is_ok()
        );
    }

    #[test]
    fn every_key_of_the_help_reference_parses_with_its_default() {
        let text = r#"
[server]
listen = "0.0.0.0"
state_dir = "/var/lib/l2sec"
allow_plain_l2tp = false
ip_forward = false
crypto_threads = 1
user = "nobody"
control_socket = "/run/l2sec/control.sock"
[ipsec]
psk = "x"
ike_lifetime = "8h"
sa_lifetime = "1h"
dpd_interval = "30s"
dpd_timeout = "120s"
nat_keepalive = "20s"
max_dh_per_second = 500
dh_threads = 0
max_ike_sas = 65536
max_half_open = 1024
max_half_open_per_address = 32
esp_sha256_96_peers = ["203.0.113.9"]
[[ipsec.peer]]
address = "198.51.100.0/24"
id = "name"
psk = "y"
[l2tp]
host_name = "l2sec"
hello_interval = "60s"
max_tunnels = 65000
max_tunnels_per_peer = 256
max_sessions_per_tunnel = 16
[ppp]
auth = ["mschapv2", "chap-md5", "pap"]
mru = 1500
echo_interval = "20s"
echo_failures = 5
auth_failure_delay = "2s"
[pool]
range = "172.16.1.2-172.16.1.100"
local = "172.16.1.1"
dns = []
nbns = []
[policy]
networks = { intranet = ["192.168.1.0/24"] }
rules = ["allow pool -> intranet", "allow pool -> lns proto icmp"]
[tun]
name = "l2sec0"
mtu = 1400
[pool.named]
staff = "172.16.1.90-172.16.1.100"
[policy.filters]
contractors = ["allow pool -> intranet proto tcp port 443"]
[radius]
order = "local-first"
nas_identifier = "l2sec"
nas_ip_address = "192.0.2.1"
source = "0.0.0.0"
timeout = "3s"
retries = 2
dead_time = "30s"
accounting = true
interim_interval = "0s"
dae_listen = "0.0.0.0:3799"
[[radius.server]]
address = "192.0.2.10"
auth_port = 1812
acct_port = 1813
secret = "s"
require_message_authenticator = true
[[radius.dae_client]]
address = "192.0.2.10"
secret = "s"
[metrics]
listen = "127.0.0.1:9108"
"#;
        let c = Config::parse("reference.toml", text, no_env).unwrap();
        let d = Config::parse("empty.toml", "[ipsec]\npsk = \"x\"", no_env).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9108".parse().unwrap()));
        assert_eq!(d.metrics_listen, None, "metrics are opt-in");
        assert_eq!(
            (c.ike_lifetime, c.sa_lifetime, c.max_dh_per_second),
            (d.ike_lifetime, d.sa_lifetime, d.max_dh_per_second)
        );
        for key in text
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        {
            assert!(REFERENCE.contains(key), "{key} is missing from REFERENCE");
        }
    }

    #[test]
    fn crypto_threads_default_to_the_packet_thread_alone_and_stop_at_64() {
        let d = Config::parse("empty.toml", "[ipsec]\npsk = \"x\"", no_env).unwrap();
        assert_eq!(d.crypto_threads, 1);
        let auto = "[server]\ncrypto_threads = 0\n[ipsec]\npsk = \"x\"";
        assert_eq!(
            Config::parse("auto.toml", auto, no_env)
                .unwrap()
                .crypto_threads,
            0
        );
        let most = "[server]\ncrypto_threads = 64\n[ipsec]\npsk = \"x\"";
        assert_eq!(
            Config::parse("most.toml", most, no_env)
                .unwrap()
                .crypto_threads,
            64
        );
        let too_many = "[server]\ncrypto_threads = 65\n[ipsec]\npsk = \"x\"";
        let e = Config::parse("many.toml", too_many, no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.crypto_threads"), "{e}");
        assert!(e.contains("65 is more than 64"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_with_file_and_line() {
        let text = "[pool]\nrange = \"10.0.0.2-10.0.0.9\"\nrnage = 3\n";
        let e = Config::parse("lns.toml", text, no_env)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("lns.toml: "), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("rnage"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("[pool]\nrange = \"10.0.0.9-10.0.0.2\"\n", "pool.range"),
            ("[pool]\nrange = \"10.0.0.9\"\n", "pool.range"),
            ("[ppp]\nauth = []\n", "ppp.auth"),
            ("[ppp]\nmru = 100\n", "ppp.mru"),
            (
                "[policy]\nrules = [\"allow pool -> nowhere\"]\n",
                "policy.rules[0]",
            ),
            (
                "[policy]\nrules = [\"allow pool -> 10.0.0.0/8 port 80\"]\n",
                "policy.rules[0]",
            ),
            ("[ipsec]\npsk = \"\"\n", "ipsec.psk"),
            ("[ipsec]\ndh_threads = 65\n", "ipsec.dh_threads"),
            (
                "[ipsec]\ndpd_interval = \"60s\"\ndpd_timeout = \"10s\"\n",
                "ipsec.dpd_timeout",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse("f.toml", text, no_env)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("f.toml: {key}: ")),
                "{text:?} gave {e}"
            );
        }
        let e = Config::parse("f.toml", "[ppp]\nauth = [\"eap\"]\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("eap"), "{e}");
        let e = Config::parse("f.toml", "[ipsec]\ndpd_interval = \"soon\"\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let env = |k: &str| match k {
            "L2SEC_PSK" => Some("from-env".to_owned()),
            "L2SEC_POOL" => Some("10.8.0.10-10.8.0.20".to_owned()),
            "L2SEC_POOL_LOCAL" => Some("10.8.0.1".to_owned()),
            "L2SEC_DNS" => Some("1.1.1.1, 9.9.9.9".to_owned()),
            _ => None,
        };
        let c = Config::parse("f.toml", "[ipsec]\npsk = \"from-file\"\n", env).unwrap();
        assert_eq!(c.psk.as_ref().map(SecretString::expose), Some("from-env"));
        assert_eq!(c.pool_range.0, Ipv4Addr::new(10, 8, 0, 10));
        assert_eq!(c.local_address, Ipv4Addr::new(10, 8, 0, 1));
        assert_eq!(
            c.dns,
            vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(9, 9, 9, 9)]
        );
        assert!(
            c.policy
                .check_outbound(&ping([10, 8, 0, 15], [192, 168, 1, 1]))
                .is_ok(),
            "pool follows the override"
        );
    }

    #[test]
    fn a_mistyped_secret_is_not_quoted_in_the_error() {
        let e = Config::parse("f.toml", "[ipsec]\npsk = 12345678\n", no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, column 7"), "{e}");
        assert!(!e.contains("12345678"), "{e}");
    }

    #[test]
    fn the_psk_never_appears_in_debug_output() {
        let c = Config::parse(
            "f.toml",
            "[ipsec]\npsk = \"hunter2-secret\"\n[l2tp]\nsecret = \"tunnel-secret\"\n",
            no_env,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tunnel-secret"),
            "{shown}"
        );
    }

    #[test]
    fn rules_with_protocols_ports_and_named_networks_parse() {
        let text = "[policy]\nnetworks = { web = [\"10.1.0.0/16\", \"10.2.0.0/16\"] }\nrules = [\"allow pool -> web proto tcp port 80-443\"]\n";
        let c = Config::parse("f.toml", text, no_env).unwrap();
        let rule = &c.policy.rules()[0];
        assert_eq!(rule.to.len(), 2);
        assert_eq!(rule.proto, Proto::Tcp);
        assert_eq!(rule.ports, Some((80, 443)));
        assert_eq!(rule.from, vec!["172.16.1.0/25".parse::<Ipv4Net>().unwrap()]);
    }

    #[test]
    fn per_peer_keys_parse_with_prefixes_and_ids() {
        let text = r#"
[ipsec]
psk = "default-key"

[[ipsec.peer]]
address = "198.51.100.0/24"
psk = "branch-key"

[[ipsec.peer]]
address = "198.51.100.7"
id = "laptop.example.com"
psk = "laptop-key"

[[ipsec.peer]]
address = "2001:db8::/48"
id = "dn:C=CH, O=Example, CN=router"
psk = "v6-key"
"#;
        let c = Config::parse("f.toml", text, no_env).unwrap();
        assert_eq!(
            c.psk.as_ref().map(SecretString::expose),
            Some("default-key")
        );
        let shown: Vec<String> = c.peer_psks.iter().map(|p| p.address.to_string()).collect();
        assert_eq!(
            shown,
            ["198.51.100.0/24", "198.51.100.7/32", "2001:db8::/48"]
        );
        assert_eq!(c.peer_psks[0].id, None);
        assert_eq!(c.peer_psks[1].id, Some(PeerId::fqdn("laptop.example.com")));
        assert_eq!(c.peer_psks[1].psk.expose(), "laptop-key");
        assert_eq!(
            c.peer_psks[2].id.as_ref().map(|i| i.id_type),
            Some(ike::wire::IdType::DER_ASN1_DN)
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("laptop-key") && !shown.contains("branch-key"),
            "{shown}"
        );
    }

    #[test]
    fn per_peer_keys_alone_mean_no_default_and_the_environment_still_sets_it() {
        let text = "[[ipsec.peer]]\naddress = \"10.0.0.0/8\"\npsk = \"k\"\n";
        let c = Config::parse("f.toml", text, no_env).unwrap();
        assert!(
            c.psk.is_none(),
            "no default key is generated next to per-peer keys"
        );
        let env = |k: &str| (k == "L2SEC_PSK").then(|| "from-env".to_owned());
        let c = Config::parse("f.toml", text, env).unwrap();
        assert_eq!(c.psk.as_ref().map(SecretString::expose), Some("from-env"));
        assert_eq!(c.peer_psks.len(), 1);
    }

    #[test]
    fn truncated_sha256_peers_are_addresses_or_prefixes() {
        let text = "[ipsec]\nesp_sha256_96_peers = [\"198.51.100.7\", \"10.0.0.0/8\"]\n";
        let c = Config::parse("f.toml", text, no_env).unwrap();
        assert_eq!(
            c.esp_sha256_96_peers,
            vec![
                "198.51.100.7".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap()
            ]
        );
        let bad = "[ipsec]\nesp_sha256_96_peers = [\"10.0.0.1\", \"android\"]\n";
        match Config::parse("f.toml", bad, no_env) {
            Err(ConfigError::Invalid { key, .. }) => {
                assert_eq!(key, "ipsec.esp_sha256_96_peers[1]");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_per_peer_keys_name_the_entry_and_field() {
        let entry = |body: &str| {
            format!("[[ipsec.peer]]\naddress = \"10.0.0.1\"\npsk = \"a\"\n[[ipsec.peer]]\n{body}\n")
        };
        let cases = [
            (
                "address = \"10.0.0.0/33\"\npsk = \"k\"",
                "ipsec.peer[1].address",
            ),
            (
                "address = \"vpn.example.com\"\npsk = \"k\"",
                "ipsec.peer[1].address",
            ),
            (
                "address = \"10.0.0.1/32\"\npsk = \"k\"",
                "ipsec.peer[1].address",
            ),
            ("address = \"10.0.0.2\"", "ipsec.peer[1].psk"),
            ("address = \"10.0.0.2\"\npsk = \"\"", "ipsec.peer[1].psk"),
            (
                "address = \"10.0.0.2\"\npsk = \"k\"\npsk_file = \"/k\"",
                "ipsec.peer[1].psk",
            ),
            (
                "address = \"10.0.0.2\"\npsk_file = \"/nonexistent/l2sec.psk\"",
                "ipsec.peer[1].psk_file",
            ),
            (
                "address = \"10.0.0.2\"\nid = \"dn:XX=1\"\npsk = \"k\"",
                "ipsec.peer[1].id",
            ),
        ];
        for (body, key) in cases {
            let text = entry(body);
            let e = Config::parse("f.toml", &text, no_env)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("f.toml: {key}: ")),
                "{body:?} gave {e}"
            );
        }
        // Unknown keys are refused with the line; a mistyped key is not quoted.
        let e = Config::parse(
            "f.toml",
            &entry("address = \"10.0.0.2\"\npks = \"k\""),
            no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 6") && e.contains("pks"), "{e}");
        let e = Config::parse(
            "f.toml",
            &entry("address = \"10.0.0.2\"\npsk = 4711"),
            no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 6") && !e.contains("4711"), "{e}");
    }

    fn ping(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn radius_section_is_validated() {
        let text = "[server]\nlisten = \"2.2.2.2\"\n[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"s1\"\n\
                    [[radius.server]]\naddress = \"127.0.0.2\"\nauth_port = 11812\nacct_port = 0\nsecret = \"s2\"\n\
                    [radius]\norder = \"radius-only\"\ninterim_interval = \"5m\"\n";
        let c = Config::parse("f.toml", text, no_env).unwrap();
        let r = c.radius.unwrap();
        assert_eq!(r.order, RadiusOrder::RadiusOnly);
        assert_eq!(r.servers.len(), 2);
        assert_eq!(
            (r.servers[0].auth_port, r.servers[0].acct_port),
            (1812, 1813)
        );
        assert_eq!((r.servers[1].auth_port, r.servers[1].acct_port), (11812, 0));
        assert_eq!(r.nas_ip_address, Some(Ipv4Addr::new(2, 2, 2, 2)));
        assert_eq!(r.nas_identifier, "l2sec");
        assert_eq!(r.interim_interval, Duration::from_secs(300));
        assert!(!format!("{:?}", r.servers[0]).contains("s1"));
        assert!(r.accounting);
        let no_acct = "[[radius.server]]\naddress = \"127.0.0.1\"\nacct_port = 0\nsecret = \"s\"\n";
        let c = Config::parse("f.toml", no_acct, no_env).unwrap();
        assert!(
            !c.radius.unwrap().accounting,
            "no accounting port: no accounting"
        );
        assert!(
            Config::parse("f.toml", "", no_env)
                .unwrap()
                .radius
                .is_none()
        );
        let cases = [
            (
                "[[radius.server]]\naddress = \"127.0.0.1\"\n",
                "radius.server[0].secret",
            ),
            (
                "[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"\"\n",
                "radius.server[0].secret",
            ),
            ("[radius]\norder = \"radius-only\"\n", "radius.server"),
            (
                "[radius]\ndae_listen = \"0.0.0.0:3799\"\n[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = \"s\"\n",
                "radius.dae_listen",
            ),
            ("[pool.named]\nx = \"10.0.0.1-10.0.0.5\"\n", "pool.named.x"),
            (
                "[pool.named]\na = \"172.16.1.10-172.16.1.20\"\nb = \"172.16.1.20-172.16.1.30\"\n",
                "pool.named.b",
            ),
            (
                "[policy.filters]\nx = [\"allow pool -> nowhere\"]\n",
                "policy.filters.x[0]",
            ),
            (
                "[radius]\norder = \"radius-only\"\n[[radius.server]]\naddress = \"127.0.0.1\"\n\
                 auth_port = 0\nsecret = \"s\"\n",
                "radius.order",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse("f.toml", text, no_env)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("f.toml: {key}: ")),
                "{text:?} gave {e}"
            );
        }
        let e = Config::parse(
            "f.toml",
            "[[radius.server]]\naddress = \"127.0.0.1\"\nsecret = 5\n",
            no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains('5') || e.contains("not shown"), "{e}");
    }
}
