//! The control socket: a local Unix socket (root only) on which `l2sec-server status`, `kick`
//! and `reload` talk to the running server.
//!
//! Protocol (version 1): one JSON object per line each way, then the server closes.
//!
//! ```text
//! → {"version":1,"command":"status"}
//! → {"version":1,"command":"kick","target":"alice"}        (a user name or an IPv4 address)
//! → {"version":1,"command":"reload"}
//! ← {"version":1,"ok":true,"sessions":[…]} | {"version":1,"ok":true,"kicked":1}
//! ← {"version":1,"ok":false,"error":"…"}
//! ```
//!
//! What arrives on the socket is treated as hostile: a request is at most [`MAX_REQUEST`]
//! bytes, at most [`MAX_CLIENTS`] connections are served at once (more are closed at once),
//! every read and write has [`CLIENT_TIMEOUT`], and only a peer with the socket owner's uid
//! (or root) is answered. The connections are served by their own tasks; the packet loop only
//! receives finished requests from a bounded channel and answers them without waiting.

mod reload;

use crate::config::{Config, DEFAULT_CONTROL_SOCKET};
use crate::engine::ipsec::Engine;
use crate::engine::lns::admin::{KickTarget, SessionStatus};
use anyhow::Context as _;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, FileTypeExt as _, MetadataExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};

pub use reload::{Prepared, prepare};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// The longest request line accepted, newline included.
pub const MAX_REQUEST: usize = 1024;
/// The longest answer a client reads (a status of every session of a full server fits).
pub const MAX_RESPONSE: u64 = 256 << 20;
/// Connections served at once; more are closed without an answer.
pub const MAX_CLIENTS: usize = 8;
/// Time a client has to send its request and to take the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the packet loop has to take a request and answer it.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request line as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLine {
    /// [`VERSION`].
    pub version: u32,
    /// `status`, `kick` or `reload`.
    pub command: String,
    /// For `kick`: a user name or an IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A request, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every session.
    Status,
    /// End these sessions.
    Kick(KickTarget),
    /// Re-read the configuration and the users file.
    Reload,
}

/// A request line that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Longer than [`MAX_REQUEST`].
    #[error("request longer than {MAX_REQUEST} bytes")]
    TooLong,
    /// Not a JSON request object.
    #[error("not a request: {0}")]
    Malformed(String),
    /// Another protocol version.
    #[error("protocol version {0} is not supported (this server speaks {VERSION})")]
    Version(u32),
    /// Not `status`, `kick` or `reload`.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// `kick` without a target, or with an unusable one.
    #[error("kick needs a target: a user name or an IPv4 address (1 to 253 bytes)")]
    Target,
}

impl Request {
    /// Parses one request line (the trailing newline is optional).
    ///
    /// # Errors
    /// [`ProtocolError`].
    pub fn parse(line: &[u8]) -> Result<Self, ProtocolError> {
        if line.len() > MAX_REQUEST {
            return Err(ProtocolError::TooLong);
        }
        let line: RequestLine = serde_json::from_slice(line).map_err(|e| {
            // serde_json's message names the position, never more than a short excerpt.
            ProtocolError::Malformed(e.to_string().chars().take(120).collect())
        })?;
        if line.version != VERSION {
            return Err(ProtocolError::Version(line.version));
        }
        match (line.command.as_str(), line.target) {
            ("status", None) => Ok(Self::Status),
            ("reload", None) => Ok(Self::Reload),
            ("kick", Some(t)) if !t.is_empty() && t.len() <= 253 => {
                Ok(Self::Kick(KickTarget::parse(&t)))
            }
            ("kick", _) => Err(ProtocolError::Target),
            ("status" | "reload", Some(_)) => Err(ProtocolError::Malformed(format!(
                "{} takes no target",
                line.command
            ))),
            (other, _) => Err(ProtocolError::UnknownCommand(
                other.chars().take(32).collect(),
            )),
        }
    }
}

/// An answer as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Response {
    /// [`VERSION`].
    pub version: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<SessionStatus>>,
    /// For `kick`: how many sessions were told to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kicked: Option<usize>,
    /// For `reload`: what changed, what needs a restart, who was kicked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Response {
    fn error(message: impl Into<String>) -> Self {
        Self {
            version: VERSION,
            error: Some(message.into()),
            ..Self::default()
        }
    }

    fn ok() -> Self {
        Self {
            version: VERSION,
            ok: true,
            ..Self::default()
        }
    }
}

