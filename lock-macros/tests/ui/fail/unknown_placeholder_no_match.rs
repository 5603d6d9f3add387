use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "order:<customer>")]
async fn pay(order_id: u64, amount: u64) -> Result<(), AppError> {
    let _ = (order_id, amount);
    Ok(())
}

fn main() {}
