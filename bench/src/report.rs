//! Figures, the terminal table and the JSON file (schema of issue 8:
//! `{"machine": {…}, "results": [{"name", "value", "unit", "limit", "ratio", "target_ratio",
//! "target_min", "target_max"}]}`).

use crate::procfs::Machine;
use serde::Serialize;
use std::io::Write as _;

/// Median and spread of one figure over rounds.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Adds a round's value (non-finite values are ignored).
    pub fn push(&mut self, v: f64) {
        if v.is_finite() {
            self.0.push(v);
        }
    }

    /// The values so far.
    #[must_use]
    pub fn values(&self) -> &[f64] {
        &self.0
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (NaN when empty).
    #[must_use]
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
        }
    }

    /// The `q` quantile (nearest rank), NaN when empty.
    #[must_use]
    pub fn quantile(&self, q: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank within a short vector"
        )]
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// Smallest and largest.
    #[must_use]
    pub fn range(&self) -> (f64, f64) {
        let v = self.sorted();
        (
            v.first().copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN),
        )
    }
}

/// One row of the results, as the JSON file carries it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What, e.g. `datapath/udp4500/aes128gcm16/1400B/1flow/throughput`.
    pub name: String,
    /// The median over rounds.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The same-run limit, in `unit`, when there is one.
    pub limit: Option<f64>,
    /// `value / limit`.
    pub ratio: Option<f64>,
    /// The target as a minimum ratio to the limit.
    pub target_ratio: Option<f64>,
    /// The target as a minimum value.
    pub target_min: Option<f64>,
    /// The target as a maximum value.
    pub target_max: Option<f64>,
    /// Spread over rounds, for the table only.
    #[serde(skip)]
    pub spread: Option<(f64, f64)>,
    /// Rounds behind the median, for the table only.
    #[serde(skip)]
    pub rounds: usize,
    /// What the limit is, for the table only.
    #[serde(skip)]
    pub limit_name: &'static str,
}

impl Row {
    /// A figure from samples, with an optional limit (median of its own samples).
    #[must_use]
    pub fn new(name: String, unit: &'static str, value: &Samples) -> Self {
        let (lo, hi) = value.range();
        Self {
            name,
            value: value.median(),
            unit,
            limit: None,
            ratio: None,
            target_ratio: None,
            target_min: None,
            target_max: None,
            spread: (value.values().len() > 1).then_some((lo, hi)),
            rounds: value.values().len(),
            limit_name: "",
        }
    }

    /// A single value (no rounds).
    #[must_use]
    pub fn single(name: String, unit: &'static str, value: f64) -> Self {
        let mut s = Samples::default();
        s.push(value);
        Self::new(name, unit, &s)
    }

    /// Sets the limit and the ratio. `ratios` are the per-round ratios (value / limit of the
    /// same round), whose median is the ratio printed; empty: median value / median limit.
    #[must_use]
    pub fn limit(mut self, what: &'static str, limit: f64, ratios: &Samples) -> Self {
        self.limit = limit.is_finite().then_some(limit);
        self.limit_name = what;
        self.ratio = if ratios.values().is_empty() {
            (limit.is_finite() && limit != 0.0).then(|| self.value / limit)
        } else {
            Some(ratios.median())
        };
        self
    }

    /// The target as a ratio to the limit.
    #[must_use]
    pub const fn target_ratio(mut self, r: f64) -> Self {
        self.target_ratio = Some(r);
        self
    }

    /// The target as a minimum value.
    #[must_use]
    pub const fn target_min(mut self, v: f64) -> Self {
        self.target_min = Some(v);
        self
    }

    /// The target as a maximum value.
    #[must_use]
    pub const fn target_max(mut self, v: f64) -> Self {
        self.target_max = Some(v);
        self
    }

    /// Whether a stated target is met: `None` without a target.
    #[must_use]
    pub fn meets_target(&self) -> Option<bool> {
        let mut verdict = None;
        let mut and = |ok: bool| verdict = Some(verdict.unwrap_or(true) && ok);
        if let (Some(t), Some(r)) = (self.target_ratio, self.ratio) {
            and(r >= t);
        }
        if let Some(t) = self.target_min {
            and(self.value >= t);
        }
        if let Some(t) = self.target_max {
            and(self.value <= t);
        }
        verdict
    }
}

/// Formats a figure with about four significant digits.
#[must_use]
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    /// Adds a row and prints it at once (long runs show progress).
    pub fn add(&mut self, row: Row) {
        say(&Self::line(&row));
        self.rows.push(row);
    }

    /// Records a remark (a skipped section, a failure) and prints it.
    pub fn note(&mut self, text: String) {
        say(&format!("note: {text}"));
        self.notes.push(text);
    }

    /// The rows.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    fn header() -> String {
        format!(
            "{:<58} {:>10} {:<7} {:>21} {:>10} {:<14} {:>7} {:>12}",
            "figure", "median", "unit", "[min – max]", "limit", "(limit is)", "ratio", "target"
        )
    }

    fn line(r: &Row) -> String {
        let spread = r
            .spread
            .map(|(lo, hi)| format!("[{} – {}]", num(lo), num(hi)))
            .unwrap_or_default();
        let target = match (r.target_ratio, r.target_min, r.target_max) {
            (Some(t), Some(m), _) => format!("≥{t}× & ≥{}", num(m)),
            (Some(t), None, _) => format!("≥{t}×"),
            (None, Some(m), _) => format!("≥{}", num(m)),
            (None, None, Some(m)) => format!("≤{}", num(m)),
            (None, None, None) => String::new(),
        };
        let verdict = match r.meets_target() {
            Some(true) => " ok",
            Some(false) => " MISS",
            None => "",
        };
        format!(
            "{:<58} {:>10} {:<7} {:>21} {:>10} {:<14} {:>7} {:>12}{verdict}",
            r.name,
            num(r.value),
            r.unit,
            spread,
            r.limit.map(num).unwrap_or_default(),
            r.limit_name,
            r.ratio.map(|x| format!("{x:.3}")).unwrap_or_default(),
            target,
        )
    }

    /// Prints the whole table.
    pub fn print_table(&self, machine: &Machine) {
        let mut out = String::new();
        out.push_str(&format!(
            "\nl2sec-bench on {} ({} cores, kernel {}, {}, load {})\n",
            machine.cpu_model, machine.cores, machine.kernel, machine.rustc, machine.loadavg
        ));
        out.push_str(&Self::header());
        out.push('\n');
        for r in &self.rows {
            out.push_str(&Self::line(r));
            out.push('\n');
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        say(out.trim_end());
    }

    /// Writes the JSON file.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn write_json(&self, path: &std::path::Path, machine: &Machine) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct File<'a> {
            machine: &'a Machine,
            results: &'a [Row],
        }
        let text = serde_json::to_string_pretty(&File {
            machine,
            results: &self.rows,
        })?;
        std::fs::write(path, text + "\n")?;
        Ok(())
    }
}

/// Prints a line on stdout (the bench's output; a closed pipe is not an error worth dying for).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
