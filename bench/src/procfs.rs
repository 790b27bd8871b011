//! What `/proc` says about a process and the machine: CPU time (utime + stime of all threads),
//! resident memory, whole-machine busy time, and the machine description for the JSON file.

use serde::Serialize;
use std::process::Command;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 almost everywhere).
#[must_use]
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// CPU time `pid` has used so far, user and system, all threads.
#[must_use]
pub fn cpu_time(pid: u32, ticks: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_nanos(
        (utime + stime).saturating_mul(1_000_000_000) / ticks,
    ))
}

/// CPU time (user + system) of the thread `tid` of `pid`, and its name.
fn thread_cpu(pid: u32, tid: &str, ticks: u64) -> Option<(String, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((
        name,
        Duration::from_nanos((utime + stime).saturating_mul(1_000_000_000) / ticks),
    ))
}

/// CPU time of the threads of `pid` whose name starts with `prefix`, and of the others.
#[must_use]
pub fn cpu_time_split(pid: u32, prefix: &str, ticks: u64) -> (Duration, Duration) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let mut split = (Duration::ZERO, Duration::ZERO);
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        if let Some((name, cpu)) = thread_cpu(pid, &tid, ticks) {
            if name.starts_with(prefix) {
                split.0 += cpu;
            } else {
                split.1 += cpu;
            }
        }
    }
    split
}

/// CPU time the whole machine has spent busy so far, all cores: the `user`, `nice`, `system`,
/// `irq`, `softirq` and `steal` columns of `/proc/stat`'s first line (guest time is inside
/// `user`); `None` when it cannot be read.
#[must_use]
pub fn machine_busy(ticks: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let col: Vec<u64> = cpu
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal …
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|i| col.get(*i).copied().unwrap_or(0))
        .sum::<u64>();
    Some(Duration::from_nanos(
        busy.saturating_mul(1_000_000_000) / ticks,
    ))
}

/// Resident memory of `pid` in bytes (`VmRSS`).
#[must_use]
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu_model: String,
    /// Cores this process may run on.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `rustc --version` (of the toolchain on the PATH).
    pub rustc: String,
    /// Memory in bytes.
    pub memory: u64,
    /// Load average when the run started.
    pub loadavg: String,
    /// The git commit of the workspace, if known.
    pub commit: Option<String>,
    /// Host name.
    pub hostname: String,
}

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    })
}

impl Machine {
    /// Reads it.
    #[must_use]
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024;
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            kernel: first_line("uname", &["-r"]).unwrap_or_default(),
            rustc: first_line("rustc", &["--version"]).unwrap_or_default(),
            memory,
            loadavg: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            commit: first_line("git", &["rev-parse", "--short", "HEAD"]),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}
