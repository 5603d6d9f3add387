// The generated future is `Send` whenever the body's is.
#![deny(warnings)]
use std::sync::Arc;

use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

fn assert_send<T: Send>(_: T) {}

#[distributed_lock(key = "order:<id>", guard = lock)]
async fn pay(id: u64, note: String) -> Result<u64, AppError> {
    tokio::task::yield_now().await;
    let _ = (note, lock.fencing_token());
    Ok(id)
}

pub struct Service {
    pub name: String,
}

impl Service {
    #[distributed_lock(key = "svc:<self.name>:<id>")]
    pub async fn handle(self: Arc<Self>, id: u64) -> Result<u64, AppError> {
        tokio::task::yield_now().await;
        Ok(id)
    }

    #[distributed_lock(key = "svc:<self.name>")]
    pub async fn handle_ref(&self) -> Result<usize, AppError> {
        tokio::task::yield_now().await;
        Ok(self.name.len())
    }
}

/// `Send` but not `Sync`.
pub struct Counter(pub std::cell::Cell<u8>);

impl std::fmt::Display for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.get())
    }
}

// A `!Sync` argument used only in the key: it is formatted before any await.
#[distributed_lock(key = "counter:<counter>")]
async fn not_sync_in_key(counter: Counter) -> Result<(), AppError> {
    tokio::task::yield_now().await;
    Ok(())
}

fn main() {
    assert_send(pay(1, String::new()));
    let service = Arc::new(Service { name: "s".into() });
    assert_send(service.clone().handle(1));
    assert_send(service.handle_ref());
    assert_send(not_sync_in_key(Counter(std::cell::Cell::new(1))));
}
