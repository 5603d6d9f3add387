use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[derive(Debug)]
pub struct OtherError;

#[distributed_lock(key = "order:<id>")]
async fn pay(id: u64) -> Result<u64, OtherError> {
    Ok(id)
}

fn main() {}
