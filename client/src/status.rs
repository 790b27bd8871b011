//! What a running client tells the world: a small JSON state file next to its pid file (read by
//! `l2sec-client status`), and the progress lines printed while it connects.
//!
//! The state file is rewritten atomically at each stage and every few seconds while connected
//! (traffic counters). It also carries what must be undone after a crash — a replaced
//! `resolv.conf` and the pinned host route to the server — so that the next `connect` or
//! `disconnect` can clean up after a client that died without doing so.

use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ike::crypto::{CipherAlgorithm, DhGroup, HashAlgorithm, IntegrityAlgorithm};
use ike::esp::Transform;
use ike::ikev1::main_mode::Refusal;
use ike::ikev1::proposal::Phase1Suite;
use serde::{Deserialize, Serialize};

use crate::dns::FileChange;
use crate::engine::{ClientEvent, DownReason, Stage};

/// Where a connection stands, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// IKE Main Mode under way.
    #[default]
    Connecting,
    /// The ISAKMP SA is up; Quick Mode under way.
    IkeUp,
    /// ESP SAs are up; L2TP under way.
    IpsecUp,
    /// The L2TP call is up; PPP under way.
    L2tpUp,
    /// PPP authentication succeeded; IPCP under way.
    Authenticated,
    /// An address is assigned and traffic flows.
    Connected,
    /// The connection broke; waiting to try again.
    Reconnecting,
    /// Tearing down (PPP, L2TP, IKE) after Ctrl-C or `disconnect`.
    Disconnecting,
}

impl Phase {
    /// The word `status` prints.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Connecting => "connecting (IKE)",
            Self::IkeUp => "connecting (IPsec)",
            Self::IpsecUp => "connecting (L2TP)",
            Self::L2tpUp => "connecting (PPP)",
            Self::Authenticated => "connecting (address)",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Disconnecting => "disconnecting",
        }
    }
}

/// The state file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The client's process id.
    pub pid: u32,
    /// The profile's name, when one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The server's address.
    pub server: Option<IpAddr>,
    /// Where the connection stands.
    pub stage: Phase,
    /// The TUN interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Our tunnel address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// The server's end of the PPP link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Ipv4Addr>,
    /// DNS servers the server offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Ipv4Addr>,
    /// Where they were applied (`systemd-resolved on IF`, or the resolv.conf path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_applied: Option<String>,
    /// Networks routed into the tunnel (`0.0.0.0/0` for all traffic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// The phase-1 suite, e.g. `aes256-sha1-modp1024`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike: Option<String>,
    /// The ESP transform, e.g. `aes256-sha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esp: Option<String>,
    /// ESP runs in UDP 4500 (a NAT is in between).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<bool>,
    /// The PPP authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// IP bytes received through the tunnel (written to the TUN device) in this connection.
    pub bytes_in: u64,
    /// IP bytes sent through the tunnel (read from the TUN device) in this connection.
    pub bytes_out: u64,
    /// IP packets received through the tunnel.
    pub packets_in: u64,
    /// IP packets sent through the tunnel.
    pub packets_out: u64,
    /// When the client started (seconds since the Unix epoch).
    pub started_at: u64,
    /// When the current connection came up (seconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<u64>,
    /// When this file was written (seconds since the Unix epoch).
    pub updated_at: u64,
    /// Connection attempts so far (1 for the first).
    pub attempts: u32,
    /// Why the last attempt failed, while reconnecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// A replaced `resolv.conf` to put back (also after a crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_restore: Option<FileChange>,
    /// The host route to the server we added outside the tunnel (removed after a crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_route: Option<Ipv4Addr>,
}

/// Seconds since the Unix epoch.
#[must_use]
#[expect(
    clippy::disallowed_methods,
    reason = "driver side: the state file carries wall-clock times"
)]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The state file that goes with `pid_file` (`/run/l2sec-client.pid` → `/run/l2sec-client.json`).
#[must_use]
pub fn state_path(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("json")
}

/// Where the original `resolv.conf` is kept while ours is in place.
#[must_use]
pub fn resolv_backup_path(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("resolv.conf")
}

