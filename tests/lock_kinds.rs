//! Semaphores and read-write locks (`LockKind`): how many hold at once, each
//! holder's own token and lease, what a crash leaves, who goes first. The
//! same tests run in memory and on a Redis Cluster
//! (`lock_kinds_in_memory.rs`, `lock_kinds_on_cluster.rs`; see
//! `common/backend.rs`). That a release wakes one waiter alone is counted
//! in Redis's command statistics, in `tests/queue.rs`.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::backend::Backend;
use distlock::{LockError, LockGuard, LockKind, LockManager, ReleaseOutcome};

const LONG: Duration = Duration::from_secs(20);
/// How long a waiter of `a_released_permit_goes_to_one_waiter_the_first_in_line` holds.
const HOLD: Duration = Duration::from_millis(300);

async fn take(manager: &LockManager, key: &str, kind: LockKind) -> LockGuard {
    manager
        .lock(key)
        .kind(kind)
        .ttl(LONG)
        .wait(LONG)
        .acquire()
        .await
        .expect("acquire")
}

async fn try_take(manager: &LockManager, key: &str, kind: LockKind) -> Option<LockGuard> {
    manager
        .lock(key)
        .kind(kind)
        .ttl(LONG)
        .try_acquire()
        .await
        .expect("try_acquire")
}

