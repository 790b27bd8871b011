//! Giving up root once every socket, the TUN device and the routes are set up.
//!
//! [`drop_to`] switches the whole process to an unprivileged user (supplementary groups, then
//! `setresgid`, then `setresuid`, so that none of the three ids can be switched back), clears
//! every capability set it still holds (ambient, inheritable, effective, permitted), sets
//! `PR_SET_NO_NEW_PRIVS` (no set-uid binary or file capability can give them back), and then
//! checks the result from `/proc/self/task/*/status`: every thread's user ids non-zero and its
//! effective and permitted capability sets empty. Anything short of that is an error, never a
//! warning: a server that believes it dropped root and did not is worse than one that says so.
//!
//! A process that already starts without root (systemd's `User=` with `AmbientCapabilities=`)
//! keeps its ids and only loses its capabilities. So does a root process that may not change
//! its ids (no `CAP_SETUID`/`CAP_SETGID`, e.g. a container started with `--cap-drop ALL`): it
//! stays uid 0 but without any capability, and with `PR_SET_NO_NEW_PRIVS` no `execve` gives
//! them back; the caller is told ([`Dropped::CapabilitiesOnly`] with `uid` 0) so that it can
//! say so loudly.
//!
//! The system calls are made through `nix` (ids, groups, `prctl`) and `caps` (capability sets),
//! so this module has no `unsafe` of its own. glibc applies `setresuid`/`setresgid`/`setgroups`
//! to every thread of the process; capability sets are per thread, which is why the check reads
//! every thread's status.

use std::ffi::CString;
use std::io;

use caps::{CapSet, Capability};
use nix::unistd::{Gid, Uid, User};

/// What [`drop_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The process was root and now runs as `uid`/`gid` with no capabilities.
    Switched {
        /// The new user id (real, effective, saved and file system).
        uid: u32,
        /// The new group id.
        gid: u32,
    },
    /// The process kept `uid` and gave up its capabilities: it did not run as root, or it
    /// ran as root without the capabilities to change its ids (then `uid` is 0).
    CapabilitiesOnly {
        /// The (unchanged) user id.
        uid: u32,
    },
    /// `user` was `root`: nothing was changed.
    KeptRoot,
}

/// The credentials of one thread, as `/proc/<pid>/task/<tid>/status` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Real, effective, saved and file system user ids.
    pub uids: [u32; 4],
    /// Real, effective, saved and file system group ids.
    pub gids: [u32; 4],
    /// Effective capability set (bit mask).
    pub cap_eff: u64,
    /// Permitted capability set (bit mask).
    pub cap_prm: u64,
    /// Ambient capability set (bit mask).
    pub cap_amb: u64,
}

impl Credentials {
    /// Parses the text of a `status` file; `None` when a line is missing or malformed.
    #[must_use]
    pub fn parse(status: &str) -> Option<Self> {
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
        };
        let ids = |key: &str| -> Option<[u32; 4]> {
            let mut it = field(key)?.split_whitespace().map(str::parse::<u32>);
            let ids = [
                it.next()?.ok()?,
                it.next()?.ok()?,
                it.next()?.ok()?,
                it.next()?.ok()?,
            ];
            it.next().is_none().then_some(ids)
        };
        let mask = |key: &str| u64::from_str_radix(field(key)?, 16).ok();
        Some(Self {
            uids: ids("Uid")?,
            gids: ids("Gid")?,
            cap_eff: mask("CapEff")?,
            cap_prm: mask("CapPrm")?,
            cap_amb: mask("CapAmb")?,
        })
    }

    /// Whether no user id is root and no effective, permitted or ambient capability is left.
    #[must_use]
    pub fn is_unprivileged(&self) -> bool {
        self.uids.iter().all(|&u| u != 0)
            && self.cap_eff == 0
            && self.cap_prm == 0
            && self.cap_amb == 0
    }
}

/// The credentials of every thread of this process.
///
/// # Errors
/// When `/proc` cannot be read or a status file cannot be parsed.
pub fn threads() -> io::Result<Vec<(String, Credentials)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let text = match std::fs::read_to_string(entry.path().join("status")) {
            Ok(text) => text,
            // The thread ended between the listing and the read: it holds nothing any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(3) => {
                continue;
            }
            Err(e) => return Err(e),
        };
        let tid = entry.file_name().to_string_lossy().into_owned();
        let creds = Credentials::parse(&text)
            .ok_or_else(|| io::Error::other(format!("thread {tid}: unreadable status")))?;
        out.push((tid, creds));
    }
    Ok(out)
}

fn os(what: &str) -> impl FnOnce(nix::Error) -> io::Error + '_ {
    move |e| io::Error::other(format!("{what}: {e}"))
}

fn caps_error(what: &str) -> impl FnOnce(caps::errors::CapsError) -> io::Error + '_ {
    move |e| io::Error::other(format!("{what}: {e}"))
}

