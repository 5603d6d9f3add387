//! The in-memory backend: what an application's own tests rely on when
//! they swap Redis for it. Leases, fencing tokens, wake-ups, renewal and
//! lost locks behave as on Redis, within one process.
//!
//! (The attribute, context and reentrancy tests also run in memory:
//! `attribute_in_memory.rs` and its siblings.)

use std::time::{Duration, Instant};

use distlock::{InMemoryStore, LockError, LockManager, ReleaseOutcome, distributed_lock};

async fn manager_on(store: &InMemoryStore) -> LockManager {
    LockManager::in_memory()
        .store(store.clone())
        .build()
        .await
        .expect("an in-memory manager")
}

#[tokio::test]
async fn a_lease_runs_out_and_the_next_holder_gets_a_higher_fencing_token() {
    let store = InMemoryStore::new();
    let (a, b) = (manager_on(&store).await, manager_on(&store).await);
    let first = a
        .lock("order:1")
        .ttl(Duration::from_millis(100))
        .acquire()
        .await
        .unwrap();
    assert!(b.lock("order:1").try_acquire().await.unwrap().is_none());

    // Nobody releases: the second manager gets the lock when the lease ends.
    let started = Instant::now();
    let second = b
        .lock("order:1")
        .wait(Duration::from_secs(2))
        .acquire()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(150),
        "took over {waited:?} into a 100 ms lease"
    );
    assert!(second.fencing_token() > first.fencing_token());
    assert!(!first.is_held());
    assert_eq!(first.release().await.unwrap(), ReleaseOutcome::TakenOver);
    assert_eq!(second.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(store.held_keys().is_empty());
}

#[tokio::test]
async fn a_release_wakes_a_waiter_at_once() {
    let store = InMemoryStore::new();
    let (a, b) = (manager_on(&store).await, manager_on(&store).await);
    let guard = a
        .lock("job")
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .unwrap();
    let waiter = tokio::spawn(async move {
        let guard = b.lock("job").wait(Duration::from_secs(5)).acquire().await;
        (Instant::now(), guard)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released = Instant::now();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let (acquired, next) = waiter.await.unwrap();
    let next = next.expect("the waiter got the lock");
    let latency = acquired - released;
    // The 30 s lease (and the 500 ms fallback timer) would take far longer.
    assert!(
        latency < Duration::from_millis(50),
        "woken after {latency:?}"
    );
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn a_busy_lock_times_out_with_the_wait_it_was_given() {
    let manager = LockManager::in_memory().build().await.unwrap();
    let _held = manager.lock("busy").acquire().await.unwrap();
    let error = manager
        .lock("busy")
        .wait(Duration::from_millis(80))
        .acquire()
        .await
        .unwrap_err();
    match error {
        LockError::Timeout { key, waited } => {
            assert_eq!(key, "busy");
            assert!(waited >= Duration::from_millis(80), "{waited:?}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn renewal_keeps_a_lock_for_many_leases_and_stores_stay_apart() {
    let store = InMemoryStore::new();
    let manager = manager_on(&store).await;
    let guard = manager
        .lock("report")
        .ttl(Duration::from_millis(300))
        .renew()
        .acquire()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(guard.is_held(), "renewal let a 300 ms lease lapse");
    assert_eq!(store.held_keys(), ["report"]);

    // A manager on another store has locks of its own.
    let elsewhere = LockManager::in_memory().build().await.unwrap();
    let _other = elsewhere.lock("report").acquire().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(guard.is_held());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(store.held_keys().is_empty());
}

#[tokio::test]
async fn a_lock_is_lost_when_its_validity_runs_out_without_renewal() {
    let manager = LockManager::in_memory().build().await.unwrap();
    let guard = manager
        .lock("short")
        .ttl(Duration::from_millis(50))
        .acquire()
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_millis(200), guard.lost())
        .await
        .expect("lost once the validity ran out");
    assert!(matches!(
        guard.extend(Duration::from_secs(1)).await,
        Err(LockError::Lost { .. })
    ));
}

/// Which locks the default manager's store holds while the body runs.
#[distributed_lock(key = "charge:<id>", ttl = "5s", wait = "0s")]
async fn charge(id: u64) -> Result<Vec<String>, LockError> {
    let _ = id;
    let manager = distlock::default_manager()?;
    Ok(manager.in_memory_store().expect("in memory").held_keys())
}

#[tokio::test]
async fn init_in_memory_runs_annotated_fns_without_redis() {
    let manager = distlock::init_in_memory().await.unwrap();
    assert!(matches!(
        distlock::init_in_memory().await,
        Err(LockError::AlreadyInitialized { .. })
    ));
    assert_eq!(charge(7).await.unwrap(), ["charge:7"]);
    let store = manager.in_memory_store().expect("in memory");
    assert!(
        store.held_keys().is_empty(),
        "the call left its lock behind"
    );
    // Another manager on the same store is another holder.
    let other = LockManager::in_memory().store(store).build().await.unwrap();
    let _held = other.lock("charge:7").acquire().await.unwrap();
    assert!(matches!(charge(7).await, Err(LockError::Timeout { .. })));
}

#[tokio::test]
async fn a_store_given_to_a_redis_manager_is_a_configuration_error() {
    let error = LockManager::builder("redis://127.0.0.1:1")
        .store(InMemoryStore::new())
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LockError::InvalidConfig { reason } if reason.contains("in_memory")),
        "{error}"
    );
}
