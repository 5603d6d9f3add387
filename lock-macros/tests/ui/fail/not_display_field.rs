use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

pub struct Request {
    pub ids: Vec<u64>,
}

#[distributed_lock(key = "batch:<req.ids>")]
async fn pay(req: Request) -> Result<(), AppError> {
    let _ = req;
    Ok(())
}

fn main() {}
