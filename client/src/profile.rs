//! Connection profiles: one TOML file per VPN in a config directory, or the same fields from the
//! command line (which override the file, field by field).
//!
//! ```toml
//! # /etc/l2sec/client/work.toml   (chmod 600: it holds secrets)
//! server = "2.2.2.2"              # address or host name
//! psk = "the IPsec pre-shared key"
//! user = "hb@hb"
//! password = "admin@123"
//! routes = ["192.168.1.0/24"]     # or: route_all = true
//! dns = true                      # use the server's DNS servers (default: route_all)
//! ike = ["aes256-sha256-modp2048"] # optional: the IKE suites to offer, in order
//! esp = ["aes128gcm16"]           # optional: the ESP transforms to offer, in order
//! ```
//!
//! A file that holds a `psk` or `password` must not be readable by group or others, and no
//! profile may be writable by them (it decides routes and DNS, applied as root): such files are
//! refused with the `chmod` that fixes them. Unknown keys are refused with the file and line.

use ike::esp::Transform;
use ike::ikev1::proposal::Phase1Suite;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Deserialize;
use zeroize::Zeroizing;

/// A PPP authentication method the client accepts when the server asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// MS-CHAPv2 (RFC 2759), mutual authentication.
    #[serde(rename = "mschapv2")]
    #[value(name = "mschapv2")]
    MsChapV2,
    /// CHAP with MD5 (RFC 1994).
    ChapMd5,
    /// PAP (RFC 1334): the password crosses the tunnel in clear (inside ESP).
    Pap,
}

/// Default TUN device name.
pub const DEFAULT_TUN: &str = "l2sec-c0";
/// Default connect timeout: the connection must be up (address assigned) within it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default LCP echo interval (4 misses declare the server or path dead).
pub const DEFAULT_ECHO_INTERVAL: Duration = Duration::from_secs(30);

/// A profile as written in its file; every field may also come from the command line.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Server address or host name.
    pub server: Option<String>,
    /// IPsec pre-shared key.
    pub psk: Option<Zeroizing<String>>,
    /// PPP user name.
    pub user: Option<String>,
    /// PPP password.
    pub password: Option<Zeroizing<String>>,
    /// Accepted PPP authentication methods (default: all three).
    pub auth: Option<Vec<AuthMethod>>,
    /// Networks to route through the tunnel.
    pub routes: Option<Vec<Ipv4Net>>,
    /// Send all traffic through the tunnel (the server's own address stays outside).
    pub route_all: Option<bool>,
    /// Use the DNS servers the server offers (key `dns`).
    #[serde(rename = "dns")]
    pub use_dns: Option<bool>,
    /// Reconnect with backoff when the path breaks.
    pub reconnect: Option<bool>,
    /// Give up connecting after this long.
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// LCP echo interval.
    #[serde(default, with = "humantime_serde")]
    pub echo_interval: Option<Duration>,
    /// Name of the TUN device (key `tun`).
    #[serde(rename = "tun")]
    pub tun_name: Option<String>,
    /// Our own address towards the server.
    pub local: Option<IpAddr>,
    /// IKE (phase-1) suites to offer, in order (default: the built-in list).
    pub ike: Option<Vec<String>>,
    /// ESP transforms to offer, in order (default: the built-in list).
    pub esp: Option<Vec<String>>,
}

impl fmt::Debug for ProfileFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileFile")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("routes", &self.routes)
            .field("route_all", &self.route_all)
            .finish_non_exhaustive()
    }
}

