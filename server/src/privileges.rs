//! The server's side of dropping root ([`netio::privileges`] makes the system calls): which
//! user, what is logged, and a warning for files the unprivileged server will need but cannot
//! read.
//!
//! What still works after the drop, and why:
//! - sockets (UDP 500/4500/1701, raw ESP, RADIUS, Disconnect/CoA, the control socket) and the
//!   TUN device: already open; reading and writing an open descriptor needs no privilege;
//! - the key log: opened before the drop ([`crate::keylog`]);
//! - the pool route: the kernel removes it with the TUN device when the process exits (the
//!   `ip route del` at a clean stop is then refused and not needed);
//! - reload (the configuration and users file): only if this user may read them. The server
//!   does not keep `CAP_DAC_READ_SEARCH` for that: it would let a compromised server read every
//!   file on the host. The operator gives the user read access instead (the users file keeps
//!   its owner and group across `l2sec-server user` changes).

use crate::config::Config;
use anyhow::Context as _;
use netio::privileges::Dropped;

/// Switches to `[server] user` and gives up every capability; logs what was done.
///
/// # Errors
/// When the user does not exist, a system call fails or root could be regained.
pub fn drop_root(config: &Config) -> anyhow::Result<Dropped> {
    let user = &config.user;
    let outcome = netio::privileges::drop_to(user).with_context(|| {
        format!("dropping root to user {user:?} ([server] user; \"root\" keeps root)")
    })?;
    match outcome {
        Dropped::Switched { uid, gid } => {
            tracing::info!(%user, uid, gid, "dropped root: no capabilities left");
        }
        Dropped::CapabilitiesOnly { uid: 0 } => {
            tracing::warn!(%user, "still uid 0, but without any capability: switching to the user needs CAP_SETUID and CAP_SETGID (a container started with --cap-drop ALL: add --cap-add SETUID --cap-add SETGID)");
        }
        Dropped::CapabilitiesOnly { uid } => {
            tracing::info!(
                uid,
                "not started as root: kept the user, dropped every capability"
            );
        }
        Dropped::KeptRoot => {
            tracing::warn!("[server] user = \"root\": the server keeps root and every capability");
            return Ok(outcome);
        }
    }
    if config.users_file.exists()
        && let Err(e) = std::fs::File::open(&config.users_file)
    {
        tracing::warn!(path = %config.users_file.display(), %user, %e, "the users file cannot be read after dropping root, so a reload will fail: make it readable by this user (e.g. chgrp GROUP FILE; chmod 0640 FILE)");
    }
    Ok(outcome)
}
