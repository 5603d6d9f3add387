//! Redlock over five independent redis-servers: exclusion and wake-ups
//! across managers, a minority of nodes down, no quorum, split votes, a node
//! that comes back empty, renewal and fencing tokens.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use distlock::{LockError, LockGuard, LockKind, LockManager, ReleaseOutcome};
use lock_testkit::RedisServer;

const NODES: usize = 5;

/// A Redlock manager over `servers` with a per-node timeout that a busy
/// test machine keeps.
async fn redlock(servers: &[RedisServer]) -> LockManager {
    redlock_with_timeout(servers, Duration::from_millis(500)).await
}

async fn redlock_with_timeout(servers: &[RedisServer], node_timeout: Duration) -> LockManager {
    LockManager::redlock(servers.iter().map(RedisServer::url))
        .command_timeout(node_timeout)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("connect to a majority of the nodes")
}

/// Whether `guard`'s lease key is on `server`, holding its owner token.
async fn leased_on(server: &RedisServer, guard: &LockGuard) -> bool {
    let mut conn = common::raw(server).await;
    for key in common::lease_keys(server).await {
        let owner: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("GET");
        if owner.as_deref() == Some(guard.owner_token()) {
            return true;
        }
    }
    false
}

/// Which of `servers` hold `guard`'s lease.
async fn leased_nodes(servers: &[RedisServer], guard: &LockGuard) -> Vec<usize> {
    let mut nodes = Vec::new();
    for (node, server) in servers.iter().enumerate() {
        if server.is_running() && leased_on(server, guard).await {
            nodes.push(node);
        }
    }
    nodes
}

/// Takes `key` on one node alone, for another owner: a lease this node will
/// not grant a Redlock contender.
async fn block(server: &RedisServer, key: &str, lease: Duration) -> LockGuard {
    common::manager(server)
        .await
        .lock(key)
        .ttl(lease)
        .acquire()
        .await
        .expect("block the node")
}

