// Methods of `#[async_trait]` impls, `Send` and `?Send`, with every kind of
// parameter async-trait rewrites, compile without a warning, and the
// futures stay `Send` exactly where async-trait's are.
#![deny(warnings)]

use std::rc::Rc;
use std::sync::Arc;

use async_trait::async_trait;
use distlock::{LockError, distributed_lock};

/// An application error that a lock error converts into.
#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

/// A pair of ids.
pub struct Pair {
    /// The first.
    pub from: u64,
    /// The second.
    pub to: u64,
}

/// A tonic-shaped service.
#[async_trait]
pub trait Service: Send + Sync {
    /// `&self` and a plain parameter.
    async fn plain(&self, id: u64) -> Result<u64, AppError>;
    /// A tuple pattern, a struct pattern, a reference, a `mut` binding and a `_`.
    async fn patterns(
        &self,
        pair: (u64, u64),
        by_ref: &Pair,
        tenant: &str,
        counter: u8,
        ignored: u8,
    ) -> Result<u64, AppError>;
    /// `&mut self`, and the guard bound in the body.
    async fn guarded(&mut self, id: u64) -> Result<u64, AppError>;
    /// A receiver by `Arc`.
    async fn shared(self: Arc<Self>, id: u64) -> Result<u64, AppError>;
    /// A generic parameter.
    async fn generic<T: std::fmt::Display + Send + 'static>(&self, id: T) -> Result<String, AppError>;
    /// A default method, locked in the trait.
    #[distributed_lock(key = "default:<id>")]
    async fn provided(&self, id: u64) -> Result<u64, AppError> {
        Ok(id + self.name().len() as u64)
    }
    /// The name of this shard.
    fn name(&self) -> &str;
}

/// One shard of the service.
pub struct Shard {
    /// Its name.
    pub name: String,
    /// Calls so far.
    pub calls: u64,
}

#[async_trait]
impl Service for Shard {
    #[distributed_lock(key = "plain:<self.name>:<id>", ttl = "5s")]
    async fn plain(&self, id: u64) -> Result<u64, AppError> {
        tokio::task::yield_now().await;
        Ok(id + self.name.len() as u64)
    }

    #[distributed_lock(key = "patterns:<a>:<b>:<from>:<to>:<tenant>:<counter>")]
    async fn patterns(
        &self,
        (a, b): (u64, u64),
        &Pair { from, to }: &Pair,
        tenant: &str,
        mut counter: u8,
        _: u8,
    ) -> Result<u64, AppError> {
        counter += 1;
        tokio::task::yield_now().await;
        Ok(a + b + from + to + tenant.len() as u64 + u64::from(counter))
    }

    #[distributed_lock(key = "guarded:<self.name>:<id>", guard = lock, renew)]
    async fn guarded(&mut self, id: u64) -> Result<u64, AppError> {
        self.calls += 1;
        tokio::task::yield_now().await;
        Ok(lock.fencing_token() + id + self.calls)
    }

    #[distributed_lock(key = "shared:<self.name>:<id>", wait = "0s")]
    async fn shared(self: Arc<Self>, id: u64) -> Result<u64, AppError> {
        Ok(id)
    }

    #[distributed_lock(key = "generic:<id>")]
    async fn generic<T: std::fmt::Display + Send + 'static>(&self, id: T) -> Result<String, AppError> {
        Ok(id.to_string())
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// A `?Send` trait: its futures may hold what cannot cross threads.
#[async_trait(?Send)]
pub trait LocalService {
    /// Holds an `Rc` across an await.
    async fn local(&self, id: u64) -> Result<usize, AppError>;
}

/// A service that is neither `Send` nor `Sync`.
pub struct Local {
    /// Shared within one thread.
    pub entries: Rc<Vec<u64>>,
}

#[async_trait(?Send)]
impl LocalService for Local {
    #[distributed_lock(key = "local:<id>")]
    async fn local(&self, id: u64) -> Result<usize, AppError> {
        let entries = Rc::clone(&self.entries);
        tokio::task::yield_now().await;
        Ok(entries.len() + id as usize)
    }
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    let mut shard = Shard {
        name: "a".to_owned(),
        calls: 0,
    };
    assert_send(shard.plain(1));
    let pair = Pair { from: 1, to: 2 };
    assert_send(shard.patterns((1, 2), &pair, "t", 0, 0));
    assert_send(shard.generic(5));
    assert_send(shard.provided(1));
    assert_send(shard.guarded(1));
    assert_send(Arc::new(shard).shared(1));
    let local = Local {
        entries: Rc::new(Vec::new()),
    };
    drop(local.local(1));
}