/// A complete, validated profile.
#[derive(Clone)]
pub struct Profile {
    /// Server address or host name (resolved by the driver).
    pub server: String,
    /// IPsec pre-shared key.
    pub psk: Zeroizing<String>,
    /// PPP user name.
    pub user: String,
    /// PPP password.
    pub password: Zeroizing<String>,
    /// Accepted PPP authentication methods.
    pub auth: Vec<AuthMethod>,
    /// Networks routed into the tunnel (besides the PPP peer).
    pub routes: Vec<Ipv4Net>,
    /// Everything routed into the tunnel: true when asked for, or when no route is listed and
    /// `route_all` is not set to false.
    pub route_all: bool,
    /// Ask for and apply the offered DNS servers (default: `route_all`).
    pub use_dns: bool,
    /// Reconnect with backoff.
    pub reconnect: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// LCP echo interval.
    pub echo_interval: Duration,
    /// TUN device name.
    pub tun_name: String,
    /// Our own address towards the server (default: the one the kernel picks).
    pub local: Option<IpAddr>,
    /// IKE suites to offer (empty: the built-in list).
    pub ike: Vec<Phase1Suite>,
    /// ESP transforms to offer (empty: the built-in list).
    pub esp: Vec<Transform>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("routes", &self.routes)
            .field("route_all", &self.route_all)
            .field("use_dns", &self.use_dns)
            .finish_non_exhaustive()
    }
}

/// A profile that could not be found, read or is incomplete. Never quotes the file's text.
#[derive(Debug, thiserror::Error)]
pub struct ProfileError {
    /// The file, or `command line`.
    pub source_name: String,
    /// The line the problem is on, when it is about one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.source_name, self.message),
            None => write!(f, "{}: {}", self.source_name, self.message),
        }
    }
}

impl ProfileError {
    fn new(source_name: &str, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.to_owned(),
            line: None,
            message: message.into(),
        }
    }
}

impl ProfileFile {
    /// Parses a profile file's text.
    ///
    /// # Errors
    /// Syntax errors, unknown keys and bad values, with the line.
    pub fn parse(name: &str, text: &str) -> Result<Self, ProfileError> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            // toml's Display quotes the line, which may hold the PSK or password: position only.
            let message = e.message().trim_end().to_owned();
            let message = if message.starts_with("unknown field") {
                format!("{message} (unknown key: check its spelling)")
            } else {
                message
            };
            ProfileError {
                source_name: name.to_owned(),
                line,
                message,
            }
        })
    }

    /// Reads and parses a profile file, refusing one whose permissions expose it.
    ///
    /// # Errors
    /// When it cannot be read, does not parse, or is readable by others while holding a secret
    /// (or writable by others at all).
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ProfileError::new(&name, e.to_string()))?;
        let file = Self::parse(&name, &text)?;
        let mode = file_mode(path).map_err(|e| ProfileError::new(&name, e.to_string()))?;
        file.check_mode(&name, mode)?;
        Ok(file)
    }

    /// Whether the file holds a secret (pre-shared key or password).
    #[must_use]
    pub const fn has_secrets(&self) -> bool {
        self.psk.is_some() || self.password.is_some()
    }

    /// Refuses permission bits that expose the profile: group/other write always (it decides
    /// routes and DNS), group/other read when it holds a secret.
    ///
    /// # Errors
    /// With the `chmod` to run.
    pub fn check_mode(&self, name: &str, mode: u32) -> Result<(), ProfileError> {
        if mode & 0o022 != 0 {
            return Err(ProfileError::new(
                name,
                format!(
                    "is writable by group or others (mode {:03o}); refusing it. Run: chmod go-w {name}",
                    mode & 0o777
                ),
            ));
        }
        if self.has_secrets() && mode & 0o044 != 0 {
            return Err(ProfileError::new(
                name,
                format!(
                    "holds a psk or password but is readable by group or others (mode {:03o}); \
                     refusing it. Run: chmod 600 {name}",
                    mode & 0o777
                ),
            ));
        }
        Ok(())
    }

    /// Fills every field `self` lacks from `other` (command-line values override file values by
    /// being `self`).
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self {
            server: self.server.or(other.server),
            psk: self.psk.or(other.psk),
            user: self.user.or(other.user),
            password: self.password.or(other.password),
            auth: self.auth.or(other.auth),
            routes: self.routes.or(other.routes),
            route_all: self.route_all.or(other.route_all),
            use_dns: self.use_dns.or(other.use_dns),
            reconnect: self.reconnect.or(other.reconnect),
            connect_timeout: self.connect_timeout.or(other.connect_timeout),
            echo_interval: self.echo_interval.or(other.echo_interval),
            tun_name: self.tun_name.or(other.tun_name),
            local: self.local.or(other.local),
            ike: self.ike.or(other.ike),
            esp: self.esp.or(other.esp),
        }
    }

    /// Checks that everything needed to connect is there and applies the defaults.
    ///
    /// # Errors
    /// Names the first missing or invalid field.
    pub fn finish(self, name: &str) -> Result<Profile, ProfileError> {
        let missing = |what: &str, hint: &str| {
            ProfileError::new(
                name,
                format!("no {what} given (set `{what}` in the profile or {hint})"),
            )
        };
        let auth = self
            .auth
            .unwrap_or_else(|| vec![AuthMethod::MsChapV2, AuthMethod::ChapMd5, AuthMethod::Pap]);
        if auth.is_empty() {
            return Err(ProfileError::new(name, "auth is empty"));
        }
        let routes = self.routes.unwrap_or_default();
        let route_all = self.route_all.unwrap_or(routes.is_empty());
        let tun_name = self.tun_name.unwrap_or_else(|| DEFAULT_TUN.to_owned());
        if tun_name.is_empty() || tun_name.len() > 15 || tun_name.contains(['/', ' ']) {
            return Err(ProfileError::new(
                name,
                format!("tun: {tun_name:?} is not a valid interface name (1-15 characters)"),
            ));
        }
        let echo_interval = self.echo_interval.unwrap_or(DEFAULT_ECHO_INTERVAL);
        let ike = self
            .ike
            .unwrap_or_default()
            .iter()
            .map(|s| crate::status::parse_suite(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProfileError::new(name, format!("ike: {e}")))?;
        let esp = self
            .esp
            .unwrap_or_default()
            .iter()
            .map(|s| crate::status::parse_transform(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProfileError::new(name, format!("esp: {e}")))?;
        Ok(Profile {
            server: self
                .server
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("server", "pass --server"))?,
            psk: self
                .psk
                .filter(|p| !p.is_empty())
                .ok_or_else(|| missing("psk", "the L2SEC_PSK environment variable"))?,
            user: self
                .user
                .filter(|u| !u.is_empty())
                .ok_or_else(|| missing("user", "pass --user"))?,
            password: self
                .password
                .ok_or_else(|| missing("password", "the L2SEC_PASSWORD environment variable"))?,
            auth,
            routes,
            route_all,
            use_dns: self.use_dns.unwrap_or(route_all),
            reconnect: self.reconnect.unwrap_or(true),
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            echo_interval: echo_interval.max(Duration::from_secs(1)),
            tun_name,
            local: self.local,
            ike,
            esp,
        })
    }
}

