//! An operator's command line: look at a lock, or free one whose holder is
//! stuck.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example admin -- inspect order:42
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example admin -- force-release order:42
//! cargo run --example admin -- demo     # both, on a throwaway redis-server
//! ```
//!
//! `DISTLOCK_KEY_PREFIX` sets the key prefix when the application's managers
//! use another than the default `distlock:`. Exits non-zero when the command
//! fails.

mod support;

use std::fmt::Write as _;
use std::time::Duration;

use distlock::{ForcedRelease, LockInfo, LockManager};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, key) = match args.as_slice() {
        [command] if command == "demo" => return demo().await,
        [command, key] => (command.as_str(), key.as_str()),
        _ => return Err(USAGE.into()),
    };
    let url = std::env::var("REDIS_URL").map_err(|_| "set REDIS_URL to the Redis to act on")?;
    let manager = manager(&url).await?;
    match command {
        "inspect" => println!("{}", describe(&manager.inspect(key).await?)),
        "force-release" => println!("{key}: {}", forced(manager.force_release(key).await?)),
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

const USAGE: &str = "usage: admin inspect <key> | admin force-release <key> | admin demo";

async fn manager(url: &str) -> Result<LockManager, Error> {
    let prefix = std::env::var("DISTLOCK_KEY_PREFIX")
        .unwrap_or_else(|_| distlock::DEFAULT_KEY_PREFIX.to_owned());
    Ok(LockManager::builder(url).key_prefix(prefix).build().await?)
}

/// One line about a lock, never its owner token.
fn describe(info: &LockInfo) -> String {
    let mut line = format!("{}: ", info.key);
    if info.is_held() {
        let _ = write!(line, "held by {}", info.holders);
        if let Some(left) = info.remaining {
            let _ = write!(line, ", {} ms of its lease left", left.as_millis());
        }
    } else {
        line.push_str("free");
    }
    if let Some(counter) = info.fencing_counter {
        let _ = write!(line, "; fencing counter {counter}");
    }
    if let Some(waiters) = info.waiters {
        let _ = write!(line, "; {waiters} waiting");
    }
    line
}

fn forced(freed: ForcedRelease) -> String {
    match freed {
        ForcedRelease::Freed {
            remaining: Some(left),
        } => format!("freed ({} ms of its lease were left)", left.as_millis()),
        ForcedRelease::Freed { remaining: None } => "freed (its lease had no expiry)".to_owned(),
        ForcedRelease::NotHeld => "nobody held it".to_owned(),
        _ => "freed".to_owned(),
    }
}

/// A stuck holder on a throwaway server, found and freed.
async fn demo() -> Result<(), Error> {
    let (url, _server) = support::redis()?;
    let stuck = manager(&url).await?;
    let operator = manager(&url).await?;
    let guard = stuck
        .lock("order:42")
        .ttl(Duration::from_secs(60))
        .acquire()
        .await?;
    println!("a worker holds order:42 and hangs");
    println!("{}", describe(&operator.inspect("order:42").await?));
    println!(
        "order:42: {}",
        forced(operator.force_release("order:42").await?)
    );
    println!("{}", describe(&operator.inspect("order:42").await?));
    let outcome = guard.release().await?;
    println!("the stuck worker's release finds the lock {outcome:?}");
    Ok(())
}
