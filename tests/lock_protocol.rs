//! The lock protocol against a real Redis: exclusion, leases, ownership, fencing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use distlock::{LockError, ReleaseOutcome};
use lock_testkit::RedisServer;
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_tasks_in_three_processes_on_one_key_never_overlap_and_see_rising_fencing_tokens() {
    let server = RedisServer::start();
    // Three managers stand for three processes: only Redis keeps them apart.
    let managers = [
        common::manager(&server).await,
        common::manager(&server).await,
        common::manager(&server).await,
    ];
    let inside = Arc::new(AtomicUsize::new(0));
    let entries = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for task in 0..60 {
        let (manager, inside, entries) =
            (managers[task % 3].clone(), inside.clone(), entries.clone());
        tasks.push(tokio::spawn(async move {
            let guard = manager
                .lock("order:1")
                .ttl(Duration::from_secs(10))
                .wait(Duration::from_secs(60))
                .acquire()
                .await
                .expect("acquire");
            let concurrent = inside.fetch_add(1, Ordering::SeqCst) + 1;
            entries
                .lock()
                .await
                .push((concurrent, guard.fencing_token()));
            tokio::time::sleep(Duration::from_millis(1)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            assert_eq!(
                guard.release().await.expect("release"),
                ReleaseOutcome::Released
            );
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let entries = entries.lock().await;
    assert_eq!(entries.len(), 60);
    assert!(
        entries.iter().all(|(concurrent, _)| *concurrent == 1),
        "overlap: {entries:?}"
    );
    assert!(
        entries.windows(2).all(|w| w[0].1 < w[1].1),
        "tokens not rising: {entries:?}"
    );
    assert!(common::lease_keys(&server).await.is_empty());
}

#[tokio::test]
async fn a_crashed_holders_lock_is_freed_by_its_lease() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let crashed = manager
        .lock("job")
        .ttl(Duration::from_millis(300))
        .acquire()
        .await
        .unwrap();
    std::mem::forget(crashed); // no release, as if the process died

    let started = Instant::now();
    let next = manager
        .lock("job")
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .expect("acquired after the lease");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "acquired while leased: {waited:?}"
    );
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn an_expired_owner_cannot_release_or_extend_the_new_holders_lock() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let old = manager
        .lock("k")
        .ttl(Duration::from_millis(100))
        .acquire()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(old.remaining().is_zero());
    let other = common::manager(&server).await;
    let new = other
        .lock("k")
        .ttl(Duration::from_secs(10))
        .wait(Duration::ZERO)
        .acquire()
        .await
        .unwrap();

    assert!(
        matches!(old.extend(Duration::from_secs(60)).await, Err(LockError::Lost { key }) if key == "k")
    );
    assert_eq!(old.release().await.unwrap(), ReleaseOutcome::TakenOver);

    // The new holder still holds it, with its own lease untouched.
    assert!(common::held_elsewhere(&server, "k").await);
    let mut conn = common::raw(&server).await;
    let lease = common::lease_keys(&server).await.pop().expect("lease key");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&lease)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 9_000 && pttl <= 10_000, "pttl {pttl}");
    assert_eq!(new.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn release_after_expiry_reports_expired() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager
        .lock("k")
        .ttl(Duration::from_millis(50))
        .acquire()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Expired);
}

#[tokio::test]
async fn the_owner_extends_its_lease() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager
        .lock("k")
        .ttl(Duration::from_millis(800))
        .acquire()
        .await
        .unwrap();
    let mut conn = common::raw(&server).await;
    let lease = common::lease_keys(&server).await.pop().expect("lease key");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        guard.extend(Duration::from_secs(5)).await.expect("extend");
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&lease)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(pttl > 4_000, "the lease was not re-armed: pttl {pttl}");
        assert!(guard.remaining() > Duration::from_secs(4));
    }
    // 1.2 s after acquiring with an 800 ms lease, the lock is still ours.
    assert!(common::held_elsewhere(&server, "k").await);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(common::lease_keys(&server).await.is_empty());
}

