use distlock::{LockError, distributed_lock};

#[distributed_lock(key = "report", ttl = "55s", hold_at_least = "60s")]
async fn report() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "cleanup", hold_at_least = "1m")]
async fn cleanup() -> Result<(), LockError> {
    Ok(())
}

fn main() {}
