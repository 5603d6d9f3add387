//! What each round came to, and the run's summary.

use std::time::Duration;

use crate::node::Fill;
use crate::{Lag, Settings};

/// What manager A's acquire came to.
#[derive(Debug)]
pub enum First {
    Granted {
        token: u64,
        /// How long the acquire took (with `--acks 1`, the `WAIT` too).
        took: Duration,
    },
    /// Refused by `replica_acks`: too few replicas acknowledged the lease.
    NotReplicated {
        acknowledged: u32,
    },
    Error(String),
}

/// What manager B's `try_acquire` on the promoted replica came to.
#[derive(Debug)]
pub enum Second {
    Granted {
        token: u64,
        /// What was left of A's validity when B's grant returned; `Some` is
        /// a double grant.
        a_left: Option<Duration>,
        /// A's fencing token, if A held the lock.
        a_token: Option<u64>,
    },
    /// The promoted replica still had A's lease.
    Held,
    /// B got no answer for 10 s.
    Error(String),
}

/// One round.
#[derive(Debug)]
pub struct Round {
    pub a: First,
    pub b: Second,
    /// B's failed attempts before its answer.
    pub retries: u32,
    /// From the SIGKILL to the promoted replica serving.
    pub failover: Duration,
    /// From A's acquire returning to the primary killed.
    pub kill_gap: Duration,
    pub fill: Option<Fill>,
    pub release_errors: Vec<String>,
    pub took: Duration,
}

impl Round {
    /// B was granted the lock while A's validity lasted.
    pub fn double_grant(&self) -> bool {
        matches!(
            self.b,
            Second::Granted {
                a_left: Some(_),
                ..
            }
        )
    }

    /// Every error of the round but the `NotReplicated` refusal.
    pub fn errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let First::Error(error) = &self.a {
            errors.push(format!("A: {error}"));
        }
        if let Second::Error(error) = &self.b {
            errors.push(format!("B: {error}"));
        }
        errors.extend(
            self.release_errors
                .iter()
                .map(|error| format!("release: {error}")),
        );
        errors
    }

    /// The round's line of output.
    pub fn line(&self, number: u32) -> String {
        let a = match &self.a {
            First::Granted { token, took } => {
                format!("A granted (token {token}) in {}", ms(*took))
            }
            First::NotReplicated { acknowledged } => {
                format!("A refused: NotReplicated ({acknowledged} acks)")
            }
            First::Error(error) => format!("A failed: {error}"),
        };
        let b = match &self.b {
            Second::Granted {
                token,
                a_left: Some(left),
                a_token,
            } => format!(
                "B granted (token {token}, A's {}) with {:.1} s of A's validity left: DOUBLE GRANT",
                a_token.map_or_else(|| "?".into(), |t| t.to_string()),
                left.as_secs_f64()
            ),
            Second::Granted { token, .. } => format!("B granted (token {token})"),
            Second::Held => "B refused: A's lease carried over".into(),
            Second::Error(error) => format!("B failed: {error}"),
        };
        let lag = self.fill.map_or_else(String::new, |fill| {
            format!(
                "; lag: {} MiB written, {:.1} MiB waiting",
                fill.written,
                fill.backlog as f64 / f64::from(1 << 20)
            )
        });
        let retries = if self.retries > 0 {
            format!(" after {} errors", self.retries)
        } else {
            String::new()
        };
        format!(
            "round {number:>3}: {a}; killed {} later; promoted {:.2} s after; {b}{retries}{lag}; {:.1} s",
            ms(self.kill_gap),
            self.failover.as_secs_f64(),
            self.took.as_secs_f64()
        )
    }
}

/// Every round of the run.
#[derive(Debug, Default)]
pub struct Report {
    pub rounds: Vec<Round>,
}

