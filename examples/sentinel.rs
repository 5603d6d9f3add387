//! Locks on the primary that Redis Sentinel watches: the same
//! `#[distributed_lock]` fns as on one server; the manager asks the
//! sentinels where the primary is, and follows a failover.
//!
//! Run with `cargo run --example sentinel`. Uses `REDIS_SENTINEL_URLS`
//! (comma-separated sentinel URLs, e.g.
//! `redis://10.0.0.1:26379,redis://10.0.0.2:26379`) and
//! `REDIS_SENTINEL_MASTER` (the master name, default `mymaster`) when set.
//! Otherwise it starts a throwaway topology (one master, two replicas,
//! three sentinels), and halfway through kills the master: the payments
//! after the failover go to the promoted replica, with fencing tokens still
//! rising. Exits non-zero if they do not.

mod support;

use std::time::{Duration, Instant};

use distlock::{LockError, LockManager, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Charges an order; only one call per order id runs at a time.
#[distributed_lock(key = "order:<order_id>", ttl = "10s", guard = lock)]
async fn pay(order_id: u64, worker: &str) -> Result<u64, PayError> {
    let token = lock.fencing_token();
    println!("order {order_id}: {worker} charging (fencing token {token})");
    tokio::time::sleep(Duration::from_millis(100)).await; // the critical section
    Ok(token)
}

/// Two workers pay order 7 at once; the tokens they ran under, in order.
async fn pay_twice() -> Result<Vec<u64>, PayError> {
    let (a, b) = tokio::join!(pay(7, "worker-a"), pay(7, "worker-b"));
    let mut tokens = vec![a?, b?];
    tokens.sort_unstable();
    Ok(tokens)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway topology (if any) lives until the end of main.
    let (sentinels, master_name, mut topology) = support::sentinel()?;
    let manager = LockManager::sentinel(sentinels.iter().cloned(), master_name.as_str())
        .command_timeout(Duration::from_secs(2))
        .build()
        .await?;
    distlock::register(distlock::DEFAULT_MANAGER, manager)?;
    println!(
        "locking on the primary `{master_name}` of {} sentinel(s)",
        sentinels.len()
    );

    let mut tokens = pay_twice().await?;
    if let Some(topology) = topology.as_mut() {
        let killed = Instant::now();
        topology.kill_master();
        let promoted =
            tokio::task::block_in_place(|| topology.wait_for_failover(Duration::from_secs(30)))?;
        println!(
            "the primary was killed; Sentinel promoted {promoted} {:.1} s later",
            killed.elapsed().as_secs_f64()
        );
        tokens.extend(pay_twice().await?);
    }
    let rising = tokens.windows(2).all(|pair| pair[0] < pair[1]);
    println!(
        "fencing tokens in the order the payments ran: {tokens:?}: {}",
        if rising {
            "increasing"
        } else {
            "NOT increasing"
        }
    );
    if !rising {
        return Err("fencing tokens did not increase across the failover".into());
    }
    Ok(())
}
