//! What a worker process reports to the parent (one stdout line), and the
//! formatting of figures and tables.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use crate::refusals::Dropped;

/// Everything one worker process observed.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// Calls of the locked fn made (retries after a lock timeout included).
    pub calls: u64,
    /// Sections that ran to the end, per key.
    pub completed: Vec<u64>,
    /// Completed sections that saw another section on their key.
    pub overlaps: u64,
    /// Lock waits that ran out (the section then did not run).
    pub timeouts: u64,
    /// Other errors: Redis failures, unexpected panics.
    pub errors: u64,
    /// Refused writes of bodies this process dropped, by what they were:
    /// late (reached Redis after the drop had released the lock), overlaps
    /// (the next holder took the lock while the body ran), undecided.
    pub late_writes: u64,
    pub unseen_overlaps: u64,
    pub undecided_refusals: u64,
    /// The dropped bodies behind those refusals.
    pub refused_drops: Vec<Dropped>,
    pub cancelled_waiting: u64,
    pub cancelled_in_body: u64,
    pub cancelled_in_release: u64,
    pub panics: u64,
    /// From the common start to the last task's end.
    pub load: Duration,
    /// Alive tokio tasks when idle before the load, at most during it, and
    /// once idle again after it.
    pub tasks_baseline: u64,
    pub tasks_peak: u64,
    pub tasks_after: u64,
    /// How long the tasks took to get back to the baseline after the load.
    pub settle: Duration,
    pub samples: Vec<Sample>,
    pub latencies: Latencies,
}

/// One periodic look at a worker process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the common start.
    pub at: Duration,
    /// Resident set size (`VmRSS` of /proc/self/status).
    pub rss_kib: u64,
    /// Heap allocated and not freed (see `heap.rs`).
    pub heap_kib: u64,
    /// `RuntimeMetrics::num_alive_tasks`.
    pub tasks: u64,
}

impl WorkerReport {
    pub fn encode(&self) -> String {
        let completed: Vec<String> = self.completed.iter().map(u64::to_string).collect();
        let refused_drops: Vec<String> = self
            .refused_drops
            .iter()
            .map(|d| format!("{}:{}:{}", d.token, d.from, d.to))
            .collect();
        let samples: Vec<String> = self
            .samples
            .iter()
            .map(|s| {
                format!(
                    "{}:{}:{}:{}",
                    s.at.as_millis(),
                    s.rss_kib,
                    s.heap_kib,
                    s.tasks
                )
            })
            .collect();
        format!(
            "calls={} completed={} overlaps={} timeouts={} errors={} late_writes={} \
             unseen_overlaps={} undecided_refusals={} refused_drops={} cancelled_waiting={} \
             cancelled_in_body={} cancelled_in_release={} panics={} load_us={} tasks_baseline={} \
             tasks_peak={} tasks_after={} settle_us={} samples={} latencies={}",
            self.calls,
            completed.join(","),
            self.overlaps,
            self.timeouts,
            self.errors,
            self.late_writes,
            self.unseen_overlaps,
            self.undecided_refusals,
            refused_drops.join(","),
            self.cancelled_waiting,
            self.cancelled_in_body,
            self.cancelled_in_release,
            self.panics,
            self.load.as_micros(),
            self.tasks_baseline,
            self.tasks_peak,
            self.tasks_after,
            self.settle.as_micros(),
            samples.join(","),
            self.latencies.encode(),
        )
    }

