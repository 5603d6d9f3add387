//! Grants acknowledged by replicas (`LockManagerBuilder::replica_acks`): the
//! lock is handed out once that many replicas have its lease; when fewer
//! acknowledge in time it is released (or handed out with a WARN). On one
//! server with a replica, on Sentinel and on a cluster.

mod common;

use std::time::{Duration, Instant};

use distlock::{LockError, LockKind, LockManager, ReleaseOutcome, Unacknowledged};
use lock_testkit::{RedisCluster, RedisSentinel, RedisServer};

/// Long enough for a replica of a loaded CI machine to acknowledge (200 ms
/// was not, once, in a full test run), short enough for the refusals.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// A primary and one replica of it, replicating: a write of the primary's
/// is acknowledged (after a full sync, Redis 7.0 may hold the stream back
/// until the replica's next acknowledgement, up to a second later).
fn primary_and_replica() -> (RedisServer, RedisServer) {
    let primary = RedisServer::start();
    let replica = RedisServer::builder()
        .arg("--replicaof")
        .arg("127.0.0.1")
        .arg(primary.port().to_string())
        .start()
        .expect("a replica");
    let mut conn = redis::Client::open(primary.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let () = redis::cmd("SET")
            .arg("probe")
            .arg(1)
            .query(&mut conn)
            .unwrap();
        let acknowledged: u64 = redis::cmd("WAIT").arg(1).arg(200).query(&mut conn).unwrap();
        if acknowledged == 1 {
            return (primary, replica);
        }
        assert!(
            Instant::now() < deadline,
            "the replica never acknowledged a write"
        );
    }
}

/// Asserts a grant was refused: 2 replicas asked for, where at most one
/// can acknowledge.
fn assert_refused_for_want_of_two(refused: &Result<distlock::LockGuard, LockError>) {
    assert!(
        matches!(
            refused,
            Err(LockError::NotReplicated {
                acknowledged: 0 | 1,
                wanted: 2,
                ..
            })
        ),
        "{refused:?}"
    );
}

