// Every body shape a user writes compiles without a single warning: the
// expansion must never make a lint fire in the user's crate. The same file is
// compiled under clippy by tests/lint_free.rs, which trybuild cannot do.
#![deny(warnings)]

use std::fmt::Display;

use distlock::{LockError, distributed_lock};

/// An application error that a lock error converts into.
#[derive(Debug)]
pub enum AppError {
    /// The lock could not be taken.
    Lock(LockError),
    /// The input was not a number.
    Parse(std::num::ParseIntError),
}

impl Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Lock(error) => write!(f, "lock: {error}"),
            AppError::Parse(error) => write!(f, "parse: {error}"),
        }
    }
}

impl From<LockError> for AppError {
    fn from(error: LockError) -> Self {
        AppError::Lock(error)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(error: std::num::ParseIntError) -> Self {
        AppError::Parse(error)
    }
}

// An async call of the application, as a user's handler awaits one.
#[allow(clippy::unused_async)]
async fn parse(raw: &str) -> Result<u64, AppError> {
    Ok(raw.parse()?)
}

/// One expression on one line: the most common short handler, and the
/// shape that made rustc's `unused_braces` fire.
#[rustfmt::skip]
#[distributed_lock(key = "lint:one:<id>", ttl = "2s")]
pub async fn one_expression(id: u64) -> Result<u64, LockError> { Ok(id) }

/// A lock over several keys, on one line.
#[rustfmt::skip]
#[distributed_lock(keys = ["lint:from:<from>", "lint:to:<to>"], ttl = "2s")]
pub async fn two_keys(from: u64, to: u64) -> Result<u64, LockError> { Ok(from + to) }

/// A semaphore, on one line.
#[rustfmt::skip]
#[distributed_lock(key = "lint:permits:<id>", ttl = "2s", permits = 3)]
pub async fn three_permits(id: u64) -> Result<u64, LockError> { Ok(id) }

/// A renewed reader with its guard, on one line.
#[rustfmt::skip]
#[distributed_lock(key = "lint:rw:<id>", ttl = "2s", mode = "read", renew, guard = lock)]
pub async fn reader(id: u64) -> Result<u64, LockError> { Ok(id + u64::from(lock.is_held())) }

/// The writer, with `?` steps.
#[distributed_lock(key = "lint:rw:<raw>", ttl = "2s", mode = "write")]
pub async fn writer(raw: String) -> Result<u64, AppError> {
    let value = parse(&raw).await?;
    Ok(value)
}

/// Nothing but `?` steps, then the value.
#[distributed_lock(key = "lint:question:<raw>", ttl = "2s")]
pub async fn only_question_marks(raw: String) -> Result<u64, AppError> {
    let first = parse(&raw).await?;
    let second = raw.parse::<u64>()?;
    Ok(first + second)
}

/// `return` in the middle of the body.
#[distributed_lock(key = "lint:early:<n>", ttl = "2s")]
pub async fn early_return(n: u64) -> Result<u64, AppError> {
    if n == 0 {
        return Ok(0);
    }
    let doubled = n * 2;
    Ok(doubled)
}

/// A body that is one `loop`, left only by `return`.
#[distributed_lock(key = "lint:loop:<n>", ttl = "2s")]
pub async fn loop_body(n: u64) -> Result<u64, AppError> {
    let mut turns = 0;
    loop {
        turns += 1;
        if turns >= n {
            return Ok(turns);
        }
        tokio::task::yield_now().await;
    }
}

/// `impl Trait` in the return type, which the expansion's type hint erases.
#[distributed_lock(key = "lint:impl:<id>", ttl = "2s")]
pub async fn impl_trait(id: u64) -> Result<impl Display, LockError> {
    Ok(id)
}

/// A unit value, on one line.
#[rustfmt::skip]
#[distributed_lock(key = "lint:unit:<id>", ttl = "2s")]
pub async fn unit(id: u64) -> Result<(), LockError> { Ok(()) }

/// A body that only awaits another future, on one line.
#[rustfmt::skip]
#[distributed_lock(key = "lint:await:<raw>", ttl = "2s")]
pub async fn only_awaits(raw: String) -> Result<u64, AppError> { parse(&raw).await }

/// Only `?` steps, in one expression on one line.
#[rustfmt::skip]
#[distributed_lock(key = "lint:question-line:<raw>", ttl = "2s")]
pub async fn question_marks_in_one_line(raw: String) -> Result<u64, AppError> { Ok(parse(&raw).await? + raw.parse::<u64>()?) }

/// `impl Trait` in the return type, on one line.
#[rustfmt::skip]
#[distributed_lock(key = "lint:impl-line:<id>", ttl = "2s")]
pub async fn impl_trait_in_one_line(id: u64) -> Result<impl Display, LockError> { Ok(id) }

/// The same shapes as methods of an `#[async_trait]` impl, the way tonic
/// services are written.
#[async_trait::async_trait]
pub trait Service {
    /// One expression.
    async fn one_expression(&self, id: u64) -> Result<u64, LockError>;
    /// Only `?` steps.
    async fn only_question_marks(&self, raw: String) -> Result<u64, AppError>;
    /// `return` in the middle.
    async fn early_return(&self, n: u64) -> Result<u64, AppError>;
    /// One `loop`.
    async fn loop_body(&self, n: u64) -> Result<u64, AppError>;
    /// A unit value.
    async fn unit(&self, id: u64) -> Result<(), LockError>;
    /// Only an await.
    async fn only_awaits(&self, raw: String) -> Result<u64, AppError>;
}

/// A service with a field the keys read.
pub struct Shard {
    /// Which shard this is.
    pub name: String,
}

#[async_trait::async_trait]
impl Service for Shard {
    #[rustfmt::skip]
    #[distributed_lock(key = "lint:svc:<self.name>:<id>", ttl = "2s")]
    async fn one_expression(&self, id: u64) -> Result<u64, LockError> { Ok(id) }

