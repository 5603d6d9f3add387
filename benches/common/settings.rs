//! What to run and for how long: environment variables and the filter argument.

use std::time::Duration;

/// Seconds measured per figure.
pub const MEASURE_ENV: &str = "DISTLOCK_BENCH_SECS";
/// Seconds of warm-up before each measurement.
pub const WARMUP_ENV: &str = "DISTLOCK_BENCH_WARMUP_SECS";

const DEFAULT_MEASURE: Duration = Duration::from_secs(3);
const DEFAULT_WARMUP: Duration = Duration::from_millis(500);

/// How long each measurement lasts and which benchmarks run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub measure: Duration,
    pub warmup: Duration,
    filter: Option<String>,
}

impl Settings {
    /// Reads [`MEASURE_ENV`], [`WARMUP_ENV`] and the first argument that is
    /// not a flag (a part of a benchmark's name, or a target id). Flags such as the `--bench`
    /// cargo passes are ignored.
    pub fn from_env_and_args() -> Result<Settings, String> {
        let measure = seconds_from_env(MEASURE_ENV, DEFAULT_MEASURE)?;
        if measure.is_zero() {
            return Err(format!("{MEASURE_ENV} must be above zero"));
        }
        Ok(Settings {
            measure,
            warmup: seconds_from_env(WARMUP_ENV, DEFAULT_WARMUP)?,
            filter: std::env::args().skip(1).find(|arg| !arg.starts_with('-')),
        })
    }

    /// Whether the benchmark `name`, which measures the targets `ids`,
    /// passes the filter: a part of its name, or one of its ids (`u2`, `H1`).
    pub fn selects(&self, name: &str, ids: &[&str]) -> bool {
        self.filter.as_deref().is_none_or(|filter| {
            name.contains(filter) || ids.iter().any(|id| id.eq_ignore_ascii_case(filter))
        })
    }

    pub fn filter(&self) -> Option<&str> {
        self.filter.as_deref()
    }
}

fn seconds_from_env(name: &str, default: Duration) -> Result<Duration, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| format!("{name}={text:?} is not a number of seconds")),
    }
}
