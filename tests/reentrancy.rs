//! A task that holds a key and asks for it again joins its own lock instead of
//! waiting for itself; only the outermost holder releases it.

mod common;

use std::time::Duration;

use common::Backend;
use distlock::{LockError, ReleaseOutcome, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("inner step failed")]
    Inner,
}

async fn lease_exists(backend: &Backend) -> bool {
    !backend.locks_held().await.is_empty()
}

#[distributed_lock(key = "account:<id>", ttl = "10s", wait = "2s", manager = "reentrant", guard = lock)]
async fn inner_step(id: u32, fail: bool) -> Result<u64, AppError> {
    if fail {
        Err(AppError::Inner)?;
    }
    Ok(lock.fencing_token())
}

#[distributed_lock(key = "account:<id>", ttl = "10s", wait = "2s", manager = "reentrant", guard = lock)]
async fn outer(id: u32, backend: &Backend) -> Result<(), AppError> {
    let token = lock.fencing_token();
    // A nested call on the same key joins the held lock: same fencing token, no deadlock.
    assert_eq!(inner_step(id, false).await?, token);
    assert!(
        lease_exists(backend).await,
        "the nested call released the outer lock"
    );

    // A nested call that fails with `?` leaves the outer lock held too.
    assert!(matches!(inner_step(id, true).await, Err(AppError::Inner)));
    assert!(
        lease_exists(backend).await,
        "the failed nested call released the outer lock"
    );

    // Direct requests join as well, and their release leaves the lock alone.
    let manager = distlock::manager("reentrant").unwrap();
    let nested = manager
        .lock(format!("account:{id}"))
        .wait(Duration::ZERO)
        .acquire()
        .await?;
    assert!(nested.is_nested());
    assert_eq!(nested.fencing_token(), token);
    assert_eq!(nested.release().await?, ReleaseOutcome::Nested);
    assert!(lease_exists(backend).await);

    // A spawned task is a different holder: it has to wait, and gives up.
    let spawned = tokio::spawn(async move {
        distlock::manager("reentrant")
            .unwrap()
            .lock(format!("account:{id}"))
            .wait(Duration::from_millis(100))
            .acquire()
            .await
    });
    assert!(matches!(
        spawned.await.unwrap(),
        Err(LockError::Timeout { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn nested_calls_neither_deadlock_nor_release_early() {
    let backend = common::backend_for("reentrant").await;
    tokio::time::timeout(Duration::from_secs(5), outer(1, &backend))
        .await
        .expect("no deadlock")
        .expect("outer call");
    assert!(
        !lease_exists(&backend).await,
        "the outermost call did not release"
    );
}

#[distributed_lock(key = "short:<id>", ttl = "200ms", wait = "0s", manager = "expired-outer", guard = lock)]
async fn inner_after_expiry(id: u32) -> Result<bool, AppError> {
    Ok(lock.is_nested())
}

#[distributed_lock(
    key = "short:<id>",
    ttl = "200ms",
    wait = "0s",
    manager = "expired-outer"
)]
async fn outer_outliving_its_lease(id: u32) -> Result<(), AppError> {
    assert!(inner_after_expiry(id).await?, "joins while valid");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The outer lease is over: joining it would run the body without a lock.
    match inner_after_expiry(id).await {
        Err(AppError::Lock(LockError::Lost { key })) => assert_eq!(key, format!("short:{id}")),
        other => panic!("expected Lost, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_nested_call_does_not_join_an_expired_outer_lock() {
    let _backend = common::backend_for("expired-outer").await;
    outer_outliving_its_lease(2).await.unwrap();
}
