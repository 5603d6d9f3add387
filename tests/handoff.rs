//! Waiting without polling: wake-ups on release, takeover after a crash,
//! arrival order, and a subscriber connection that dies.
//!
//! Two managers on one Redis stand for two processes: each has its own
//! connections and its own local line.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distlock::{LockError, ReleaseOutcome};
use lock_testkit::RedisServer;

async fn numsub(server: &RedisServer, channel_suffix: &str) -> i64 {
    let mut conn = common::raw(server).await;
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let Some(channel) = channels.into_iter().find(|c| c.ends_with(channel_suffix)) else {
        return 0;
    };
    let counts: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    counts.1
}

/// Polls until the channel has `count` subscribers (up to 2 s).
async fn numsub_becomes(server: &RedisServer, channel_suffix: &str, count: i64) -> bool {
    for _ in 0..200 {
        if numsub(server, channel_suffix).await == count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn a_release_wakes_a_waiter_in_another_process_within_20ms() {
    let server = RedisServer::start();
    let (holder_side, waiter_side) = (
        common::manager(&server).await,
        common::manager(&server).await,
    );
    let mut wake_ups = Vec::new();
    for _ in 0..5 {
        let holder = common::hold(&holder_side, "hot").await;
        let waiter = common::spawn_waiter(&waiter_side, "hot");
        // Let the waiter subscribe and go to sleep: its fallback timer is 500 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let released = Instant::now();
        assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);
        wake_ups.push(waiter.await.unwrap().duration_since(released));
    }
    // The fallback timer would take 500 ms: every round is a wake-up by
    // message. Tests run in parallel on a small machine, so one slow round in
    // five is tolerated against the 20 ms bound.
    wake_ups.sort();
    assert!(
        wake_ups[3] < Duration::from_millis(20),
        "wake-ups after release: {wake_ups:?}"
    );
    assert!(
        wake_ups[4] < Duration::from_millis(200),
        "wake-ups after release: {wake_ups:?}"
    );
}

#[tokio::test]
async fn a_crashed_holders_lock_is_taken_over_within_50ms_of_its_lease_end() {
    let server = RedisServer::start();
    let (crashed_side, waiter_side) = (
        common::manager(&server).await,
        common::manager(&server).await,
    );
    let lease = Duration::from_millis(400);
    let started = Instant::now();
    let crashed = crashed_side.lock("job").ttl(lease).acquire().await.unwrap();
    std::mem::forget(crashed); // never released, as if the process died
    let guard = waiter_side
        .lock("job")
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .unwrap();
    let late = started.elapsed().saturating_sub(lease);
    assert!(
        started.elapsed() + Duration::from_millis(5) >= lease,
        "acquired inside the lease"
    );
    assert!(
        late < Duration::from_millis(50),
        "taken over {late:?} after the lease ended"
    );
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_one_process_acquire_in_arrival_order() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let holder = manager.lock("line").acquire().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for arrival in 0..12 {
        let (manager, order) = (manager.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let guard = manager
                .lock("line")
                .wait(Duration::from_secs(20))
                .acquire()
                .await
                .unwrap();
            order.lock().unwrap().push(arrival);
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        }));
        // A clear arrival order: this waiter is in line before the next one starts.
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..12).collect::<Vec<_>>());
}

#[tokio::test]
async fn killing_the_subscriber_connection_does_not_strand_waiters() {
    let server = RedisServer::start();
    let (holder_side, waiter_side) = (
        common::manager(&server).await,
        common::manager(&server).await,
    );
    let holder = common::hold(&holder_side, "k").await;
    let waiter = common::spawn_waiter(&waiter_side, "k");
    assert!(
        numsub_becomes(&server, ":lock:k", 1).await,
        "the waiter did not subscribe"
    );

    let mut conn = common::raw(&server).await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // The subscriber reconnects and subscribes again by itself.
    assert!(
        numsub_becomes(&server, ":lock:k", 1).await,
        "the wake-up connection did not come back"
    );

    let released = Instant::now();
    assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);
    let woken = waiter.await.unwrap().duration_since(released);
    assert!(
        woken < Duration::from_millis(100),
        "woken {woken:?} after the release"
    );
}

#[tokio::test]
async fn channels_are_unsubscribed_when_nobody_waits() {
    let server = RedisServer::start();
    let (holder_side, waiter_side) = (
        common::manager(&server).await,
        common::manager(&server).await,
    );
    let holder = common::hold(&holder_side, "sub").await;
    let waiters: Vec<_> = (0..3)
        .map(|_| common::spawn_waiter(&waiter_side, "sub"))
        .collect();
    // Three waiters, one subscription: only the head of the local line waits in Redis.
    assert!(numsub_becomes(&server, ":lock:sub", 1).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(numsub(&server, ":lock:sub").await, 1);
    assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert!(
        numsub_becomes(&server, ":lock:sub", 0).await,
        "the channel stayed subscribed after the last waiter left"
    );
}

#[tokio::test]
async fn wait_zero_makes_exactly_one_attempt_and_waits_are_honoured() {
    let server = RedisServer::start();
    let (holder_side, other) = (
        common::manager(&server).await,
        common::manager(&server).await,
    );
    let holder = common::hold(&holder_side, "w").await;
    let before = common::cluster::command_calls(&server, "set").await;
    let single = other.lock("w").wait(Duration::ZERO).acquire().await;
    assert!(matches!(single, Err(LockError::Timeout { .. })));
    // An attempt is one SET NX, plain or (waiting) from a script.
    assert_eq!(
        common::cluster::command_calls(&server, "set").await - before,
        1,
        "wait = 0 must make exactly one attempt"
    );

    for wait in [
        Duration::from_millis(30),
        Duration::from_millis(150),
        Duration::from_millis(600),
    ] {
        let started = Instant::now();
        let error = other.lock("w").wait(wait).acquire().await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, LockError::Timeout { .. }));
        assert!(
            elapsed >= wait && elapsed < wait + Duration::from_millis(30),
            "wait {wait:?} took {elapsed:?}"
        );
    }
    assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);
}