async fn with_acks(url: &str, replicas: u32, otherwise: Unacknowledged) -> LockManager {
    LockManager::builder(url)
        .replica_acks(replicas, ACK_TIMEOUT, otherwise)
        .build()
        .await
        .expect("a manager")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_waits_for_the_replica_and_is_released_when_it_does_not_answer() {
    let (primary, replica) = primary_and_replica();
    let manager = with_acks(&primary.url(), 1, Unacknowledged::Release).await;
    let guard = manager.lock("order:1").acquire().await.unwrap();
    // The lease is on the replica already.
    let on_replica: Option<String> = redis::cmd("GET")
        .arg(common::lease_keys(&primary).await.first().expect("a lease"))
        .query_async(&mut common::raw(&replica).await)
        .await
        .unwrap();
    assert_eq!(on_replica.as_deref(), Some(guard.owner_token()));
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    // Semaphores wait for it too.
    let permit = manager
        .lock("export")
        .kind(LockKind::Permits(2))
        .acquire()
        .await
        .unwrap();
    assert_eq!(permit.release().await.unwrap(), ReleaseOutcome::Released);

    replica.pause();
    let started = Instant::now();
    let refused = manager.lock("order:2").acquire().await;
    let took = started.elapsed();
    replica.resume();
    let Err(LockError::NotReplicated {
        acknowledged: 0,
        wanted: 1,
        ..
    }) = refused
    else {
        panic!("{refused:?}")
    };
    assert!(
        took >= ACK_TIMEOUT && took < ACK_TIMEOUT + Duration::from_secs(1),
        "{took:?}"
    );
    // A semaphore's permit waits for it too.
    replica.pause();
    let permit = manager
        .lock("export")
        .kind(LockKind::Permits(2))
        .acquire()
        .await;
    replica.resume();
    assert!(
        matches!(permit, Err(LockError::NotReplicated { .. })),
        "{permit:?}"
    );
    // Released: another process takes it at once.
    let other = common::manager(&primary).await;
    assert!(other.lock("order:2").try_acquire().await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proceed_hands_out_a_lock_too_few_replicas_acknowledged() {
    let (primary, replica) = primary_and_replica();
    let manager = with_acks(&primary.url(), 1, Unacknowledged::Proceed).await;
    replica.pause();
    let guard = manager.lock("order:3").acquire().await;
    replica.resume();
    let guard = guard.expect("handed out anyway");
    assert!(guard.is_held());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    // Two replicas asked of a primary that has one: never enough.
    let two = with_acks(&primary.url(), 2, Unacknowledged::Release).await;
    assert_refused_for_want_of_two(&two.lock("order:4").acquire().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_and_cluster_grants_wait_for_their_replicas() {
    let sentinel = RedisSentinel::start(2, 3);
    let manager = LockManager::sentinel(sentinel.sentinel_urls(), sentinel.master_name())
        .replica_acks(2, ACK_TIMEOUT, Unacknowledged::Release)
        .build()
        .await
        .unwrap();
    let guard = manager.lock("order:5").acquire().await.unwrap();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);

    let cluster = RedisCluster::start(3, 1);
    let manager = LockManager::cluster(cluster.seed_urls())
        .replica_acks(1, ACK_TIMEOUT, Unacknowledged::Release)
        .build()
        .await
        .unwrap();
    // Keys on every master: each grant waits on its own slot's master.
    for order in 0..12 {
        let guard = manager
            .lock(format!("order:{order}"))
            .acquire()
            .await
            .unwrap();
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    }
    let two = LockManager::cluster(cluster.seed_urls())
        .replica_acks(2, ACK_TIMEOUT, Unacknowledged::Release)
        .build()
        .await
        .unwrap();
    assert_refused_for_want_of_two(&two.lock("order:0").acquire().await);
}

#[tokio::test]
async fn replica_acks_are_refused_where_they_mean_nothing() {
    let memory = LockManager::in_memory().replica_acks(1, ACK_TIMEOUT, Unacknowledged::Release);
    let redlock = LockManager::redlock([
        "redis://127.0.0.1:1",
        "redis://127.0.0.1:2",
        "redis://127.0.0.1:3",
    ])
    .replica_acks(1, ACK_TIMEOUT, Unacknowledged::Release);
    let none = LockManager::builder("redis://127.0.0.1:1").replica_acks(
        0,
        ACK_TIMEOUT,
        Unacknowledged::Release,
    );
    let zero = LockManager::builder("redis://127.0.0.1:1").replica_acks(
        1,
        Duration::ZERO,
        Unacknowledged::Release,
    );
    let long = LockManager::builder("redis://127.0.0.1:1").replica_acks(
        1,
        Duration::from_secs(11),
        Unacknowledged::Proceed,
    );
    for (builder, says) in [
        (
            memory,
            "not to Redlock's independent masters, to memory or to etcd",
        ),
        (
            redlock,
            "not to Redlock's independent masters, to memory or to etcd",
        ),
        (none, "at least one replica"),
        (zero, "above zero"),
        (long, "at most 10s"),
    ] {
        let error = builder.build().await.unwrap_err();
        assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
        assert!(error.to_string().contains(says), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_waiting_for_replicas_holds_up_no_other_step_and_a_drop_gives_it_back() {
    let (primary, replica) = primary_and_replica();
    let manager = LockManager::builder(primary.url())
        .replica_acks(1, Duration::from_millis(800), Unacknowledged::Release)
        .build()
        .await
        .unwrap();
    let held = manager.lock("order:held").acquire().await.unwrap();
    replica.pause();
    let waiting = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.lock("order:waiting").acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // WAIT blocks its own connection, not the one releases go on.
    let started = Instant::now();
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(300),
        "the release waited {took:?}"
    );
    // An acquire dropped while its grant waits for the replica gives it back.
    let dropped = tokio::time::timeout(
        Duration::from_millis(200),
        manager.lock("order:dropped").acquire(),
    )
    .await;
    assert!(dropped.is_err(), "{dropped:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = common::manager(&primary).await;
    let free = other.lock("order:dropped").try_acquire().await.unwrap();
    replica.resume();
    assert!(free.is_some(), "the dropped acquire left its lease behind");
    // Acknowledged once the replica is back, or refused before: either way
    // it ends.
    let waited = waiting.await.unwrap();
    assert!(
        matches!(waited, Ok(_) | Err(LockError::NotReplicated { .. })),
        "{waited:?}"
    );
}

/// On a cluster each grant waits on its own slot's master: with one
/// master's replica stalled (SIGSTOP), that master's grants are refused
/// within the ack timeout, and the other masters' grants go through. The
/// scripts are flushed first, so each grant also loads its script, which
/// must go to the slot's master alone, not to the stalled replica too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_stalled_replica_refuses_the_grants_of_its_own_master_only() {
    let cluster = RedisCluster::start(3, 1);
    let prefix = "stalled";
    let plain = common::cluster::manager(&cluster.seed_urls(), prefix).await;
    let mut masters = Vec::new();
    for order in 0..9 {
        let key = format!("order:{order}");
        let guard = plain.lock(&key).acquire().await.unwrap();
        let (master, _) = common::cluster::lease_holder(&cluster, prefix, &key)
            .await
            .expect("a lease");
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        masters.push(master);
    }
    let stalled_master = masters[0];
    let stalled = common::cluster::replica_of(&cluster, stalled_master)
        .await
        .expect("a replica");
    let command_timeout = Duration::from_secs(2);
    let manager = LockManager::cluster(cluster.seed_urls())
        .key_prefix(prefix)
        .command_timeout(command_timeout)
        .replica_acks(1, ACK_TIMEOUT, Unacknowledged::Release)
        .build()
        .await
        .unwrap();
    for node in cluster.nodes() {
        if common::cluster::is_master(node).await {
            let () = common::cluster::node_cmd(node, redis::cmd("SCRIPT").arg("FLUSH"))
                .await
                .unwrap();
        }
    }
    cluster.nodes()[stalled].pause();
    let bound = command_timeout + 2 * ACK_TIMEOUT;
    for (order, master) in masters.iter().enumerate() {
        let (granted, took) = common::timed(manager.lock(format!("order:{order}")).acquire()).await;
        assert!(took < bound, "order:{order} took {took:?}: {granted:?}");
        if *master == stalled_master {
            assert!(
                matches!(
                    granted,
                    Err(LockError::NotReplicated {
                        acknowledged: 0,
                        wanted: 1,
                        ..
                    })
                ),
                "order:{order} on the stalled replica's master: {granted:?}"
            );
        } else {
            let guard = granted.unwrap_or_else(|e| panic!("order:{order}: {e}"));
            assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        }
    }
    cluster.nodes()[stalled].resume();
    assert!(
        masters.iter().any(|m| *m != stalled_master),
        "every key on one master: the test shows nothing"
    );
}
