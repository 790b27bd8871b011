//! Log output: `tracing` to stderr, human-readable by default or JSON for collectors, and
//! rate-limited summaries of dropped packets (never a line per packet).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter` (e.g. `info`).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colours only for a terminal: logs piped to files or journald stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Counts drops by reason and says, at most once per `interval`, how many there were.
///
/// The engine counts every dropped packet; the driver calls [`DropSummary::add`] with the
/// counter deltas and [`DropSummary::flush`] on each loop turn, which logs one `warn` line per
/// interval with the totals by reason.
#[derive(Debug)]
pub struct DropSummary {
    interval: Duration,
    last: Option<Instant>,
    pending: BTreeMap<&'static str, u64>,
}

impl DropSummary {
    /// A summary written at most once per `interval`.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            pending: BTreeMap::new(),
        }
    }

    /// Records `count` more drops for `reason`.
    pub fn add(&mut self, reason: &'static str, count: u64) {
        if count > 0 {
            *self.pending.entry(reason).or_default() += count;
        }
    }

    /// Logs and clears the pending counts if the interval has passed; returns what was logged.
    pub fn flush(&mut self, now: Instant) -> Option<String> {
        if self.pending.is_empty()
            || self
                .last
                .is_some_and(|t| now.duration_since(t) < self.interval)
        {
            return None;
        }
        let line = self
            .pending
            .iter()
            .map(|(reason, n)| format!("{reason}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        self.pending.clear();
        self.last = Some(now);
        tracing::warn!(drops = %line, "packets dropped since the last summary");
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_summarised_at_most_once_per_interval() {
        #[expect(clippy::disallowed_methods, reason = "test epoch")]
        let t0 = Instant::now();
        let mut s = DropSummary::new(Duration::from_secs(10));
        assert_eq!(s.flush(t0), None, "nothing to say");
        s.add("replay", 3);
        s.add("policy", 1);
        s.add("replay", 2);
        s.add("integrity", 0);
        assert_eq!(s.flush(t0).as_deref(), Some("policy=1 replay=5"));
        s.add("replay", 1);
        assert_eq!(
            s.flush(t0 + Duration::from_secs(9)),
            None,
            "within the interval"
        );
        assert_eq!(
            s.flush(t0 + Duration::from_secs(10)).as_deref(),
            Some("replay=1")
        );
    }
}
