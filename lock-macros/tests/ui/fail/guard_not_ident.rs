use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "order:<id>", guard = "lock")]
async fn pay(id: u64) -> Result<(), AppError> {
    let _ = id;
    Ok(())
}

fn main() {}