impl Report {
    pub fn print(&self, settings: &Settings, total: Duration) {
        let rounds = &self.rounds;
        let doubles: Vec<&Round> = rounds.iter().filter(|r| r.double_grant()).collect();
        let carried = rounds
            .iter()
            .filter(|r| matches!(r.b, Second::Held))
            .count();
        let refused = rounds
            .iter()
            .filter(|r| matches!(r.a, First::NotReplicated { .. }))
            .count();
        let errors: Vec<String> = rounds.iter().flat_map(Round::errors).collect();
        let retries: u32 = rounds.iter().map(|r| r.retries).sum();
        let failovers = spread(rounds.iter().map(|r| r.failover));
        let grants = spread(rounds.iter().filter_map(|r| match r.a {
            First::Granted { took, .. } => Some(took),
            _ => None,
        }));
        let gaps = spread(rounds.iter().map(|r| r.kill_gap));
        println!();
        println!("failover_check {}", settings.describe());
        println!("rounds: {}", rounds.len());
        println!(
            "double grants: {} (B granted the lock while A's validity lasted)",
            doubles.len()
        );
        if !doubles.is_empty() {
            let lefts = spread(doubles.iter().filter_map(|r| match r.b {
                Second::Granted { a_left, .. } => a_left,
                _ => None,
            }));
            let rising = doubles
                .iter()
                .filter(
                    |r| matches!(r.b, Second::Granted { token, a_token: Some(a), .. } if token > a),
                )
                .count();
            println!(
                "  A's validity left at B's grant: {}; B's fencing token above A's in {rising} of {}",
                lefts.secs(),
                doubles.len()
            );
        }
        println!("A's lease carried over (B found the lock held): {carried}");
        println!("NotReplicated refusals: {refused}");
        println!("other errors: {}", errors.len());
        for error in &errors {
            println!("  {error}");
        }
        println!("B's attempts that failed and were retried: {retries}");
        println!("failover (SIGKILL to promotion): {}", failovers.secs());
        println!("A's acquire: {}", grants.millis());
        println!("A's answer to the SIGKILL: {}", gaps.millis());
        if settings.lag != Lag::Off {
            let written: Vec<u32> = rounds
                .iter()
                .filter_map(|r| r.fill.map(|fill| fill.written))
                .collect();
            let backlog = rounds
                .iter()
                .filter_map(|r| r.fill.map(|fill| fill.backlog))
                .min()
                .unwrap_or(0);
            println!(
                "lag: {}–{} MiB written per round with the replicas frozen; at least {:.1} MiB waiting for each in the primary's output buffer",
                written.iter().min().unwrap_or(&0),
                written.iter().max().unwrap_or(&0),
                backlog as f64 / f64::from(1 << 20)
            );
        }
        println!(
            "total: {:.1} s ({:.1} s per round)",
            total.as_secs_f64(),
            total.as_secs_f64() / f64::from(u32::try_from(rounds.len()).unwrap_or(1).max(1))
        );
        println!(
            "RESULT rounds={} double_grants={} not_replicated={refused} other_errors={} carried_over={carried} failover_s={:.2}/{:.2}/{:.2} total_s={:.0}",
            rounds.len(),
            doubles.len(),
            errors.len(),
            failovers.min.as_secs_f64(),
            failovers.median.as_secs_f64(),
            failovers.max.as_secs_f64(),
            total.as_secs_f64()
        );
    }
}

/// Least, median and most of some durations (zero when there are none).
#[derive(Debug, Default, Clone, Copy)]
struct Spread {
    min: Duration,
    median: Duration,
    max: Duration,
}

impl Spread {
    fn secs(self) -> String {
        format!(
            "min {:.2} s, median {:.2} s, max {:.2} s",
            self.min.as_secs_f64(),
            self.median.as_secs_f64(),
            self.max.as_secs_f64()
        )
    }

    fn millis(self) -> String {
        format!(
            "min {}, median {}, max {}",
            ms(self.min),
            ms(self.median),
            ms(self.max)
        )
    }
}

fn spread(durations: impl Iterator<Item = Duration>) -> Spread {
    let mut sorted: Vec<Duration> = durations.collect();
    sorted.sort_unstable();
    let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
        return Spread::default();
    };
    let middle = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2
    } else {
        sorted[middle]
    };
    Spread { min, median, max }
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
