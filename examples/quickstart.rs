//! Two workers pay the same order at once; distlock runs one after the other.
//!
//! Run with `scripts/demo.sh` (or `cargo run --example quickstart`). Uses
//! `REDIS_URL` when set, otherwise starts a throwaway `redis-server`.

mod support;

use std::time::{Duration, Instant};

use distlock::{LockError, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Charges an order. Only one call per order id runs at a time, in every process.
#[distributed_lock(key = "order:<order_id>", ttl = "10s", guard = lock)]
async fn pay(order_id: u64, worker: &str, started: Instant) -> Result<u64, PayError> {
    let token = lock.fencing_token();
    println!(
        "{:>5} ms  {worker}: charging order {order_id} (fencing token {token})",
        started.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // the critical section
    println!("{:>5} ms  {worker}: done", started.elapsed().as_millis());
    Ok(token)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway server (if any) lives until the end of main.
    let (url, _server) = support::redis()?;
    distlock::init(&url).await?;

    let started = Instant::now();
    let (a, b) = tokio::join!(pay(42, "worker-a", started), pay(42, "worker-b", started));
    let (a, b) = (a?, b?);
    println!(
        "fencing tokens: {a} then {b}: {}",
        if a.max(b) > a.min(b) {
            "increasing"
        } else {
            "NOT increasing"
        }
    );
    Ok(())
}
