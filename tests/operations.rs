//! An operator's view of locks: `LockManager::inspect` and
//! `LockManager::force_release`. The same tests run in memory and on a Redis
//! Cluster (`operations_in_memory.rs`, `operations_on_cluster.rs`; see
//! `common/backend.rs`).

mod common;

use std::time::{Duration, Instant};

use common::backend::{Backend, Kind, kind};
use distlock::{ForcedRelease, LockError, ReleaseOutcome};

#[tokio::test]
async fn inspect_tells_a_held_lock_from_a_free_one_without_its_owner() {
    let backend = Backend::start();
    let manager = backend.manager().await;
    let operator = backend.manager().await;

    let free = operator.inspect("order:1").await.unwrap();
    assert!(!free.is_held(), "{free:?}");
    assert_eq!((free.holders, free.remaining), (0, None));

    let guard = manager
        .lock("order:1")
        .ttl(Duration::from_secs(5))
        .acquire()
        .await
        .unwrap();
    let held = operator.inspect("order:1").await.unwrap();
    assert_eq!(held.key, "order:1");
    assert_eq!(held.holders, 1, "{held:?}");
    let left = held.remaining.expect("a lease with an expiry");
    assert!(
        left > Duration::from_secs(4) && left <= Duration::from_secs(5),
        "{left:?}"
    );
    let counter = held.fencing_counter.expect("a token was handed out");
    assert!(
        counter >= guard.fencing_token(),
        "{counter} < {}",
        guard.fencing_token()
    );
    assert!(
        !format!("{held:?}").contains(guard.owner_token()),
        "{held:?}"
    );
    match kind() {
        Kind::Single => assert_eq!(held.waiters, Some(0)),
        Kind::Cluster | Kind::Memory => assert_eq!(held.waiters, None),
    }

    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let released = operator.inspect("order:1").await.unwrap();
    assert!(!released.is_held(), "{released:?}");
    assert_eq!(released.fencing_counter, Some(counter));
}

#[tokio::test]
async fn inspect_counts_the_waiters_of_the_queue_on_one_server() {
    if kind() != Kind::Single {
        return; // waiters are kept in Redis only by protocol v2
    }
    let backend = Backend::start();
    let manager = backend.manager().await;
    let operator = backend.manager().await;
    let guard = manager.lock("queue:1").acquire().await.unwrap();
    let waiting = backend.manager().await;
    let waiter = tokio::spawn(async move {
        let guard = waiting.lock("queue:1").acquire().await;
        guard.unwrap().release().await.unwrap()
    });
    let started = Instant::now();
    while operator.inspect("queue:1").await.unwrap().waiters != Some(1) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the waiter never queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(waiter.await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(operator.inspect("queue:1").await.unwrap().waiters, Some(0));
}

#[tokio::test]
async fn force_release_frees_a_stuck_lock_and_its_holder_finds_it_lost() {
    let backend = Backend::start();
    let manager = backend.manager().await;
    let operator = backend.manager().await;
    let ttl = Duration::from_millis(900);
    let stuck = manager
        .lock("job:1")
        .ttl(ttl)
        .renew()
        .acquire()
        .await
        .unwrap();

    let freed = operator.force_release("job:1").await.unwrap();
    let ForcedRelease::Freed { remaining } = freed else {
        panic!("nothing freed: {freed:?}");
    };
    assert!(remaining.is_some_and(|left| left <= ttl), "{remaining:?}");
    // Free at once for anyone else.
    let next = operator.lock("job:1").try_acquire().await.unwrap();
    let next = next.expect("the lock is free after the override");
    // The holder finds out at its next renewal, a third of the lease on.
    let found_lost = tokio::time::timeout(ttl, stuck.lost()).await;
    assert!(
        found_lost.is_ok(),
        "the holder still thinks it holds the lock"
    );
    assert!(!stuck.is_held());
    assert_eq!(stuck.release().await.unwrap(), ReleaseOutcome::TakenOver);
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);

    assert_eq!(
        operator.force_release("job:1").await.unwrap(),
        ForcedRelease::NotHeld
    );
}

#[tokio::test]
async fn force_release_wakes_a_waiter_at_once() {
    let backend = Backend::start();
    let manager = backend.manager().await;
    let operator = backend.manager().await;
    let stuck = manager
        .lock("job:2")
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .unwrap();
    let waiting = backend.manager().await;
    let waiter = tokio::spawn(async move {
        let guard = waiting
            .lock("job:2")
            .wait(Duration::from_secs(10))
            .acquire()
            .await;
        let got_it = Instant::now();
        (guard.unwrap().release().await.unwrap(), got_it)
    });
    // Let the waiter subscribe and wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let forced_at = Instant::now();
    assert!(matches!(
        operator.force_release("job:2").await.unwrap(),
        ForcedRelease::Freed { .. }
    ));
    let (released, got_it) = waiter.await.unwrap();
    assert_eq!(released, ReleaseOutcome::Released);
    let woken_after = got_it.duration_since(forced_at);
    assert!(
        woken_after < Duration::from_millis(250),
        "woken after {woken_after:?}"
    );
    drop(stuck);
}

#[tokio::test]
async fn bad_keys_are_refused_before_anything_is_sent() {
    let backend = Backend::start();
    let operator = backend.manager().await;
    assert!(matches!(
        operator.inspect("").await,
        Err(LockError::InvalidKey { .. })
    ));
    assert!(matches!(
        operator.force_release("").await,
        Err(LockError::InvalidKey { .. })
    ));
}
