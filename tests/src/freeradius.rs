//! A real FreeRADIUS 3.x for the end-to-end tests: a copy of the packaged configuration
//! (`/etc/freeradius/3.0`) with listeners on loopback ports of the test's own namespace, one
//! client (the LNS, 127.0.0.1), a users file written by the test, no reject delay, and every
//! answer signed with Message-Authenticator (FreeRADIUS before 3.2.5 signs only EAP answers
//! unless told to). Accounting lands in `detail` files under [`FreeRadius::radacct`]. The
//! process is killed and its directory removed when the value is dropped, failure included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failed setup step is a failed test"
)]

use crate::netns::Topology;
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The packaged configuration this harness copies.
pub const PACKAGED: &str = "/etc/freeradius/3.0";

/// Whether FreeRADIUS is installed (`scripts/test` installs it).
#[must_use]
pub fn installed() -> bool {
    Path::new(PACKAGED).join("radiusd.conf").exists()
        && Command::new("freeradius")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// One running FreeRADIUS.
#[derive(Debug)]
pub struct FreeRadius {
    /// Its configuration directory (removed on drop).
    pub dir: PathBuf,
    /// Authentication port on 127.0.0.1 (accounting is the next one).
    pub port: u16,
    child: Option<Child>,
}

/// Removes every top-level `listen { … }` block of a virtual server file.
fn without_listen_sections(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let at = rest
            .match_indices("listen {")
            .find(|(i, _)| *i == 0 || rest.as_bytes()[i - 1] == b'\n')
            .map(|(i, _)| i);
        let Some(start) = at else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        let mut depth = 0usize;
        let mut end = start;
        for (i, c) in rest[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
}

impl FreeRadius {
    /// Starts FreeRADIUS in namespace `role` of `topo` on 127.0.0.1:`port` (auth) and
    /// `port + 1` (accounting), shared secret `secret`, with `users` as its users file
    /// (`mods-config/files/authorize` syntax). Waits until it is ready.
    #[must_use]
    pub fn start(topo: &Topology, role: &str, port: u16, secret: &str, users: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{}-radius{port}", topo.ns(role)));
        let _ = std::fs::remove_dir_all(&dir);
        let copy = Command::new("cp")
            .args(["-rL", PACKAGED])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(copy.success(), "copying {PACKAGED}");
        let d = dir.display().to_string();
        let conf = dir.join("radiusd.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with("raddbdir =") {
                    format!("raddbdir = {d}")
                } else if t.starts_with("logdir =") {
                    format!("logdir = {d}/log")
                } else if t.starts_with("run_dir =") {
                    format!("run_dir = {d}/run")
                } else if t.starts_with("user = freerad") || t.starts_with("group = freerad") {
                    format!("#{l}")
                } else if t.starts_with("reject_delay =") {
                    "\treject_delay = 0".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&conf, text.join("\n")).unwrap();
        for sub in ["log", "run"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // Only the default virtual server, on our ports.
        let _ = std::fs::remove_file(dir.join("sites-enabled/inner-tunnel"));
        let _ = std::fs::remove_file(dir.join("sites-enabled/default"));
        let site = std::fs::read_to_string(dir.join("sites-available/default")).unwrap();
        let site = without_listen_sections(&site)
            .replacen(
                "server default {",
                &format!(
                    "server default {{\nlisten {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {port}\n}}\n\
                     listen {{\n\ttype = acct\n\tipaddr = 127.0.0.1\n\tport = {}\n}}\n",
                    port + 1
                ),
                1,
            )
            .replacen(
                "post-auth {",
                "post-auth {\n\tupdate reply {\n\t\tMessage-Authenticator := 0x00\n\t}",
                1,
            )
            .replacen(
                "Post-Auth-Type REJECT {",
                "Post-Auth-Type REJECT {\n\t\tupdate reply {\n\t\t\tMessage-Authenticator := 0x00\n\t\t}",
                1,
            );
        std::fs::write(dir.join("sites-enabled/default"), site).unwrap();
        std::fs::write(
            dir.join("clients.conf"),
            format!("client lns {{\n\tipaddr = 127.0.0.1\n\tsecret = {secret}\n}}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("mods-config/files/authorize"), users).unwrap();
        let mut r = Self {
            dir,
            port,
            child: None,
        };
        r.resume(topo, role);
        r
    }

    /// (Re)starts the process on the same configuration and waits until it is ready.
    pub fn resume(&mut self, topo: &Topology, role: &str) {
        let log = self.dir.join("log/stdout");
        let child = Command::new("ip")
            .args(["netns", "exec", &topo.ns(role), "freeradius", "-f", "-d"])
            .arg(&self.dir)
            .args(["-l", "stdout"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Ready to process requests") {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let mut err = String::new();
                if let Some(mut e) = self.child.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("freeradius exited ({status}):\n{text}\n{err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("freeradius did not get ready:\n{}", self.log());
    }

    /// Kills the process (the configuration stays for [`FreeRadius::resume`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What it logged.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/stdout")).unwrap_or_default()
    }

    /// Where the detail files of the LNS's accounting go.
    #[must_use]
    pub fn radacct(&self) -> PathBuf {
        self.dir.join("log/radacct/127.0.0.1")
    }

    /// Every accounting record in the detail files, oldest first, as attribute → value (quotes
    /// removed).
    #[must_use]
    pub fn accounting(&self) -> Vec<BTreeMap<String, String>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.radacct())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        let mut records = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for block in text.split("\n\n") {
                let record: BTreeMap<String, String> = block
                    .lines()
                    .filter_map(|l| l.trim().split_once(" = "))
                    .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                    .collect();
                if !record.is_empty() {
                    records.push(record);
                }
            }
        }
        records
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_sections_are_removed_with_their_nested_blocks() {
        let site = "server default {\nlisten {\n\ttype = auth\n\tlimit {\n\t\tx = 1\n\t}\n}\n\
                    authorize {\n\tfiles\n}\n#\tlisten {\nlisten {\n\ttype = acct\n}\n}\n";
        let out = without_listen_sections(site);
        assert_eq!(
            out,
            "server default {\n\nauthorize {\n\tfiles\n}\n#\tlisten {\n\n}\n"
        );
    }
}
