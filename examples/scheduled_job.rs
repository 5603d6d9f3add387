//! Several workers wake on the same schedule; `wait = "0s"` lets exactly one
//! of them run each tick while the others skip instead of queueing, and
//! `hold_at_least` keeps the tick's lock held after a quick run, so a worker
//! whose clock is a little behind skips too instead of running it again.
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

/// Sends the digest of one tick; every worker calls it, one runs it.
///
/// The lock keeps the workers of one tick from running together, and stays
/// held for a second after it was taken however soon the digest is sent: a
/// worker that arrives after the run is over, its clock behind, finds the
/// lock still held and skips. (A worker later than `hold_at_least` would
/// run the tick again: a real job also records that the tick is done, say
/// `SET digest:<tick>:done 1 NX` in the body, and checks it first.)
#[distributed_lock(key = "digest:<tick>", ttl = "5s", hold_at_least = "1s", wait = "0s")]
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

    // worker-3's clock runs 400 ms behind: it wakes after the tick's run
    // (150 ms) is over.
    let workers = [("worker-1", 0), ("worker-2", 0), ("worker-3", 400)];
    let mut wrong_ticks = 0;
    for tick in 1..=3 {
        let calls = workers.iter().map(|&(worker, behind_ms)| async move {
            tokio::time::sleep(Duration::from_millis(behind_ms)).await;
            (worker, send_digest(tick, worker).await)
        });
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
