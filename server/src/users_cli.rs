//! `l2sec-server user add|del|passwd|list`: edits the users file ([`crate::users`]) in place.
//!
//! Passwords are stored as NT hashes (MD4 of the UTF-16LE password, RFC 2759 §8.3), never in
//! clear. Other entries are kept exactly as written (comments, plaintext `password` entries,
//! key order), because the file is edited with `toml_edit`, not re-serialised.
//!
//! Every change runs under an exclusive `flock` on `<file>.lock`, re-reads the file, checks the
//! result with the same parser the server uses ([`Users::parse`]), and replaces the file
//! atomically: a temporary file in the same directory (mode 0600, then the old file's owner,
//! group and mode without the bits for others), `fsync`, `rename`, `fsync` of the directory.
//! Two concurrent commands therefore never lose an update, and a crash leaves the old or the new
//! file, never half of one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ppp::auth::mschapv2::NtHash;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::users::{Credential, Users, UsersError};

/// Shown after every change: the running server reads the file only at start and on reload.
const APPLY_HINT: &str = "run `l2sec-server reload` to apply it to a running server";

/// Longest user name the users file accepts (the parser's rule).
const MAX_NAME_LEN: usize = 253;

/// `l2sec-server user …`: manage the local users file.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Passwords are stored as NT hashes (MD4 of the UTF-16LE password), never in clear. A user with
only an NT hash can log in with MS-CHAPv2 and PAP, but NOT with CHAP-MD5 (which needs the
password itself). Entries with a plaintext `password` written by hand are kept as they are and
listed as \"password (plaintext!)\"; `user passwd` replaces such a password with an NT hash.

