//! Several workers wake on the same schedule; `wait = "0s"` lets exactly one
//! of them run each tick while the others skip instead of queueing.
//!
//! Run with `cargo run --example scheduled_job`. Uses `REDIS_URL` when set,
//! otherwise starts a throwaway `redis-server`. Exits non-zero if a tick ran
//! other than exactly once.

mod support;

use std::time::Duration;

use distlock::{LockError, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Sends the digest of one tick; any worker may call it, one runs it.
///
/// The lock keeps the workers of one tick from running together. A worker
/// that arrives after the tick's run has finished would take the free lock
/// and run it again, so a real job also records that the tick is done (say,
/// `SET digest:<tick>:done 1 NX` inside the body) and checks it first.
#[distributed_lock(key = "digest:<tick>", ttl = "5s", wait = "0s")]
async fn send_digest(tick: u32, worker: &str) -> Result<(), JobError> {
    println!("tick {tick}: {worker} sends the digest");
    tokio::time::sleep(Duration::from_millis(150)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway server (if any) lives until the end of main.
    let (url, _server) = support::redis()?;
    distlock::init(&url).await?;

    let workers = ["worker-1", "worker-2", "worker-3"];
    let mut wrong_ticks = 0;
    for tick in 1..=3 {
        let calls = workers
            .iter()
            .map(|worker| async move { (worker, send_digest(tick, worker).await) });
        let mut ran = 0;
        for (worker, outcome) in futures_util::future::join_all(calls).await {
            match outcome {
                Ok(()) => ran += 1,
                Err(JobError::Lock(LockError::Timeout { .. })) => {
                    println!("tick {tick}: {worker} skips, another worker has it");
                }
                Err(error) => return Err(error.into()),
            }
        }
        println!("tick {tick}: ran {ran} time(s)");
        if ran != 1 {
            wrong_ticks += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if wrong_ticks > 0 {
        return Err(format!("{wrong_ticks} tick(s) did not run exactly once").into());
    }
    Ok(())
}
