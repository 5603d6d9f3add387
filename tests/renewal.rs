//! Lease renewal: a renewed lock outlives its lease for as long as the body
//! runs, survives a dropped connection, and stops renewing before it is
//! released.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use distlock::{LockError, LockGuard, ReleaseOutcome, distributed_lock};
use lock_testkit::RedisServer;

const LEASE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// What a long body saw of its own lock.
#[derive(Debug, Default)]
struct Seen {
    fencing_tokens: Vec<u64>,
    all_held: bool,
}

/// Runs for ten leases, checking its lock every 20 ms.
#[distributed_lock(key = "report:<id>", ttl = "200ms", renew, manager = "renew-long", guard = lock)]
async fn long_report(id: u32) -> Result<Seen, AppError> {
    let _ = id;
    let mut seen = Seen {
        all_held: true,
        ..Seen::default()
    };
    let start = Instant::now();
    while start.elapsed() < LEASE * 10 {
        seen.fencing_tokens.push(lock.fencing_token());
        seen.all_held &= lock.is_held();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lock_is_held_for_ten_times_its_lease() {
    let server = common::redis_for("renew-long").await;
    let started = Instant::now();
    let call = tokio::spawn(long_report(1));

    // Another process keeps trying to take the lock while the body runs.
    let other = common::manager(&server).await;
    let mut attempts = 0;
    tokio::time::sleep(Duration::from_millis(50)).await;
    while started.elapsed() < LEASE * 9 {
        let taken = other.lock("report:1").try_acquire().await.unwrap();
        assert!(
            taken.is_none(),
            "another process took a renewed lock {:?} after it was acquired",
            started.elapsed()
        );
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(attempts > 40, "only {attempts} attempts");

    let seen = call.await.unwrap().expect("the body ran to its end");
    assert!(started.elapsed() >= LEASE * 10);
    assert!(seen.all_held, "the guard reported the lock lost");
    let first = seen.fencing_tokens[0];
    assert!(
        seen.fencing_tokens.iter().all(|&token| token == first),
        "renewal changed the fencing token"
    );
    assert!(common::lease_keys(&server).await.is_empty(), "not released");
}

#[tokio::test]
async fn renewal_stops_before_the_release_and_never_after() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager
        .lock("batch")
        .ttl(Duration::from_millis(60))
        .renew()
        .acquire()
        .await
        .unwrap();
    // Renewed every ~20 ms: a few extensions go out while it is held.
    let before = common::evalsha_calls(&server).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let renewals = common::evalsha_calls(&server).await - before;
    assert!(
        (4..=12).contains(&renewals),
        "{renewals} extensions in 150 ms of a 60 ms lease"
    );
    assert!(guard.is_held());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);

    let after_release = common::evalsha_calls(&server).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        common::evalsha_calls(&server).await,
        after_release,
        "an extension went out after the release"
    );
    assert!(common::lease_keys(&server).await.is_empty());
}

#[tokio::test]
async fn a_dropped_renewed_guard_stops_renewing_and_is_released() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager
        .lock("dropped")
        .ttl(Duration::from_millis(60))
        .renew()
        .acquire()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(guard);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(common::lease_keys(&server).await.is_empty(), "not released");
    let settled = common::evalsha_calls(&server).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(common::evalsha_calls(&server).await, settled);
}

#[tokio::test]
async fn many_renewed_locks_are_renewed_by_one_watchdog_in_batches() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let mut guards = Vec::new();
    for i in 0..50 {
        let guard = manager
            .lock(format!("job:{i}"))
            .ttl(Duration::from_millis(300))
            .renew()
            .acquire()
            .await
            .unwrap();
        guards.push(guard);
    }
    // Three leases: every lock must have been renewed, none lost.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (held, released) = (
        guards.iter().filter(|guard| guard.is_held()).count(),
        futures_util::future::join_all(guards.into_iter().map(LockGuard::release)).await,
    );
    assert_eq!(held, 50);
    assert!(
        released
            .into_iter()
            .all(|outcome| outcome.unwrap() == ReleaseOutcome::Released)
    );
}

#[distributed_lock(key = "sync", ttl = "300ms", renew, manager = "renew-cut", guard = lock)]
async fn survives_a_cut(
    cut: Arc<AtomicBool>,
    held_throughout: Arc<AtomicBool>,
) -> Result<u64, AppError> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1200) {
        if !lock.is_held() {
            held_throughout.store(false, Ordering::SeqCst);
        }
        if start.elapsed() > Duration::from_millis(150) {
            cut.store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(lock.fencing_token())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_survives_a_killed_connection() {
    let server = common::redis_for("renew-cut").await;
    let (cut, held) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(true)),
    );
    let call = tokio::spawn(survives_a_cut(cut.clone(), held.clone()));
    while !cut.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every normal client of the server, the lock manager's included.
    let killed: u64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut common::raw(&server).await)
        .await
        .unwrap();
    assert!(killed >= 1, "no connection killed");
    let killed_at = Instant::now();
    let mut taken = 0;
    let other = common::manager(&server).await;
    while killed_at.elapsed() < Duration::from_millis(700) {
        taken += u64::from(other.lock("sync").try_acquire().await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(taken, 0, "the lock was free after the connection was cut");
    call.await
        .unwrap()
        .expect("the body finished with its lock");
    assert!(held.load(Ordering::SeqCst), "the lock was reported lost");
}

#[distributed_lock(key = "short", ttl = "30ms", manager = "renew-off")]
async fn without_renewal() -> Result<(), AppError> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

#[tokio::test]
async fn without_renew_no_extension_is_sent() {
    let server = common::redis_for("renew-off").await;
    // Loads the scripts (a first EVALSHA fails with NOSCRIPT).
    without_renewal().await.unwrap();
    let before = common::evalsha_calls(&server).await;
    let extends = common::cluster::command_calls(&server, "pexpire").await;
    without_renewal().await.unwrap();
    // A plain acquire and one release script; nothing in between.
    assert_eq!(common::evalsha_calls(&server).await - before, 1);
    assert_eq!(
        common::cluster::command_calls(&server, "pexpire").await,
        extends
    );
}
