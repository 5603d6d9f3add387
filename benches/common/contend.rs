//! Tasks taking turns on locks: acquisitions per second and the wait of each.

use std::time::{Duration, Instant};

use super::locking::{BenchError, Contender, Locker};
use super::stats::Waits;

/// How long tasks may take, after the window, to finish an acquisition they
/// started inside it before they are abandoned.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// Pause after a failed operation, so a broken server does not spin a task.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// The measured span of a run; what precedes `start` is warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn after_warmup(begin: Instant, warmup: Duration, measure: Duration) -> Window {
        Window {
            start: begin + warmup,
            end: begin + warmup + measure,
        }
    }

    pub fn contains(&self, at: Instant) -> bool {
        self.start <= at && at < self.end
    }

    /// When work still under way at the end gets abandoned.
    pub fn drain_deadline(&self) -> tokio::time::Instant {
        (self.end + DRAIN_LIMIT).into()
    }
}

/// What the tasks of one run (or of several processes, merged) did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Acquisitions completed inside the window.
    pub acquisitions: u64,
    /// Acquisitions inside the window, per task: shows starvation.
    pub per_task: Vec<u64>,
    /// The wait of every acquisition whose waiting overlapped the window,
    /// including waits that began in the warm-up or ended after the window,
    /// so that tasks starved for the whole window still show up.
    pub waits: Waits,
    /// Failed acquires and releases.
    pub errors: u64,
    /// Acquisitions abandoned after the drain limit.
    pub abandoned: u64,
    pub first_error: Option<String>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.acquisitions += other.acquisitions;
        self.per_task.extend(other.per_task);
        self.waits.merge(other.waits);
        self.errors += other.errors;
        self.abandoned += other.abandoned;
        self.first_error = self.first_error.take().or(other.first_error);
    }

    pub fn per_second(&self, window: Duration) -> f64 {
        self.acquisitions as f64 / window.as_secs_f64()
    }

    /// Most acquisitions of one task over the fewest of another; infinite
    /// when a task got none, `None` without tasks.
    pub fn max_over_min(&self) -> Option<f64> {
        let min = *self.per_task.iter().min()?;
        let max = *self.per_task.iter().max()?;
        Some(match min {
            0 => f64::INFINITY,
            _ => max as f64 / min as f64,
        })
    }

    fn failed(&mut self, error: &BenchError) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| error.to_string());
    }
}

/// Runs one task per key (repeat a key to make tasks contend on it) taking
/// and immediately releasing its lock until the window ends.
pub async fn run(locker: &Locker, keys: Vec<String>, window: Window) -> Tally {
    let tasks: Vec<_> = keys
        .into_iter()
        .enumerate()
        .map(|(task, key)| tokio::spawn(cycle(locker.contender(task), key, window)))
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await.expect("a benchmark task panicked"));
    }
    tally
}

async fn cycle(mut contender: Contender, key: String, window: Window) -> Tally {
    let mut tally = Tally {
        per_task: vec![0],
        ..Tally::default()
    };
    while Instant::now() < window.end {
        let asked = Instant::now();
        let acquired =
            tokio::time::timeout_at(window.drain_deadline(), contender.acquire(&key)).await;
        let held = match acquired {
            Err(_) => {
                tally.abandoned += 1;
                break;
            }
            Ok(Err(error)) => {
                tally.failed(&error);
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
            Ok(Ok(held)) => held,
        };
        let holding = Instant::now();
        // The critical section is empty.
        if let Err(error) = contender.release(held).await {
            tally.failed(&error);
        }
        if asked < window.end && holding >= window.start {
            tally.waits.record(holding - asked);
        }
        if window.contains(holding) {
            tally.acquisitions += 1;
            tally.per_task[0] += 1;
        }
    }
    tally
}
