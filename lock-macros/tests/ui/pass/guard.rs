// `guard = name` binds `&LockGuard` inside the body.
#![deny(warnings)]
use distlock::{LockError, LockGuard, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "job:<id>", ttl = "30s", guard = lock)]
async fn job(id: u64) -> Result<u64, AppError> {
    let token: u64 = lock.fencing_token();
    let key: &str = lock.key();
    let _ = key;
    lock.extend(std::time::Duration::from_secs(30)).await?;
    Ok(token + id)
}

#[distributed_lock(key = "job:<id>", guard = held)]
async fn passes_guard_on(id: u64) -> Result<(), AppError> {
    inspect(held);
    let _ = id;
    Ok(())
}

fn inspect(guard: &LockGuard) {
    let _ = guard.remaining();
}

fn main() {
    let _ = job(1);
    let _ = passes_guard_on(1);
}