#[cfg(unix)]
fn file_mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    Ok(std::fs::metadata(path)?.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> std::io::Result<u32> {
    // Windows: ACLs, not mode bits; the profile directory's ACL is the user's to set.
    Ok(0o600)
}

/// Where `l2sec-client connect NAME` looks for `NAME.toml` unless `--config-dir` says otherwise:
/// `/etc/l2sec/client` for root, else `$XDG_CONFIG_HOME/l2sec` or `~/.config/l2sec`.
#[must_use]
pub fn default_config_dir(is_root: bool, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    if is_root {
        return PathBuf::from("/etc/l2sec/client");
    }
    if let Some(d) = env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("l2sec");
    }
    match env("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".config/l2sec"),
        None => PathBuf::from("/etc/l2sec/client"),
    }
}

/// The file of profile `name` in `dir`.
///
/// # Errors
/// When `name` is a path rather than a name (use `--profile FILE` for those).
pub fn profile_path(dir: &Path, name: &str) -> Result<PathBuf, ProfileError> {
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    if stem.is_empty() || stem.starts_with('.') || stem.contains('/') {
        return Err(ProfileError::new(
            name,
            "is not a profile name (for a file, use --profile FILE)",
        ));
    }
    Ok(dir.join(format!("{stem}.toml")))
}

/// The profiles in `dir`: each `*.toml` file's name (without `.toml`) and path, sorted.
///
/// # Errors
/// When the directory cannot be read (a missing directory is an empty list).
pub fn list(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(stem) = name.strip_suffix(".toml")
            && !stem.is_empty()
            && !stem.starts_with('.')
        {
            found.push((stem.to_owned(), path.clone()));
        }
    }
    found.sort();
    Ok(found)
}

