// `crate = "..."` finds the facade under another name.
#![deny(warnings)]
pub extern crate distlock as dl;

mod reexport {
    pub use dl as locks;
}

use dl::distributed_lock;

#[derive(Debug)]
pub struct AppError;

impl From<dl::LockError> for AppError {
    fn from(_: dl::LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "renamed:<id>", crate = "dl")]
async fn renamed(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

#[distributed_lock(key = "reexported:<id>", crate = "crate::reexport::locks", guard = lock)]
async fn reexported(id: u64) -> Result<u64, AppError> {
    Ok(lock.fencing_token() + id)
}

#[distributed_lock(key = "absolute:<id>", crate = "::distlock")]
async fn absolute(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

fn main() {
    let _ = renamed(1);
    let _ = reexported(1);
    let _ = absolute(1);
}