#[tokio::test]
async fn two_managers_exclude_each_other_and_a_release_wakes_the_waiter() {
    let servers = lock_testkit::start_many(NODES);
    let (a, b) = (redlock(&servers).await, redlock(&servers).await);

    let held = a
        .lock("order:1")
        .ttl(Duration::from_secs(10))
        .acquire()
        .await
        .expect("acquire");
    // Won at the first majority; the other votes land right after.
    let mut leased = leased_nodes(&servers, &held).await;
    for _ in 0..100 {
        if leased.len() == NODES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        leased = leased_nodes(&servers, &held).await;
    }
    assert_eq!(leased, [0, 1, 2, 3, 4]);
    assert!(b.lock("order:1").try_acquire().await.unwrap().is_none());

    // The waiter re-checks at most every 500 ms by itself; the release
    // wakes it long before.
    let waiter = tokio::spawn(async move {
        let guard = b
            .lock("order:1")
            .wait(Duration::from_secs(5))
            .acquire()
            .await
            .expect("acquire after the release");
        (Instant::now(), guard)
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let released = Instant::now();
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
    let (acquired, guard) = waiter.await.unwrap();
    let handoff = acquired - released;
    assert!(
        handoff < Duration::from_millis(150),
        "woken after {handoff:?}"
    );
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    for server in &servers {
        assert!(common::lease_keys(server).await.is_empty());
    }

    // Tasks of both managers on one key: one at a time.
    let managers = [redlock(&servers).await, redlock(&servers).await];
    let inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (manager, inside) = (managers[task % 2].clone(), inside.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let guard = manager
                    .lock("order:2")
                    .ttl(Duration::from_secs(10))
                    .wait(Duration::from_secs(20))
                    .acquire()
                    .await
                    .expect("acquire");
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                tokio::time::sleep(Duration::from_millis(1)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn with_two_nodes_down_locks_are_acquired_and_released_and_a_node_back_joins_in() {
    let mut servers = lock_testkit::start_many(NODES);
    servers[0].stop();
    servers[1].stop();
    // Three reachable nodes are enough to build; the others are retried.
    let manager = redlock(&servers).await;

    let guard = manager
        .lock("job")
        .ttl(Duration::from_secs(10))
        .acquire()
        .await
        .expect("acquire on three of five");
    assert_eq!(leased_nodes(&servers, &guard).await, [2, 3, 4]);
    assert!(guard.remaining() > Duration::from_secs(9));
    let other = redlock(&servers).await;
    assert!(other.lock("job").try_acquire().await.unwrap().is_none());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    for server in &servers[2..] {
        assert!(common::lease_keys(server).await.is_empty());
    }

    // Node 0 comes back: the first step after that reconnects it (a
    // majority may answer before it does), and locks are leased on it too.
    servers[0].restart();
    let mut joined = false;
    for _ in 0..20 {
        let guard = manager
            .lock("job")
            .ttl(Duration::from_secs(10))
            .acquire()
            .await
            .expect("acquire");
        joined = leased_nodes(&servers, &guard).await == [0, 2, 3, 4];
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        if joined {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(joined, "node 0 never joined in again");
}

#[tokio::test]
async fn with_three_nodes_down_acquire_and_release_fail_with_no_quorum_within_the_node_timeout() {
    let mut servers = lock_testkit::start_many(NODES);
    // Longer than the default, so that a live node slowed by a busy
    // machine still answers in time and the count of answers is exact.
    let node_timeout = Duration::from_millis(300);
    let limit = node_timeout + Duration::from_millis(300);
    let manager = redlock_with_timeout(&servers, node_timeout).await;
    let held = manager
        .lock("report")
        .ttl(Duration::from_secs(10))
        .acquire()
        .await
        .expect("acquire");

    // Frozen nodes (SIGSTOP) accept the request and never answer: each
    // step waits out the per-node timeout, and no more.
    for server in &servers[..3] {
        server.pause();
    }
    let started = Instant::now();
    let error = manager
        .lock("invoice")
        .wait(Duration::from_secs(10))
        .acquire()
        .await
        .expect_err("no majority can answer");
    let took = started.elapsed();
    assert!(
        matches!(
            &error,
            LockError::NoQuorum { key, answered: 2, quorum: 3, nodes: 5, .. } if key == "invoice"
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("only 2 of 5 Redis nodes answered, a majority needs 3"),
        "{message}"
    );
    assert!(took + Duration::from_millis(10) >= node_timeout, "{took:?}");
    assert!(took < limit, "hung for {took:?}");

    let started = Instant::now();
    let error = held.release().await.expect_err("no majority can answer");
    assert!(
        matches!(error, LockError::NoQuorum { quorum: 3, .. }),
        "{error:?}"
    );
    assert!(started.elapsed() < limit);

    // Nodes that are down answer at once, and so does the error.
    for server in &mut servers[..3] {
        server.stop();
    }
    let started = Instant::now();
    let error = manager
        .lock("invoice")
        .acquire()
        .await
        .expect_err("no quorum");
    assert!(
        matches!(error, LockError::NoQuorum { answered: 2, .. }),
        "{error:?}"
    );
    assert!(started.elapsed() < limit);

    // A manager needs a majority to start with.
    let error = LockManager::redlock(servers.iter().map(RedisServer::url))
        .build()
        .await
        .expect_err("two of five nodes are not a majority");
    let message = error.to_string();
    assert!(
        matches!(error, LockError::Connect { .. })
            && message.contains("only 2 of 5 Redlock nodes are reachable, a majority needs 3"),
        "{message}"
    );
}

#[tokio::test]
async fn a_lock_split_among_other_holders_is_acquired_once_a_majority_is_free() {
    let servers = lock_testkit::start_many(NODES);
    let manager = redlock(&servers).await;
    // Three other owners hold nodes 2, 3 and 4: nobody has a majority, and
    // we get two votes until node 2's lease ends.
    let blocked_at = Instant::now();
    let _short = block(&servers[2], "k", Duration::from_millis(400)).await;
    let _long = [
        block(&servers[3], "k", Duration::from_secs(30)).await,
        block(&servers[4], "k", Duration::from_secs(30)).await,
    ];
    let guard = manager
        .lock("k")
        .ttl(Duration::from_secs(10))
        .wait(Duration::from_secs(5))
        .acquire()
        .await
        .expect("acquired once node 2 is free");
    let after = blocked_at.elapsed();
    assert!(after >= Duration::from_millis(390), "acquired at {after:?}");
    assert!(after < Duration::from_millis(900), "acquired at {after:?}");
    assert_eq!(leased_nodes(&servers, &guard).await, [0, 1, 2]);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_splitting_the_votes_all_get_the_lock_one_at_a_time() {
    let servers = lock_testkit::start_many(NODES);
    // Four processes: only one task of each contends in Redis at a time, so
    // four contenders race for every release and often split the votes.
    let mut managers = Vec::new();
    for _ in 0..4 {
        managers.push(redlock(&servers).await);
    }
    let inside = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Arc::new(tokio::sync::Barrier::new(12));
    let mut tasks = Vec::new();
    for task in 0..12 {
        let manager = managers[task % 4].clone();
        let (inside, tokens, start) = (inside.clone(), tokens.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for _ in 0..5 {
                let guard = manager
                    .lock("hot")
                    .ttl(Duration::from_secs(10))
                    .wait(Duration::from_secs(30))
                    .acquire()
                    .await
                    .expect("every contender gets the lock");
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                tokens.lock().unwrap().push(guard.fencing_token());
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 60);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}

/// Sets up the classic Redlock hazard: A holds exactly nodes 0, 1 and 2
/// (3 and 4 were blocked by another owner, now gone), so losing node 0's
/// data leaves A's lease on two nodes only, and 0, 3 and 4 are a majority
/// for someone else.
async fn bare_majority(servers: &[RedisServer], lease: Duration) -> (LockGuard, Instant) {
    let blockers = [
        block(&servers[3], "order:9", Duration::from_secs(30)).await,
        block(&servers[4], "order:9", Duration::from_secs(30)).await,
    ];
    let a = redlock(servers)
        .await
        .lock("order:9")
        .ttl(lease)
        .acquire()
        .await
        .expect("A acquires on 0, 1 and 2");
    let a_valid_until = Instant::now() + a.remaining();
    assert_eq!(leased_nodes(servers, &a).await, [0, 1, 2]);
    for blocker in blockers {
        assert_eq!(blocker.release().await.unwrap(), ReleaseOutcome::Released);
    }
    (a, a_valid_until)
}

#[tokio::test]
async fn a_node_restarted_empty_after_a_lease_lets_nobody_in_while_the_holder_is_valid() {
    let mut servers = lock_testkit::start_many(NODES);
    let b = redlock(&servers).await;
    let lease = Duration::from_millis(800);
    let (a, a_valid_until) = bare_majority(&servers, lease).await;

    // Node 0 crashes, stays down for a whole lease, and comes back empty.
    servers[0].stop();
    let contender = tokio::spawn(async move {
        let guard = b
            .lock("order:9")
            .ttl(Duration::from_secs(10))
            .wait(Duration::from_secs(10))
            .acquire()
            .await
            .expect("B acquires once A's leases ended");
        (Instant::now(), guard)
    });
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    servers[0].restart();
    assert!(common::all_keys(&servers[0]).await.is_empty());

    let (b_acquired, b_guard) = contender.await.unwrap();
    assert!(
        b_acquired >= a_valid_until,
        "B held the lock {:?} before A's validity ended",
        a_valid_until - b_acquired
    );
    assert!(!a.is_held());
    assert_eq!(a.release().await.unwrap(), ReleaseOutcome::TakenOver);
    assert_eq!(b_guard.release().await.unwrap(), ReleaseOutcome::Released);
}

/// The contrast, and the reason for the delay above: Redlock assumes a node
/// that lost its data stays down for at least the longest lease (or keeps
/// its data with `appendfsync always`). Restarted empty at once, node 0
/// forgets A's lease and, with nodes 3 and 4, makes a majority for B while
/// A still holds its own: two holders at once. distlock cannot detect this;
/// operators must delay such restarts.
#[tokio::test]
async fn an_immediate_empty_restart_lets_a_second_holder_in_while_the_first_is_valid() {
    let mut servers = lock_testkit::start_many(NODES);
    let (a, a_valid_until) = bare_majority(&servers, Duration::from_secs(10)).await;

    servers[0].restart();
    let b = redlock(&servers)
        .await
        .lock("order:9")
        .ttl(Duration::from_secs(10))
        .try_acquire()
        .await
        .unwrap()
        .expect("B wins nodes 0, 3 and 4 at once");
    assert!(Instant::now() < a_valid_until && a.is_held());
    assert_eq!(leased_nodes(&servers, &b).await, [0, 3, 4]);
}

#[tokio::test]
async fn renewal_keeps_a_lock_across_several_leases_and_a_node_failure() {
    let mut servers = lock_testkit::start_many(NODES);
    let (manager, other) = (redlock(&servers).await, redlock(&servers).await);
    // Long enough that a renewal delayed by a loaded machine (the whole
    // suite runs on 2 cores) still lands within the validity.
    let lease = Duration::from_millis(600);
    let guard = manager
        .lock("export")
        .ttl(lease)
        .renew()
        .acquire()
        .await
        .expect("acquire");
    let started = Instant::now();
    let mut tries = 0;
    while started.elapsed() < 5 * lease {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tries == 5 {
            servers[4].stop();
        }
        tries += 1;
        assert!(
            other.lock("export").try_acquire().await.unwrap().is_none(),
            "taken from its renewed holder after {:?}",
            started.elapsed()
        );
        assert!(guard.is_held());
    }
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn fencing_tokens_rise_across_successive_holders_and_nodes_losing_their_data() {
    let mut servers = lock_testkit::start_many(NODES);
    let managers = [redlock(&servers).await, redlock(&servers).await];
    let mut last = 0;
    for round in 0..20 {
        if round == 10 {
            // Two nodes lose their counters: their clocks carry the order.
            servers[0].restart();
            servers[1].restart();
        }
        let guard = managers[round % 2]
            .lock("ledger")
            .ttl(Duration::from_secs(10))
            .acquire()
            .await
            .expect("acquire");
        assert!(
            guard.fencing_token() > last,
            "round {round}: {} after {last}",
            guard.fencing_token()
        );
        last = guard.fencing_token();
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    }
}

#[tokio::test]
async fn a_node_listed_twice_or_no_node_at_all_is_a_configuration_error() {
    let server = RedisServer::start();
    let other = RedisServer::start();
    let repeated = LockManager::redlock([server.url(), other.url(), format!("{}/3", server.url())])
        .build()
        .await
        .expect_err("one server, two votes");
    assert!(
        matches!(&repeated, LockError::InvalidConfig { reason } if reason.contains("separate Redis servers")),
        "{repeated}"
    );
    let none = LockManager::redlock(Vec::<String>::new())
        .build()
        .await
        .expect_err("no nodes");
    assert!(matches!(none, LockError::InvalidConfig { .. }), "{none}");
}

#[tokio::test]
async fn inspect_and_force_release_are_refused_with_the_reason() {
    let servers = lock_testkit::start_many(3);
    let manager = redlock(&servers).await;
    for refused in [
        manager.inspect("k").await.map(drop),
        manager.force_release("k").await.map(drop),
    ] {
        let error = refused.unwrap_err();
        assert!(
            matches!(
                error,
                LockError::Unsupported {
                    backend: "Redlock",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("majority"), "{error}");
    }
}

#[tokio::test]
async fn semaphores_and_read_write_locks_are_refused_with_the_reason() {
    let servers = lock_testkit::start_many(3);
    let manager = redlock(&servers).await;
    for kind in [LockKind::Permits(2), LockKind::Read, LockKind::Write] {
        let error = manager.lock("k").kind(kind).acquire().await.unwrap_err();
        assert!(
            matches!(
                error,
                LockError::Unsupported {
                    backend: "Redlock",
                    ..
                }
            ),
            "{kind}: {error}"
        );
        assert!(
            error.to_string().contains("one Redis server or a cluster"),
            "{error}"
        );
    }
    // Nothing was sent: the exclusive lock of that name is free.
    let guard = manager.lock("k").try_acquire().await.unwrap();
    assert!(guard.is_some());
}
