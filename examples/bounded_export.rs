//! At most three exports at once across every process: `permits = 3` makes
//! the lock a semaphore. Each export holds a permit of its own, renewed
//! while it runs; a fourth waits for one of the three to finish, and the
//! release hands the freed permit to the export first in line.
//!
//! Run with `cargo run --example bounded_export`. Uses `REDIS_URL` when
//! set, otherwise starts a throwaway `redis-server`. It starts three worker
//! processes (itself, with the argument `worker`), each running four
//! exports at once, and counts in Redis how many run together. Exits
//! non-zero if more than three ever did, or if fewer did (the permits went
//! unused).

mod support;

use std::process::Command;
use std::time::Duration;

use distlock::{LockError, distributed_lock};
use redis::AsyncCommands;

const PROCESSES: usize = 3;
const EXPORTS_PER_PROCESS: u64 = 4;
const RUNNING: &str = "example:exports:running";
const MOST: &str = "example:exports:most";

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// Exports one report. The lock admits three exports at once, whichever
/// processes run them; each holder's permit has its own lease (renewed
/// while the export runs) and its own fencing token.
#[distributed_lock(key = "export", permits = 3, ttl = "2s", renew, wait = "30s")]
async fn export(id: u64, redis: redis::aio::MultiplexedConnection) -> Result<u64, ExportError> {
    let mut redis = redis;
    let running: u64 = redis.incr(RUNNING, 1).await?;
    // The most that ran at once, kept in Redis across the processes.
    redis::cmd("EVAL")
        .arg("if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end")
        .arg(1)
        .arg(MOST)
        .arg(running)
        .query_async::<()>(&mut redis)
        .await?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let _: u64 = redis.decr(RUNNING, 1).await?;
    let token = distlock::current().map_or(0, |lock| lock.fencing_token());
    println!("export {id}: done under permit token {token}");
    Ok(token)
}

/// A worker process: four exports at once.
async fn worker(url: &str, first_id: u64) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    distlock::init(url).await?;
    let redis = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let exports = (first_id..first_id + EXPORTS_PER_PROCESS).map(|id| export(id, redis.clone()));
    for done in futures_util::future::join_all(exports).await {
        done?;
    }
    distlock::shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("worker") {
        let url = std::env::var("REDIS_URL")?;
        let first_id = args.next().and_then(|id| id.parse().ok()).unwrap_or(0);
        return worker(&url, first_id).await;
    }
    // The throwaway server (if any) lives until the end of main.
    let (url, _server) = support::redis()?;
    let mut redis = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let _: () = redis.del(&[RUNNING, MOST]).await?;

    let exe = std::env::current_exe()?;
    let workers: Vec<_> = (0..PROCESSES)
        .map(|process| {
            let first_id = process as u64 * EXPORTS_PER_PROCESS;
            Command::new(&exe)
                .args(["worker", &first_id.to_string()])
                .env("REDIS_URL", &url)
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut worker in workers {
        if !worker.wait()?.success() {
            return Err("a worker process failed".into());
        }
    }

    let most: u64 = redis.get(MOST).await?;
    let exports = PROCESSES as u64 * EXPORTS_PER_PROCESS;
    println!("{exports} exports in {PROCESSES} processes: at most {most} ran at once");
    if most != 3 {
        return Err(format!("3 permits, yet {most} exports ran at once").into());
    }
    Ok(())
}
