//! Wait samples, in microseconds, merged across tasks and processes.

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
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let at = |quantile: f64| {
            // Nearest rank: the smallest sample with at least `quantile` of
            // all samples at or below it.
            let rank = (quantile * sorted.len() as f64).ceil() as usize;
            Duration::from_micros(u64::from(sorted[rank.clamp(1, sorted.len()) - 1]))
        };
        let max = *sorted.last()?;
        Some(Percentiles {
            count: sorted.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: Duration::from_micros(u64::from(max)),
        })
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
