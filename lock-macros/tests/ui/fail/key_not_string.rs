use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = order_id)]
async fn pay(order_id: u64) -> Result<(), AppError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
