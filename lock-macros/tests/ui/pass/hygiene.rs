// Names the generated code uses internally cannot clash with user names.
#![deny(warnings)]
use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "hygiene:<__key>:<__guard>:<error>:<acquired>")]
async fn same_names(
    __key: u8,
    __guard: u8,
    __output: u8,
    error: u8,
    acquired: u8,
) -> Result<u8, AppError> {
    let __return_type = 1u8;
    Ok(__key + __guard + __output + error + acquired + __return_type)
}

#[distributed_lock(key = "shadow:<key>", guard = guard)]
async fn guard_named_guard(key: String) -> Result<u64, AppError> {
    let __guard = "not the lock";
    let _ = (key, __guard);
    Ok(guard.fencing_token())
}

mod core {}
mod std {}

#[distributed_lock(key = "shadowed-core:<n>")]
async fn shadowed_std_modules(n: u8) -> Result<u8, AppError> {
    Ok(n)
}

fn main() {
    let _ = same_names(1, 2, 3, 4, 5);
    let _ = guard_named_guard(String::new());
    let _ = shadowed_std_modules(1);
}
