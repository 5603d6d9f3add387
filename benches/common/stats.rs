//! Wait samples, in microseconds, merged across tasks and processes.
//!
//! Every sample is kept (4 bytes each: a hot key's few hundred thousand
//! acquisitions per measured window take a few MB), so that the charts draw
//! whole distributions; the charts themselves reduce each to a few hundred
//! points.

use std::time::Duration;

/// One sample per acquisition: how long the caller waited for the lock.
#[derive(Debug, Default, Clone)]
pub struct Waits {
    micros: Vec<u32>,
}

/// Nearest-rank percentiles of a set of waits.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// The figures of a set of samples in the JSON report.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Summary {
    pub count: usize,
    pub min_us: u32,
    pub mean_us: f64,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub p999_us: u32,
    pub max_us: u32,
}

impl Waits {
    pub fn record(&mut self, wait: Duration) {
        self.micros
            .push(u32::try_from(wait.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn merge(&mut self, other: Waits) {
        self.micros.extend(other.micros);
    }

    pub fn count(&self) -> usize {
        self.micros.len()
    }

    /// `None` when there is no sample.
    pub fn percentiles(&self) -> Option<Percentiles> {
        let sorted = self.sorted();
        let at = |quantile| Duration::from_micros(u64::from(nearest_rank(&sorted, quantile)));
        let max = *sorted.last()?;
        Some(Percentiles {
            count: sorted.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: Duration::from_micros(u64::from(max)),
        })
    }

    /// Count, mean and quantiles in microseconds, for the JSON report;
    /// `None` when there is no sample.
    pub fn summary(&self) -> Option<Summary> {
        let sorted = self.sorted();
        let total: u64 = sorted.iter().map(|&micros| u64::from(micros)).sum();
        Some(Summary {
            count: sorted.len(),
            min_us: *sorted.first()?,
            mean_us: total as f64 / sorted.len() as f64,
            p50_us: nearest_rank(&sorted, 0.50),
            p90_us: nearest_rank(&sorted, 0.90),
            p99_us: nearest_rank(&sorted, 0.99),
            p999_us: nearest_rank(&sorted, 0.999),
            max_us: *sorted.last()?,
        })
    }

    /// Every sample in microseconds, in the order recorded.
    pub fn micros(&self) -> &[u32] {
        &self.micros
    }

    fn sorted(&self) -> Vec<u32> {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        sorted
    }

    /// Comma-separated microseconds, for a child process's result line.
    pub fn encode(&self) -> String {
        let parts: Vec<String> = self.micros.iter().map(u32::to_string).collect();
        parts.join(",")
    }

    pub fn decode(text: &str) -> Result<Waits, String> {
        let micros = text
            .split(',')
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse()
                    .map_err(|_| format!("bad wait sample {part:?}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Waits { micros })
    }
}

/// Nearest rank: the smallest sample with at least `quantile` of all samples
/// at or below it; 0 without samples.
fn nearest_rank(sorted: &[u32], quantile: f64) -> u32 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    match sorted.len() {
        0 => 0,
        len => sorted[rank.clamp(1, len) - 1],
    }
}
