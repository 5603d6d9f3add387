//! Formatting of figures, the per-benchmark tables and the final markdown table.

use std::time::Duration;

use super::stats::Percentiles;

/// One line of the final table: distlock against one baseline.
#[derive(Debug, Clone)]
pub struct Row {
    pub benchmark: String,
    pub distlock: String,
    pub baseline: String,
    pub baseline_figure: String,
    pub ratio: String,
    pub distlock_wait: String,
    pub baseline_wait: String,
}

const SUMMARY_HEADERS: [&str; 7] = [
    "Benchmark",
    "distlock",
    "Baseline",
    "Baseline figure",
    "Ratio distlock/baseline",
    "distlock wait p50 / p99 / max",
    "Baseline wait p50 / p99 / max",
];

/// The final table, in markdown.
pub fn print_summary(rows: &[Row]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.benchmark.clone(),
                row.distlock.clone(),
                row.baseline.clone(),
                row.baseline_figure.clone(),
                row.ratio.clone(),
                row.distlock_wait.clone(),
                row.baseline_wait.clone(),
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
    line(headers.iter().map(|h| h.to_string()).collect());
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

/// `12,345/s`.
pub fn rate(per_second: f64) -> String {
    format!("{}/s", thousands(per_second.round() as u64))
}

/// `0.62×`, or `n/a` when the denominator is zero.
pub fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}×", numerator / denominator)
    } else {
        "n/a".to_owned()
    }
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
