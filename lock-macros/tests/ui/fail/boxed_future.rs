// A hand-written boxed future is not an `async fn`, and not the shape
// `#[async_trait]` gives one: the error says what was found and what to write.
use std::future::Future;
use std::pin::Pin;

use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

pub struct Service;

impl Service {
    #[distributed_lock(key = "order:<id>")]
    pub fn pay(&self, id: u64) -> Pin<Box<dyn Future<Output = Result<u64, AppError>> + Send + '_>> {
        Box::pin(async move { Ok(id) })
    }
}

fn main() {}
