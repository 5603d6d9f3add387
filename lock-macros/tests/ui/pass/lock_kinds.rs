// `permits = N` makes a semaphore, `mode = "read"` / `"write"` a side of a
// read-write lock; with and without `renew`, with a bound guard, on free fns
// and methods.
#![deny(warnings)]
use distlock::{LockError, LockGuard, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

/// At most three exports at once, each with a permit of its own.
#[distributed_lock(key = "export:<tenant>", ttl = "10s", permits = 3)]
pub async fn export(tenant: u64) -> Result<u64, AppError> {
    Ok(tenant)
}

/// A renewed permit, its guard bound.
#[distributed_lock(key = "export:<tenant>", permits = 3, renew, guard = permit)]
pub async fn long_export(tenant: u64) -> Result<u64, AppError> {
    let guard: &LockGuard = permit;
    Ok(guard.fencing_token() + tenant)
}

/// A reader: readers hold the lock together.
#[distributed_lock(key = "prices:<list>", mode = "read", wait = "1s")]
pub async fn price(list: u64, item: u64) -> Result<u64, LockError> {
    Ok(list + item)
}

/// The writer, renewed, told when the lock is lost rather than cancelled.
#[distributed_lock(key = "prices:<list>", mode = "write", renew, on_lost = "continue", guard = lock)]
pub async fn reprice(list: u64) -> Result<bool, AppError> {
    let _ = list;
    Ok(lock.is_held())
}

/// A store whose methods take both sides of one read-write lock.
pub struct Prices {
    /// Which list.
    pub list: u64,
}

impl Prices {
    /// A reader, renewed, its guard bound.
    #[distributed_lock(key = "prices:<self.list>", mode = "read", renew, guard = lock)]
    pub async fn read(&self) -> Result<u64, LockError> {
        Ok(lock.fencing_token() + self.list)
    }

    /// The writer, on one line.
    #[rustfmt::skip]
    #[distributed_lock(key = "prices:<self.list>", mode = "write", hold_at_least = "1s")]
    pub async fn write(&self, price: u64) -> Result<u64, AppError> { Ok(price) }
}

fn main() {
    drop(export(1));
    drop(long_export(1));
    drop(price(1, 2));
    drop(reprice(1));
    let prices = Prices { list: 1 };
    drop(prices.read());
    drop(prices.write(3));
}