    #[distributed_lock(key = "lint:svc:<self.name>:<raw>", ttl = "2s")]
    async fn only_question_marks(&self, raw: String) -> Result<u64, AppError> {
        let first = parse(&raw).await?;
        let second = raw.parse::<u64>()?;
        Ok(first + second)
    }

    #[distributed_lock(key = "lint:svc:<self.name>:<n>", ttl = "2s")]
    async fn early_return(&self, n: u64) -> Result<u64, AppError> {
        if n == 0 {
            return Ok(0);
        }
        let doubled = n * 2;
        Ok(doubled)
    }

    #[distributed_lock(key = "lint:svc:<self.name>:<n>", ttl = "2s")]
    async fn loop_body(&self, n: u64) -> Result<u64, AppError> {
        let mut turns = 0;
        loop {
            turns += 1;
            if turns >= n {
                return Ok(turns);
            }
            tokio::task::yield_now().await;
        }
    }

    #[rustfmt::skip]
    #[distributed_lock(key = "lint:svc:<self.name>:<id>", ttl = "2s")]
    async fn unit(&self, id: u64) -> Result<(), LockError> { Ok(()) }

    #[rustfmt::skip]
    #[distributed_lock(key = "lint:svc:<self.name>:<raw>", ttl = "2s")]
    async fn only_awaits(&self, raw: String) -> Result<u64, AppError> { parse(&raw).await }
}

/// Builds every future without running it: running needs Redis, which
/// `tests/lint_free.rs` provides.
pub fn main() {
    drop(one_expression(1));
    drop(two_keys(1, 2));
    drop(three_permits(1));
    drop(reader(1));
    drop(writer(String::new()));
    drop(only_question_marks(String::new()));
    drop(early_return(1));
    drop(loop_body(1));
    drop(impl_trait(1));
    drop(unit(1));
    drop(only_awaits(String::new()));
    drop(question_marks_in_one_line(String::new()));
    drop(impl_trait_in_one_line(1));
    let shard = Shard {
        name: "a".to_owned(),
    };
    drop(shard.one_expression(1));
    drop(shard.only_question_marks(String::new()));
    drop(shard.early_return(1));
    drop(shard.loop_body(1));
    drop(shard.unit(1));
    drop(shard.only_awaits(String::new()));
}
