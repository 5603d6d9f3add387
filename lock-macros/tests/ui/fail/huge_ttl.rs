use distlock::distributed_lock;

#[derive(Debug)]
pub struct AppError;

impl From<distlock::LockError> for AppError {
    fn from(_: distlock::LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "order:<id>", ttl = "721h")]
async fn pay(id: u64) -> Result<(), AppError> {
    Ok(())
}

fn main() {}