    pub fn decode(line: &str) -> Result<WorkerReport, String> {
        let fields: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|field| field.split_once('='))
            .collect();
        let text = |name: &str| {
            fields
                .get(name)
                .copied()
                .ok_or_else(|| format!("no {name} in {line:?}"))
        };
        let number = |name: &str| {
            text(name)?
                .parse::<u64>()
                .map_err(|_| format!("bad {name} in {line:?}"))
        };
        let list = |name: &str| -> Result<Vec<Vec<u64>>, String> {
            text(name)?
                .split(',')
                .filter(|item| !item.is_empty())
                .map(|item| {
                    item.split(':')
                        .map(|n| n.parse().map_err(|_| format!("bad {name} {item:?}")))
                        .collect()
                })
                .collect()
        };
        let samples = list("samples")?
            .into_iter()
            .map(|parts| match parts[..] {
                [at, rss_kib, heap_kib, tasks] => Ok(Sample {
                    at: Duration::from_millis(at),
                    rss_kib,
                    heap_kib,
                    tasks,
                }),
                _ => Err(format!("bad sample {parts:?}")),
            })
            .collect::<Result<_, String>>()?;
        Ok(WorkerReport {
            calls: number("calls")?,
            completed: list("completed")?.into_iter().flatten().collect(),
            overlaps: number("overlaps")?,
            timeouts: number("timeouts")?,
            errors: number("errors")?,
            late_writes: number("late_writes")?,
            unseen_overlaps: number("unseen_overlaps")?,
            undecided_refusals: number("undecided_refusals")?,
            refused_drops: list("refused_drops")?
                .into_iter()
                .map(|parts| match parts[..] {
                    [token, from, to] => Ok(Dropped { token, from, to }),
                    _ => Err(format!("bad refused drop {parts:?}")),
                })
                .collect::<Result<_, String>>()?,
            cancelled_waiting: number("cancelled_waiting")?,
            cancelled_in_body: number("cancelled_in_body")?,
            cancelled_in_release: number("cancelled_in_release")?,
            panics: number("panics")?,
            load: Duration::from_micros(number("load_us")?),
            tasks_baseline: number("tasks_baseline")?,
            tasks_peak: number("tasks_peak")?,
            tasks_after: number("tasks_after")?,
            settle: Duration::from_micros(number("settle_us")?),
            samples,
            latencies: Latencies::decode(text("latencies")?)?,
        })
    }

    /// Adds the counts of `other` (not its task or memory figures, which
    /// belong to one process).
    pub fn add_counts(&mut self, other: &WorkerReport) {
        self.calls += other.calls;
        if self.completed.len() < other.completed.len() {
            self.completed.resize(other.completed.len(), 0);
        }
        for (sum, n) in self.completed.iter_mut().zip(&other.completed) {
            *sum += n;
        }
        self.overlaps += other.overlaps;
        self.timeouts += other.timeouts;
        self.errors += other.errors;
        self.late_writes += other.late_writes;
        self.unseen_overlaps += other.unseen_overlaps;
        self.undecided_refusals += other.undecided_refusals;
        self.refused_drops.extend_from_slice(&other.refused_drops);
        self.cancelled_waiting += other.cancelled_waiting;
        self.cancelled_in_body += other.cancelled_in_body;
        self.cancelled_in_release += other.cancelled_in_release;
        self.panics += other.panics;
        self.load = self.load.max(other.load);
        self.latencies.merge(&other.latencies);
    }

    pub fn completed_total(&self) -> u64 {
        self.completed.iter().sum()
    }

    pub fn cancelled(&self) -> u64 {
        self.cancelled_waiting + self.cancelled_in_body + self.cancelled_in_release
    }

    /// The mean of a sampled figure over the first samples taken after
    /// `warmup`, and over as many last ones.
    pub fn after_warmup_and_last(
        &self,
        warmup: Duration,
        figure: fn(&Sample) -> u64,
    ) -> Option<(f64, f64)> {
        let warm: Vec<u64> = self
            .samples
            .iter()
            .filter(|s| s.at >= warmup)
            .map(figure)
            .collect();
        let n = (warm.len() / 10).clamp(2, 5);
        if warm.len() < 2 * n {
            return None;
        }
        let mean = |values: &[u64]| values.iter().sum::<u64>() as f64 / values.len() as f64;
        Some((mean(&warm[..n]), mean(&warm[warm.len() - n..])))
    }
}

/// Call durations in buckets about 19% wide: four per power of two of
/// microseconds. Mergeable across processes; allocated once, so recording
/// never grows the heap the soak watches.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Counts by [`bucket`]; every `u64` of microseconds has one.
    buckets: Vec<u64>,
    max_us: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            buckets: vec![0; BUCKETS],
            max_us: 0,
        }
    }
}

const BUCKETS: usize = 256;

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(us)] += 1;
        self.max_us = self.max_us.max(us);
    }

    pub fn merge(&mut self, other: &Latencies) {
        for (sum, count) in self.buckets.iter_mut().zip(&other.buckets) {
            *sum += count;
        }
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The upper edge of the bucket holding quantile `q`.
    pub fn quantile(&self, q: f64) -> Duration {
        let total: u64 = self.buckets.iter().sum();
        let rank = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(upper_edge(bucket).min(self.max_us));
            }
        }
        self.max()
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    fn encode(&self) -> String {
        let mut text = format!("max{}", self.max_us);
        for (bucket, count) in self.buckets.iter().enumerate() {
            if *count > 0 {
                let _ = write!(text, ";{bucket}:{count}");
            }
        }
        text
    }

    fn decode(text: &str) -> Result<Latencies, String> {
        let bad = || format!("bad latencies {text:?}");
        let mut parts = text.split(';');
        let mut latencies = Latencies {
            max_us: parts
                .next()
                .and_then(|max| max.strip_prefix("max"))
                .and_then(|max| max.parse().ok())
                .ok_or_else(bad)?,
            ..Latencies::default()
        };
        for part in parts {
            let (bucket, count) = part.split_once(':').ok_or_else(bad)?;
            let bucket: usize = bucket.parse().map_err(|_| bad())?;
            *latencies.buckets.get_mut(bucket).ok_or_else(bad)? =
                count.parse().map_err(|_| bad())?;
        }
        Ok(latencies)
    }
}

/// 0..=3 µs exactly, then four buckets per power of two (below 256).
fn bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let log = us.ilog2() as usize;
    log * 4 + ((us >> (log - 2)) & 3) as usize
}

fn upper_edge(bucket: usize) -> u64 {
    if bucket < 4 {
        return bucket as u64;
    }
    let (log, quarter) = (bucket / 4, (bucket % 4) as u64);
    ((5 + quarter) << (log - 2)) - 1
}

/// `20000` as `20,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration with a unit that suits it.
pub fn duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 10_000 {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if us < 1_000_000 {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

pub fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

pub fn kib(kib: f64) -> String {
    format!("{kib:.0} KiB")
}

/// An aligned markdown table: readable as text, pasteable into a README.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&mut headers.iter().copied());
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut rules.iter().map(String::as_str));
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}