impl State {
    /// Reads a state file.
    ///
    /// # Errors
    /// When it is missing or not a state file.
    pub fn read(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes it atomically (a temporary file renamed over it), readable by everyone: it holds
    /// no secret, and `status` should work without root.
    ///
    /// # Errors
    /// When the directory is not writable.
    pub fn write(&mut self, path: &Path) -> io::Result<()> {
        self.updated_at = unix_now();
        let mut text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        text.push('\n');
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::rename(&tmp, path)
    }

    /// The human-readable form `l2sec-client status` prints.
    #[must_use]
    pub fn render(&self, now: u64) -> String {
        let mut rows: Vec<(&str, String)> = Vec::new();
        let server = self
            .server
            .map_or_else(|| "?".to_owned(), |s| s.to_string());
        rows.push((
            "server",
            match &self.profile {
                Some(p) => format!("{server} (profile {p})"),
                None => server,
            },
        ));
        let mut stage = self.stage.label().to_owned();
        if let Some(e) = &self.last_error {
            stage.push_str(&format!(" — last failure: {e}"));
        }
        rows.push(("state", stage));
        if let Some(address) = self.address {
            let mut text = address.to_string();
            if let Some(peer) = self.peer {
                text.push_str(&format!(" (peer {peer})"));
            }
            if let Some(interface) = &self.interface {
                text.push_str(&format!(" on {interface}"));
            }
            rows.push(("address", text));
        }
        if !self.routes.is_empty() {
            rows.push(("routes", self.routes.join(", ")));
        }
        if !self.dns.is_empty() {
            let servers: Vec<String> = self.dns.iter().map(ToString::to_string).collect();
            let mut text = servers.join(", ");
            match &self.dns_applied {
                Some(how) => text.push_str(&format!(" (applied: {how})")),
                None => text.push_str(" (offered, not applied)"),
            }
            rows.push(("DNS", text));
        }
        if let Some(ike) = &self.ike {
            rows.push(("IKE", ike.clone()));
        }
        if let Some(esp) = &self.esp {
            let how = match self.nat {
                Some(true) => ", in UDP 4500 (NAT)",
                Some(false) => ", plain ESP",
                None => "",
            };
            rows.push(("ESP", format!("{esp}{how}")));
        }
        if let Some(auth) = &self.auth {
            rows.push(("auth", auth.clone()));
        }
        if self.stage == Phase::Connected || self.bytes_in + self.bytes_out > 0 {
            rows.push((
                "traffic",
                format!(
                    "in {} ({}), out {} ({})",
                    bytes(self.bytes_in),
                    packets(self.packets_in),
                    bytes(self.bytes_out),
                    packets(self.packets_out)
                ),
            ));
        }
        if let Some(since) = self.connected_since {
            rows.push((
                "connected",
                format!(
                    "since {} (uptime {})",
                    rfc3339(since),
                    uptime(now.saturating_sub(since))
                ),
            ));
        }
        if self.attempts > 1 {
            rows.push(("attempts", self.attempts.to_string()));
        }
        rows.push(("pid", self.pid.to_string()));
        let mut out = String::new();
        for (key, value) in rows {
            out.push_str(&format!("{key:<10} {value}\n"));
        }
        out
    }
}

/// The driver's monotonic clock (tokio's, so paused-time tests see the same).
fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn rfc3339(unix: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix);
    humantime_serde::re::humantime::format_rfc3339_seconds(at).to_string()
}

fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn packets(n: u64) -> String {
    if n == 1 {
        "1 packet".to_owned()
    } else {
        format!("{n} packets")
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "a display rounded to one decimal"
)]
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Whether `pid` is a live (not zombie) process called `l2sec-client`.
#[must_use]
pub fn is_client_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map_or("", |(_, c)| c);
    let state = tail.split_whitespace().next().unwrap_or("X");
    comm == "l2sec-client" && !matches!(state, "Z" | "X" | "x")
}