#[tokio::test]
async fn fencing_tokens_rise_across_a_thousand_acquisitions_expiry_and_deletion() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let mut last = 0;
    for _ in 0..1000 {
        let guard = manager.lock("fenced").acquire().await.unwrap();
        assert!(guard.fencing_token() > last);
        last = guard.fencing_token();
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    }
    // Across expiry.
    let expiring = manager
        .lock("fenced")
        .ttl(Duration::from_millis(30))
        .acquire()
        .await
        .unwrap();
    assert!(expiring.fencing_token() > last);
    last = expiring.fencing_token();
    std::mem::forget(expiring);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let guard = manager
        .lock("fenced")
        .wait(Duration::ZERO)
        .acquire()
        .await
        .unwrap();
    assert!(guard.fencing_token() > last);
    last = guard.fencing_token();
    // Across deletion of the lock key by someone else.
    let mut conn = common::raw(&server).await;
    for key in common::lease_keys(&server).await {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let next = manager
        .lock("fenced")
        .wait(Duration::ZERO)
        .acquire()
        .await
        .unwrap();
    assert!(next.fencing_token() > last);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::TakenOver);
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn fencing_tokens_keep_rising_after_redis_loses_its_data() {
    let mut server = RedisServer::start();
    let manager = common::manager(&server).await;
    let before = manager
        .lock("fenced")
        .acquire()
        .await
        .unwrap()
        .fencing_token();
    server.restart(); // empty data: the counter is gone
    let mut after = None;
    for _ in 0..50 {
        match manager.lock("fenced").acquire().await {
            Ok(guard) => {
                after = Some(guard.fencing_token());
                break;
            }
            Err(LockError::Backend { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let after = after.expect("reconnected after restart");
    assert!(after > before, "{after} <= {before}");
}

#[tokio::test]
async fn giving_up_returns_timeout_in_about_the_requested_time() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let _held = manager
        .lock("busy")
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .unwrap();
    let manager = common::manager(&server).await; // another process
    let started = Instant::now();
    let error = manager
        .lock("busy")
        .wait(Duration::from_millis(300))
        .acquire()
        .await
        .expect_err("held");
    let elapsed = started.elapsed();
    match error {
        LockError::Timeout { key, waited } => {
            assert_eq!(key, "busy");
            assert!(waited >= Duration::from_millis(300), "{waited:?}");
        }
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(
        elapsed < Duration::from_millis(400),
        "gave up after {elapsed:?}"
    );

    let started = Instant::now();
    let single = manager.lock("busy").wait(Duration::ZERO).acquire().await;
    assert!(
        matches!(single, Err(LockError::Timeout { waited, .. }) if waited < Duration::from_millis(100))
    );
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn a_dropped_guard_is_released_within_100ms() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager
        .lock("dropped")
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .unwrap();
    drop(guard);
    let started = Instant::now();
    let next = manager
        .lock("dropped")
        .wait(Duration::from_millis(100))
        .acquire()
        .await
        .expect("released by drop");
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn keys_with_braces_spaces_unicode_and_control_characters_work() {
    let server = RedisServer::start();
    let (manager, other) = (
        common::manager(&server).await,
        common::manager(&server).await,
    );
    for key in [
        "{order}:1",
        "}{",
        "a b\tc",
        "заказ:42 🧾",
        "\u{1}\u{7f}{}",
        "{}",
    ] {
        let guard = manager.lock(key).acquire().await.unwrap();
        assert_eq!(guard.key(), key);
        assert!(
            other.lock(key).try_acquire().await.unwrap().is_none(),
            "{key:?} not exclusive"
        );
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    }
    // Different keys that a naive hash tag would merge stay independent.
    let a = manager.lock("{x}a").acquire().await.unwrap();
    let b = other
        .lock("{x}b")
        .try_acquire()
        .await
        .unwrap()
        .expect("independent");
    assert_eq!(a.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(b.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(common::lease_keys(&server).await.is_empty());
}

#[tokio::test]
async fn bad_input_gives_clear_errors() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    assert!(matches!(
        manager.lock("").acquire().await,
        Err(LockError::InvalidKey { .. })
    ));
    let long = "k".repeat(100_000);
    assert!(matches!(
        manager.lock(long).acquire().await,
        Err(LockError::InvalidKey { .. })
    ));
    for ttl in [Duration::ZERO, Duration::from_secs(365 * 24 * 3600)] {
        let error = manager.lock("k").ttl(ttl).acquire().await.unwrap_err();
        assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
    }
    let error = manager
        .lock("k")
        .ttl(Duration::from_secs(1))
        .hold_at_least(Duration::from_millis(1001))
        .acquire()
        .await
        .unwrap_err();
    assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
    assert!(
        error.to_string().contains("longer than the lease"),
        "{error}"
    );
    let error = distlock::LockManager::builder(server.url())
        .key_prefix("app:{x}:")
        .build()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("must not contain"), "{error}");
}

#[tokio::test]
async fn fencing_tokens_keep_rising_when_redis_comes_back_with_a_stale_counter() {
    let mut server = RedisServer::start();
    let manager = common::manager(&server).await;
    let cycle = |manager: distlock::LockManager| async move {
        let guard = manager.lock("fenced").acquire().await.unwrap();
        let token = guard.fencing_token();
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        token
    };
    cycle(manager.clone()).await;
    // A snapshot, then more locks: the counter moves on past it.
    let mut conn = common::raw(&server).await;
    let _: () = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    let snapshot = std::fs::read(server.snapshot_path()).expect("the snapshot");
    let mut last = 0;
    for _ in 0..100 {
        last = cycle(manager.clone()).await;
    }
    // Redis comes back with the older data: the counter goes back.
    server.restart_from_snapshot(&snapshot);
    assert!(
        !fence_keys(&server).await.is_empty(),
        "the snapshot holds the counter"
    );
    let mut next = None;
    for _ in 0..50 {
        match manager.lock("fenced").acquire().await {
            Ok(guard) => {
                next = Some(guard.fencing_token());
                assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
                break;
            }
            Err(LockError::Backend { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let next = next.expect("reconnected after the restart");
    assert!(next > last, "{next} <= {last}");
    assert!(cycle(manager).await > next);
}

#[tokio::test]
async fn fencing_tokens_rise_above_a_counter_someone_set_back() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager.lock("fenced").acquire().await.unwrap();
    let last = guard.fencing_token();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let fences = fence_keys(&server).await;
    assert_eq!(fences.len(), 1);
    let mut conn = common::raw(&server).await;
    let _: () = redis::cmd("SET")
        .arg(&fences[0])
        .arg("5")
        .query_async(&mut conn)
        .await
        .unwrap();
    let next = manager.lock("fenced").acquire().await.unwrap();
    assert!(
        next.fencing_token() > last,
        "{} <= {last}",
        next.fencing_token()
    );
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn an_acquire_cancelled_in_flight_leaves_no_lock_behind() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let warm = manager.lock("warm").acquire().await.unwrap(); // loads the scripts
    assert_eq!(warm.release().await.unwrap(), ReleaseOutcome::Released);
    server.pause();
    // The attempt is sent, but its answer cannot arrive before the cancellation.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        manager
            .lock("inflight")
            .ttl(Duration::from_secs(30))
            .acquire(),
    )
    .await;
    assert!(cancelled.is_err());
    server.resume();
    // The acquire ran when Redis woke up; the cancelled attempt's release follows it.
    let mut gone = false;
    for _ in 0..100 {
        if common::lease_keys(&server).await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        gone,
        "the cancelled attempt's lock stayed for its lease: {:?}",
        common::lease_keys(&server).await
    );
}

/// The fencing counters in `server`.
async fn fence_keys(server: &RedisServer) -> Vec<String> {
    let mut keys = common::all_keys(server).await;
    keys.retain(|key| key.contains("}:fence"));
    keys
}
