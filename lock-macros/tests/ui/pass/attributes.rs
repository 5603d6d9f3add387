// Attributes on the fn, inner attributes and parameter attributes are kept.
#![deny(warnings)]
#![deny(unused_must_use)]

use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

/// Documented.
///
/// More docs.
#[must_use = "the future does nothing unless awaited"]
#[distributed_lock(key = "attrs:<id>")]
#[allow(clippy::needless_return)]
#[inline]
pub async fn attributed(id: u64, #[allow(unused_variables)] unused: u8) -> Result<u64, AppError> {
    #![allow(unused_mut)]
    let mut value = id;
    return Ok(value);
}

#[cfg(any())]
#[distributed_lock(key = "never:<id>")]
async fn configured_out(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

#[distributed_lock(key = "unsafe:<id>")]
async unsafe fn unsafe_fn(id: u64) -> Result<u64, AppError> {
    Ok(id)
}

fn main() {
    let _ = attributed(1, 2);
    let _ = unsafe { unsafe_fn(1) };
}
