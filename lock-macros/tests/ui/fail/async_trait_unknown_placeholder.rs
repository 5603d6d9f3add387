// In an `#[async_trait]` impl, the key is checked against the parameters as
// the user wrote them, not as async-trait renamed them.
use async_trait::async_trait;
use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[async_trait]
pub trait Payments {
    async fn pay(&self, order: (u64, u64), _: u8) -> Result<u64, AppError>;
}

pub struct Service;

#[async_trait]
impl Payments for Service {
    #[distributed_lock(key = "order:<ordr>")]
    async fn pay(&self, (order, amount): (u64, u64), _: u8) -> Result<u64, AppError> {
        Ok(order + amount)
    }
}

fn main() {}
