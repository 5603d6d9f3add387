//! A process that exits while a task holds a lock, without calling
//! `distlock::shutdown`: `main` returns, the runtime drops the task and its
//! guard, and the guard's release (which that runtime no longer runs) is
//! done on a thread of its own before the process exits. Another replica
//! gets `job:7` at once instead of one 30 s lease later.
//!
//! Prefer `distlock::shutdown().await` at the end of `main` (see
//! `axum_orders`): it also covers locks whose guards are not dropped.
//!
//! `cargo run --example exit_while_holding [current_thread]` (a
//! multi-thread runtime by default). Uses `REDIS_URL` when set, otherwise
//! starts a throwaway `redis-server`.

mod support;

use std::time::{Duration, Instant};

use distlock::{LockError, distributed_lock};

#[distributed_lock(key = "job:<id>", ttl = "30s", renew)]
async fn long_job(id: u64) -> Result<u64, LockError> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(id)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Declared first, dropped last: the server outlives the runtime.
    let (url, _server) = support::redis()?;
    let runtime = match std::env::args().nth(1).as_deref() {
        Some("current_thread") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    // What `#[tokio::main] async fn main` does: run, then drop the runtime.
    runtime.block_on(async {
        distlock::init(&url).await?;
        tokio::spawn(long_job(7));
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!("main returns while job:7 is held");
        Ok::<_, LockError>(())
    })?;
    let exiting = Instant::now();
    drop(runtime);
    println!("runtime shut down in {:?}", exiting.elapsed());

    // Another replica, as it were: job:7 is free already.
    let check = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let free = check.block_on(async {
        let other = distlock::LockManager::connect(&url).await?;
        match other.lock("job:7").try_acquire().await? {
            Some(guard) => {
                let _ = guard.release().await?;
                Ok::<_, LockError>(true)
            }
            None => Ok(false),
        }
    })?;
    println!("job:7 is {}", if free { "free" } else { "still held" });
    Ok(())
}