/// `aes256-sha1-modp1024` (strongSwan's notation).
#[must_use]
pub fn suite_name(suite: &Phase1Suite) -> String {
    let hash = match suite.hash {
        HashAlgorithm::Md5 => "md5",
        HashAlgorithm::Sha1 => "sha1",
        HashAlgorithm::Sha256 => "sha256",
        HashAlgorithm::Sha384 => "sha384",
        HashAlgorithm::Sha512 => "sha512",
    };
    let group = match suite.group {
        DhGroup::Modp1024 => "modp1024",
        DhGroup::Modp1536 => "modp1536",
        DhGroup::Modp2048 => "modp2048",
        DhGroup::Modp3072 => "modp3072",
        DhGroup::Modp4096 => "modp4096",
        DhGroup::Ecp256 => "ecp256",
        DhGroup::Ecp384 => "ecp384",
        DhGroup::Curve25519 => "curve25519",
    };
    format!("{}-{hash}-{group}", cipher_name(suite.cipher))
}

const CIPHERS: [CipherAlgorithm; 6] = [
    CipherAlgorithm::AesCbc128,
    CipherAlgorithm::AesCbc192,
    CipherAlgorithm::AesCbc256,
    CipherAlgorithm::TripleDesCbc,
    CipherAlgorithm::AesGcm16_128,
    CipherAlgorithm::AesGcm16_256,
];
const HASHES: [HashAlgorithm; 5] = [
    HashAlgorithm::Md5,
    HashAlgorithm::Sha1,
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];
const GROUPS: [DhGroup; 8] = [
    DhGroup::Modp1024,
    DhGroup::Modp1536,
    DhGroup::Modp2048,
    DhGroup::Modp3072,
    DhGroup::Modp4096,
    DhGroup::Ecp256,
    DhGroup::Ecp384,
    DhGroup::Curve25519,
];
const INTEGRITIES: [IntegrityAlgorithm; 5] = [
    IntegrityAlgorithm::HmacSha1_96,
    IntegrityAlgorithm::HmacSha256_128,
    IntegrityAlgorithm::HmacSha256_96,
    IntegrityAlgorithm::HmacSha384_192,
    IntegrityAlgorithm::HmacSha512_256,
];

/// Parses a phase-1 suite written as [`suite_name`] prints it (`aes256-sha256-modp2048`).
///
/// # Errors
/// What is wrong with it, with the accepted names.
pub fn parse_suite(text: &str) -> Result<Phase1Suite, String> {
    let text = text.trim().to_ascii_lowercase();
    for cipher in CIPHERS.into_iter().filter(|c| !c.is_aead()) {
        for hash in HASHES {
            for group in GROUPS {
                let suite = Phase1Suite {
                    cipher,
                    hash,
                    group,
                };
                if suite_name(&suite) == text {
                    return Ok(suite);
                }
            }
        }
    }
    Err(format!(
        "unknown IKE suite {text:?}: CIPHER-HASH-GROUP with CIPHER aes128|aes192|aes256|3des, \
         HASH md5|sha1|sha256|sha384|sha512, GROUP modp1024|modp1536|modp2048|modp3072|\
         modp4096|ecp256|ecp384|curve25519 (e.g. aes256-sha256-modp2048)"
    ))
}

/// Parses an ESP transform written as [`transform_name`] prints it (`aes128gcm16`,
/// `aes256-sha256`).
///
/// # Errors
/// What is wrong with it, with the accepted names.
pub fn parse_transform(text: &str) -> Result<Transform, String> {
    let text = text.trim().to_ascii_lowercase();
    for cipher in CIPHERS {
        let integrities: Vec<Option<IntegrityAlgorithm>> = if cipher.is_aead() {
            vec![None]
        } else {
            INTEGRITIES.into_iter().map(Some).collect()
        };
        for integrity in integrities {
            if let Ok(t) = Transform::new(cipher, integrity)
                && transform_name(&t) == text
            {
                return Ok(t);
            }
        }
    }
    Err(format!(
        "unknown ESP transform {text:?}: aes128gcm16, aes256gcm16, or CIPHER-INTEGRITY with \
         CIPHER aes128|aes192|aes256|3des and INTEGRITY sha1|sha256|sha256_96|sha384|sha512"
    ))
}

