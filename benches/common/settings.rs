//! What to run, for how long, and what to write besides the tables:
//! environment variables, the filter argument and the output flags.

use std::path::PathBuf;
use std::time::Duration;

/// Seconds measured per figure.
pub const MEASURE_ENV: &str = "DISTLOCK_BENCH_SECS";
/// Seconds of warm-up before each measurement.
pub const WARMUP_ENV: &str = "DISTLOCK_BENCH_WARMUP_SECS";

/// Draws the charts into [`DEFAULT_CHARTS`], or `--charts=DIR` into DIR.
pub const CHARTS_FLAG: &str = "--charts";
/// Writes the figures as JSON: `--json FILE` or `--json=FILE`.
pub const JSON_FLAG: &str = "--json";
/// Where `--charts` draws, relative to the repository: the README links
/// the charts there.
pub const DEFAULT_CHARTS: &str = "docs/charts";

const DEFAULT_MEASURE: Duration = Duration::from_secs(3);
const DEFAULT_WARMUP: Duration = Duration::from_millis(500);

/// How long each measurement lasts and which benchmarks run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub measure: Duration,
    pub warmup: Duration,
    filter: Option<String>,
    /// The folder the charts go to, if they are drawn.
    pub charts: Option<PathBuf>,
    /// The file the figures go to as JSON, if they are written.
    pub json: Option<PathBuf>,
}

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Arguments {
    filter: Option<String>,
    charts: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl Settings {
    /// Reads [`MEASURE_ENV`], [`WARMUP_ENV`], the output flags
    /// ([`CHARTS_FLAG`], [`JSON_FLAG`]) and the first other argument that
    /// is not a flag (a part of a benchmark's name, or a target id). Other
    /// flags, such as the `--bench` cargo passes, are ignored.
    pub fn from_env_and_args() -> Result<Settings, String> {
        let measure = seconds_from_env(MEASURE_ENV, DEFAULT_MEASURE)?;
        if measure.is_zero() {
            return Err(format!("{MEASURE_ENV} must be above zero"));
        }
        let arguments = Arguments::parse(std::env::args().skip(1))?;
        Ok(Settings {
            measure,
            warmup: seconds_from_env(WARMUP_ENV, DEFAULT_WARMUP)?,
            filter: arguments.filter,
            charts: arguments.charts,
            json: arguments.json,
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

impl Arguments {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Arguments, String> {
        let mut parsed = Arguments::default();
        while let Some(arg) = args.next() {
            if arg == CHARTS_FLAG {
                let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
                parsed.charts = Some(repository.join(DEFAULT_CHARTS));
            } else if let Some(dir) = arg.strip_prefix("--charts=") {
                parsed.charts = Some(PathBuf::from(dir));
            } else if arg == JSON_FLAG {
                let file = args.next().ok_or("--json needs a file: --json FILE")?;
                parsed.json = Some(PathBuf::from(file));
            } else if let Some(file) = arg.strip_prefix("--json=") {
                parsed.json = Some(PathBuf::from(file));
            } else if !arg.starts_with('-') && parsed.filter.is_none() {
                parsed.filter = Some(arg);
            }
        }
        Ok(parsed)
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
