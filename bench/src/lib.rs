//! `l2sec-bench`'s pieces: namespaces, the processes run in them, the traffic, the limits
//! measured in-process, and the report (issue 8). The binary (`src/main.rs`) is the command
//! line around them.
#![forbid(unsafe_code)]

pub mod agent;
pub mod control;
pub mod crypto;
pub mod datapath;
pub mod netns;
pub mod procfs;
pub mod procs;
pub mod relay;
pub mod report;
pub mod traffic;

use std::path::PathBuf;

/// The run's settings after `--quick` and defaults.
#[derive(Debug)]
pub struct Settings {
    /// Rounds per figure.
    pub rounds: usize,
    /// Seconds per data-path measurement.
    pub seconds: f64,
    /// Suites.
    pub suites: Vec<crypto::Suite>,
    /// Encapsulations.
    pub encaps: Vec<datapath::Encap>,
    /// Inner packet sizes.
    pub sizes: Vec<usize>,
    /// Flow counts.
    pub flows: Vec<u16>,
    /// Which ways the data-path traffic goes.
    pub directions: Vec<datapath::Direction>,
    /// The server's `crypto_threads` settings the data path is measured with (0: one per
    /// core).
    pub crypto_threads: Vec<usize>,
    /// Latency connects.
    pub connects: usize,
    /// Load-generator connects per group.
    pub load_connects: usize,
    /// Sessions held.
    pub sessions: Vec<usize>,
    /// Hold time for scale.
    pub hold_seconds: f64,
    /// Where the binaries are.
    pub bins: PathBuf,
}
