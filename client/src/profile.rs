//! Connection profiles: one TOML file per VPN, or the same fields from the command line.
//!
//! ```toml
//! server = "2.2.2.2"
//! psk = "the IPsec pre-shared key"
//! user = "hb@hb"
//! password = "admin@123"
//! routes = ["192.168.1.0/24"]     # or: route_all = true
//! ```

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Deserialize;
use zeroize::Zeroizing;

/// A PPP authentication method the client accepts when the server asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// MS-CHAPv2 (RFC 2759), mutual authentication.
    #[serde(rename = "mschapv2")]
    MsChapV2,
    /// CHAP with MD5 (RFC 1994).
    ChapMd5,
    /// PAP (RFC 1334): the password crosses the tunnel in clear (inside ESP).
    Pap,
}

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
    /// Use the DNS servers the server offers.
    pub use_dns: Option<bool>,
    /// Reconnect with backoff when the path breaks.
    pub reconnect: Option<bool>,
    /// Give up connecting after this long.
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// Name of the TUN device.
    pub tun_name: Option<String>,
}

impl fmt::Debug for ProfileFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileFile")
            .field("server", &self.server)
            .field("user", &self.user)
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
    /// Networks routed into the tunnel.
    pub routes: Vec<Ipv4Net>,
    /// Everything routed into the tunnel.
    pub route_all: bool,
    /// Apply the offered DNS servers.
    pub use_dns: bool,
    /// Reconnect with backoff.
    pub reconnect: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// TUN device name.
    pub tun_name: String,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("routes", &self.routes)
            .field("route_all", &self.route_all)
            .finish_non_exhaustive()
    }
}

/// A profile that could not be loaded or is incomplete.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ProfileError {
    /// The file, or `command line`.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

impl ProfileFile {
    /// Parses a profile file's text.
    pub fn parse(name: &str, text: &str) -> Result<Self, ProfileError> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            // toml's Display quotes the line, which may hold the PSK or password: position only.
            ProfileError {
                source_name: name.to_owned(),
                message: format!("line {line}: {}", e.message()),
            }
        })
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            source_name: name.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&name, &text)
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
            tun_name: self.tun_name.or(other.tun_name),
        }
    }

    /// Checks that everything needed to connect is there.
    pub fn finish(self, name: &str) -> Result<Profile, ProfileError> {
        let missing = |what: &str| ProfileError {
            source_name: name.to_owned(),
            message: format!("no {what} given"),
        };
        let auth = self
            .auth
            .unwrap_or_else(|| vec![AuthMethod::MsChapV2, AuthMethod::ChapMd5, AuthMethod::Pap]);
        if auth.is_empty() {
            return Err(ProfileError {
                source_name: name.to_owned(),
                message: "auth is empty".to_owned(),
            });
        }
        Ok(Profile {
            server: self.server.ok_or_else(|| missing("server"))?,
            psk: self
                .psk
                .filter(|p| !p.is_empty())
                .ok_or_else(|| missing("psk"))?,
            user: self.user.ok_or_else(|| missing("user"))?,
            password: self.password.ok_or_else(|| missing("password"))?,
            auth,
            routes: self.routes.unwrap_or_default(),
            route_all: self.route_all.unwrap_or(false),
            use_dns: self.use_dns.unwrap_or(true),
            reconnect: self.reconnect.unwrap_or(true),
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(30)),
            tun_name: self.tun_name.unwrap_or_else(|| "l2sec-c0".to_owned()),
        })
    }
}

/// Where `l2sec-client connect NAME` looks for `NAME.toml`: `$L2SEC_CLIENT_DIR`, then
/// `$XDG_CONFIG_HOME/l2sec` (or `~/.config/l2sec`), then `/etc/l2sec/client`.
#[must_use]
pub fn profile_dirs(env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = env("L2SEC_CLIENT_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(d) = env("XDG_CONFIG_HOME") {
        dirs.push(PathBuf::from(d).join("l2sec"));
    } else if let Some(h) = env("HOME") {
        dirs.push(PathBuf::from(h).join(".config/l2sec"));
    }
    dirs.push(PathBuf::from("/etc/l2sec/client"));
    dirs
}

/// The server address, if the profile names one literally (host names are resolved by the driver).
#[must_use]
pub fn literal_address(server: &str) -> Option<IpAddr> {
    server.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_profile_loads_and_hides_its_secrets() {
        let text = "server = \"2.2.2.2\"\npsk = \"s3cret-psk\"\nuser = \"hb@hb\"\npassword = \"admin@123\"\nroutes = [\"192.168.1.0/24\"]\nauth = [\"pap\"]\nconnect_timeout = \"10s\"\n";
        let p = ProfileFile::parse("work.toml", text)
            .unwrap()
            .finish("work.toml")
            .unwrap();
        assert_eq!(p.server, "2.2.2.2");
        assert_eq!(p.routes, vec!["192.168.1.0/24".parse::<Ipv4Net>().unwrap()]);
        assert_eq!(p.auth, vec![AuthMethod::Pap]);
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
        assert!(p.use_dns && p.reconnect && !p.route_all);
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("admin@123"),
            "{shown}"
        );
    }

    #[test]
    fn command_line_values_override_the_file_and_gaps_are_named() {
        let file =
            ProfileFile::parse("f", "server = \"2.2.2.2\"\npsk = \"a\"\nuser = \"u\"\n").unwrap();
        let cli = ProfileFile {
            user: Some("other".to_owned()),
            ..ProfileFile::default()
        };
        let merged = cli.or(file);
        assert_eq!(merged.user.as_deref(), Some("other"));
        let e = merged.finish("work").unwrap_err().to_string();
        assert_eq!(e, "work: no password given");
    }

    #[test]
    fn unknown_keys_are_refused_without_quoting_secrets() {
        let e = ProfileFile::parse("f.toml", "server = \"x\"\npasword = \"hunter2\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("pasword"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn profile_directories_follow_the_environment() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_owned()),
            "L2SEC_CLIENT_DIR" => Some("/tmp/p".to_owned()),
            _ => None,
        };
        assert_eq!(
            profile_dirs(env),
            vec![
                PathBuf::from("/tmp/p"),
                PathBuf::from("/home/u/.config/l2sec"),
                PathBuf::from("/etc/l2sec/client")
            ]
        );
    }
}
