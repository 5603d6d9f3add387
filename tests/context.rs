//! `distlock::current()`: the innermost lock of the current task, for code
//! deep in the call stack of a locked call.

mod common;

use distlock::{LockError, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// What code far from the annotated fn sees.
fn seen() -> Option<(String, u64)> {
    distlock::current().map(|lock| (lock.key().to_owned(), lock.fencing_token()))
}

#[derive(Debug)]
struct Observed {
    guard: (String, u64),
    outer_before: Option<(String, u64)>,
    inner: Option<(String, u64)>,
    outer_after: Option<(String, u64)>,
    spawned: Option<(String, u64)>,
    held: bool,
}

#[distributed_lock(key = "cart:<id>", manager = "context", guard = lock)]
async fn outer(id: u32) -> Result<Observed, AppError> {
    let outer_before = seen();
    let inner = inner(id).await?;
    let spawned = tokio::spawn(async { seen() }).await.unwrap();
    Ok(Observed {
        guard: (lock.key().to_owned(), lock.fencing_token()),
        outer_before,
        inner,
        outer_after: seen(),
        spawned,
        held: distlock::current().is_some_and(|lock| lock.is_held()),
    })
}

#[distributed_lock(key = "stock:<id>", manager = "context")]
async fn inner(id: u32) -> Result<Option<(String, u64)>, AppError> {
    let _ = id;
    Ok(seen())
}

#[tokio::test]
async fn current_is_the_innermost_lock_of_this_task() {
    let _backend = common::backend_for("context").await;
    assert!(distlock::current().is_none(), "outside any locked call");
    let observed = outer(3).await.unwrap();
    assert_eq!(observed.outer_before.as_ref(), Some(&observed.guard));
    assert_eq!(observed.guard.0, "cart:3");
    let (inner_key, inner_token) = observed.inner.expect("inside the inner call");
    assert_eq!(inner_key, "stock:3");
    assert!(inner_token > 0);
    assert_eq!(observed.outer_after.as_ref(), Some(&observed.guard));
    assert_eq!(observed.spawned, None, "a spawned task is not the holder");
    assert!(observed.held);
    assert!(distlock::current().is_none(), "after the call");
}