/// `aes256-sha1`, `aes128gcm16`.
#[must_use]
pub fn transform_name(transform: &Transform) -> String {
    let cipher = cipher_name(transform.cipher());
    match transform.integrity() {
        None => cipher.to_owned(),
        Some(i) => {
            let integrity = match i {
                IntegrityAlgorithm::HmacSha1_96 => "sha1",
                IntegrityAlgorithm::HmacSha256_128 => "sha256",
                IntegrityAlgorithm::HmacSha256_96 => "sha256_96",
                IntegrityAlgorithm::HmacSha384_192 => "sha384",
                IntegrityAlgorithm::HmacSha512_256 => "sha512",
            };
            format!("{cipher}-{integrity}")
        }
    }
}

const fn cipher_name(cipher: CipherAlgorithm) -> &'static str {
    match cipher {
        CipherAlgorithm::AesCbc128 => "aes128",
        CipherAlgorithm::AesCbc192 => "aes192",
        CipherAlgorithm::AesCbc256 => "aes256",
        CipherAlgorithm::TripleDesCbc => "3des",
        CipherAlgorithm::AesGcm16_128 => "aes128gcm16",
        CipherAlgorithm::AesGcm16_256 => "aes256gcm16",
    }
}

/// The name of a PPP authentication method as users know it.
#[must_use]
pub const fn method_name(method: ppp::auth::Method) -> &'static str {
    match method {
        ppp::auth::Method::Pap => "PAP",
        ppp::auth::Method::ChapMd5 => "CHAP-MD5",
        ppp::auth::Method::MsChapV2 => "MS-CHAPv2",
    }
}

/// The layer, as users know it.
#[must_use]
pub const fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Ike => "IKE",
        Stage::Ipsec => "IPsec",
        Stage::L2tp => "L2TP",
        Stage::Ppp => "PPP",
        Stage::Disconnected => "disconnect",
    }
}

/// What went wrong, in words that point at the fix.
#[must_use]
pub fn explain(stage: Stage, reason: DownReason) -> String {
    match reason {
        DownReason::Timeout if stage == Stage::Ike => {
            "no IKE answer within the connect timeout (server unreachable, filtered, or not an \
             IPsec server?)"
                .into()
        }
        DownReason::ServerUnreachable => {
            "the server does not answer (unreachable, filtered, or no IPsec server there)".into()
        }
        DownReason::NoAuthenticationReply => {
            "the server did not answer our authentication: wrong pre-shared key?".into()
        }
        DownReason::Refused(Refusal::NoProposalChosen) => {
            "no common proposal: the server accepts none of our algorithms".into()
        }
        DownReason::Refused(Refusal::AuthenticationFailed) => {
            "authentication failed: wrong pre-shared key".into()
        }
        DownReason::Refused(r) => format!("refused by IKE: {r}"),
        DownReason::Timeout => "did not complete within the connect timeout".into(),
        DownReason::Ike(r) => format!("the IKE SA ended ({r:?})"),
        DownReason::EspDeleted => "the server deleted our IPsec SAs".into(),
        DownReason::Tunnel(r) => format!("the L2TP tunnel went down ({r:?})"),
        DownReason::Session(r) => format!("the L2TP call went down ({r:?})"),
        DownReason::Ppp(ppp::DownReason::AuthFailed) => {
            "the server rejected the user name or password".into()
        }
        DownReason::Ppp(ppp::DownReason::NoCommonAuth) => {
            "no PPP authentication method both sides accept (see `auth`)".into()
        }
        DownReason::Ppp(ppp::DownReason::ServerNotAuthenticated) => {
            "the server failed MS-CHAPv2 mutual authentication (it does not know our password)"
                .into()
        }
        DownReason::Ppp(ppp::DownReason::NoAddress) => {
            "the server has no address for us (pool exhausted?)".into()
        }
        DownReason::Ppp(ppp::DownReason::EchoTimeout) => {
            "the server stopped answering LCP echoes (server or path down)".into()
        }
        DownReason::Ppp(r) => format!("PPP went down ({r:?})"),
        DownReason::Internal => "a layer could not be started (internal limit)".into(),
        DownReason::Requested => "disconnected".into(),
    }
}