/// What the packet loop is asked to do.
#[derive(Debug)]
enum Command {
    Status,
    Kick(KickTarget),
    Reload(Box<crate::engine::ipsec::admin::Reload>),
}

/// A request for the packet loop, with where its answer goes.
#[derive(Debug)]
pub struct Job {
    command: Command,
    reply: oneshot::Sender<Response>,
}

/// The server side: the listening socket's tasks and the channel to the packet loop.
#[derive(Debug)]
pub struct Control {
    jobs: mpsc::Receiver<Job>,
    path: PathBuf,
    /// Device and inode of our socket file, so that only it is removed at exit.
    inode: (u64, u64),
    task: tokio::task::JoinHandle<()>,
}

/// The running configuration as reloads see it (one reload at a time).
type Running = Arc<Mutex<Config>>;

impl Control {
    /// Binds the control socket of `config` and starts serving it (SIGHUP included). Call
    /// inside the runtime.
    ///
    /// # Errors
    /// Another server answers on the socket; the path exists and is not a socket; the
    /// directory or socket cannot be made.
    pub fn bind(config: &Config) -> anyhow::Result<Self> {
        let path = config.control_socket.clone();
        make_room(&path)?;
        let listener = tokio::net::UnixListener::bind(&path)
            .with_context(|| format!("binding the control socket {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", path.display()))?;
        let meta = std::fs::metadata(&path)?;
        let owner = meta.uid();
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        let (tx, jobs) = mpsc::channel(MAX_CLIENTS + 1);
        let running = Arc::new(Mutex::new(config.clone()));
        let task = tokio::spawn(accept(listener, owner, tx, running, hangup));
        tracing::info!(path = %path.display(), "control socket ready (status, kick, reload; SIGHUP reloads)");
        Ok(Self {
            jobs,
            path,
            inode: (meta.dev(), meta.ino()),
            task,
        })
    }

    /// The next request for the packet loop; never resolves once the socket task ended.
    pub async fn recv(&mut self) -> Option<Job> {
        self.jobs.recv().await
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode) {
            // After the server gave up root, a root-owned directory keeps the file: the
            // next start replaces the stale socket (`make_room`).
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::debug!(path = %self.path.display(), %e, "control socket left behind");
            }
        }
    }
}

/// Creates the socket's directory (0700) when missing; refuses a live socket of another
/// server and anything that is not a socket; removes a stale socket.
fn make_room(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "another l2sec-server is running: its control socket {} answers",
                    path.display()
                );
            }
            tracing::info!(path = %path.display(), "removing a stale control socket");
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("checking {}", path.display())),
    }
}

async fn accept(
    listener: tokio::net::UnixListener,
    owner: u32,
    tx: mpsc::Sender<Job>,
    running: Running,
    mut hangup: tokio::signal::unix::Signal,
) {
    let permits = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        tokio::select! {
            r = listener.accept() => {
                let stream = match r {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors, say: do not spin.
                        tracing::warn!(%e, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tracing::debug!("too many control clients: connection closed");
                    continue;
                };
                let (tx, running) = (tx.clone(), Arc::clone(&running));
                tokio::spawn(async move {
                    serve_client(stream, owner, &tx, &running).await;
                    drop(permit);
                });
            }
            Some(()) = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration and the users file");
                let answer = reload(&tx, &running).await;
                log_reload(&answer);
            }
        }
    }
}

fn log_reload(answer: &Response) {
    if answer.ok {
        for note in &answer.notes {
            if note.contains("needs a restart") {
                tracing::warn!("reload: {note}");
            } else {
                tracing::info!("reload: {note}");
            }
        }
        tracing::info!("configuration reloaded");
    } else {
        tracing::error!(
            "reload refused, the running configuration is kept: {}",
            answer.error.as_deref().unwrap_or("?")
        );
    }
}

