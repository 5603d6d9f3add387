// Free fns with every option, and keys with and without placeholders.
#![deny(warnings)]
use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

pub struct Receipt;

#[distributed_lock(key = "order:<id>", ttl = "10s")]
async fn pay(id: u64, amount: u64) -> Result<Receipt, AppError> {
    let _ = (id, amount);
    Ok(Receipt)
}

#[distributed_lock(key = "nightly-report")]
async fn nightly_report() -> Result<(), AppError> {
    Ok(())
}

#[distributed_lock(key = "order:<id>:<id>", ttl = "1h2m3s500ms", wait = "0s", manager = "payments")]
pub async fn twice(id: String) -> Result<usize, AppError> {
    Ok(id.len())
}

#[distributed_lock(key = "{literal braces}:<<escaped>>:{<n>}", ttl = "250ms", wait = "1m30s")]
pub(crate) async fn braces(n: i32) -> Result<i32, AppError> {
    Ok(n)
}

#[distributed_lock(key = "unused:<id>")]
async fn key_only(id: u64, _rest: Vec<u8>) -> Result<(), AppError> {
    Ok(())
}

#[distributed_lock(key = "str:<name>")]
async fn unsized_display(name: &str) -> Result<(), AppError> {
    let _ = name;
    Ok(())
}

fn main() {
    let _ = pay(1, 2);
    let _ = nightly_report();
    let _ = twice(String::new());
    let _ = braces(3);
    let _ = key_only(4, Vec::new());
    let _ = unsized_display("x");
}
