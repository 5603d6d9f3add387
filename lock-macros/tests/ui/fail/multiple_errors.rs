use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

// Every mistake is reported in one build, and the fn itself still exists
// (`main` calling it raises no further error).
#[distributed_lock(key = "order:<>:<ordr>", tll = "10s", wait = "soon")]
fn pay(order: u64) -> Result<(), AppError> {
    let _ = order;
    Ok(())
}

fn main() {
    let _ = pay(1);
}
