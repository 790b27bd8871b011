//! Rate-limited warnings for dropped packets: at most one per reason per interval, naming the
//! reason, one example source and how many drops of that reason went unreported since.
//!
//! Sans-IO: the driver passes the engine's cumulative counters and the time after each loop
//! turn; a flood of garbage yields one line per reason per interval, never one per packet
//! (STYLE.md §12).

use crate::engine::stats::{DropReason, EngineStats};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The default interval between two warnings of one reason.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// One warning to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropWarning {
    /// Why the packets were dropped.
    pub reason: DropReason,
    /// The source of the latest of them, when it had one (packets from TUN have none).
    pub example: Option<IpAddr>,
    /// Drops of this reason since the last warning, beyond the one this line stands for.
    pub suppressed: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The cumulative counter when last observed.
    seen: u64,
    /// Drops not yet reported.
    pending: u64,
    last_warned: Option<Instant>,
}

/// The limiter: one slot per [`DropReason`], no allocation.
#[derive(Debug)]
pub struct DropWarnings {
    interval: Duration,
    slots: [Slot; DropReason::COUNT],
}

impl DropWarnings {
    /// Warnings at most once per `interval` and reason.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            slots: [Slot::default(); DropReason::COUNT],
        }
    }

    /// Takes the engine's counters at `now` and hands `warn` each warning that is due.
    pub fn observe(
        &mut self,
        now: Instant,
        stats: &EngineStats,
        mut warn: impl FnMut(DropWarning),
    ) {
        for (slot, reason) in self.slots.iter_mut().zip(DropReason::ALL) {
            let total = stats.drops(reason);
            slot.pending += total.saturating_sub(slot.seen);
            slot.seen = total;
            let due = slot
                .last_warned
                .is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
            if slot.pending > 0 && due && reason.warns() {
                warn(DropWarning {
                    reason,
                    example: stats.example(reason),
                    suppressed: slot.pending - 1,
                });
                slot.pending = 0;
                slot.last_warned = Some(now);
            }
        }
    }
}

/// Logs one warning at `warn`.
pub fn log(w: DropWarning) {
    let peer = w.example.map(tracing::field::display);
    tracing::warn!(
        reason = w.reason.name(),
        peer,
        suppressed = w.suppressed,
        "packets dropped"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::DropReason;

    #[expect(clippy::disallowed_methods, reason = "the simulation's epoch")]
    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_warning_carries_reason_peer_and_count_in_json_and_human_form() {
        use crate::logging::{LogFormat, subscriber};
        let warning = DropWarning {
            reason: DropReason::Integrity,
            example: Some(IpAddr::from([203, 0, 113, 5])),
            suppressed: 41,
        };
        for (format, expected) in [
            (
                LogFormat::Json,
                [
                    r#""reason":"integrity""#,
                    r#""peer":"203.0.113.5""#,
                    r#""suppressed":41"#,
                ],
            ),
            (
                LogFormat::Human,
                ["reason=\"integrity\"", "peer=203.0.113.5", "suppressed=41"],
            ),
        ] {
            let path =
                std::env::temp_dir().join(format!("l2mx-log-{}-{format:?}", std::process::id()));
            let file = std::sync::Arc::new(std::fs::File::create(&path).unwrap());
            let filter = tracing_subscriber::EnvFilter::new("warn");
            tracing::subscriber::with_default(subscriber(format, filter, false, file), || {
                log(warning);
            });
            let text = std::fs::read_to_string(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            assert_eq!(text.lines().count(), 1, "{text}");
            for field in expected {
                assert!(text.contains(field), "{format:?}: {field} in {text}");
            }
        }
    }

    #[test]
    fn reasons_are_limited_separately() {
        let mut stats = crate::engine::stats::sample(); // 3 malformed
        let mut limiter = DropWarnings::new(INTERVAL);
        let t = t0();
        let mut n = 0;
        limiter.observe(t, &stats, |_| n += 1);
        assert_eq!(n, 1);
        stats = crate::engine::stats::sample_with_replay();
        limiter.observe(t, &stats, |w| {
            n += 1;
            assert_eq!(w.reason, DropReason::Replay);
        });
        assert_eq!(n, 2, "a new reason is not held back by another's interval");
    }
}
