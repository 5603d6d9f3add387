//! Losing a lock: with Redis paused past the validity, or the lock taken
//! over, a cancelling body stops before anyone else can hold the lock; a
//! continuing body finishes and learns of the loss from its guard.

mod common;

use std::time::{Duration, Instant};

use common::body::{
    Shared, assert_cancelled_at_its_validity, stopped_in_time, ticking_body, wait_until_started,
};
use distlock::{LockError, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

#[distributed_lock(key = "pay:<id>", ttl = "1s", renew, manager = "paused")]
async fn pay_slowly(id: u32, trace: Shared) -> Result<(), AppError> {
    let _ = id;
    ticking_body(trace, Duration::from_secs(20)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_past_the_validity_cancels_the_body_before_anyone_else_holds_the_lock() {
    let server = common::redis_for("paused").await;
    let other = common::manager(&server).await;
    let trace = Shared::default();
    let call = tokio::spawn(pay_slowly(7, trace.clone()));
    wait_until_started(&trace).await;
    // Let a few renewals through, then stop answering.
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.pause();
    let paused_at = Instant::now();

    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call ended without Redis")
        .unwrap();
    let returned_at = Instant::now();
    assert!(
        matches!(&result, Err(AppError::Lock(LockError::Lost { key })) if key == "pay:7"),
        "{result:?}"
    );
    // The validity is the last extension's start plus the 1 s lease less
    // 12 ms of drift allowance; Redis keeps the key until at least that
    // start plus 1 s. The body never ran past the validity; dropping it (its
    // clean-up) follows as soon as the runtime gets to it.
    let dropped = assert_cancelled_at_its_validity(&trace, Duration::from_secs(1), paused_at);
    assert!(
        returned_at - paused_at < Duration::from_millis(1100),
        "the call returned {:?} after the pause",
        returned_at - paused_at
    );

    // Redis answers again: another process gets the lock, after the body.
    server.resume();
    let guard = other
        .lock("pay:7")
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .unwrap();
    assert!(Instant::now() > dropped);
    let _ = guard.release().await;
}

/// Makes `key` look taken over: another owner's token under the lease key.
async fn take_over(server: &lock_testkit::RedisServer) {
    let lease_key = common::lease_keys(server).await.pop().expect("a held lock");
    let _: () = redis::cmd("SET")
        .arg(&lease_key)
        .arg("someone-else")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut common::raw(server).await)
        .await
        .unwrap();
}

#[distributed_lock(key = "export", ttl = "300ms", renew, manager = "taken-cancel")]
async fn export_cancelled(trace: Shared) -> Result<(), AppError> {
    ticking_body(trace, Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_finding_the_lock_taken_over_cancels_the_body() {
    let server = common::redis_for("taken-cancel").await;
    let trace = Shared::default();
    let call = tokio::spawn(export_cancelled(trace.clone()));
    wait_until_started(&trace).await;
    take_over(&server).await;
    let taken_at = Instant::now();
    let result = call.await.unwrap();
    assert!(
        matches!(result, Err(AppError::Lock(LockError::Lost { .. }))),
        "{result:?}"
    );
    let dropped = trace.lock().unwrap().dropped.expect("cancelled");
    // The next extension is due within a third of the lease.
    assert!(
        dropped - taken_at < Duration::from_millis(150),
        "{:?}",
        dropped - taken_at
    );
    // The release was owner-checked: the other owner still holds its lock.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(common::held_elsewhere(&server, "export").await);
}

#[distributed_lock(
    key = "import",
    ttl = "300ms",
    renew,
    on_lost = "continue",
    manager = "taken-continue",
    guard = lock
)]
async fn import_continuing(trace: Shared) -> Result<(bool, bool), AppError> {
    let held_at_start = lock.is_held();
    ticking_body(trace, Duration::from_millis(400)).await;
    let lost_noticed = tokio::time::timeout(Duration::from_millis(1), lock.lost())
        .await
        .is_ok();
    Ok((held_at_start && !lock.is_held(), lost_noticed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_lost_continue_lets_the_body_finish_and_tells_it() {
    let server = common::redis_for("taken-continue").await;
    let trace = Shared::default();
    let call = tokio::spawn(import_continuing(trace.clone()));
    wait_until_started(&trace).await;
    take_over(&server).await;
    let (lost_seen, lost_completed) = call.await.unwrap().expect("the body finished");
    assert!(
        lost_seen,
        "is_held() stayed true after the lock was taken over"
    );
    assert!(lost_completed, "lost() did not complete");
    let trace = trace.lock().unwrap();
    assert!(trace.finished && trace.dropped.is_none());
}

#[distributed_lock(
    key = "bounded",
    ttl = "150ms",
    on_lost = "cancel",
    manager = "no-renew-cancel"
)]
async fn bounded_by_the_lease(trace: Shared) -> Result<(), AppError> {
    ticking_body(trace, Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_renewal_on_lost_cancel_ends_the_body_with_its_lease() {
    let _server = common::redis_for("no-renew-cancel").await;
    let trace = Shared::default();
    let started = Instant::now();
    let result = bounded_by_the_lease(trace.clone()).await;
    assert!(matches!(
        result,
        Err(AppError::Lock(LockError::Lost { .. }))
    ));
    let trace = trace.lock().unwrap();
    let (last_tick, valid_until) = trace.last_tick.unwrap();
    assert!(stopped_in_time(
        last_tick,
        valid_until,
        Duration::from_millis(150)
    ));
    let ran = trace.dropped.unwrap() - started;
    // 150 ms less the 3.5 ms drift allowance.
    assert!(
        ran >= Duration::from_millis(140) && ran < Duration::from_millis(200),
        "{ran:?}"
    );
}

#[tokio::test]
async fn a_manual_guard_reports_a_takeover_through_lost() {
    let server = lock_testkit::RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager
        .lock("manual")
        .ttl(Duration::from_millis(300))
        .renew()
        .acquire()
        .await
        .unwrap();
    assert!(guard.is_held());
    take_over(&server).await;
    tokio::time::timeout(Duration::from_millis(200), guard.lost())
        .await
        .expect("lost() completes at the next extension");
    assert!(!guard.is_held());
    assert!(matches!(
        guard.extend(Duration::from_secs(1)).await,
        Err(LockError::Lost { .. })
    ));
    assert_eq!(
        guard.release().await.unwrap(),
        distlock::ReleaseOutcome::TakenOver
    );
}

#[distributed_lock(key = "refund:<id>", ttl = "600ms", renew, manager = "killed")]
async fn refund_slowly(id: u32, trace: Shared) -> Result<(), AppError> {
    let _ = id;
    ticking_body(trace, Duration::from_secs(20)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_body_cancels_the_body_within_its_validity() {
    let mut server = common::redis_for("killed").await;
    let trace = Shared::default();
    let call = tokio::spawn(refund_slowly(3, trace.clone()));
    wait_until_started(&trace).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();
    let stopped_at = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call ended without Redis")
        .unwrap();
    assert!(
        matches!(result, Err(AppError::Lock(LockError::Lost { .. }))),
        "{result:?}"
    );
    let (last_tick, valid_until, dropped) = {
        let trace = trace.lock().unwrap();
        let (last_tick, valid_until) = trace.last_tick.unwrap();
        (last_tick, valid_until, trace.dropped.expect("cancelled"))
    };
    assert!(
        stopped_in_time(last_tick, valid_until, Duration::from_millis(600)),
        "the body ran after its validity"
    );
    assert!(
        dropped - stopped_at < Duration::from_millis(700),
        "{:?}",
        dropped - stopped_at
    );
}
