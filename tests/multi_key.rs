//! Locks over several keys (`LockManager::lock_all`): all or nothing, no
//! deadlock whatever the order of the keys, one fencing token above every
//! earlier holder's token of each key. The same tests run in memory and on a
//! Redis Cluster, whose keys live in different slots (`multi_key_in_memory.rs`,
//! `multi_key_on_cluster.rs`; see `common/backend.rs`).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::backend::Backend;
use distlock::{LockError, LockManager, ReleaseOutcome};

/// How many holders each key has right now, and the most it ever had.
#[derive(Default)]
struct Inside {
    now: HashMap<String, usize>,
    most: usize,
}

async fn hold_all(manager: &LockManager, keys: &[&str], inside: &Mutex<Inside>) {
    let guard = manager
        .lock_all(keys.iter().copied())
        .ttl(Duration::from_secs(10))
        .wait(Duration::from_secs(30))
        .acquire()
        .await
        .unwrap();
    for key in keys {
        let mut inside = inside.lock().unwrap();
        let now = inside.now.entry((*key).to_owned()).or_default();
        *now += 1;
        let now = *now;
        inside.most = inside.most.max(now);
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    for key in keys {
        *inside.lock().unwrap().now.get_mut(*key).unwrap() -= 1;
    }
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_sets_exclude_each_other_and_opposite_orders_never_deadlock() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let inside = Arc::new(Mutex::new(Inside::default()));
    let sets: [&'static [&str]; 4] = [
        &["account:a", "account:b"],
        &["account:b", "account:a"],
        &["account:b", "account:c"],
        &["account:c", "account:a"],
    ];
    let mut calls = Vec::new();
    for round in 0..10 {
        for (i, &set) in sets.iter().enumerate() {
            let manager = if (round + i) % 2 == 0 {
                one.clone()
            } else {
                two.clone()
            };
            let inside = inside.clone();
            calls.push(tokio::spawn(async move {
                hold_all(&manager, set, &inside).await;
            }));
        }
    }
    let all = futures_util::future::join_all(calls);
    let finished = tokio::time::timeout(Duration::from_secs(60), all).await;
    for call in finished.expect("no deadlock: every call finished") {
        call.unwrap();
    }
    assert_eq!(
        inside.lock().unwrap().most,
        1,
        "two holders of one key at once"
    );
}

#[tokio::test]
async fn disjoint_sets_are_held_at_the_same_time() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let first = one.lock_all(["a", "b"]).acquire().await.unwrap();
    let second = two.lock_all(["c", "d"]).try_acquire().await.unwrap();
    let second = second.expect("a disjoint set is free");
    assert!(first.is_held() && second.is_held());
    assert_eq!(second.keys().collect::<Vec<_>>(), ["c", "d"]);
    assert_eq!(first.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(second.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn a_set_with_one_key_held_elsewhere_holds_nothing() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let held = one.lock("b").acquire().await.unwrap();
    // "a" is taken first (sorted), then "b" is found held: "a" is given back.
    assert!(
        two.lock_all(["b", "a"])
            .try_acquire()
            .await
            .unwrap()
            .is_none()
    );
    let started = Instant::now();
    let error = two
        .lock_all(["a", "b"])
        .wait(Duration::from_millis(200))
        .acquire()
        .await
        .unwrap_err();
    let LockError::Timeout { key, waited } = error else {
        panic!("not a timeout: {error}");
    };
    assert_eq!(key, "b");
    assert!(waited >= Duration::from_millis(190) && started.elapsed() < Duration::from_secs(2));
    let a = one.lock("a").try_acquire().await.unwrap();
    assert!(a.is_some(), "key a was left held");
    drop(a);
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn a_waiting_set_gets_its_keys_once_they_are_released() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let held = one.lock("y").acquire().await.unwrap();
    let waiter = tokio::spawn(async move {
        let both = two
            .lock_all(["x", "y"])
            .wait(Duration::from_secs(10))
            .acquire()
            .await;
        both.unwrap().release().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
    let released = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert_eq!(released.expect("woken").unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn the_token_is_above_every_earlier_holder_of_each_key_and_below_every_later_one() {
    let backend = Backend::start();
    let manager = backend.manager().await;
    let mut earlier = HashMap::new();
    for key in ["p", "q", "r"] {
        for _ in 0..3 {
            let guard = manager.lock(key).acquire().await.unwrap();
            earlier.insert(key, guard.fencing_token());
            let _ = guard.release().await.unwrap();
        }
    }
    let all = manager.lock_all(["r", "p", "q"]).acquire().await.unwrap();
    let token = all.fencing_token();
    for (key, before) in &earlier {
        assert!(token > *before, "{key}: {token} is not above {before}");
    }
    let per_key: Vec<u64> = all
        .guards()
        .iter()
        .map(distlock::LockGuard::fencing_token)
        .collect();
    assert_eq!(Some(token), per_key.iter().copied().max());
    assert_eq!(all.release().await.unwrap(), ReleaseOutcome::Released);
    for key in ["p", "q", "r"] {
        let later = manager.lock(key).acquire().await.unwrap();
        assert!(
            later.fencing_token() > token,
            "{key}: {} after {token}",
            later.fencing_token()
        );
        let _ = later.release().await.unwrap();
    }
}

#[tokio::test]
async fn key_counts_outside_one_to_sixteen_are_refused() {
    let backend = Backend::start();
    let manager = backend.manager().await;
    let none: [&str; 0] = [];
    let too_many: Vec<String> = (0..=distlock::MAX_KEYS).map(|i| format!("k{i}")).collect();
    for keys in [none.iter().map(ToString::to_string).collect(), too_many] {
        let error = manager.lock_all(keys).acquire().await.unwrap_err();
        assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
    }
    // Duplicates count once.
    let same = manager.lock_all(["k", "k"]).acquire().await.unwrap();
    assert_eq!(same.keys().count(), 1);
    let _ = same.release().await.unwrap();
    assert!(matches!(
        manager.lock_all(["ok", ""]).acquire().await,
        Err(LockError::InvalidKey { .. })
    ));
}

#[tokio::test]
async fn a_task_of_the_same_process_waiting_for_one_key_gets_a_higher_token() {
    let backend = Backend::start();
    let manager = backend.manager().await;
    // Push the counter of "m"'s group above "l"'s, so the lock's token
    // comes from "m" and is above what "l"'s counter reserved.
    let first_l = manager.lock("l").acquire().await.unwrap();
    let _ = first_l.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let first_m = manager.lock("m").acquire().await.unwrap();
    let _ = first_m.release().await.unwrap();
    let all = manager.lock_all(["l", "m"]).acquire().await.unwrap();
    let token = all.fencing_token();
    // Another task of this process waits for "l" alone: on one server it is
    // next in this process's line, where a single-key lock would pass it a
    // baton with one of "l"'s reserved tokens.
    let waiting = manager.clone();
    let waiter = tokio::spawn(async move {
        let guard = waiting
            .lock("l")
            .wait(Duration::from_secs(10))
            .acquire()
            .await;
        let guard = guard.unwrap();
        let next = guard.fencing_token();
        let _ = guard.release().await.unwrap();
        next
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(all.release().await.unwrap(), ReleaseOutcome::Released);
    let next = waiter.await.unwrap();
    assert!(
        next > token,
        "the next holder of l got {next}, not above {token}"
    );
}

#[tokio::test]
async fn renewal_keeps_every_key_and_losing_one_loses_the_lock() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let ttl = Duration::from_millis(300);
    let both = one
        .lock_all(["g", "h"])
        .ttl(ttl)
        .renew()
        .acquire()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(both.is_held(), "renewal kept both keys past three leases");
    for key in ["g", "h"] {
        assert!(
            two.lock(key).try_acquire().await.unwrap().is_none(),
            "{key} is free"
        );
    }
    // One key forced away: the lock is lost at that key's next renewal.
    assert!(matches!(
        two.force_release("h").await.unwrap(),
        distlock::ForcedRelease::Freed { .. }
    ));
    let lost = tokio::time::timeout(Duration::from_secs(2), both.lost()).await;
    assert!(lost.is_ok(), "losing one key did not lose the lock");
    assert!(!both.is_held());
    let _ = both.release().await;
}

#[tokio::test]
async fn a_key_whose_lease_ran_out_while_the_others_were_awaited_fails_the_set() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let ttl = Duration::from_millis(300);
    let b = one
        .lock("b")
        .ttl(Duration::from_secs(5))
        .acquire()
        .await
        .unwrap();
    let waiting = backend.manager().await;
    let set = tokio::spawn(async move {
        waiting
            .lock_all(["a", "b"])
            .ttl(ttl)
            .wait(Duration::from_secs(5))
            .acquire()
            .await
    });
    // "a" is taken at once; its lease runs out while "b" is awaited, and
    // another process takes "a" meanwhile. (etcd's leases count whole
    // seconds, and it ends them up to half a second late.)
    let ran_out = match common::backend::kind() {
        common::backend::Kind::Etcd => Duration::from_secs(2),
        _ => Duration::from_millis(500),
    };
    tokio::time::sleep(ran_out).await;
    let a = two.lock("a").try_acquire().await.unwrap();
    let a = a.expect("a's lease ran out while the set waited for b");
    assert_eq!(b.release().await.unwrap(), ReleaseOutcome::Released);
    let error = set.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, LockError::Timeout { key, .. } if key == "a"),
        "the set was handed out without a: {error}"
    );
    assert!(a.is_held());
    assert_eq!(a.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(
        one.lock("b").try_acquire().await.unwrap().is_some(),
        "b was kept"
    );
}

#[tokio::test]
async fn a_set_that_fails_keeps_none_of_its_keys_for_hold_at_least() {
    let backend = Backend::start();
    let (one, two) = (backend.manager().await, backend.manager().await);
    let held = one.lock("s2").acquire().await.unwrap();
    let failed = two
        .lock_all(["s1", "s2"])
        .hold_at_least(Duration::from_secs(5))
        .try_acquire()
        .await
        .unwrap();
    assert!(failed.is_none());
    assert!(
        one.lock("s1").try_acquire().await.unwrap().is_some(),
        "s1 kept for hold_at_least"
    );
    let _ = held.release().await.unwrap();
    // Once handed out, the set keeps every key for hold_at_least.
    let both = two
        .lock_all(["s3", "s4"])
        .hold_at_least(Duration::from_millis(600))
        .acquire()
        .await
        .unwrap();
    assert_eq!(both.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(
        one.lock("s4").try_acquire().await.unwrap().is_none(),
        "s4 freed inside the window"
    );
}