async fn release(guard: LockGuard) {
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

/// How many are inside now, and the most ever at once.
#[derive(Default)]
struct Inside {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Inside {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_n_permits_are_held_at_once_each_with_its_own_token() {
    let backend = Backend::start();
    let managers = [backend.manager().await, backend.manager().await];
    let inside = Arc::new(Inside::default());
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut calls = Vec::new();
    for call in 0..24 {
        let manager = managers[call % 2].clone();
        let (inside, tokens) = (inside.clone(), tokens.clone());
        calls.push(tokio::spawn(async move {
            let guard = take(&manager, "export", LockKind::Permits(3)).await;
            inside.enter();
            tokens.lock().unwrap().push(guard.fencing_token());
            tokio::time::sleep(Duration::from_millis(20)).await;
            inside.leave();
            release(guard).await;
        }));
    }
    let finished = tokio::time::timeout(
        Duration::from_secs(60),
        futures_util::future::join_all(calls),
    );
    for call in finished.await.expect("every call got a permit") {
        call.unwrap();
    }
    assert_eq!(inside.most.load(Ordering::SeqCst), 3, "3 permits, 24 calls");
    let tokens = tokens.lock().unwrap().clone();
    let distinct: HashSet<u64> = tokens.iter().copied().collect();
    assert_eq!(distinct.len(), 24, "a fencing token per permit: {tokens:?}");
    assert!(backend.locks_held().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_permit_has_its_own_lease_and_renewal_and_a_later_one_a_higher_token() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let permits = LockKind::Permits(2);
    let short = Duration::from_millis(300);
    let renewed = |manager: &LockManager| {
        manager
            .lock("report")
            .kind(permits)
            .ttl(short)
            .renew()
            .acquire()
    };
    let first = renewed(&one).await.unwrap();
    let second = renewed(&two).await.unwrap();
    assert_ne!(first.fencing_token(), second.fencing_token());
    // Three leases' worth: only the renewals keep both permits.
    tokio::time::sleep(3 * short).await;
    assert!(first.is_held() && second.is_held());
    assert!(
        try_take(&one, "report", permits).await.is_none(),
        "both permits are held"
    );
    let highest = first.fencing_token().max(second.fencing_token());
    release(first).await;
    let third = try_take(&two, "report", permits)
        .await
        .expect("a permit was freed");
    assert!(third.fencing_token() > highest);
    release(second).await;
    release(third).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_permit_is_freed_by_its_lease() {
    let backend = Backend::start();
    let (crashed, other) = (backend.manager().await, backend.manager().await);
    let lease = Duration::from_millis(400);
    let lost = crashed
        .lock("slot")
        .kind(LockKind::Permits(1))
        .ttl(lease)
        .acquire()
        .await
        .unwrap();
    // A holder that never releases: its process died.
    std::mem::forget(lost);
    let started = Instant::now();
    let guard = other
        .lock("slot")
        .kind(LockKind::Permits(1))
        .ttl(LONG)
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .expect("the lease frees the permit");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    release(guard).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_permit_goes_to_one_waiter_the_first_in_line() {
    let backend = Backend::start();
    let holder_manager = backend.manager().await;
    let holder = take(&holder_manager, "one-slot", LockKind::Permits(1)).await;
    let acquired = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for waiter in 0..3 {
        let manager = backend.manager().await;
        let acquired = acquired.clone();
        waiters.push(tokio::spawn(async move {
            let guard = take(&manager, "one-slot", LockKind::Permits(1)).await;
            acquired.lock().unwrap().push((waiter, Instant::now()));
            tokio::time::sleep(HOLD).await;
            release(guard).await;
        }));
        // In line in this order.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let released = Instant::now();
    release(holder).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        acquired.lock().unwrap().len(),
        1,
        "one waiter got the permit"
    );
    for waiter in waiters {
        tokio::time::timeout(LONG, waiter).await.unwrap().unwrap();
    }
    let acquired = acquired.lock().unwrap().clone();
    let order: Vec<usize> = acquired.iter().map(|(waiter, _)| *waiter).collect();
    assert_eq!(order, [0, 1, 2], "in arrival order");
    // Each release handed the permit on at once: a waiter that had to find
    // out by itself would look again only at its next poll (every 500 ms).
    let mut previous_release = released;
    for (waiter, at) in acquired {
        let handed_over = at - previous_release;
        assert!(
            handed_over < Duration::from_millis(100),
            "waiter {waiter}: {handed_over:?}"
        );
        previous_release = at + HOLD;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_and_a_writer_excludes_readers_and_writers() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let first = take(&one, "catalog", LockKind::Read).await;
    let second = try_take(&two, "catalog", LockKind::Read)
        .await
        .expect("readers share");
    assert_ne!(first.fencing_token(), second.fencing_token());
    assert!(
        try_take(&one, "catalog", LockKind::Write).await.is_none(),
        "readers hold it"
    );
    release(first).await;
    assert!(
        try_take(&one, "catalog", LockKind::Write).await.is_none(),
        "a reader holds it"
    );
    release(second).await;
    let writer = try_take(&one, "catalog", LockKind::Write)
        .await
        .expect("free");
    assert!(
        try_take(&two, "catalog", LockKind::Read).await.is_none(),
        "the writer holds it"
    );
    assert!(
        try_take(&two, "catalog", LockKind::Write).await.is_none(),
        "one writer"
    );
    release(writer).await;
    // An exclusive lock of the same name is another lock.
    let reader = take(&one, "catalog", LockKind::Read).await;
    let exclusive = try_take(&two, "catalog", LockKind::Exclusive).await;
    assert!(exclusive.is_some(), "kinds keep keys of their own");
    release(exclusive.unwrap()).await;
    release(reader).await;
    assert!(backend.locks_held().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_writer_is_not_starved_by_readers_that_come_after_it() {
    let backend = Backend::start();
    let (one, two, three) = (
        backend.manager().await,
        backend.manager().await,
        backend.manager().await,
    );
    let reader = take(&one, "prices", LockKind::Read).await;
    let writer = tokio::spawn(async move {
        let guard = take(&two, "prices", LockKind::Write).await;
        let token = guard.fencing_token();
        tokio::time::sleep(Duration::from_millis(200)).await;
        release(guard).await;
        token
    });
    // The writer is in line.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A reader arriving now waits behind the writer, though only a reader holds the lock.
    assert!(try_take(&three, "prices", LockKind::Read).await.is_none());
    let later = tokio::spawn(async move {
        let guard = take(&three, "prices", LockKind::Read).await;
        let token = guard.fencing_token();
        release(guard).await;
        token
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !later.is_finished(),
        "the later reader went ahead of the writer"
    );
    release(reader).await;
    let writer_token = tokio::time::timeout(LONG, writer).await.unwrap().unwrap();
    let reader_token = tokio::time::timeout(LONG, later).await.unwrap().unwrap();
    assert!(writer_token < reader_token, "the writer went first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_permits_is_a_configuration_error() {
    let backend = Backend::start();
    let manager = backend.manager().await;
    let refused = manager.lock("k").kind(LockKind::Permits(0)).acquire().await;
    let Err(LockError::InvalidConfig { reason }) = refused else {
        panic!("{refused:?}")
    };
    assert!(reason.contains("at least one permit"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_in_use_refuses_another_number_of_permits() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let held = take(&one, "quota", LockKind::Permits(2)).await;
    let refused = two
        .lock("quota")
        .kind(LockKind::Permits(3))
        .try_acquire()
        .await;
    let Err(LockError::InvalidConfig { reason }) = refused else {
        panic!("{refused:?}")
    };
    assert!(reason.contains("in use with 2 permits"), "{reason}");
    release(held).await;
    // Nobody holds it or waits for it: it may be used with another number.
    let three = try_take(&two, "quota", LockKind::Permits(3))
        .await
        .expect("free");
    release(three).await;
}