async fn serve_client(
    stream: tokio::net::UnixStream,
    owner: u32,
    tx: &mpsc::Sender<Job>,
    running: &Running,
) {
    let allowed = stream
        .peer_cred()
        .is_ok_and(|c| c.uid() == owner || c.uid() == 0);
    let (read, mut write) = stream.into_split();
    let answer = if allowed {
        let mut line = Vec::new();
        let limit = u64::try_from(MAX_REQUEST).unwrap_or(u64::MAX) + 1;
        let mut reader = tokio::io::BufReader::new(read.take(limit));
        match tokio::time::timeout(CLIENT_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
            Err(_) => Response::error("no request within the time limit"),
            Ok(Err(e)) => Response::error(format!("reading the request: {e}")),
            Ok(Ok(_)) => match Request::parse(&line) {
                Err(e) => Response::error(e.to_string()),
                Ok(Request::Reload) => {
                    let answer = reload(tx, running).await;
                    log_reload(&answer);
                    answer
                }
                Ok(Request::Status) => ask(tx, Command::Status).await,
                Ok(Request::Kick(target)) => ask(tx, Command::Kick(target)).await,
            },
        }
    } else {
        tracing::warn!("control socket: a client with another uid was refused");
        Response::error("permission denied")
    };
    let mut text = serde_json::to_vec(&answer).unwrap_or_default();
    text.push(b'\n');
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, write.write_all(&text)).await;
}

/// Hands `command` to the packet loop and waits for its answer.
async fn ask(tx: &mpsc::Sender<Job>, command: Command) -> Response {
    let (reply, answer) = oneshot::channel();
    let job = Job { command, reply };
    match tokio::time::timeout(ENGINE_TIMEOUT, tx.send(job)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Response::error("the server is stopping"),
        Err(_) => return Response::error("the server is busy; try again"),
    }
    match tokio::time::timeout(ENGINE_TIMEOUT, answer).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => Response::error("the server is stopping"),
        Err(_) => Response::error("the server did not answer in time"),
    }
}

/// Re-reads and validates everything off the packet loop, then has the loop apply it.
async fn reload(tx: &mpsc::Sender<Job>, running: &Running) -> Response {
    let mut config = running.lock().await;
    let current = config.clone();
    let prepared =
        tokio::task::spawn_blocking(move || prepare(&current, |name| std::env::var(name).ok()))
            .await;
    let prepared = match prepared {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Response::error(e),
        Err(e) => return Response::error(format!("reload failed: {e}")),
    };
    let Prepared {
        reload,
        config: next,
        mut notes,
    } = prepared;
    let mut answer = ask(tx, Command::Reload(Box::new(reload))).await;
    if answer.ok {
        *config = next;
        notes.append(&mut answer.notes);
        answer.notes = notes;
    }
    answer
}

/// Seconds since 1970 now (the engine reads no clock).
fn unix_now() -> u64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "the driver side owns the clocks: the wall clock for status"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Answers a request in the packet loop: quick, no I/O.
pub fn answer(engine: &mut Engine<ChaCha20Rng>, now: Instant, job: Job) {
    let response = match job.command {
        Command::Status => Response {
            sessions: Some(engine.status(now, unix_now())),
            ..Response::ok()
        },
        Command::Kick(target) => match engine.kick(now, &target) {
            0 => Response::error(format!("no session of {target}")),
            n => Response {
                kicked: Some(n),
                ..Response::ok()
            },
        },
        Command::Reload(reload) => match engine.reload(now, *reload) {
            Ok(kicked) => Response {
                notes: kicked
                    .iter()
                    .map(|u| format!("user {u:?} is no longer in the users file: kicked"))
                    .collect(),
                ..Response::ok()
            },
            Err(e) => Response::error(e.to_string()),
        },
    };
    let _ = job.reply.send(response);
}

/// Where the CLI finds the control socket.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SocketArgs {
    /// The control socket (default: `[server] control_socket` of --config, else
    /// /run/l2sec/control.sock).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The server's configuration file, to read `[server] control_socket` from.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

impl SocketArgs {
    /// The socket path these arguments name.
    ///
    /// # Errors
    /// The configuration file cannot be loaded.
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.socket {
            return Ok(p.clone());
        }
        match &self.config {
            Some(c) => Ok(Config::load(Some(c), |n| std::env::var(n).ok())?.control_socket),
            None => Ok(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
        }
    }
}

