// `async fn` in a trait impl, including a trait that requires a `Send` future.
#![deny(warnings)]
use std::future::Future;

use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

// The user's own traits: rustc's `async_fn_in_trait` is about them, not the
// expansion, which this file checks.
#[allow(async_fn_in_trait)]
pub trait Repository {
    async fn save(&self, id: u64) -> Result<(), AppError>;
}

pub trait SendRepository {
    fn load(&self, id: u64) -> impl Future<Output = Result<u64, AppError>> + Send;
}

pub struct Postgres {
    pub shard: u8,
}

impl Repository for Postgres {
    #[distributed_lock(key = "save:<self.shard>:<id>")]
    async fn save(&self, id: u64) -> Result<(), AppError> {
        let _ = id;
        Ok(())
    }
}

impl SendRepository for Postgres {
    #[distributed_lock(key = "load:<self.shard>:<id>", ttl = "5s")]
    async fn load(&self, id: u64) -> Result<u64, AppError> {
        Ok(id)
    }
}

#[allow(async_fn_in_trait)]
pub trait WithDefault {
    fn shard(&self) -> u8;

    #[distributed_lock(key = "default:<id>")]
    async fn provided(&self, id: u64) -> Result<u8, AppError> {
        Ok(self.shard() + id as u8)
    }
}

impl WithDefault for Postgres {
    fn shard(&self) -> u8 {
        self.shard
    }
}

fn main() {
    let db = Postgres { shard: 1 };
    let _ = db.save(1);
    let _ = db.load(2);
    let _ = db.provided(3);
}
