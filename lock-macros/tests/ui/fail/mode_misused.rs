use distlock::{LockError, distributed_lock};

#[distributed_lock(key = "prices", mode = "exclusive")]
async fn exclusive() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "prices", mode = "rw")]
async fn both_sides() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "prices", mode = "reed")]
async fn typo() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "prices", mode = "Write")]
async fn capitalised() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "prices", mode = read)]
async fn not_a_string() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(keys = ["prices:<a>", "prices:<b>"], mode = "write")]
async fn with_keys(a: u32, b: u32) -> Result<(), LockError> {
    let _ = (a, b);
    Ok(())
}

#[distributed_lock(key = "prices", mode = "read", mode = "write")]
async fn twice() -> Result<(), LockError> {
    Ok(())
}

#[distributed_lock(key = "prices", access = "read")]
async fn alias() -> Result<(), LockError> {
    Ok(())
}

fn main() {}
