// Error types other than a plain `Result<T, E>`: boxed errors, aliases, anyhow.
#![deny(warnings)]
use std::error::Error;
use std::fmt;

use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub enum MyErr {
    Lock(LockError),
    Invalid,
}

impl From<LockError> for MyErr {
    fn from(error: LockError) -> Self {
        MyErr::Lock(error)
    }
}

impl fmt::Display for MyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl Error for MyErr {}

pub type R<T> = Result<T, MyErr>;

#[distributed_lock(key = "alias:<id>")]
async fn alias(id: u64) -> R<u64> {
    if id == 0 {
        return Err(MyErr::Invalid);
    }
    Ok(id)
}

#[distributed_lock(key = "boxed:<id>")]
async fn boxed(id: u64) -> Result<u64, Box<dyn Error + Send + Sync>> {
    if id == 0 {
        // Needs the declared return type to coerce `Box<MyErr>`.
        return Err(Box::new(MyErr::Invalid));
    }
    if id == 1 {
        return Err("one is not allowed".into());
    }
    let parsed: u64 = "42".parse()?;
    Ok(parsed + id)
}

#[distributed_lock(key = "anyhow:<id>")]
async fn with_anyhow(id: u64) -> anyhow::Result<u64> {
    if id == 0 {
        anyhow::bail!("zero");
    }
    let value: u64 = "7".parse()?;
    Ok(value)
}

#[distributed_lock(key = "qualified:<id>")]
async fn qualified(id: u64) -> ::core::result::Result<u64, MyErr> {
    Ok(id)
}

fn main() {
    let _ = alias(1);
    let _ = boxed(1);
    let _ = with_anyhow(1);
    let _ = qualified(1);
}
