//! Redlock: one lock over five independent Redis servers, held by whoever a
//! majority of them granted it to, so locking goes on while a minority of
//! them is down.
//!
//! Two workers settle the same invoice at once through `#[distributed_lock]`
//! on a Redlock manager: one after the other, with rising fencing tokens.
//! Then two of the five servers crash, and the workers do it again on the
//! three that are left.
//!
//! Run with `cargo run --example redlock`. Uses `REDLOCK_URLS` (the
//! comma-separated URLs of independent Redis masters) when set, and then
//! stops none of them; otherwise starts five throwaway `redis-server`s.

mod support;

use std::time::{Duration, Instant};

use distlock::{LockError, LockManager, distributed_lock};

#[distributed_lock(key = "invoice:<id>", ttl = "5s", manager = "redlock", guard = lock)]
async fn settle(id: u32, worker: &str, t0: Instant) -> Result<(Instant, u64), LockError> {
    let (held_since, token) = (Instant::now(), lock.fencing_token());
    println!(
        "{:>5} ms  {worker}: settles invoice {id} (fencing token {token})",
        t0.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_millis(200)).await; // the critical section
    println!("{:>5} ms  {worker}: done", t0.elapsed().as_millis());
    Ok((held_since, token))
}

/// Both workers at once; their fencing tokens in the order they held the lock.
async fn both_workers(t0: Instant) -> Result<Vec<u64>, LockError> {
    let (a, b) = tokio::join!(settle(7, "worker-a", t0), settle(7, "worker-b", t0));
    let mut held = vec![a?, b?];
    held.sort_unstable_by_key(|&(held_since, _)| held_since);
    Ok(held.into_iter().map(|(_, token)| token).collect())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway servers (if any) live until the end of main.
    let (urls, mut servers) = support::redlock_nodes(5)?;
    let manager = LockManager::redlock(&urls)
        // Each node's time to answer one step; the default, 100 ms, suits a
        // quiet network, this leaves room for a busy test machine.
        .command_timeout(Duration::from_millis(500))
        .build()
        .await?;
    distlock::register("redlock", manager)?;
    println!(
        "redlock over {} nodes: a lock needs {} of them",
        urls.len(),
        urls.len() / 2 + 1
    );

    let t0 = Instant::now();
    let mut tokens = both_workers(t0).await?;
    if servers.is_empty() {
        println!("nodes from REDLOCK_URLS: stopping none of them");
    } else {
        servers[0].stop();
        servers[1].stop();
        println!("{:>5} ms  2 of 5 nodes stopped", t0.elapsed().as_millis());
        tokens.extend(both_workers(t0).await?);
    }
    let rising = tokens.windows(2).all(|pair| pair[0] < pair[1]);
    println!(
        "fencing tokens {tokens:?}: {}",
        if rising {
            "increasing"
        } else {
            "NOT increasing"
        }
    );
    Ok(())
}
