//! `--timeline FILE`: the run drawn as an SVG (one lane per key, bodies
//! coloured by worker process, fault windows shaded, overlaps in red) with
//! the dev-only `lock-charts` crate.

use std::collections::BTreeMap;
use std::path::Path;

use lock_charts::{Body, FaultWindow, Heading, Overlap};

use crate::Settings;
use crate::check::Verdict;
use crate::fault::Fault;
use crate::history::History;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The chart's plot is about this many pixels wide: bodies of one process
/// on one key less than a pixel apart are drawn as one bar.
const PIXELS: u64 = 1200;

/// What the timeline is drawn from; times are `CLOCK_MONOTONIC` µs.
pub struct Drawn<'a> {
    pub settings: &'a Settings,
    pub history: &'a History,
    pub faults: &'a [Fault],
    pub verdict: &'a Verdict,
    /// Time 0 of the chart: when the workers were started.
    pub origin: u64,
    /// The right edge: when the workers were stopped.
    pub end: u64,
}

/// Writes the timeline of `drawn` to `path`.
pub fn write(path: &Path, drawn: &Drawn<'_>) -> Result<(), Error> {
    let lanes: Vec<String> = (0..drawn.settings.keys)
        .map(|key| format!("key {key}"))
        .collect();
    let svg = lock_charts::timeline(
        &heading(drawn),
        &lanes,
        &bars(drawn),
        &windows(drawn),
        &overlaps(drawn),
    )?;
    std::fs::write(path, svg)?;
    println!("timeline written to {}", path.display());
    Ok(())
}

fn heading(drawn: &Drawn<'_>) -> Heading {
    let settings = drawn.settings;
    let overlaps = &drawn.verdict.overlaps;
    Heading::new(format!(
        "nemesis_check --backend {} --duration {} --seed {}",
        settings.backend.name(),
        settings.duration.as_secs(),
        settings.seed,
    ))
    .with_note(format!(
        "{} bodies, {} faults; overlaps: {} with a paused worker, {} after data loss, {} unexplained",
        drawn.history.bodies.len(),
        drawn.faults.len(),
        overlaps.paused,
        overlaps.data_loss,
        overlaps.unexplained,
    ))
}

/// The bodies as bars, those of one process on one key that follow each
/// other within a pixel merged into one.
fn bars(drawn: &Drawn<'_>) -> Vec<Body> {
    let mut by_lane: BTreeMap<(usize, usize), Vec<(u64, u64)>> = BTreeMap::new();
    for body in &drawn.history.bodies {
        let span = (relative(drawn, body.start), relative(drawn, body.end));
        by_lane
            .entry((body.key, body.instance))
            .or_default()
            .push(span);
    }
    let mut bars = Vec::new();
    for ((key, process), spans) in by_lane {
        let merged = merge_within_a_pixel(drawn, spans);
        bars.extend(merged.into_iter().map(|(start_us, end_us)| Body {
            key,
            process,
            start_us,
            end_us,
        }));
    }
    bars
}

/// `spans` sorted, those less than a pixel apart merged: a run of a
/// hundred thousand bodies (or, without the lock, overlaps) stays a small
/// file that draws the same.
fn merge_within_a_pixel(drawn: &Drawn<'_>, mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let pixel = drawn.end.saturating_sub(drawn.origin) / PIXELS;
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(pixel) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn windows(drawn: &Drawn<'_>) -> Vec<FaultWindow> {
    drawn
        .faults
        .iter()
        .map(|fault| FaultWindow {
            start_us: relative(drawn, fault.from),
            end_us: relative(drawn, fault.to),
            label: fault.kind.label().to_owned(),
        })
        .collect()
}

/// Every overlap, whatever its class (the heading says how many of each),
/// those on one key less than a pixel apart merged.
fn overlaps(drawn: &Drawn<'_>) -> Vec<Overlap> {
    let mut by_key: BTreeMap<usize, Vec<(u64, u64)>> = BTreeMap::new();
    for span in &drawn.verdict.overlaps.spans {
        let from = relative(drawn, span.from);
        let to = relative(drawn, span.to).max(from);
        by_key.entry(span.key).or_default().push((from, to));
    }
    let mut overlaps = Vec::new();
    for (key, spans) in by_key {
        let merged = merge_within_a_pixel(drawn, spans);
        overlaps.extend(merged.into_iter().map(|(start_us, end_us)| Overlap {
            key,
            start_us,
            end_us,
        }));
    }
    overlaps
}

fn relative(drawn: &Drawn<'_>, at: u64) -> u64 {
    at.clamp(drawn.origin, drawn.end) - drawn.origin
}
