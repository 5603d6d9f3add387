// `?`, early `return` and panics inside the body behave as in the original fn.
#![deny(warnings)]
use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub enum AppError {
    Lock(LockError),
    Parse(std::num::ParseIntError),
    Negative,
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

async fn fetch(raw: &str) -> Result<i64, AppError> {
    Ok(raw.parse()?)
}

#[distributed_lock(key = "parse:<raw>")]
async fn question_mark(raw: String) -> Result<i64, AppError> {
    let value: i64 = raw.parse()?;
    let fetched = fetch(&raw).await?;
    Ok(value + fetched)
}

#[distributed_lock(key = "early:<n>")]
async fn early_return(n: i64) -> Result<i64, AppError> {
    if n < 0 {
        return Err(AppError::Negative);
    }
    for i in 0..n {
        if i == 10 {
            return Ok(i);
        }
    }
    Ok(n)
}

#[distributed_lock(key = "diverges:<n>")]
async fn ends_in_return(n: u8) -> Result<u8, AppError> {
    return Ok(n);
}

#[distributed_lock(key = "panics:<n>")]
async fn panics(n: u8) -> Result<u8, AppError> {
    if n == 0 {
        panic!("zero");
    }
    Ok(n)
}

#[distributed_lock(key = "unit:<n>")]
async fn unit_ok(n: u8) -> Result<(), AppError> {
    let _ = n;
    Ok(())
}

#[distributed_lock(key = "closure:<n>")]
async fn closures_and_blocks(n: u8) -> Result<u8, AppError> {
    let double = |x: u8| -> Result<u8, AppError> { Ok(x.checked_mul(2).ok_or(AppError::Negative)?) };
    let inner = async { double(n) }.await?;
    Ok(inner)
}

fn main() {
    let _ = question_mark(String::new());
    let _ = early_return(1);
    let _ = ends_in_return(1);
    let _ = panics(1);
    let _ = unit_ok(1);
    let _ = closures_and_blocks(1);
}