/// Switches to `user` (a name from the password database) and gives up every capability;
/// `"root"` changes nothing. See the module documentation.
///
/// # Errors
/// When the user does not exist or has uid 0, a system call fails, or the check afterwards
/// finds a root id or a capability on any thread.
pub fn drop_to(user: &str) -> io::Result<Dropped> {
    if user == "root" {
        return Ok(Dropped::KeptRoot);
    }
    let may_switch = Uid::effective().is_root()
        && [Capability::CAP_SETUID, Capability::CAP_SETGID]
            .into_iter()
            .all(|c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false));
    let outcome = if may_switch {
        let entry = User::from_name(user)
            .map_err(os("looking up the user"))?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no user {user:?} in the password database"),
                )
            })?;
        if entry.uid.is_root() {
            return Err(io::Error::other(format!(
                "user {user:?} has uid 0: name an unprivileged user, or \"root\" to keep root"
            )));
        }
        let name = CString::new(user).map_err(|e| io::Error::other(e.to_string()))?;
        // Groups first: once the uid is not 0 the process may no longer change them.
        nix::unistd::initgroups(&name, entry.gid).map_err(os("initgroups"))?;
        nix::unistd::setresgid(entry.gid, entry.gid, entry.gid).map_err(os("setresgid"))?;
        nix::unistd::setresuid(entry.uid, entry.uid, entry.uid).map_err(os("setresuid"))?;
        Dropped::Switched {
            uid: entry.uid.as_raw(),
            gid: entry.gid.as_raw(),
        }
    } else {
        Dropped::CapabilitiesOnly {
            uid: Uid::effective().as_raw(),
        }
    };
    // A uid change from 0 already emptied permitted, effective and ambient (no SECBIT_KEEP_CAPS);
    // a process that never was root may hold ambient capabilities from its parent.
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(caps_error("clearing capabilities"))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(os("PR_SET_NO_NEW_PRIVS"))?;
    verify(outcome)?;
    Ok(outcome)
}

/// Checks every thread after the drop.
fn verify(outcome: Dropped) -> io::Result<()> {
    for (tid, c) in threads()? {
        let uid_ok = matches!(outcome, Dropped::CapabilitiesOnly { uid: 0 })
            || c.uids.iter().all(|&u| u != 0);
        if !uid_ok || c.cap_eff != 0 || c.cap_prm != 0 || c.cap_amb != 0 {
            return Err(io::Error::other(format!(
                "thread {tid} is still privileged after dropping root: {c:?}"
            )));
        }
        if let Dropped::Switched { uid, gid } = outcome
            && (c.uids != [uid; 4] || c.gids != [gid; 4])
        {
            return Err(io::Error::other(format!(
                "thread {tid} has ids {:?}/{:?}, not {uid}/{gid}",
                c.uids, c.gids
            )));
        }
    }
    if let Dropped::Switched { gid, .. } = outcome {
        // Root cannot be regained.
        if Uid::effective().is_root() || nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(io::Error::other("root could be regained after dropping it"));
        }
        if Gid::effective().as_raw() != gid {
            return Err(io::Error::other("the group id did not change"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "Name:\tl2sec-server\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
        CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n\
        CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";
    const NOBODY: &str = "Name:\tl2sec-server\nUid:\t65534\t65534\t65534\t65534\n\
        Gid:\t65534\t65534\t65534\t65534\nCapInh:\t0000000000000000\n\
        CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n\
        CapAmb:\t0000000000000000\n";

    #[test]
    fn status_files_are_read_and_judged() {
        let root = Credentials::parse(ROOT).unwrap();
        assert_eq!(root.uids, [0; 4]);
        assert_eq!(root.cap_eff, 0x1ff_ffff_ffff);
        assert!(!root.is_unprivileged());
        let nobody = Credentials::parse(NOBODY).unwrap();
        assert_eq!(nobody.gids, [65534; 4]);
        assert!(nobody.is_unprivileged());
        // A saved uid of 0 would let the process switch back.
        let saved_root = NOBODY.replace("Uid:\t65534\t65534\t65534", "Uid:\t65534\t65534\t0");
        assert!(!Credentials::parse(&saved_root).unwrap().is_unprivileged());
        // An ambient capability survives execve.
        let ambient = NOBODY.replace("CapAmb:\t0000000000000000", "CapAmb:\t0000000000001000");
        assert!(!Credentials::parse(&ambient).unwrap().is_unprivileged());
        assert_eq!(Credentials::parse("Uid:\t0\t0\n"), None);
        assert_eq!(
            Credentials::parse(&NOBODY.replace("CapEff", "CapXyz")),
            None
        );
    }

    #[test]
    fn this_process_can_be_inspected() {
        let threads = threads().unwrap();
        assert!(!threads.is_empty());
    }

    #[test]
    fn threads_that_end_during_the_inspection_are_skipped() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let short: Vec<_> = (0..8).map(|_| std::thread::spawn(|| ())).collect();
                    short.into_iter().for_each(|t| t.join().unwrap());
                }
            })
        };
        let result: io::Result<()> = (0..2_000).try_for_each(|_| threads().map(drop));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
        result.unwrap();
    }

    #[test]
    fn root_as_the_target_changes_nothing() {
        let me = || {
            Credentials::parse(&std::fs::read_to_string("/proc/thread-self/status").unwrap())
                .unwrap()
        };
        let before = me();
        assert_eq!(drop_to("root").unwrap(), Dropped::KeptRoot);
        assert_eq!(me(), before);
    }
}