/// Sends one request to the server at `socket` and returns its answer; an answer that is not
/// `ok` becomes the error.
///
/// # Errors
/// No server at the socket, a broken answer, or the server's refusal.
pub fn call(socket: &Path, request: &RequestLine) -> anyhow::Result<Response> {
    use std::io::BufRead as _;
    use std::io::Read as _;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to the control socket {} (is l2sec-server running? --socket or --config name another)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut text = Vec::new();
    std::io::BufReader::new(stream.take(MAX_RESPONSE)).read_until(b'\n', &mut text)?;
    let response: Response =
        serde_json::from_slice(&text).context("the server's answer is not a response")?;
    if !response.ok {
        anyhow::bail!("{}", response.error.as_deref().unwrap_or("refused"));
    }
    Ok(response)
}

/// `l2sec-server status`: a table, or JSON with the field names of [`SessionStatus`].
///
/// # Errors
/// See [`call`].
pub fn status(args: &SocketArgs, json: bool, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let request = RequestLine {
        version: VERSION,
        command: "status".into(),
        target: None,
    };
    let sessions = call(&args.path()?, &request)?.sessions.unwrap_or_default();
    if json {
        #[derive(Serialize)]
        struct Status<'a> {
            sessions: &'a [SessionStatus],
        }
        serde_json::to_writer_pretty(
            &mut *out,
            &Status {
                sessions: &sessions,
            },
        )?;
        writeln!(out)?;
    } else {
        out.write_all(table(&sessions).as_bytes())?;
    }
    Ok(())
}

/// `l2sec-server kick TARGET`.
///
/// # Errors
/// See [`call`]; no session of `target` is an error.
pub fn kick(args: &SocketArgs, target: &str, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let request = RequestLine {
        version: VERSION,
        command: "kick".into(),
        target: Some(target.to_owned()),
    };
    let n = call(&args.path()?, &request)?.kicked.unwrap_or(0);
    writeln!(
        out,
        "kicked {n} session(s) of {}",
        KickTarget::parse(target)
    )?;
    Ok(())
}

/// `l2sec-server reload`.
///
/// # Errors
/// See [`call`]; a refused reload is an error.
pub fn reload_cli(args: &SocketArgs, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let request = RequestLine {
        version: VERSION,
        command: "reload".into(),
        target: None,
    };
    let response = call(&args.path()?, &request)?;
    for note in &response.notes {
        writeln!(out, "{note}")?;
    }
    writeln!(out, "configuration reloaded")?;
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    let mut tenths = 0;
    while value >= 1024 && unit + 1 < UNITS.len() {
        tenths = (value % 1024) * 10 / 1024;
        value /= 1024;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value}.{tenths} {}", UNITS[unit])
    }
}

/// The sessions as an aligned table (one header line, one line per session).
#[must_use]
pub fn table(sessions: &[SessionStatus]) -> String {
    const HEADER: [&str; 12] = [
        "USER", "ADDRESS", "PEER", "NAT", "IKE", "ESP", "AUTH", "STATE", "IN", "OUT", "SINCE",
        "IDLE",
    ];
    if sessions.is_empty() {
        return "no sessions\n".to_owned();
    }
    let dash = || "-".to_owned();
    let rows: Vec<[String; 12]> = sessions
        .iter()
        .map(|s| {
            [
                s.user.clone().unwrap_or_else(dash),
                s.address.map_or_else(dash, |a| a.to_string()),
                s.peer.to_string(),
                if s.nat { "yes" } else { "no" }.to_owned(),
                s.ike.clone().unwrap_or_else(dash),
                s.esp.clone().unwrap_or_else(dash),
                s.auth.clone().unwrap_or_else(dash),
                s.state.clone(),
                format!("{} ({} pkts)", human_bytes(s.bytes_in), s.packets_in),
                format!("{} ({} pkts)", human_bytes(s.bytes_out), s.packets_out),
                s.connected_since.clone().unwrap_or_else(dash),
                s.last_activity_secs.map_or_else(dash, |t| format!("{t}s")),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(&HEADER);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    text
}

#[cfg(test)]
mod tests;
