use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

pub trait Payments {
    #[distributed_lock(key = "order:<id>")]
    async fn pay(&self, id: u64) -> Result<(), AppError>;
}

fn main() {}
