//! Formatting of figures, the per-benchmark tables and the final markdown table.

use std::time::Duration;

use super::stats::Percentiles;

/// One line of the final table: one target of issue 13, as measured.
#[derive(Debug, Clone)]
pub struct TargetLine {
    /// `U1` … `R1`.
    pub id: &'static str,
    pub figure: String,
    pub baseline: String,
    pub ratio: String,
    pub target: &'static str,
    pub checks: Vec<Check>,
}

/// One condition of a target.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: &'static str,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Met,
    Missed,
    /// A figure was missing (no sample, or a zero baseline).
    NotMeasured,
}

impl Check {
    /// `value ≥ bound`; an absent value is not measured.
    pub fn at_least(what: &'static str, value: Option<f64>, bound: f64) -> Check {
        Check::compare(what, value, |value| value >= bound)
    }

    /// `value ≤ bound`; an absent value is not measured.
    pub fn at_most(what: &'static str, value: Option<f64>, bound: f64) -> Check {
        Check::compare(what, value, |value| value <= bound)
    }

    fn compare(what: &'static str, value: Option<f64>, holds: impl Fn(f64) -> bool) -> Check {
        let outcome = match value {
            Some(value) if value.is_finite() && holds(value) => Outcome::Met,
            Some(value) if value.is_finite() || value == f64::INFINITY => Outcome::Missed,
            _ => Outcome::NotMeasured,
        };
        Check { what, outcome }
    }
}

impl TargetLine {
    /// `met`, or `missed: p99` listing the conditions not met.
    pub fn verdict(&self) -> String {
        let listed = |outcome: Outcome| {
            self.checks
                .iter()
                .filter(|check| check.outcome == outcome)
                .map(|check| check.what)
                .collect::<Vec<_>>()
        };
        let missed = listed(Outcome::Missed);
        let unmeasured = listed(Outcome::NotMeasured);
        match (missed.is_empty(), unmeasured.is_empty()) {
            (true, true) => "met".to_owned(),
            (false, true) => format!("missed: {}", missed.join(", ")),
            (true, false) => format!("not measured: {}", unmeasured.join(", ")),
            (false, false) => format!(
                "missed: {}; not measured: {}",
                missed.join(", "),
                unmeasured.join(", ")
            ),
        }
    }
}

const SUMMARY_HEADERS: [&str; 6] = [
    "id",
    "distlock",
    "baseline (same run)",
    "ratio",
    "target",
    "verdict",
];

/// The final table, in markdown, in the order of `ids`.
pub fn print_summary(lines: &[TargetLine], ids: &[&str]) {
    let cells: Vec<Vec<String>> = ids
        .iter()
        .filter_map(|id| lines.iter().find(|line| line.id == *id))
        .map(|line| {
            vec![
                line.id.to_owned(),
                line.figure.clone(),
                line.baseline.clone(),
                line.ratio.clone(),
                line.target.to_owned(),
                line.verdict(),
            ]
        })
        .collect();
    print_markdown(&SUMMARY_HEADERS, &cells);
}

/// An aligned markdown table (readable as text, pasteable as markdown).
pub fn print_markdown(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(headers.iter().map(ToString::to_string).collect());
    line(widths.iter().map(|width| "-".repeat(*width)).collect());
    for row in rows {
        line(row.clone());
    }
    println!();
}

/// `812 µs`, `4.21 ms`, `105.3 ms`, `1.52 s`.
pub fn duration(d: Duration) -> String {
    let micros = d.as_micros();
    match micros {
        0..1_000 => format!("{micros} µs"),
        1_000..10_000 => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        10_000..1_000_000 => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        _ => format!("{:.2} s", d.as_secs_f64()),
    }
}

/// `p50 / p99 / max` of waits, `n/a` without samples. The max shows the
/// starvation that percentiles over all acquisitions hide when one task
/// takes most of them.
pub fn waits(percentiles: Option<Percentiles>) -> String {
    percentiles.map_or_else(
        || "n/a".to_owned(),
        |p| {
            format!(
                "{} / {} / {}",
                duration(p.p50),
                duration(p.p99),
                duration(p.max)
            )
        },
    )
}

/// `1.07`, `∞` when a task got nothing, `n/a` without tasks.
pub fn spread(max_over_min: Option<f64>) -> String {
    match max_over_min {
        None => "n/a".to_owned(),
        Some(spread) if spread.is_infinite() => "∞".to_owned(),
        Some(spread) => format!("{spread:.2}"),
    }
}

/// `12,345/s`.
pub fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second.round() as u64))
}

/// `0.62×`, or `n/a` when there is no quotient.
pub fn ratio(quotient: Option<f64>) -> String {
    quotient.map_or_else(|| "n/a".to_owned(), |quotient| format!("{quotient:.2}×"))
}

/// `numerator / denominator`, `None` when the denominator is not positive.
pub fn quotient(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
