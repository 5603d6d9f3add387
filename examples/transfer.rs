//! Money moves between accounts in both directions at once; each transfer
//! holds both accounts' locks (`keys = [...]`), so no balance is ever read
//! and written over by two transfers, and A→B against B→A never deadlocks.
//!
//! Run with `cargo run --example transfer`. Uses `REDIS_URL` when set,
//! otherwise starts a throwaway `redis-server`; the balances live in that
//! Redis too. Exits non-zero if a balance is off.

mod support;

use std::time::Duration;

use distlock::{LockError, distributed_lock};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

#[derive(Debug, thiserror::Error)]
enum TransferError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// Moves `amount` from one account to another: two reads, a pause (a call to
/// a payment provider), two writes. Without both locks, two transfers that
/// share an account would overwrite each other's balance.
#[distributed_lock(keys = ["account:<from>", "account:<to>"], ttl = "5s", wait = "30s", guard = both)]
async fn transfer(
    mut db: MultiplexedConnection,
    from: u32,
    to: u32,
    amount: i64,
) -> Result<u64, TransferError> {
    let (from_key, to_key) = (format!("balance:{from}"), format!("balance:{to}"));
    let from_balance: i64 = db.get(&from_key).await?;
    let to_balance: i64 = db.get(&to_key).await?;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let _: () = db.set(&from_key, from_balance - amount).await?;
    let _: () = db.set(&to_key, to_balance + amount).await?;
    Ok(both.fencing_token())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway server (if any) lives until the end of main.
    let (url, _server) = support::redis()?;
    distlock::init(&url).await?;
    let db = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    for account in 1..=3 {
        let _: () = db.clone().set(format!("balance:{account}"), 1_000).await?;
    }

    // 60 transfers at once: 1→2, 2→1, 2→3 and 3→1, 15 of each.
    let routes = [(1, 2, 10), (2, 1, 7), (2, 3, 5), (3, 1, 3)];
    let calls = (0..60).map(|i| {
        let (from, to, amount) = routes[i % routes.len()];
        tokio::spawn(transfer(db.clone(), from, to, amount))
    });
    let mut tokens = Vec::new();
    for call in futures_util::future::join_all(calls).await {
        tokens.push(call??);
    }
    tokens.sort_unstable();
    tokens.dedup();
    println!(
        "60 transfers done, {} distinct fencing tokens",
        tokens.len()
    );

    let mut balances = Vec::new();
    for account in 1..=3 {
        let balance: i64 = db.clone().get(format!("balance:{account}")).await?;
        balances.push(balance);
    }
    // 15 × each route: account 1 gives 150, gets 105 + 45; account 2 gets
    // 150, gives 105 + 75; account 3 gets 75, gives 45.
    let expected = vec![
        1_000 - 150 + 105 + 45,
        1_000 + 150 - 105 - 75,
        1_000 + 75 - 45,
    ];
    println!("balances {balances:?}, expected {expected:?}");
    if balances != expected {
        return Err("a transfer overwrote another's balance".into());
    }
    println!("every balance is exact and the total is conserved");
    Ok(())
}
