//! The benchmark charts that `cargo bench --bench locks -- --charts` draws
//! into `docs/charts/` (the README links them by these file names), from
//! the figures of this run, with the workspace's `lock-charts`.

use std::path::Path;
use std::time::Duration;

use lock_charts::{Heading, Series, Throughput};

use super::figures::{Benchmark, Figure, Machine};
use super::report;

/// Why a chart was not written.
#[derive(Debug)]
pub enum Unwritten {
    /// A benchmark it draws did not run (a filter left it out, or it failed).
    NotRun(&'static str),
    /// Drawing or writing it failed.
    Failed(String),
}

/// One chart: its file, and how it is drawn from the benchmarks that ran.
struct Chart {
    file: &'static str,
    draw: fn(&str, &[Benchmark]) -> Result<String, Unwritten>,
}

const CHARTS: [Chart; 5] = [
    Chart {
        file: "hot_key_wait_cdf.svg",
        draw: |note, benchmarks| wait_cdf(note, benchmarks, "hot_key"),
    },
    Chart {
        file: "hot_key_processes_wait_cdf.svg",
        draw: |note, benchmarks| wait_cdf(note, benchmarks, "hot_key_processes"),
    },
    Chart {
        file: "acquisitions_per_task.svg",
        draw: acquisitions_per_task,
    },
    Chart {
        file: "uncontended.svg",
        draw: uncontended,
    },
    Chart {
        file: "handoff_cdf.svg",
        draw: handoff_cdf,
    },
];

/// Draws every chart whose benchmarks ran into `dir`; one line per chart
/// saying where it went or why not. `Err` if a chart whose benchmarks ran
/// could not be drawn or written.
pub fn write(dir: &Path, machine: &Machine, benchmarks: &[Benchmark]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let note = note(machine);
    let mut failed = Vec::new();
    for chart in &CHARTS {
        let path = dir.join(chart.file);
        let drawn = (chart.draw)(&note, benchmarks).and_then(|svg| {
            std::fs::write(&path, svg).map_err(|error| Unwritten::Failed(error.to_string()))
        });
        match drawn {
            Ok(()) => println!("chart: {}", path.display()),
            Err(Unwritten::NotRun(name)) => {
                println!(
                    "chart: {} not drawn, the {name} benchmark did not run",
                    chart.file
                );
            }
            Err(Unwritten::Failed(error)) => failed.push(format!("{}: {error}", chart.file)),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// The line under each chart's title: the machine, the run, the command.
fn note(machine: &Machine) -> String {
    let cores = machine
        .cores
        .map_or("unknown cores".to_owned(), |cores| format!("{cores} cores"));
    format!(
        "{cores}, redis-server {}, {} measured per figure after {} of warm-up · \
         cargo bench --bench locks -- --charts",
        machine.redis_version,
        report::duration(Duration::from_secs_f64(machine.measure_secs)),
        report::duration(Duration::from_secs_f64(machine.warmup_secs)),
    )
}

fn find<'a>(benchmarks: &'a [Benchmark], name: &'static str) -> Result<&'a Benchmark, Unwritten> {
    benchmarks
        .iter()
        .find(|benchmark| benchmark.name == name)
        .ok_or(Unwritten::NotRun(name))
}

impl From<lock_charts::ChartError> for Unwritten {
    fn from(error: lock_charts::ChartError) -> Unwritten {
        Unwritten::Failed(error.to_string())
    }
}

fn series(figure: &Figure) -> Series {
    Series {
        label: figure.label.clone(),
        micros: figure
            .samples
            .micros()
            .iter()
            .map(|&us| f64::from(us))
            .collect(),
    }
}

/// The wait CDF of one hot-key benchmark, every algorithm a line.
fn wait_cdf(note: &str, benchmarks: &[Benchmark], name: &'static str) -> Result<String, Unwritten> {
    let benchmark = find(benchmarks, name)?;
    let heading = Heading::new(format!(
        "Wait per acquisition on a hot key, {}",
        benchmark.workload
    ))
    .with_note(note);
    let lines: Vec<Series> = benchmark.figures.iter().map(series).collect();
    Ok(lock_charts::wait_cdf(&heading, &lines)?)
}

/// Both hot-key benchmarks' acquisitions per task, one panel per algorithm
/// and workload.
fn acquisitions_per_task(note: &str, benchmarks: &[Benchmark]) -> Result<String, Unwritten> {
    let mut groups = Vec::new();
    let mut workloads = Vec::new();
    for name in ["hot_key", "hot_key_processes"] {
        let benchmark = find(benchmarks, name)?;
        workloads.push(benchmark.workload.clone());
        groups.extend(benchmark.figures.iter().map(|figure| {
            let label = format!("{}, {}", figure.short_label, benchmark.workload);
            (label, figure.per_task.clone())
        }));
    }
    let heading = Heading::new(format!(
        "Acquisitions per task on a hot key in one window: {}",
        workloads.join("; ")
    ))
    .with_note(note);
    Ok(lock_charts::acquisitions_per_task(&heading, &groups)?)
}

/// U1 and U2: cycles per second and Redis's time per cycle, per algorithm.
fn uncontended(note: &str, benchmarks: &[Benchmark]) -> Result<String, Unwritten> {
    let benchmark = find(benchmarks, "uncontended")?;
    let bars: Vec<Throughput> = benchmark
        .figures
        .iter()
        .map(|figure| Throughput {
            label: figure.label.clone(),
            cycles_per_second: figure.per_second.unwrap_or(0.0),
            redis_micros_per_cycle: figure.redis_us_per_cycle,
        })
        .collect();
    let heading =
        Heading::new(format!("Uncontended lock+unlock, {}", benchmark.workload)).with_note(note);
    Ok(lock_charts::uncontended(&heading, &bars)?)
}

/// L1: every handoff's CDF against the PING round trip, the benchmark's
/// first figure.
fn handoff_cdf(note: &str, benchmarks: &[Benchmark]) -> Result<String, Unwritten> {
    let benchmark = find(benchmarks, "handoff")?;
    let Some((ping, handoffs)) = benchmark.figures.split_first() else {
        return Err(Unwritten::Failed(
            "the handoff benchmark kept no figure".to_owned(),
        ));
    };
    let lines: Vec<Series> = handoffs.iter().map(series).collect();
    let heading = Heading::new(format!(
        "Handoff latency against the PING round trip, {}",
        benchmark.workload
    ))
    .with_note(note);
    Ok(lock_charts::handoff_cdf(&heading, &lines, &series(ping))?)
}