/// The server address, if the profile names one literally (host names are resolved by the driver).
#[must_use]
pub fn literal_address(server: &str) -> Option<IpAddr> {
    server.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "server = \"2.2.2.2\"\npsk = \"s3cret-psk\"\nuser = \"hb@hb\"\npassword = \"admin@123\"\nroutes = [\"192.168.1.0/24\"]\nauth = [\"pap\"]\nconnect_timeout = \"10s\"\n";

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("l2sec-profile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[cfg(unix)]
    fn write_mode(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_full_profile_loads_and_hides_its_secrets() {
        let p = ProfileFile::parse("work.toml", FULL)
            .unwrap()
            .finish("work.toml")
            .unwrap();
        assert_eq!(p.server, "2.2.2.2");
        assert_eq!(p.routes, vec!["192.168.1.0/24".parse::<Ipv4Net>().unwrap()]);
        assert_eq!(p.auth, vec![AuthMethod::Pap]);
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
        assert_eq!(p.tun_name, DEFAULT_TUN);
        assert!(p.reconnect && !p.route_all);
        assert!(!p.use_dns, "DNS defaults to off for a route list");
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("admin@123"),
            "{shown}"
        );
    }

    #[test]
    fn proposals_can_be_pinned_and_a_bad_name_is_refused_by_key() {
        let text = format!(
            "{FULL}ike = [\"aes128-sha1-modp2048\", \"aes256-sha256-ecp256\"]\nesp = [\"aes128gcm16\"]\n"
        );
        let p = ProfileFile::parse("work.toml", &text)
            .unwrap()
            .finish("work.toml")
            .unwrap();
        assert_eq!(p.ike.len(), 2);
        assert_eq!(
            p.esp,
            vec![Transform::new(ike::crypto::CipherAlgorithm::AesGcm16_128, None).unwrap()]
        );
        let none = ProfileFile::parse("work.toml", FULL)
            .unwrap()
            .finish("work.toml")
            .unwrap();
        assert!(none.ike.is_empty() && none.esp.is_empty(), "default lists");
        let bad = format!("{FULL}esp = [\"aes128-md5\"]\n");
        let e = ProfileFile::parse("work.toml", &bad)
            .unwrap()
            .finish("work.toml")
            .unwrap_err();
        assert!(e.to_string().contains("esp: unknown ESP transform"), "{e}");
    }

    #[test]
    fn route_all_is_the_default_without_routes_and_turns_dns_on() {
        let base = "server = \"vpn.example\"\npsk = \"k\"\nuser = \"u\"\npassword = \"p\"\n";
        let p = ProfileFile::parse("a", base).unwrap().finish("a").unwrap();
        assert!(p.route_all && p.use_dns && p.routes.is_empty());
        let p = ProfileFile::parse("b", &format!("{base}route_all = true\ndns = false\n"))
            .unwrap()
            .finish("b")
            .unwrap();
        assert!(p.route_all && !p.use_dns);
        let p = ProfileFile::parse("c", &format!("{base}route_all = false\n"))
            .unwrap()
            .finish("c")
            .unwrap();
        assert!(!p.route_all && !p.use_dns && p.routes.is_empty());
        let p = ProfileFile::parse(
            "d",
            &format!("{base}routes = [\"10.0.0.0/8\"]\ndns = true\n"),
        )
        .unwrap()
        .finish("d")
        .unwrap();
        assert!(!p.route_all && p.use_dns);
    }

    #[test]
    fn command_line_values_override_the_file_and_gaps_are_named() {
        let file = ProfileFile::parse(
            "f",
            "server = \"2.2.2.2\"\npsk = \"a\"\nuser = \"u\"\nroutes = [\"10.0.0.0/8\"]\ndns = true\ntun = \"vpn0\"\n",
        )
        .unwrap();
        let cli = ProfileFile {
            user: Some("other".to_owned()),
            routes: Some(vec!["192.168.1.0/24".parse().unwrap()]),
            use_dns: Some(false),
            ..ProfileFile::default()
        };
        let merged = cli.or(file);
        assert_eq!(merged.user.as_deref(), Some("other"));
        assert_eq!(merged.tun_name.as_deref(), Some("vpn0"));
        assert_eq!(
            merged.routes,
            Some(vec!["192.168.1.0/24".parse::<Ipv4Net>().unwrap()]),
            "command-line routes replace the profile's"
        );
        assert_eq!(merged.use_dns, Some(false));
        let e = merged.finish("work").unwrap_err().to_string();
        assert_eq!(
            e,
            "work: no password given (set `password` in the profile or the L2SEC_PASSWORD environment variable)"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_file_and_line_without_quoting_secrets() {
        let e = ProfileFile::parse("f.toml", "server = \"x\"\npasword = \"hunter2\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:2: unknown field `pasword`"), "{e}");
        assert!(e.contains("expected one of"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = ProfileFile::parse("f.toml", "server = \"x\"\n\nroutes = [\"10.0.0.300/8\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:3: "), "{e}");
        let e = ProfileFile::parse("f.toml", "psk = \"s3cret\" junk\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.toml:1: ") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn permissions_that_expose_secrets_are_refused_with_the_chmod_to_run() {
        let file = ProfileFile::parse("w.toml", FULL).unwrap();
        assert!(file.check_mode("w.toml", 0o100_600).is_ok());
        assert!(file.check_mode("w.toml", 0o100_400).is_ok());
        let e = file
            .check_mode("w.toml", 0o100_644)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("readable by group or others") && e.contains("chmod 600 w.toml"),
            "{e}"
        );
        assert!(file.check_mode("w.toml", 0o100_640).is_err());
        // Without secrets it may be world-readable, but never writable by others.
        let open = ProfileFile::parse("o.toml", "server = \"2.2.2.2\"\n").unwrap();
        assert!(open.check_mode("o.toml", 0o100_644).is_ok());
        let e = open
            .check_mode("o.toml", 0o100_666)
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod go-w o.toml"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn load_checks_the_real_file_mode() {
        let dir = temp_dir("mode");
        let path = dir.join("work.toml");
        write_mode(&path, FULL, 0o644);
        let e = ProfileFile::load(&path).unwrap_err().to_string();
        assert!(e.contains(&format!("chmod 600 {}", path.display())), "{e}");
        write_mode(&path, FULL, 0o600);
        assert!(ProfileFile::load(&path).is_ok());
        let e = ProfileFile::load(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn profiles_are_found_by_name_and_listed() {
        let dir = temp_dir("list");
        write_mode(&dir.join("work.toml"), FULL, 0o600);
        write_mode(&dir.join("home.toml"), "server = \"h\"\n", 0o644);
        write_mode(&dir.join(".hidden.toml"), "", 0o600);
        write_mode(&dir.join("notes.txt"), "", 0o600);
        let names: Vec<String> = list(&dir).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["home", "work"]);
        assert_eq!(profile_path(&dir, "work").unwrap(), dir.join("work.toml"));
        assert_eq!(
            profile_path(&dir, "work.toml").unwrap(),
            dir.join("work.toml")
        );
        assert!(profile_path(&dir, "../etc/passwd").is_err());
        assert!(list(&dir.join("absent")).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_config_directory_depends_on_who_runs_it() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(
            default_config_dir(true, env),
            PathBuf::from("/etc/l2sec/client")
        );
        assert_eq!(
            default_config_dir(false, env),
            PathBuf::from("/home/u/.config/l2sec")
        );
        let xdg = |k: &str| (k == "XDG_CONFIG_HOME").then(|| "/x".to_owned());
        assert_eq!(default_config_dir(false, xdg), PathBuf::from("/x/l2sec"));
    }

    #[test]
    fn a_bad_tun_name_is_refused() {
        let text = format!("{FULL}tun = \"a-very-long-interface-name\"\n");
        let e = ProfileFile::parse("t", &text)
            .unwrap()
            .finish("t")
            .unwrap_err();
        assert!(e.to_string().contains("not a valid interface name"), "{e}");
    }
}
