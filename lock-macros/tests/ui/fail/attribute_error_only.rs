#![deny(warnings)]

use distlock::{LockError, distributed_lock};

// A mistake in the attribute is reported once: the parameters only the key
// would have used do not add "unused variable" errors on top.
#[distributed_lock(key = "order:<ordr_id>", ttl = "10s")]
async fn pay(order_id: u64, amount: u64) -> Result<(), LockError> {
    Ok(())
}

fn main() {}
