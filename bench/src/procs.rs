//! The processes a bench section runs in its namespaces: the real `l2sec-server`, the client
//! agent (or the real `l2sec-client`), the traffic sink; each stopped when dropped.

use crate::agent::{PASSWORD, PSK, USER};
use crate::netns::Topology;
use anyhow::{Context as _, bail};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

/// Where the bench's binaries are: `--bin-dir`, else next to this executable.
#[must_use]
pub fn bin_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Sends SIGTERM, waits up to `grace`, then kills.
pub fn stop(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .output();
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// How the server is configured beyond the defaults.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The address it listens on.
    pub listen: &'static str,
    /// More lines for `[ipsec]`.
    pub ipsec: String,
    /// More lines for `[ppp]`.
    pub ppp: String,
}

/// A running `l2sec-server`.
#[derive(Debug)]
pub struct Server {
    child: Child,
    state: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Writes its configuration and starts it in `lns`; returns once its TUN device has the
    /// pool's local address (within 10 s).
    ///
    /// # Errors
    /// When it cannot be started or does not come up.
    pub fn start(topo: &Topology, bins: &Path, options: &ServerOptions) -> anyhow::Result<Self> {
        Self::start_with(topo, bins, options, "")
    }

    /// As [`Server::start`], with more lines for `[server]` (`crypto_threads = 1`, say).
    ///
    /// # Errors
    /// When it cannot be started or does not come up.
    pub fn start_with(
        topo: &Topology,
        bins: &Path,
        options: &ServerOptions,
        server_lines: &str,
    ) -> anyhow::Result<Self> {
        let state = std::env::temp_dir().join(format!("{}-server", topo.prefix()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state)?;
        std::fs::write(
            state.join("users.toml"),
            format!("[[user]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\n"),
        )?;
        let config = state.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"{listen}\"\nstate_dir = \"{s}\"\ncontrol_socket = \"{s}/control.sock\"\nip_forward = true\n{server_lines}\n\n\
                 [ipsec]\npsk = \"{PSK}\"\n{ipsec}\n\n[ppp]\n{ppp}\n\n\
                 [pool]\nrange = \"172.16.0.2-172.16.255.254\"\nlocal = \"172.16.0.1\"\n\n\
                 [users]\nfile = \"{s}/users.toml\"\n\n[tun]\nname = \"{p}s\"\n",
                listen = options.listen,
                s = state.display(),
                ipsec = options.ipsec,
                ppp = options.ppp,
                p = topo.prefix(),
            ),
        )?;
        let log = state.join("server.log");
        let program = bins.join("l2sec-server");
        if !program.exists() {
            bail!(
                "{} is missing: build it with `cargo build --release -p l2sec-server -p l2sec-client -p l2sec-bench`",
                program.display()
            );
        }
        let child = topo
            .command("lns", &program.to_string_lossy())
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting l2sec-server")?;
        let server = Self { child, state, log };
        let dev = format!("{}s", topo.prefix());
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let out = topo
                .command("lns", "ip")
                .args(["-4", "addr", "show", "dev", &dev])
                .stdout(Stdio::piped())
                .output()?;
            if String::from_utf8_lossy(&out.stdout).contains("172.16.0.1") {
                return Ok(server);
            }
            if Instant::now() > until {
                bail!(
                    "l2sec-server did not bring {dev} up within 10 s: {}",
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its log.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join(" | ")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(2));
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// What a client's state file says (the `l2sec-client status --json` format).
#[derive(Debug, Clone, Default)]
pub struct ClientState {
    /// `stage`.
    pub stage: String,
    /// The ESP transform's name.
    pub esp: Option<String>,
    /// The phase-1 suite's name.
    pub ike: Option<String>,
    /// ESP in UDP 4500.
    pub nat: Option<bool>,
    /// The tunnel address the server gave.
    pub address: Option<std::net::Ipv4Addr>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl ClientState {
    /// Reads it (missing or half-written: `None`).
    #[must_use]
    pub fn read(path: &Path) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        Some(Self {
            stage: s("stage")?,
            esp: s("esp"),
            ike: s("ike"),
            nat: v.get("nat").and_then(serde_json::Value::as_bool),
            address: s("address").and_then(|a| a.parse().ok()),
            last_error: s("last_error"),
        })
    }
}

/// A client process (the agent or `l2sec-client`) and its state file.
#[derive(Debug)]
pub struct Client {
    child: Child,
    /// Its state file.
    pub state_file: PathBuf,
    log: PathBuf,
}

impl Client {
    /// Wraps a started client.
    #[must_use]
    pub const fn new(child: Child, state_file: PathBuf, log: PathBuf) -> Self {
        Self {
            child,
            state_file,
            log,
        }
    }

    /// Its pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the state file says `connected` (polling every millisecond), at most
    /// `timeout`.
    ///
    /// # Errors
    /// When the client exits or times out first.
    pub fn wait_connected(&mut self, timeout: Duration) -> anyhow::Result<ClientState> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = ClientState::read(&self.state_file)
                && s.stage == "connected"
            {
                return Ok(s);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("the client exited ({status}): {}", self.log_tail());
            }
            if Instant::now() > until {
                let s = ClientState::read(&self.state_file).unwrap_or_default();
                bail!(
                    "not connected within {timeout:?} (stage {}, {:?}): {}",
                    s.stage,
                    s.last_error,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The last lines of its log.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(6)..].join(" | ")
    }

    /// Disconnects cleanly (SIGTERM) and waits up to 5 s.
    pub fn stop(&mut self) {
        stop(&mut self.child, Duration::from_secs(5));
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.state_file);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The traffic sink in the intranet namespace.
#[derive(Debug)]
pub struct Sink {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Sink {
    /// Starts `l2sec-bench sink` in `role`.
    ///
    /// # Errors
    /// When it does not start.
    pub fn start(topo: &Topology, role: &str, flows: u16) -> anyhow::Result<Self> {
        let me = std::env::current_exe()?;
        let mut child = topo
            .command(role, &me.to_string_lossy())
            .args(["sink", "--flows", &flows.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the sink")?;
        let stdin = child.stdin.take().context("sink stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("sink stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("the sink did not start: {line:?}");
        }
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Packets and IP bytes received so far.
    ///
    /// # Errors
    /// When the sink is gone.
    pub fn counters(&mut self) -> anyhow::Result<(u64, u64)> {
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let mut it = line.split_whitespace().map(str::parse::<u64>);
        match (it.next(), it.next()) {
            (Some(Ok(p)), Some(Ok(b))) => Ok((p, b)),
            _ => bail!("sink said {line:?}"),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
