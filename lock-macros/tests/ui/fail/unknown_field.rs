use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

pub struct Transfer {
    pub from: u64,
    pub to: u64,
}

#[distributed_lock(key = "transfer:<req.from>:<req.too>")]
async fn transfer(req: Transfer) -> Result<(), AppError> {
    let _ = req;
    Ok(())
}

fn main() {}
