//! Whole lock+unlock cycles of several ways of locking, taken in turns by
//! one task, so that the noise of a shared machine hits them all alike.

use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use redis::aio::ConnectionManager;

use super::contend::Window;
use super::locking::{BenchError, Contender};
use super::stats::Waits;

/// One way of doing a cycle.
pub enum Cycle {
    /// Acquire and release the lock of the key.
    Lock(Contender),
    /// Two rounds (a cycle's acquire and release) of one `PING` to every
    /// connection at once, each round done when `answers` of them answered:
    /// what any fan-out to these servers costs on this machine.
    Fanout {
        connections: Vec<ConnectionManager>,
        answers: usize,
    },
}

impl Cycle {
    async fn once(&mut self, key: &str) -> Result<(), BenchError> {
        match self {
            Cycle::Lock(contender) => {
                let held = contender.acquire(key).await?;
                contender.release(held).await
            }
            Cycle::Fanout {
                connections,
                answers,
            } => {
                for _ in 0..2 {
                    let mut pings: FuturesUnordered<_> =
                        connections
                            .iter()
                            .map(|connection| {
                                let mut connection = connection.clone();
                                async move {
                                    redis::cmd("PING").query_async::<()>(&mut connection).await
                                }
                            })
                            .collect();
                    for _ in 0..*answers {
                        pings.next().await.ok_or("fewer servers than answers")??;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Runs every cycle in turn until the window ends; the durations of the
/// cycles started inside it, per cycle.
pub async fn run(
    cycles: &mut [Cycle],
    key: &str,
    window: Window,
) -> Result<Vec<Waits>, BenchError> {
    let mut durations = vec![Waits::default(); cycles.len()];
    while Instant::now() < window.end {
        for (cycle, durations) in cycles.iter_mut().zip(&mut durations) {
            let started = Instant::now();
            cycle.once(key).await?;
            if window.contains(started) {
                durations.record(started.elapsed());
            }
        }
    }
    Ok(durations)
}