/// Follows one client process: prints progress lines and keeps the state file current.
#[derive(Debug)]
pub struct Tracker {
    state: State,
    path: Option<PathBuf>,
    attempt_started: Instant,
    progress: bool,
    dirty: bool,
}

impl Tracker {
    /// Starts following; `path` is the state file (none: keep no file), `progress` prints
    /// stage lines on stdout.
    #[must_use]
    pub fn new(path: Option<PathBuf>, profile: Option<String>, progress: bool) -> Self {
        let now = unix_now();
        Self {
            state: State {
                pid: std::process::id(),
                profile,
                started_at: now,
                ..State::default()
            },
            path,
            attempt_started: clock(),
            progress,
            dirty: true,
        }
    }

    /// The state as it stands.
    #[must_use]
    pub const fn state(&self) -> &State {
        &self.state
    }

    /// A connection attempt to `server` starts.
    pub fn attempt(&mut self, server: IpAddr, local: IpAddr) {
        self.attempt_started = clock();
        let attempts = self.state.attempts + 1;
        let keep = std::mem::take(&mut self.state);
        self.state = State {
            pid: keep.pid,
            profile: keep.profile,
            server: Some(server),
            started_at: keep.started_at,
            attempts,
            last_error: keep.last_error,
            dns_restore: keep.dns_restore,
            host_route: keep.host_route,
            ..State::default()
        };
        let via = match &self.state.profile {
            Some(p) => format!(" (profile {p})"),
            None => String::new(),
        };
        self.say(&format!("connecting to {server} from {local}{via}"));
        self.write();
    }

    /// Records an engine event and prints its progress line.
    pub fn event(&mut self, event: &ClientEvent, user: &str) {
        match event {
            ClientEvent::IkeUp { suite, nat } => {
                self.state.stage = Phase::IkeUp;
                self.state.ike = suite.as_ref().map(suite_name);
                let suite = self
                    .state
                    .ike
                    .clone()
                    .unwrap_or_else(|| "suite unknown".into());
                let nat = if nat.encapsulate() {
                    ", NAT detected: UDP 4500"
                } else {
                    ""
                };
                self.say(&format!("IKE SA established ({suite}{nat})"));
            }
            ClientEvent::IpsecUp {
                encapsulated,
                transform,
            } => {
                self.state.stage = Phase::IpsecUp;
                self.state.esp = Some(transform_name(transform));
                self.state.nat = Some(*encapsulated);
                let how = if *encapsulated {
                    "ESP in UDP 4500"
                } else {
                    "plain ESP"
                };
                self.say(&format!(
                    "IPsec SA established ({}, {how})",
                    transform_name(transform)
                ));
            }
            ClientEvent::L2tpUp => {
                self.state.stage = Phase::L2tpUp;
                self.say("L2TP tunnel and session up");
            }
            ClientEvent::Authenticated { method } => {
                self.state.stage = Phase::Authenticated;
                self.state.auth = Some(method_name(*method).to_owned());
                self.say(&format!(
                    "PPP authenticated as {user} ({})",
                    method_name(*method)
                ));
            }
            ClientEvent::AddressAssigned { local, peer, dns } => {
                self.state.address = Some(*local);
                self.state.peer = Some(*peer);
                self.state.dns = dns.iter().flatten().copied().collect();
                let mut line = format!("address {local} assigned (peer {peer})");
                if !self.state.dns.is_empty() {
                    let servers: Vec<String> =
                        self.state.dns.iter().map(ToString::to_string).collect();
                    line.push_str(&format!(", DNS offered: {}", servers.join(", ")));
                }
                self.say(&line);
            }
            ClientEvent::Down { stage, reason } => {
                if *reason == DownReason::Requested {
                    self.say("disconnected");
                } else {
                    let text = format!(
                        "{} failed: {}",
                        stage_name(*stage),
                        explain(*stage, *reason)
                    );
                    self.say(&text);
                    self.state.last_error = Some(text);
                }
                self.state.connected_since = None;
            }
        }
        self.write();
    }

