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
    let spans = drawn.history.bodies.iter().map(|body| {
        let span = (relative(drawn, body.start), relative(drawn, body.end));
        ((body.key, body.instance), span)
    });
    merged_by_lane(drawn, spans)
        .into_iter()
        .map(|((key, process), (start_us, end_us))| Body {
            key,
            process,
            start_us,
            end_us,
        })
        .collect()
}

/// `spans` grouped by lane and sorted, those of a lane less than a pixel
/// apart merged: a run of a hundred thousand bodies (or, without the lock,
/// overlaps) stays a small file that draws the same.
fn merged_by_lane<L: Ord + Copy>(
    drawn: &Drawn<'_>,
    spans: impl Iterator<Item = (L, (u64, u64))>,
) -> Vec<(L, (u64, u64))> {
    let pixel = drawn.end.saturating_sub(drawn.origin) / PIXELS;
    let mut by_lane: BTreeMap<L, Vec<(u64, u64)>> = BTreeMap::new();
    for (lane, span) in spans {
        by_lane.entry(lane).or_default().push(span);
    }
    let mut merged: Vec<(L, (u64, u64))> = Vec::new();
    for (lane, mut spans) in by_lane {
        spans.sort_unstable();
        for (start, end) in spans {
            match merged.last_mut() {
                Some((last_lane, last))
                    if *last_lane == lane && start <= last.1.saturating_add(pixel) =>
                {
                    last.1 = last.1.max(end);
                }
                _ => merged.push((lane, (start, end))),
            }
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
    let spans = drawn.verdict.overlaps.spans.iter().map(|span| {
        let from = relative(drawn, span.from);
        (span.key, (from, relative(drawn, span.to).max(from)))
    });
    merged_by_lane(drawn, spans)
        .into_iter()
        .map(|(key, (start_us, end_us))| Overlap {
            key,
            start_us,
            end_us,
        })
        .collect()
}

fn relative(drawn: &Drawn<'_>, at: u64) -> u64 {
    at.clamp(drawn.origin, drawn.end) - drawn.origin
}
