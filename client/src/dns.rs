//! Applying the DNS servers the server offered (IPCP, RFC 1877) and undoing it.
//!
//! On Linux there are two ways, picked per connection:
//! - **systemd-resolved** manages `/etc/resolv.conf` (its stub, 127.0.0.53): the servers are set
//!   on the TUN interface with `resolvectl dns` (and `resolvectl domain IF ~.` when all traffic
//!   goes through the tunnel). Nothing to back up: the settings die with the interface.
//! - otherwise **`/etc/resolv.conf` is replaced**: the original is first copied to a backup file
//!   whose path the caller records in its state file ([`FileChange`], serialisable), then the new
//!   file is written atomically (a symlink is replaced, not written through). [`restore`] puts the
//!   original back — unless someone rewrote the file meanwhile, in which case it is left alone
//!   and the backup kept. After a crash the next start finds the [`FileChange`] in the state file
//!   and restores it.
//!
//! The path of `resolv.conf` is configurable so tests never touch the host's.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The system's resolver configuration file.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// How to apply DNS servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// systemd-resolved when it manages the resolver, else the file.
    Auto,
    /// Always write this file (tests point it at a temporary file).
    File(PathBuf),
}

/// Where and how DNS is applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The backend.
    pub backend: Backend,
    /// Where the original `resolv.conf` is copied before it is replaced.
    pub backup: PathBuf,
    /// Route every name through the tunnel's servers (systemd-resolved `~.`).
    pub all_domains: bool,
}

/// What the original `resolv.conf` was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Original {
    /// A regular file, copied to [`FileChange::backup`].
    File,
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// There was none.
    Missing,
}

/// A replaced `resolv.conf`: enough to put it back, also from another process after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The file we replaced.
    pub path: PathBuf,
    /// Where its original content is.
    pub backup: PathBuf,
    /// What it was.
    pub original: Original,
    /// What we wrote, to notice when someone else rewrote it since.
    pub written: String,
}

/// DNS as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Set on the interface through systemd-resolved.
    Resolved {
        /// The TUN interface.
        interface: String,
    },
    /// `resolv.conf` replaced.
    File(FileChange),
}

impl Applied {
    /// A short description for the progress display and `status`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Resolved { interface } => format!("systemd-resolved on {interface}"),
            Self::File(change) => change.path.display().to_string(),
        }
    }
}

/// The text of a `resolv.conf` naming `servers`.
#[must_use]
pub fn resolv_conf_text(servers: &[Ipv4Addr]) -> String {
    let mut text = String::from(
        "# Written by l2sec-client while connected; the original is restored when it disconnects.\n",
    );
    for s in servers.iter().take(3) {
        // glibc reads at most three (MAXNS).
        text.push_str(&format!("nameserver {s}\n"));
    }
    text
}

/// Whether systemd-resolved runs and owns the resolver configuration at `resolv_conf`: its
/// varlink socket exists and the file is its stub (a link into `/run/systemd/resolve/`, or a
/// file pointing at 127.0.0.53).
#[must_use]
pub fn resolved_manages(resolv_conf: &Path) -> bool {
    if !Path::new("/run/systemd/resolve/io.systemd.Resolve").exists() {
        return false;
    }
    let linked = std::fs::read_link(resolv_conf)
        .is_ok_and(|t| t.to_string_lossy().contains("/run/systemd/resolve/"));
    linked
        || std::fs::read_to_string(resolv_conf).is_ok_and(|t| {
            t.lines()
                .any(|l| l.split_whitespace().eq(["nameserver", "127.0.0.53"]))
        })
}

/// Points name resolution at `servers` for the connection on `interface`.
///
/// `record` is called with the [`FileChange`] after the backup exists and before the file is
/// replaced, so that a crash in between still leaves a way back.
///
/// # Errors
/// When neither backend works; nothing is left changed then.
pub fn apply(
    settings: &Settings,
    interface: &str,
    servers: &[Ipv4Addr],
    record: &mut dyn FnMut(Option<&FileChange>),
) -> io::Result<Applied> {
    let path = match &settings.backend {
        Backend::File(path) => path.clone(),
        Backend::Auto => {
            let path = PathBuf::from(RESOLV_CONF);
            if resolved_manages(&path) && resolvectl_dns(interface, servers, settings.all_domains) {
                return Ok(Applied::Resolved {
                    interface: interface.to_owned(),
                });
            }
            path
        }
    };
    let original = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => Original::Symlink(std::fs::read_link(&path)?),
        Ok(_) => {
            std::fs::copy(&path, &settings.backup)?;
            Original::File
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Original::Missing,
        Err(e) => return Err(e),
    };
    let change = FileChange {
        path,
        backup: settings.backup.clone(),
        original,
        written: resolv_conf_text(servers),
    };
    record(Some(&change));
    if let Err(e) = replace(&change.path, change.written.as_bytes()) {
        record(None);
        let _ = std::fs::remove_file(&change.backup);
        return Err(e);
    }
    Ok(Applied::File(change))
}

/// Undoes [`apply`].
///
/// # Errors
/// When the original cannot be put back (the backup is kept), or the file was rewritten by
/// someone else since (then it is left as it is, and the backup kept).
pub fn restore(applied: &Applied) -> io::Result<()> {
    match applied {
        Applied::Resolved { interface } => {
            let _ = Command::new("resolvectl")
                .args(["revert", interface])
                .output();
            Ok(())
        }
        Applied::File(change) => restore_file(change),
    }
}

