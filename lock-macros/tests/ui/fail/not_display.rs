use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[derive(Debug)]
pub struct OrderId(u64);

#[distributed_lock(key = "order:<id>")]
async fn pay(id: OrderId) -> Result<(), AppError> {
    let _ = id;
    Ok(())
}

fn main() {}