    /// Routes and DNS are in place: the connection is usable.
    pub fn connected(&mut self, interface: &str, routes: Vec<String>, dns: Option<String>) {
        self.state.stage = Phase::Connected;
        self.state.interface = Some(interface.to_owned());
        self.state.routes = routes;
        self.state.dns_applied = dns;
        self.state.connected_since = Some(unix_now());
        self.state.last_error = None;
        let mut line = format!("connected on {interface}");
        if !self.state.routes.is_empty() {
            line.push_str(&format!(", routes: {}", self.state.routes.join(", ")));
        }
        if let Some(how) = &self.state.dns_applied {
            line.push_str(&format!(", DNS via {how}"));
        }
        self.say(&line);
        self.write();
    }

    /// Records the replaced `resolv.conf` (or its restoration) right away.
    pub fn set_dns_restore(&mut self, change: Option<&FileChange>) {
        self.state.dns_restore = change.cloned();
        if change.is_none() {
            self.state.dns_applied = None;
        }
        self.write();
    }

    /// Records the pinned host route (or its removal) right away.
    pub fn set_host_route(&mut self, server: Option<Ipv4Addr>) {
        self.state.host_route = server;
        self.write();
    }

    /// The teardown started.
    pub fn disconnecting(&mut self) {
        self.state.stage = Phase::Disconnecting;
        self.say("disconnecting");
        self.write();
    }

    /// Waiting `delay` before the next attempt.
    pub fn reconnecting(&mut self, delay: Duration) {
        self.state.stage = Phase::Reconnecting;
        self.say(&format!("reconnecting in {} s", delay.as_secs()));
        self.write();
    }

    /// Counts a packet that came through the tunnel.
    pub const fn count_in(&mut self, len: usize) {
        self.state.bytes_in = self.state.bytes_in.saturating_add(len as u64);
        self.state.packets_in = self.state.packets_in.saturating_add(1);
        self.dirty = true;
    }

    /// Counts a packet sent into the tunnel.
    pub const fn count_out(&mut self, len: usize) {
        self.state.bytes_out = self.state.bytes_out.saturating_add(len as u64);
        self.state.packets_out = self.state.packets_out.saturating_add(1);
        self.dirty = true;
    }

    /// Writes the state file if counters changed since the last write.
    pub fn flush(&mut self) {
        if self.dirty {
            self.write();
        }
    }

    /// Removes the state file (the client exits with nothing left to undo).
    pub fn remove(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }

    fn write(&mut self) {
        self.dirty = false;
        if let Some(path) = &self.path
            && let Err(e) = self.state.write(path)
        {
            tracing::debug!(%e, path = %path.display(), "cannot write the state file");
        }
    }

