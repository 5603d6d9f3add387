use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "job:<job.type>")]
async fn run(job: Job) -> Result<(), AppError> {
    let _ = job;
    Ok(())
}

pub struct Job {
    pub r#type: String,
}

fn main() {}
