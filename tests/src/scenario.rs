//! The reference scenario with the real binaries: a [`Topology`] with `l2sec-server` running in
//! `lns` (2.2.2.2) and `l2sec-client` started in `mobile` on demand. Everything it made is
//! removed when it is dropped, failure included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failed setup step is a failed test"
)]

use crate::netns::Topology;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// A binary of this workspace, built next to the running test (`cargo build --bins` first).
#[must_use]
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p {name}`",
        bin.display()
    );
    bin
}

/// Stops `child` and returns what it wrote to stderr.
#[must_use]
pub fn output(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    log
}

/// What [`Scenario::connect_and_ping`] saw.
#[derive(Debug)]
pub struct Connected {
    /// The laptop got 172.16.1.2.
    pub up: bool,
    /// Its ping of 192.168.1.1 through the tunnel was answered.
    pub ping: bool,
    /// The client's log.
    pub client_log: String,
    /// The server's log.
    pub server_log: String,
}

/// How the server is set up.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// PPP authentication the server asks for (`pap`, `chap-md5`, `mschapv2`).
    pub auth: &'a str,
    /// The laptop sits behind an nftables masquerade.
    pub nat: bool,
    /// More lines for the server's `[ipsec]` section.
    pub ipsec: &'a str,
    /// More lines for the server's `[server]` section.
    pub server: &'a str,
    /// More sections, appended to the server's configuration file (`[radius]`, …).
    pub config: &'a str,
    /// The server's listen address (default: its public address 2.2.2.2).
    pub listen: Option<&'a str>,
    /// The address the laptop dials (default 2.2.2.2). Another one is added to the LNS's
    /// public interface as a secondary address first (2.2.2.2 stays its primary).
    pub dial: Option<&'a str>,
}

impl Connected {
    /// Panics, with both logs, unless the laptop got its address and its ping went through.
    /// `what` names the case in the message.
    ///
    /// # Panics
    /// As said.
    pub fn assert_reached_the_intranet(&self, what: &str) {
        let (client, server) = (&self.client_log, &self.server_log);
        assert!(
            self.up,
            "{what}: no address\nclient:\n{client}\nserver:\n{server}"
        );
        assert!(self.ping, "{what}: ping failed\nclient:\n{client}");
    }
}

/// A running reference scenario.
#[derive(Debug)]
pub struct Scenario {
    /// The namespaces.
    pub topo: Topology,
    /// Configuration, users and pid files.
    pub state: PathBuf,
    prefix: String,
    server: Option<Child>,
    /// The address the laptop dials.
    dial: String,
}

impl Scenario {
    /// The server with `auth`, no NAT, defaults otherwise.
    #[must_use]
    pub fn start(tag: &str, auth: &str) -> Self {
        Self::with(
            tag,
            &Options {
                auth,
                ..Options::default()
            },
        )
    }

    /// The server as `options` say; waits until its TUN device is up.
    #[must_use]
    pub fn with(tag: &str, options: &Options<'_>) -> Self {
        let mut s = Self::prepare(tag, options);
        s.launch();
        s
    }

    /// The namespaces and the server's files, without starting the server (to start what it
    /// depends on first, such as a RADIUS server); [`Scenario::launch`] starts it.
    #[must_use]
    pub fn prepare(tag: &str, options: &Options<'_>) -> Self {
        // Engineers sharing a machine each pick a prefix (L2SEC_NETNS_PREFIX, default "l2").
        let base = std::env::var("L2SEC_NETNS_PREFIX").unwrap_or_else(|_| "l2".to_owned());
        let prefix = format!("{base}{tag}{}", std::process::id() % 10_000);
        let topo = if options.nat {
            Topology::reference_behind_nat(&prefix)
        } else {
            Topology::reference(&prefix)
        }
        .unwrap();
        let dial = options.dial.unwrap_or("2.2.2.2");
        if dial != "2.2.2.2" {
            // The LNS's end of the link to the laptop (or to the NAT).
            let dev = format!("{prefix}{}b", if options.nat { "o" } else { "m" });
            crate::netns::ip(&[
                "-n",
                &topo.ns("lns"),
                "addr",
                "add",
                &format!("{dial}/24"),
                "dev",
                &dev,
            ])
            .unwrap();
        }
        let state = std::env::temp_dir().join(format!("{prefix}-state"));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            state.join("users.toml"),
            "[[user]]\nname = \"hb@hb\"\npassword = \"admin@123\"\n",
        )
        .unwrap();
        let config = state.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"{listen}\"\nstate_dir = \"{s}\"\ncontrol_socket = \"{s}/control.sock\"\nip_forward = true\n{server}\n\n[ipsec]\npsk = \"e2e-psk\"\n{ipsec}\n\n[ppp]\nauth = [\"{auth}\"]\n\n[users]\nfile = \"{s}/users.toml\"\n\n[tun]\nname = \"{prefix}s\"\n\n{config}\n",
                s = state.display(),
                ipsec = options.ipsec,
                server = options.server,
                auth = options.auth,
                config = options.config,
                listen = options.listen.unwrap_or("2.2.2.2"),
            ),
        )
        .unwrap();
        Self {
            topo,
            state,
            prefix,
            server: None,
            dial: dial.to_owned(),
        }
    }

    /// Starts the server prepared by [`Scenario::prepare`]; waits until its TUN device is up.
    pub fn launch(&mut self) {
        let config = self.state.join("server.toml");
        let server = self
            .topo
            .spawn(
                "lns",
                binary("l2sec-server").to_str().unwrap(),
                &["run", "--config", config.to_str().unwrap()],
            )
            .unwrap();
        self.server = Some(server);
        let tun = format!("{}s", self.prefix);
        if !self.wait_for("lns", &tun, "172.16.1.1") {
            let log = self.server_log();
            panic!("server did not start:\n{log}");
        }
    }

    /// Whether `ip addr show dev DEV` in `role` shows `text` within 10 s.
    #[must_use]
    pub fn wait_for(&self, role: &str, dev: &str, text: &str) -> bool {
        for _ in 0..100 {
            let out = self
                .topo
                .run(role, "ip", &["-4", "addr", "show", "dev", dev])
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Starts `l2sec-client` in `mobile` as hb@hb with `password` (TUN `l2c0`, routes to the
    /// intranet and to the dmz 10.99.0.0/24, pid file in the state directory).
    #[must_use]
    pub fn client(&self, password: &str) -> Child {
        self.client_with_psk("e2e-psk", password)
    }

    /// As [`Scenario::client`], with the IPsec pre-shared key `psk`.
    #[must_use]
    pub fn client_with_psk(&self, psk: &str, password: &str) -> Child {
        self.client_as_with_psk(psk, "hb@hb", password)
    }

    /// As [`Scenario::client`], as `user`.
    #[must_use]
    pub fn client_as(&self, user: &str, password: &str) -> Child {
        self.client_as_with_psk("e2e-psk", user, password)
    }

    fn client_as_with_psk(&self, psk: &str, user: &str, password: &str) -> Child {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.topo.ns("mobile"),
                binary("l2sec-client").to_str().unwrap(),
            ])
            .args([
                "connect",
                "--server",
                &self.dial,
                "--user",
                user,
                "--route",
                "192.168.1.0/24",
                "--route",
                "10.99.0.0/24",
                "--tun",
                "l2c0",
                "--pid-file",
            ])
            .arg(self.state.join("client.pid"))
            .env("L2SEC_PSK", psk)
            .env("L2SEC_PASSWORD", password)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Moves `len` bytes over TCP from the laptop to 192.168.1.1 and the same bytes back,
    /// through the tunnel, and checks both copies byte for byte.
    ///
    /// # Errors
    /// What went wrong, for the assertion message.
    pub fn tcp_round_trip(&self, len: usize) -> Result<(), String> {
        let blob: Vec<u8> = (0..len)
            .map(|i| {
                let x = u32::try_from(i % 1_000_003).unwrap_or(0);
                x.wrapping_mul(2_654_435_761).to_be_bytes()[1]
            })
            .collect();
        let (file, up, down) = (
            self.state.join("blob"),
            self.state.join("up"),
            self.state.join("down"),
        );
        std::fs::write(&file, &blob).map_err(|e| e.to_string())?;
        let run = |role: &str, script: String| {
            self.topo
                .run(role, "sh", &["-c", &script])
                .map_err(|e| e.to_string())
        };
        // Upload: the intranet server listens, the laptop sends.
        let mut sink = std::process::Command::new("ip")
            .args(["netns", "exec", &self.topo.ns("intranet"), "sh", "-c"])
            .arg(format!(
                "timeout 60 nc -l -N 192.168.1.1 5001 > '{}'",
                up.display()
            ))
            .spawn()
            .map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(300));
        let sent = run(
            "mobile",
            format!("timeout 60 nc -N 192.168.1.1 5001 < '{}'", file.display()),
        )?;
        let _ = sink.wait();
        // Download: the intranet server sends, the laptop receives.
        let mut source = std::process::Command::new("ip")
            .args(["netns", "exec", &self.topo.ns("intranet"), "sh", "-c"])
            .arg(format!(
                "timeout 60 nc -l -N 192.168.1.1 5002 < '{}'",
                file.display()
            ))
            .spawn()
            .map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(300));
        let got = run(
            "mobile",
            format!("timeout 60 nc -d 192.168.1.1 5002 > '{}'", down.display()),
        )?;
        let _ = source.wait();
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        let (u, d) = (read(&up), read(&down));
        if !sent.status.success() || !got.status.success() {
            return Err(format!("nc failed: {sent:?} {got:?}"));
        }
        if u != blob {
            return Err(format!(
                "upload: {} of {len} bytes, content differs",
                u.len()
            ));
        }
        if d != blob {
            return Err(format!(
                "download: {} of {len} bytes, content differs",
                d.len()
            ));
        }
        Ok(())
    }

    /// The server's process id while it runs (`ip netns exec` execs it in place).
    #[must_use]
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// The server's control socket (in the state directory, so that tests running at once
    /// never share one).
    #[must_use]
    pub fn control_socket(&self) -> PathBuf {
        self.state.join("control.sock")
    }

    /// Stops the server and returns its log.
    pub fn server_log(&mut self) -> String {
        self.server.take().map(output).unwrap_or_default()
    }

    /// Connects the laptop with `password`, pings 192.168.1.1 three times through the tunnel,
    /// then stops the client and the server and returns what happened.
    pub fn connect_and_ping(&mut self, password: &str) -> Connected {
        let client = self.client(password);
        let up = self.wait_for("mobile", "l2c0", "172.16.1.2");
        let ping = up
            && self
                .topo
                .run("mobile", "ping", &["-c", "3", "-W", "2", "192.168.1.1"])
                .is_ok_and(|o| o.status.success());
        Connected {
            up,
            ping,
            client_log: output(client),
            server_log: self.server_log(),
        }
    }

    /// Stops the server with SIGTERM (a clean stop), waits up to 10 s for it to exit, and
    /// returns its log.
    pub fn stop_server(&mut self) -> String {
        let Some(mut child) = self.server.take() else {
            return String::new();
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        output(child)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = output(s);
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
