// Locks over several keys: templates with fields, a guard over all of them.
#![deny(warnings)]
use distlock::{LockError, MultiLockGuard, distributed_lock};

/// A transfer request.
pub struct Transfer {
    /// The account the money leaves.
    pub from: u64,
    /// The account it goes to.
    pub to: u64,
}

/// Both accounts, whatever the order of the arguments.
#[distributed_lock(keys = ["account:<req.from>", "account:<req.to>"], ttl = "5s", guard = both)]
pub async fn transfer(req: Transfer) -> Result<u64, LockError> {
    let guard: &MultiLockGuard = both;
    Ok(guard.fencing_token() + req.from + req.to)
}

/// One key in `keys` is fine too.
#[distributed_lock(keys = ["report"], wait = "0s")]
pub async fn report() -> Result<(), LockError> {
    Ok(())
}

fn main() {
    drop(transfer(Transfer { from: 1, to: 2 }));
    drop(report());
}