The file is found from --users-file, or from the configuration's [users] file (--config, default
/var/lib/l2sec/users.toml; L2SEC_USERS_FILE and L2SEC_STATE_DIR apply). With --config, static
addresses must lie inside [pool] range. Changes reach a running server with `l2sec-server
reload`. The server reads the file after it dropped root ([server] user): keep it readable by
that user, e.g. `chgrp l2sec FILE; chmod 0640 FILE` (changes keep the file's owner and group).")]
pub struct UserArgs {
    /// Configuration file: its users file and its address pool.
    #[arg(long, short, global = true, conflicts_with = "users_file")]
    config: Option<PathBuf>,
    /// The users file itself (no pool to check static addresses against).
    #[arg(long, global = true)]
    users_file: Option<PathBuf>,
    #[command(subcommand)]
    command: UserCommand,
}

/// The user subcommands.
#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Adds a user; asks for the password twice (or reads one line with --password-stdin).
    Add {
        /// The login name, as the client sends it (1 to 253 bytes, case-sensitive).
        name: String,
        /// A static IPv4 address for this user (inside the pool, used by nobody else).
        #[arg(long)]
        address: Option<Ipv4Addr>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Deletes a user.
    Del {
        /// The login name.
        name: String,
    },
    /// Sets a user's password (stored as an NT hash).
    Passwd {
        /// The login name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists the users: name, kind of credential and static address, never the secret.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Why a user command failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// `del` or `passwd` of a name that is not in the file.
    #[error("no user {0:?}")]
    Unknown(String),
    /// `add` of a name that is already there.
    #[error("user {0:?} already exists (use `user passwd` to change the password)")]
    Duplicate(String),
    /// A name the users file cannot hold.
    #[error("user name {0:?} must have 1 to {MAX_NAME_LEN} bytes")]
    BadName(String),
    /// A static address outside the configured pool.
    #[error("address {address} is outside the pool {first}-{last}")]
    OutsidePool {
        /// The address asked for.
        address: Ipv4Addr,
        /// First address of the pool.
        first: Ipv4Addr,
        /// Last address of the pool.
        last: Ipv4Addr,
    },
    /// A static address that is the server's own.
    #[error("address {0} is the server's own pool address")]
    LocalAddress(Ipv4Addr),
    /// A static address another user already has.
    #[error("address {address} is already the static address of user {user:?}")]
    AddressTaken {
        /// The address asked for.
        address: Ipv4Addr,
        /// Who has it.
        user: String,
    },
    /// An empty password.
    #[error("the password is empty")]
    EmptyPassword,
    /// The two prompted passwords differ.
    #[error("the passwords do not match")]
    Mismatch,
    /// No terminal to prompt on and no `--password-stdin`.
    #[error("cannot ask for the password ({0}): give it on standard input with --password-stdin")]
    NoTerminal(io::Error),
    /// The file (or its lock, or its directory) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a valid users file (before or, which would be a bug, after the change).
    #[error(transparent)]
    Invalid(#[from] UsersError),
    /// The file is valid but not in the `[[user]]` form this command edits.
    #[error("{0}: users must be written as [[user]] tables to be edited by `l2sec-server user`")]
    Layout(String),
    /// The configuration given with --config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> UserError + '_ {
    move |source| UserError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One user as `user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The login name.
    pub name: String,
    /// "nt-hash" or "password (plaintext!)".
    pub credential: &'static str,
    /// The static address, if any.
    pub address: Option<Ipv4Addr>,
}

/// The users file and what a static address must satisfy.
#[derive(Debug, Clone)]
pub struct UsersFile {
    path: PathBuf,
    /// First and last pool address and the server's own address, when a configuration is known.
    pool: Option<((Ipv4Addr, Ipv4Addr), Ipv4Addr)>,
}

impl UsersFile {
    /// The file at `path`, with no pool to check addresses against.
    #[must_use]
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            pool: None,
        }
    }

    /// The users file a configuration names, with its pool.
    #[must_use]
    pub fn of(config: &Config) -> Self {
        Self {
            path: config.users_file.clone(),
            pool: Some((config.pool_range, config.local_address)),
        }
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The users, without their secrets. A missing file has none.
    ///
    /// # Errors
    /// When the file cannot be read or is invalid.
    pub fn list(&self) -> Result<Vec<Listed>, UserError> {
        let text = self.read()?;
        let users = Users::parse(&self.path.display().to_string(), &text)?;
        Ok(users
            .iter()
            .map(|u| Listed {
                name: u.name.clone(),
                credential: match u.credential {
                    Credential::NtHash(_) => "nt-hash",
                    Credential::Password(_) => "password (plaintext!)",
                },
                address: u.address,
            })
            .collect())
    }

    /// Adds `name` with the NT hash `hash` and an optional static address.
    ///
    /// # Errors
    /// A duplicate name, a bad name or address, or a file that cannot be read or replaced.
    pub fn add(
        &self,
        name: &str,
        hash: &NtHash,
        address: Option<Ipv4Addr>,
    ) -> Result<(), UserError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(UserError::BadName(name.to_owned()));
        }
        if let (Some(a), Some(((first, last), local))) = (address, self.pool) {
            if a == local {
                return Err(UserError::LocalAddress(a));
            }
            if a < first || a > last {
                return Err(UserError::OutsidePool {
                    address: a,
                    first,
                    last,
                });
            }
        }
        self.update(|users, doc| {
            if users.get(name).is_some() {
                return Err(UserError::Duplicate(name.to_owned()));
            }
            if let Some(a) = address
                && let Some(other) = users.iter().find(|u| u.address == Some(a))
            {
                return Err(UserError::AddressTaken {
                    address: a,
                    user: other.name.clone(),
                });
            }
            let mut entry = Table::new();
            entry.insert("name", value(name));
            entry.insert("nt_hash", value(hex(&hash.0).as_str()));
            if let Some(a) = address {
                entry.insert("address", value(a.to_string()));
            }
            self.tables(doc)?.push(entry);
            Ok(())
        })
    }

    /// Deletes `name`.
    ///
    /// # Errors
    /// An unknown user, or a file that cannot be read or replaced.
    pub fn delete(&self, name: &str) -> Result<(), UserError> {
        self.update(|_, doc| {
            let tables = self.tables(doc)?;
            let at = position(tables, name).ok_or_else(|| UserError::Unknown(name.to_owned()))?;
            tables.remove(at);
            Ok(())
        })
    }

    /// Replaces `name`'s password or NT hash with the NT hash `hash`.
    ///
    /// # Errors
    /// An unknown user, or a file that cannot be read or replaced.
    pub fn set_password(&self, name: &str, hash: &NtHash) -> Result<(), UserError> {
        self.update(|_, doc| {
            let tables = self.tables(doc)?;
            let at = position(tables, name).ok_or_else(|| UserError::Unknown(name.to_owned()))?;
            let entry = tables
                .get_mut(at)
                .ok_or_else(|| UserError::Unknown(name.to_owned()))?;
            entry.remove("password");
            entry.insert("nt_hash", value(hex(&hash.0).as_str()));
            Ok(())
        })
    }

    /// The `[[user]]` array of `doc` (created when the file has none).
    fn tables<'d>(&self, doc: &'d mut DocumentMut) -> Result<&'d mut ArrayOfTables, UserError> {
        let item = doc
            .entry("user")
            .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
        item.as_array_of_tables_mut()
            .ok_or_else(|| UserError::Layout(self.path.display().to_string()))
    }

    fn read(&self) -> Result<String, UserError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(io_error(&self.path)(e)),
        }
    }

    /// Runs `change` on the current file under the lock and replaces the file with the result,
    /// after checking that the server would load it.
    fn update(
        &self,
        change: impl FnOnce(&Users, &mut DocumentMut) -> Result<(), UserError>,
    ) -> Result<(), UserError> {
        let name = self.path.display().to_string();
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let lock_path = sibling(&self.path, ".lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        // Held until `lock` drops at the end of this function (flock(2), LOCK_EX).
        lock.lock().map_err(io_error(&lock_path))?;

        // The file's text holds password hashes (and maybe passwords): wiped when dropped.
        let text = Zeroizing::new(self.read()?);
        let users = Users::parse(&name, &text)?;
        let mut doc: DocumentMut = text.parse().map_err(|_| UserError::Layout(name.clone()))?;
        change(&users, &mut doc)?;
        let new_text = Zeroizing::new(doc.to_string());
        Users::parse(&name, &new_text)?;
        let previous = std::fs::metadata(&self.path).ok();
        replace(&self.path, &dir, new_text.as_bytes(), previous.as_ref())
    }
}

fn position(tables: &ArrayOfTables, name: &str) -> Option<usize> {
    tables
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, durably.
fn replace(
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    previous: Option<&std::fs::Metadata>,
) -> Result<(), UserError> {
    let tmp = sibling(path, &format!(".tmp{}", std::process::id()));
    // Left over by a crash of this same pid (we hold the lock, so nobody else writes it).
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Some(m) = previous {
            // Keep who may read the file (e.g. root:l2sec 0640 for the server after it dropped
            // root), but never let others read password hashes.
            if (m.uid(), m.gid()) != (f.metadata()?.uid(), f.metadata()?.gid()) {
                std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
            }
            f.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o640 | 0o600))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io_error(path))
}

/// Lower-case hex of a secret, wiped when dropped.
fn hex(bytes: &[u8]) -> Zeroizing<String> {
    use std::fmt::Write as _;
    let mut s = Zeroizing::new(String::with_capacity(2 * bytes.len()));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Reads a new password: one line of standard input, or twice from the terminal without echo.
fn read_password(name: &str, from_stdin: bool) -> Result<Zeroizing<String>, UserError> {
    let password = if from_stdin {
        let mut line = Zeroizing::new(String::new());
        io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(io_error(Path::new("(stdin)")))?;
        Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned())
    } else {
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("Password for {name}: "))
                .map_err(UserError::NoTerminal)?,
        );
        let again =
            Zeroizing::new(rpassword::prompt_password("Again: ").map_err(UserError::NoTerminal)?);
        if first != again {
            return Err(UserError::Mismatch);
        }
        first
    };
    if password.is_empty() {
        return Err(UserError::EmptyPassword);
    }
    Ok(password)
}

/// Runs a user subcommand; messages for the operator go to standard output.
///
/// # Errors
/// What [`UsersFile`] reports, a bad configuration, or a refused password.
pub fn run(args: UserArgs, env: impl Fn(&str) -> Option<String>) -> Result<(), UserError> {
    let file = match (&args.users_file, &args.config) {
        (Some(path), _) => UsersFile::at(path),
        (None, config) => UsersFile::of(&Config::load(config.as_deref(), env)?),
    };
    let shown = file.path().display().to_string();
    let mut out = io::stdout().lock();
    let said = match args.command {
        UserCommand::Add {
            name,
            address,
            password_stdin,
        } => {
            let password = read_password(&name, password_stdin)?;
            file.add(&name, &NtHash::of_password(&password), address)?;
            writeln!(
                out,
                "user {name:?} added to {shown} (NT hash: MS-CHAPv2 and PAP, not CHAP-MD5); {APPLY_HINT}"
            )
        }
        UserCommand::Del { name } => {
            file.delete(&name)?;
            writeln!(out, "user {name:?} deleted from {shown}; {APPLY_HINT}")
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(&name, password_stdin)?;
            file.set_password(&name, &NtHash::of_password(&password))?;
            writeln!(
                out,
                "password of {name:?} changed in {shown} (stored as NT hash); {APPLY_HINT}"
            )
        }
        UserCommand::List { json } => {
            let users = file.list()?;
            if json {
                let rows: Vec<serde_json::Value> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "name": u.name,
                            "credential": u.credential,
                            "address": u.address.map(|a| a.to_string()),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(rows))
            } else {
                let width = users.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
                let mut r = writeln!(out, "{:width$}  {:21}  ADDRESS", "NAME", "CREDENTIAL");
                for u in &users {
                    let address = u.address.map_or_else(|| "-".to_owned(), |a| a.to_string());
                    r = r.and_then(|()| {
                        writeln!(out, "{:width$}  {:21}  {address}", u.name, u.credential)
                    });
                }
                r
            }
        }
    };
    said.map_err(io_error(Path::new("(stdout)")))
}

#[cfg(test)]
mod tests;
