use distlock::{LockError, distributed_lock};

#[distributed_lock(key = "account:<from>", keys = ["account:<from>", "account:<to>"])]
async fn both(from: u32, to: u32) -> Result<(), LockError> {
    let _ = (from, to);
    Ok(())
}

#[distributed_lock(keys = [])]
async fn none() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(keys = "account:<from>")]
async fn not_a_list(from: u32) -> Result<(), LockError> {
    let _ = from;
    Ok(())
}

#[distributed_lock(keys = ["account:<from>", "account:<too>"])]
async fn unknown_placeholder(from: u32, to: u32) -> Result<(), LockError> {
    let _ = (from, to);
    Ok(())
}

#[distributed_lock(keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13", "k14", "k15", "k16"])]
async fn too_many() -> Result<(), LockError> {
    Ok(())
}

fn main() {}
