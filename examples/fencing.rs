//! Fencing tokens: the storage, not the lock, has the last word.
//!
//! A lease can run out under a holder that is paused (a long GC pause, a
//! stopped VM, a swapped-out process) without the holder noticing. Here
//! worker A takes the lock on invoice 7 with a 300 ms lease and then stalls
//! for 600 ms. Its lease ends, worker B takes the lock with a higher fencing
//! token and writes. When A wakes up it still believes it holds the lock and
//! writes too, but the ledger has seen B's higher token and rejects A's
//! write.
//!
//! Run with `cargo run --example fencing`. Uses `REDIS_URL` when set,
//! otherwise starts a throwaway `redis-server`. Exits non-zero unless the
//! stale write was rejected.

mod support;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use distlock::{LockError, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("write rejected: fencing token {token} is older than {newest}, already seen")]
    Stale { token: u64, newest: u64 },
}

/// The storage the lock protects, standing in for a database. It remembers
/// the highest fencing token it has seen per record and refuses writes that
/// carry a lower one. (In a real database: a `fencing_token` column and
/// `UPDATE ... WHERE fencing_token <= $token`.)
#[derive(Default)]
struct Ledger {
    records: Mutex<HashMap<String, (u64, String)>>,
}

impl Ledger {
    fn write(&self, record: &str, token: u64, value: String) -> Result<(), AppError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&(newest, _)) = records.get(record)
            && token < newest
        {
            return Err(AppError::Stale { token, newest });
        }
        records.insert(record.to_owned(), (token, value));
        Ok(())
    }
}

static LEDGER: std::sync::LazyLock<Ledger> = std::sync::LazyLock::new(Ledger::default);

/// Deep in the storage layer: the fencing token comes from the lock of the
/// call this runs in, without passing a guard down.
fn save_invoice(id: u32, value: String) -> Result<(), AppError> {
    let token = distlock::current().map_or(0, |lock| lock.fencing_token());
    LEDGER.write(&format!("invoice:{id}"), token, value)
}

#[distributed_lock(key = "invoice:<id>", ttl = "300ms")]
async fn settle(id: u32, worker: &str, stall: Duration, t0: Instant) -> Result<(), AppError> {
    let lock = distlock::current().expect("inside the locked call");
    let ms = || t0.elapsed().as_millis();
    println!(
        "{:>4} ms  {worker}: holds invoice {id}, fencing token {}",
        ms(),
        lock.fencing_token()
    );
    if !stall.is_zero() {
        println!(
            "{:>4} ms  {worker}: stalls for {} ms (its lease is 300 ms)",
            ms(),
            stall.as_millis()
        );
        tokio::time::sleep(stall).await;
        println!(
            "{:>4} ms  {worker}: wakes up; lock still held: {}",
            ms(),
            lock.is_held()
        );
    }
    let written = save_invoice(id, format!("settled by {worker}"));
    match &written {
        Ok(()) => println!("{:>4} ms  {worker}: write accepted", ms()),
        Err(error) => println!("{:>4} ms  {worker}: {error}", ms()),
    }
    written
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (url, _server) = support::redis()?;
    distlock::init(&url).await?;
    let t0 = Instant::now();

    let a = tokio::spawn(settle(7, "worker-a", Duration::from_millis(600), t0));
    // B arrives a moment later and waits for the lock.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = settle(7, "worker-b", Duration::ZERO, t0).await;
    let a = a.await?;

    let stored = LEDGER
        .records
        .lock()
        .unwrap_or_else(PoisonError::into_inner)["invoice:7"]
        .1
        .clone();
    println!("invoice 7: {stored}");
    match (a, b) {
        (Err(AppError::Stale { .. }), Ok(())) if stored == "settled by worker-b" => Ok(()),
        (a, b) => {
            Err(format!("expected a stale write from worker-a, got a: {a:?}, b: {b:?}").into())
        }
    }
}
