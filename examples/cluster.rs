//! Locks on a Redis Cluster: the same `#[distributed_lock]` fns as on one
//! server; only the manager is built differently, from seed URLs.
//!
//! Run with `cargo run --example cluster`. Uses `REDIS_CLUSTER_URLS`
//! (comma-separated seed URLs, e.g.
//! `redis://10.0.0.1:7000,redis://10.0.0.2:7000`) when set, otherwise starts
//! a throwaway cluster of three masters (needs `redis-server` and
//! `redis-cli`).

mod support;

use std::time::{Duration, Instant};

use distlock::{LockError, LockManager, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Charges an order. Only one call per order id runs at a time; each order's
/// lock lives on the master serving its hash slot.
#[distributed_lock(key = "order:<order_id>", ttl = "10s", guard = lock)]
async fn pay(order_id: u64, worker: &str, started: Instant) -> Result<(u128, u64), PayError> {
    let token = lock.fencing_token();
    let start = started.elapsed().as_millis();
    println!("{start:>5} ms  order {order_id}: {worker} charging (fencing token {token})");
    tokio::time::sleep(Duration::from_millis(200)).await; // the critical section
    println!(
        "{:>5} ms  order {order_id}: {worker} done",
        started.elapsed().as_millis()
    );
    Ok((start, token))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway cluster (if any) lives until the end of main.
    let (seeds, _cluster) = support::cluster()?;
    let manager = LockManager::cluster(seeds.iter().cloned()).build().await?;
    distlock::register(distlock::DEFAULT_MANAGER, manager)?;
    println!(
        "locking on a Redis Cluster reached through {} seed URL(s)",
        seeds.len()
    );

    // Two workers pay each of three orders at once: each order's payments
    // run one after the other, different orders side by side.
    let started = Instant::now();
    let payments = (1..=3).flat_map(|order| {
        ["worker-a", "worker-b"]
            .map(|worker| async move { (order, pay(order, worker, started).await) })
    });
    let mut paid: Vec<(u64, (u128, u64))> = Vec::new();
    for (order, outcome) in futures_util::future::join_all(payments).await {
        paid.push((order, outcome?));
    }
    paid.sort_unstable();
    for order in 1..=3 {
        let tokens: Vec<u64> = paid
            .iter()
            .filter(|(id, _)| *id == order)
            .map(|(_, (_, token))| *token)
            .collect();
        let rising = tokens.windows(2).all(|pair| pair[0] < pair[1]);
        println!(
            "order {order}: fencing tokens {tokens:?} in the order the workers ran: {}",
            if rising {
                "increasing"
            } else {
                "NOT increasing"
            }
        );
    }
    Ok(())
}
