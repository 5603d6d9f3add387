use distlock::{LockError, distributed_lock};

#[distributed_lock(key = "export", permits = 0)]
async fn zero() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "export", permits = -2)]
async fn negative() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "export", permits = 4294967296)]
async fn too_many() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "export", permits = "3")]
async fn a_string() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "export", permits = 2.5)]
async fn not_an_integer() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "export", permits = 3u8)]
async fn suffixed() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "export", permits = 3, mode = "read")]
async fn with_mode() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(keys = ["account:<from>", "account:<to>"], permits = 2)]
async fn with_keys(from: u32, to: u32) -> Result<(), LockError> {
    let _ = (from, to);
    Ok(())
}

#[distributed_lock(key = "export", permits = 2, permits = 3)]
async fn twice() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "export", semaphore = 3)]
async fn alias() -> Result<(), LockError> {
    Ok(())
}

fn main() {}
