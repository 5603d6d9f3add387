//! The figures of a run kept for what is written after the tables: the
//! charts (`--charts`) and the JSON report (`--json FILE`).

use std::path::Path;

use serde::Serialize;

use super::contend::Tally;
use super::report::TargetLine;
use super::stats::{Summary, Waits};

/// One benchmark's figures, one per algorithm or reference measured.
#[derive(Debug)]
pub struct Benchmark {
    /// The benchmark's name (`hot_key`), as the filter argument knows it.
    pub name: &'static str,
    /// What its table is headed with.
    pub title: String,
    /// What ran, for the charts' titles: `4 processes × 8 tasks`.
    pub workload: String,
    /// What one sample is: `wait per acquisition`, `handoff`, `cycle`.
    pub samples_are: &'static str,
    pub figures: Vec<Figure>,
}

/// One algorithm's (or reference's) figures in one benchmark.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    /// As in the tables.
    pub label: String,
    /// Short enough for a chart's panel caption.
    pub short_label: String,
    /// Acquisitions or cycles per second, for throughput runs.
    pub per_second: Option<f64>,
    /// Redis's commandstats microseconds per cycle (U2).
    pub redis_us_per_cycle: Option<f64>,
    pub samples: Waits,
    /// Acquisitions per task inside the window, for throughput runs.
    pub per_task: Vec<u64>,
    pub errors: u64,
    pub abandoned: u64,
}

impl Figure {
    /// The figures of a throughput run whose window lasted `measure_secs`.
    pub fn of_tally(label: &str, short_label: &str, tally: &Tally, measure_secs: f64) -> Figure {
        Figure {
            label: label.to_owned(),
            short_label: short_label.to_owned(),
            per_second: Some(tally.acquisitions as f64 / measure_secs),
            samples: tally.waits.clone(),
            per_task: tally.per_task.clone(),
            errors: tally.errors,
            abandoned: tally.abandoned,
            ..Figure::default()
        }
    }

    /// A set of latency samples with no throughput: a handoff, a cycle.
    pub fn of_samples(label: &str, samples: &Waits, errors: u64) -> Figure {
        Figure {
            label: label.to_owned(),
            short_label: label.to_owned(),
            samples: samples.clone(),
            errors,
            ..Figure::default()
        }
    }
}

/// Where the run happened, for the report and the charts' notes.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `None` when the OS would not say.
    pub cores: Option<usize>,
    pub redis_version: String,
    pub measure_secs: f64,
    pub warmup_secs: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    machine: &'a Machine,
    benchmarks: Vec<BenchmarkJson<'a>>,
    targets: Vec<TargetJson<'a>>,
}

#[derive(Serialize)]
struct BenchmarkJson<'a> {
    name: &'a str,
    title: &'a str,
    workload: &'a str,
    samples_are: &'a str,
    figures: Vec<FigureJson<'a>>,
}

#[derive(Serialize)]
struct FigureJson<'a> {
    label: &'a str,
    per_second: Option<f64>,
    redis_us_per_cycle: Option<f64>,
    samples: Option<Summary>,
    per_task: &'a [u64],
    errors: u64,
    abandoned: u64,
}

#[derive(Serialize)]
struct TargetJson<'a> {
    id: &'a str,
    figure: &'a str,
    baseline: &'a str,
    ratio: &'a str,
    target: &'a str,
    verdict: String,
}

/// Writes every benchmark's figures and the targets' verdicts to `path`
/// as JSON: the samples summarized (count, mean, quantiles in µs), the
/// acquisitions of every task.
pub fn write_json(
    path: &Path,
    machine: &Machine,
    benchmarks: &[Benchmark],
    targets: &[TargetLine],
) -> Result<(), String> {
    let report = Report {
        machine,
        benchmarks: benchmarks.iter().map(BenchmarkJson::of).collect(),
        targets: targets
            .iter()
            .map(|line| TargetJson {
                id: line.id,
                figure: &line.figure,
                baseline: &line.baseline,
                ratio: &line.ratio,
                target: line.target,
                verdict: line.verdict(),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&report).map_err(|error| error.to_string())?;
    std::fs::write(path, text + "\n").map_err(|error| format!("{}: {error}", path.display()))
}

impl<'a> BenchmarkJson<'a> {
    fn of(benchmark: &'a Benchmark) -> BenchmarkJson<'a> {
        BenchmarkJson {
            name: benchmark.name,
            title: &benchmark.title,
            workload: &benchmark.workload,
            samples_are: benchmark.samples_are,
            figures: benchmark
                .figures
                .iter()
                .map(|figure| FigureJson {
                    label: &figure.label,
                    per_second: figure.per_second,
                    redis_us_per_cycle: figure.redis_us_per_cycle,
                    samples: figure.samples.summary(),
                    per_task: &figure.per_task,
                    errors: figure.errors,
                    abandoned: figure.abandoned,
                })
                .collect(),
        }
    }
}