/// Puts back a replaced `resolv.conf` (also one left behind by a crashed client).
///
/// # Errors
/// As [`restore`].
pub fn restore_file(change: &FileChange) -> io::Result<()> {
    let current = std::fs::read(&change.path).ok();
    if current.as_deref() != Some(change.written.as_bytes()) {
        return Err(io::Error::other(format!(
            "{} was changed by someone else since l2sec-client wrote it; left as it is{}",
            change.path.display(),
            if change.original == Original::File {
                format!(" (the original is in {})", change.backup.display())
            } else {
                String::new()
            }
        )));
    }
    match &change.original {
        Original::File => {
            let original = std::fs::read(&change.backup)?;
            replace(&change.path, &original)?;
            let _ = std::fs::remove_file(&change.backup);
        }
        Original::Symlink(target) => {
            let tmp = temp_beside(&change.path);
            let _ = std::fs::remove_file(&tmp);
            symlink(target, &tmp)?;
            std::fs::rename(&tmp, &change.path)?;
        }
        Original::Missing => std::fs::remove_file(&change.path)?,
    }
    Ok(())
}

fn resolvectl_dns(interface: &str, servers: &[Ipv4Addr], all_domains: bool) -> bool {
    let mut dns = Command::new("resolvectl");
    dns.args(["dns", interface]);
    dns.args(servers.iter().map(ToString::to_string));
    if !dns.output().is_ok_and(|o| o.status.success()) {
        return false;
    }
    if all_domains {
        let _ = Command::new("resolvectl")
            .args(["domain", interface, "~."])
            .output();
    }
    true
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(
        || "resolv.conf".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    path.with_file_name(format!(".{name}.l2sec-tmp"))
}

/// Replaces `path` with `content`: a new file renamed over it (so a symlink is replaced, not
/// followed), or written in place where renaming is impossible (a bind-mounted file in a
/// container).
fn replace(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = temp_beside(path);
    let renamed = std::fs::write(&tmp, content)
        .and_then(|()| set_mode(&tmp, 0o644))
        .and_then(|()| std::fs::rename(&tmp, path));
    if renamed.is_ok() {
        return Ok(());
    }
    let _ = std::fs::remove_file(&tmp);
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        return renamed;
    }
    std::fs::write(path, content)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "symlinks"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("l2sec-dns-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn settings(dir: &Path) -> Settings {
        Settings {
            backend: Backend::File(dir.join("resolv.conf")),
            backup: dir.join("backup"),
            all_domains: false,
        }
    }

    const SERVERS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(9, 9, 9, 9)];

    #[test]
    fn a_replaced_file_is_backed_up_recorded_first_and_restored() {
        let dir = temp_dir("file");
        let conf = dir.join("resolv.conf");
        std::fs::write(&conf, "nameserver 10.0.0.1\nsearch lan\n").unwrap();
        let mut recorded = Vec::new();
        let applied = apply(&settings(&dir), "l2c0", &SERVERS, &mut |c| {
            // When the change is recorded, the backup already holds the original.
            if c.is_some() {
                assert_eq!(
                    std::fs::read_to_string(dir.join("backup")).unwrap(),
                    "nameserver 10.0.0.1\nsearch lan\n"
                );
            }
            recorded.push(c.cloned());
        })
        .unwrap();
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(
            text.contains("nameserver 192.168.1.1\nnameserver 9.9.9.9\n"),
            "{text}"
        );
        let Applied::File(change) = &applied else {
            panic!("{applied:?}")
        };
        assert_eq!(recorded, vec![Some(change.clone())]);
        // The record survives a crash: it round-trips through JSON.
        let json = serde_json::to_string(change).unwrap();
        let back: FileChange = serde_json::from_str(&json).unwrap();
        restore_file(&back).unwrap();
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            "nameserver 10.0.0.1\nsearch lan\n"
        );
        assert!(!dir.join("backup").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_replaced_not_written_through_and_comes_back() {
        let dir = temp_dir("link");
        let target = dir.join("stub-resolv.conf");
        std::fs::write(&target, "nameserver 127.0.0.53\n").unwrap();
        let conf = dir.join("resolv.conf");
        std::os::unix::fs::symlink(&target, &conf).unwrap();
        let applied = apply(&settings(&dir), "l2c0", &SERVERS[..1], &mut |_| {}).unwrap();
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "nameserver 127.0.0.53\n"
        );
        assert!(
            !std::fs::symlink_metadata(&conf)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        restore(&applied).unwrap();
        assert_eq!(std::fs::read_link(&conf).unwrap(), target);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_is_removed_again_and_a_rewritten_one_left_alone() {
        let dir = temp_dir("missing");
        let conf = dir.join("resolv.conf");
        let applied = apply(&settings(&dir), "l2c0", &SERVERS, &mut |_| {}).unwrap();
        assert!(conf.exists());
        restore(&applied).unwrap();
        assert!(!conf.exists());

        std::fs::write(&conf, "nameserver 10.0.0.1\n").unwrap();
        let applied = apply(&settings(&dir), "l2c0", &SERVERS, &mut |_| {}).unwrap();
        std::fs::write(&conf, "nameserver 10.9.9.9\n").unwrap(); // a DHCP client, say
        let e = restore(&applied).unwrap_err().to_string();
        assert!(
            e.contains("changed by someone else") && e.contains("backup"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(&conf).unwrap(),
            "nameserver 10.9.9.9\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn at_most_three_servers_are_written() {
        let many = [Ipv4Addr::new(1, 1, 1, 1); 5];
        assert_eq!(resolv_conf_text(&many).matches("nameserver").count(), 3);
    }
}
