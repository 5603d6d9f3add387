//! An operator's view of locks: `LockManager::inspect` and
//! `LockManager::force_release`. The same tests run in memory and on a Redis
//! Cluster (`operations_in_memory.rs`, `operations_on_cluster.rs`; see
//! `common/backend.rs`).

mod common;

use std::time::{Duration, Instant};

use common::backend::{Backend, Kind, kind};
use distlock::{ForcedRelease, LockError, LockKind, ReleaseOutcome};

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
    // etcd tells a lease's time left in whole seconds, rounded down.
    let least = match kind() {
        Kind::Etcd => Duration::from_secs(3),
        _ => Duration::from_secs(4),
    };
    assert!(left > least && left <= Duration::from_secs(5), "{left:?}");
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
        Kind::Single | Kind::Sentinel => assert_eq!(held.waiters, Some(0)),
        Kind::Cluster | Kind::Memory | Kind::Etcd => assert_eq!(held.waiters, None),
    }

    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let released = operator.inspect("order:1").await.unwrap();
    assert!(!released.is_held(), "{released:?}");
    match kind() {
        // etcd's counter is the cluster's revision: the release moved it.
        Kind::Etcd => assert!(released.fencing_counter > Some(counter)),
        _ => assert_eq!(released.fencing_counter, Some(counter)),
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_is_inspected_and_forced_like_any_lock() {
    let backend = Backend::start();
    let (manager, operator) = (backend.manager().await, backend.manager().await);
    let permits = LockKind::Permits(2);
    if common::backend::refuses_shared_kinds(
        &manager.lock("export").kind(permits).try_acquire().await,
    ) {
        return;
    }
    let ttl = Duration::from_millis(900);
    let take = || {
        manager
            .lock("export")
            .kind(permits)
            .ttl(ttl)
            .renew()
            .acquire()
    };
    let (first, second) = (take().await.unwrap(), take().await.unwrap());
    let waiter = {
        let manager = manager.clone();
        tokio::spawn(async move {
            let request = manager.lock("export").kind(permits);
            let guard = request
                .wait(Duration::from_secs(10))
                .acquire()
                .await
                .unwrap();
            guard.fencing_token()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let info = loop {
        let info = operator.inspect_kind("export", permits).await.unwrap();
        if info.waiters == Some(1) {
            break info;
        }
        assert!(
            Instant::now() < deadline,
            "the waiter never queued: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info.holders, 2);
    assert!(info.remaining.is_some_and(|left| left <= ttl), "{info:?}");
    let highest = first.fencing_token().max(second.fencing_token());
    assert!(
        info.fencing_counter
            .is_some_and(|counter| counter >= highest)
    );
    // The exclusive lock of that name is another lock, and free.
    assert!(!operator.inspect("export").await.unwrap().is_held());

    let freed = operator
        .force_release_kind("export", permits)
        .await
        .unwrap();
    assert!(
        matches!(freed, ForcedRelease::Freed { remaining: Some(_) }),
        "{freed:?}"
    );
    let token = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert!(token.unwrap().unwrap() > highest, "the waiter got a permit");
    for holder in [&first, &second] {
        let found_lost = tokio::time::timeout(ttl, holder.lost()).await;
        assert!(
            found_lost.is_ok(),
            "a forced holder still thinks it holds its permit"
        );
    }
    assert_eq!(first.release().await.unwrap(), ReleaseOutcome::Expired);
    drop(second);
    let read = LockKind::Read;
    let reader = manager.lock("export").kind(read).acquire().await.unwrap();
    let info = operator
        .inspect_kind("export", LockKind::Write)
        .await
        .unwrap();
    assert_eq!(
        (info.holders, info.waiters),
        (1, Some(0)),
        "read and write name one lock"
    );
    assert_eq!(reader.release().await.unwrap(), ReleaseOutcome::Released);
}
