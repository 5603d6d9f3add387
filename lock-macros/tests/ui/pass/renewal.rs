// `renew` keeps the lease alive while the body runs; `on_lost` says what
// happens to the body if the lock is lost anyway.
#![deny(warnings)]
use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "report:<id>", ttl = "10s", renew)]
async fn cancelled_when_lost(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

#[distributed_lock(key = "report:<id>", ttl = "10s", renew = true, on_lost = "continue", guard = lock)]
async fn told_when_lost(id: u64) -> Result<bool, AppError> {
    let _ = id;
    Ok(lock.is_held())
}

#[distributed_lock(key = "report:<id>", renew = false, on_lost = "cancel")]
async fn bounded_by_the_lease(id: u64) -> Result<(), AppError> {
    let context = distlock::current().expect("inside a locked call");
    let _ = (id, context.fencing_token(), context.remaining());
    Ok(())
}

fn main() {
    let _ = cancelled_when_lost(1);
    let _ = told_when_lost(1);
    let _ = bounded_by_the_lease(1);
}