    fn say(&self, line: &str) {
        if self.progress {
            let elapsed = self.attempt_started.elapsed().as_secs_f64();
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "[{elapsed:.2} s] {line}");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_are_named_like_strongswan() {
        let suite = Phase1Suite {
            cipher: CipherAlgorithm::AesCbc256,
            hash: HashAlgorithm::Sha1,
            group: DhGroup::Modp1024,
        };
        assert_eq!(suite_name(&suite), "aes256-sha1-modp1024");
        let cbc = Transform::new(
            CipherAlgorithm::AesCbc128,
            Some(IntegrityAlgorithm::HmacSha256_128),
        )
        .unwrap();
        assert_eq!(transform_name(&cbc), "aes128-sha256");
        let gcm = Transform::new(CipherAlgorithm::AesGcm16_256, None).unwrap();
        assert_eq!(transform_name(&gcm), "aes256gcm16");
    }

    #[test]
    fn every_name_parses_back_and_nothing_else_does() {
        let mut suites = 0;
        for cipher in CIPHERS.into_iter().filter(|c| !c.is_aead()) {
            for hash in HASHES {
                for group in GROUPS {
                    let suite = Phase1Suite {
                        cipher,
                        hash,
                        group,
                    };
                    assert_eq!(parse_suite(&suite_name(&suite)), Ok(suite));
                    suites += 1;
                }
            }
        }
        assert_eq!(suites, 4 * 5 * 8);
        assert_eq!(
            parse_suite(" AES256-SHA256-MODP2048 ").map(|s| s.group),
            Ok(DhGroup::Modp2048)
        );
        for bad in [
            "aes128gcm16-sha256-modp2048",
            "aes256-sha256",
            "des-sha1-modp1024",
            "",
        ] {
            assert!(parse_suite(bad).is_err(), "{bad}");
        }
        let mut transforms = 0;
        for cipher in CIPHERS {
            for integrity in std::iter::once(None).chain(INTEGRITIES.into_iter().map(Some)) {
                if let Ok(t) = Transform::new(cipher, integrity) {
                    assert_eq!(parse_transform(&transform_name(&t)), Ok(t));
                    transforms += 1;
                }
            }
        }
        assert_eq!(transforms, 2 + 4 * 5);
        for bad in ["aes128gcm16-sha1", "aes128", "aes128-md5", "null-sha1"] {
            assert!(parse_transform(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_state_file_round_trips_and_renders() {
        let dir = std::env::temp_dir().join(format!("l2sec-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("client.json");
        let mut state = State {
            pid: 42,
            profile: Some("work".into()),
            server: Some("2.2.2.2".parse().unwrap()),
            stage: Phase::Connected,
            interface: Some("l2c0".into()),
            address: Some(Ipv4Addr::new(172, 16, 1, 2)),
            peer: Some(Ipv4Addr::new(172, 16, 1, 1)),
            dns: vec![Ipv4Addr::new(192, 168, 1, 1)],
            dns_applied: Some("/etc/resolv.conf".into()),
            routes: vec!["192.168.1.0/24".into()],
            ike: Some("aes256-sha1-modp1024".into()),
            esp: Some("aes256-sha1".into()),
            nat: Some(false),
            auth: Some("PAP".into()),
            bytes_in: 1_572_864,
            bytes_out: 100,
            packets_in: 1100,
            packets_out: 1,
            started_at: 1_700_000_000,
            connected_since: Some(1_700_000_000),
            attempts: 1,
            ..State::default()
        };
        state.write(&path).unwrap();
        let back = State::read(&path).unwrap();
        assert_eq!(back, state);
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(raw.contains("\"address\": \"172.16.1.2\""), "{raw}");
        assert!(raw.contains("\"stage\": \"connected\""), "{raw}");
        assert!(
            !raw.contains("dns_restore"),
            "absent fields are left out: {raw}"
        );
        let shown = back.render(1_700_003_723);
        assert!(
            shown.contains("server     2.2.2.2 (profile work)"),
            "{shown}"
        );
        assert!(
            shown.contains("address    172.16.1.2 (peer 172.16.1.1) on l2c0"),
            "{shown}"
        );
        assert!(
            shown.contains("ESP        aes256-sha1, plain ESP"),
            "{shown}"
        );
        assert!(
            shown.contains("in 1.5 MiB (1100 packets), out 100 B (1 packet)"),
            "{shown}"
        );
        assert!(
            shown.contains("since 2023-11-14T22:13:20Z (uptime 01:02:03)"),
            "{shown}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn paths_sit_next_to_the_pid_file() {
        let pid = Path::new("/run/l2sec-client.pid");
        assert_eq!(state_path(pid), Path::new("/run/l2sec-client.json"));
        assert_eq!(
            resolv_backup_path(pid),
            Path::new("/run/l2sec-client.resolv.conf")
        );
    }

    #[test]
    fn only_a_live_client_process_counts_as_running() {
        // This test binary is alive but is not called l2sec-client.
        assert!(!is_client_running(std::process::id()));
        assert!(!is_client_running(u32::MAX));
    }

    #[test]
    fn failures_are_explained_by_stage() {
        assert!(explain(Stage::Ike, DownReason::NoAuthenticationReply).contains("pre-shared key"));
        assert!(explain(Stage::Ike, DownReason::Timeout).contains("unreachable"));
        assert!(explain(Stage::Ppp, DownReason::Timeout).contains("connect timeout"));
        let ppp = |r| explain(Stage::Ppp, DownReason::Ppp(r));
        assert!(ppp(ppp::DownReason::AuthFailed).contains("password"));
        assert!(ppp(ppp::DownReason::NoAddress).contains("no address"));
        assert!(
            explain(Stage::Ike, DownReason::Refused(Refusal::NoProposalChosen))
                .contains("proposal")
        );
    }
}
