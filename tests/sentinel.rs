//! Locks on a Redis Sentinel topology (1 master, 2 replicas, 3 sentinels,
//! all on loopback, from the test kit): locking, waiting and wake-ups, and
//! a failover with a lock held and waited for. The attribute, context and
//! reentrancy suites also run here unchanged (`*_on_sentinel.rs`).

mod common;

use std::time::{Duration, Instant};

use distlock::{LockError, LockManager, ReleaseOutcome};
use lock_testkit::RedisSentinel;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

async fn manager(topology: &RedisSentinel) -> LockManager {
    LockManager::sentinel(topology.sentinel_urls(), topology.master_name())
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .expect("a manager on the sentinels' primary")
}

/// Waits until the replicas have every write the primary took so far:
/// `WAIT` counts the writes of its own connection, so it follows one write
/// of its own, which the replicas apply after all earlier ones.
async fn replicated(topology: &RedisSentinel) {
    let client = redis::Client::open(topology.master_url()).unwrap();
    let mut primary = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("SET")
        .arg("test:replication-probe")
        .arg(1)
        .query_async(&mut primary)
        .await
        .unwrap();
    let acknowledged: u64 = redis::cmd("WAIT")
        .arg(2)
        .arg(2000)
        .query_async(&mut primary)
        .await
        .unwrap();
    assert_eq!(acknowledged, 2, "both replicas have the writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_exclude_wait_and_wake_on_the_primary() {
    let topology = RedisSentinel::start(2, 3);
    let (one, two) = (manager(&topology).await, manager(&topology).await);
    let guard = one.lock("job").acquire().await.unwrap();
    assert!(two.lock("job").try_acquire().await.unwrap().is_none());
    let waiter = common::spawn_waiter(&two, "job");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let released = Instant::now();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let acquired = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    // Handed over by the release, not found by a later poll.
    let handed_over = acquired - released;
    assert!(handed_over < Duration::from_millis(100), "{handed_over:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_calls_bounded_and_the_waiter_gets_the_lock_after_the_release() {
    let mut topology = RedisSentinel::start(2, 3);
    let (holder, waiter, other) = (
        manager(&topology).await,
        manager(&topology).await,
        manager(&topology).await,
    );
    let lease = Duration::from_secs(30);
    let guard = holder.lock("order:1").ttl(lease).acquire().await.unwrap();
    let renewed = holder
        .lock("order:2")
        .ttl(Duration::from_secs(9))
        .renew()
        .acquire()
        .await
        .unwrap();
    let first_token = guard.fencing_token();
    let waiting = {
        let waiter = waiter.clone();
        tokio::spawn(async move {
            let request = waiter
                .lock("order:1")
                .ttl(lease)
                .wait(Duration::from_secs(60));
            let guard = request.acquire().await.expect("the waiter gets the lock");
            (Instant::now(), guard)
        })
    };
    // The waiter is in line, and its place, like the leases, reached the replicas.
    tokio::time::sleep(Duration::from_millis(300)).await;
    replicated(&topology).await;

    let killed = Instant::now();
    topology.kill_master();
    // Calls made while Sentinel promotes a replica end within their
    // command timeout, whatever they find.
    let attempted = Instant::now();
    let during = other.lock("elsewhere").try_acquire().await;
    let took = attempted.elapsed();
    // An outage is an error, not a lock held by someone else.
    assert!(
        matches!(during, Err(LockError::Backend { .. }) | Ok(Some(_))),
        "{during:?}"
    );
    assert!(
        took < COMMAND_TIMEOUT + Duration::from_millis(500),
        "{took:?}: {during:?}"
    );
    let promoted =
        tokio::task::block_in_place(|| topology.wait_for_failover(Duration::from_secs(30)))
            .expect("a replica is promoted");
    let failover = killed.elapsed();

    // The lease moved with the data: the holder still owns the lock, and
    // releasing it on the new primary hands it to the waiter.
    let release_sent = Instant::now();
    let released = tokio::time::timeout(2 * COMMAND_TIMEOUT, guard.release()).await;
    assert_eq!(
        released.expect("bounded").unwrap(),
        ReleaseOutcome::Released
    );
    let (acquired, next) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiter is served")
        .unwrap();
    assert!(
        acquired >= release_sent,
        "the waiter held the lock before the release"
    );
    // A promotion starts new fencing counters above every earlier token.
    assert!(next.fencing_token() > first_token);
    // The renewal carried on: the lock was held through the failover.
    assert!(
        renewed.is_held(),
        "the renewed lock was lost in a {failover:?} failover to {promoted}"
    );
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(renewed.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn bad_sentinel_settings_are_errors_at_build() {
    let no_sentinels: [&str; 0] = [];
    for (builder, says) in [
        (
            LockManager::sentinel(no_sentinels, "m"),
            "at least one sentinel",
        ),
        (
            LockManager::sentinel(["redis://127.0.0.1:1"], ""),
            "master name",
        ),
        (
            LockManager::sentinel(["redis://a:b@127.0.0.1:1", "redis://127.0.0.1:2"], "m"),
            "differ in user, password or TLS",
        ),
        (
            LockManager::builder("redis://127.0.0.1:1").master_credentials(None, "p"),
            "not on Sentinel",
        ),
    ] {
        let error = builder.build().await.unwrap_err();
        assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
        assert!(error.to_string().contains(says), "{error}");
    }
}

/// Sends one command to the node at `url`, as its admin.
async fn admin(url: &str, command: &[&str]) {
    let mut node = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async::<redis::Value>(&mut node).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_and_the_sentinels_take_their_own_credentials() {
    let topology = RedisSentinel::start(2, 3);
    let master = topology.master_name().to_owned();
    // Passwords on every data node (replicas reach the primary with it) and
    // on every sentinel (which reach the data nodes with auth-pass).
    for node in topology.nodes() {
        admin(&node.url(), &["CONFIG", "SET", "masterauth", "data-secret"]).await;
        admin(
            &node.url(),
            &["CONFIG", "SET", "requirepass", "data-secret"],
        )
        .await;
    }
    for sentinel in topology.sentinels() {
        admin(
            &sentinel.url(),
            &["SENTINEL", "SET", &master, "auth-pass", "data-secret"],
        )
        .await;
        let password = ["ACL", "SETUSER", "default", "resetpass", ">sentinel-secret"];
        admin(&sentinel.url(), &password).await;
    }
    let sentinels: Vec<String> = topology
        .sentinels()
        .iter()
        .map(|sentinel| format!("redis://:sentinel-secret@127.0.0.1:{}", sentinel.port()))
        .collect();

    let manager = LockManager::sentinel(sentinels.clone(), master.as_str())
        .master_credentials(None, "data-secret")
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .expect("both credentials given");
    let guard = manager.lock("order:9").acquire().await.unwrap();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);

    let without_master = LockManager::sentinel(sentinels, master.as_str())
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await;
    assert!(
        matches!(without_master, Err(LockError::Connect { .. })),
        "{without_master:?}"
    );
    let without_sentinels = LockManager::sentinel(topology.sentinel_urls(), master.as_str())
        .master_credentials(None, "data-secret")
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await;
    assert!(
        matches!(without_sentinels, Err(LockError::Connect { .. })),
        "{without_sentinels:?}"
    );
}
