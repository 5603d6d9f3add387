//! Helpers shared by the integration tests.
// Each test file uses some of these; `pub` reaches the test file using them.
#![allow(dead_code, unreachable_pub)]

pub mod backend;
pub mod body;
pub mod cluster;
pub mod kinds;
pub mod urls;

#[allow(unused_imports)]
pub use backend::{Backend, backend_for};

use std::future::Future;
use std::time::{Duration, Instant};

use distlock::LockManager;
use lock_testkit::RedisServer;
use redis::aio::MultiplexedConnection;

/// Runs `future`, returning its output and how long it took.
pub async fn timed<T>(future: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = future.await;
    (output, started.elapsed())
}

/// A manager on `server` with a short command timeout.
pub async fn manager(server: &RedisServer) -> LockManager {
    LockManager::builder(server.url())
        .command_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("connect to the test redis")
}

/// A plain connection for looking at what distlock wrote.
pub async fn raw(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("test url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test redis")
}

/// Every key in the server.
pub async fn all_keys(server: &RedisServer) -> Vec<String> {
    let mut conn = raw(server).await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    keys.sort();
    keys
}

/// Every key holding a lock in the server, under any prefix, found by
/// scanning: leases of exclusive locks, and the holders of semaphores and
/// read-write locks (a set that Redis deletes with its last member).
pub async fn lease_keys(server: &RedisServer) -> Vec<String> {
    all_keys(server)
        .await
        .into_iter()
        .filter(|k| HOLDING.iter().any(|segment| k.contains(segment)))
        .collect()
}

/// What follows the hash tag in the name of a key holding a lock, per kind.
pub const HOLDING: [&str; 3] = ["}:lock:", "}:permits:", "}:rw:"];

/// The lease keys of the lock `key` (`P{G}:lock:K`, under any prefix `P`)
/// in the Redis behind `conn`, found among its keys (the hash tag `G` is
/// internal).
pub async fn lease_keys_of(conn: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    let suffix = format!("}}:lock:{key}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(conn)
        .await
        .expect("KEYS");
    keys.into_iter().filter(|k| k.ends_with(&suffix)).collect()
}

/// The lease key of the lock `key`, which must be held: the one key its
/// lease is under.
pub async fn lease_key(conn: &mut MultiplexedConnection, key: &str) -> String {
    let mut keys = lease_keys_of(conn, key).await;
    assert_eq!(keys.len(), 1, "lease keys of {key}: {keys:?}");
    keys.pop().expect("one lease key")
}

/// `PTTL` of the Redis key `key`, in ms: -2 once it is gone.
pub async fn pttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(conn)
        .await
        .expect("PTTL")
}

/// Whether a fresh manager on `server` (another process, as far as locking
/// goes) finds `key` held: a single attempt that must fail.
pub async fn held_elsewhere(server: &RedisServer, key: &str) -> bool {
    manager(server)
        .await
        .lock(key)
        .try_acquire()
        .await
        .expect("try_acquire")
        .is_none()
}

/// How many EVALSHA commands (lock scripts) `server` has run so far.
pub async fn evalsha_calls(server: &RedisServer) -> u64 {
    cluster::command_calls(server, "evalsha").await
}

/// Starts a Redis and registers a manager for it under `name`.
pub async fn redis_for(name: &str) -> RedisServer {
    let server = RedisServer::start();
    distlock::register(name, manager(&server).await).expect("fresh manager name");
    server
}

/// An example binary that `cargo test` built next to the running test
/// binary (`target/<profile>/deps/<test>` -> `target/<profile>/examples/<name>`),
/// so any `CARGO_TARGET_DIR` works.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test` (scripts/test.sh), which builds the examples, \
         or `cargo build --example {name}` first",
        path.display()
    );
    path
}

/// Takes `key` with a lease far longer than any test.
pub async fn hold(manager: &LockManager, key: &str) -> distlock::LockGuard {
    manager
        .lock(key)
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .expect("take the lock")
}

/// A task that waits (up to 20 s) for `key`, releases it, and reports when
/// it acquired it.
pub fn spawn_waiter(
    manager: &LockManager,
    key: &'static str,
) -> tokio::task::JoinHandle<std::time::Instant> {
    let manager = manager.clone();
    tokio::spawn(async move {
        let guard = manager
            .lock(key)
            .wait(Duration::from_secs(20))
            .acquire()
            .await
            .expect("the waiter acquires");
        let acquired = std::time::Instant::now();
        assert_eq!(
            guard.release().await.expect("release"),
            distlock::ReleaseOutcome::Released
        );
        acquired
    })
}

/// Releases `held` while a task of `other` waits for `key`, and asserts
/// that the waiter holds the lock within `within` of the release: woken by
/// it, not finding it at a later poll.
pub async fn assert_release_hands_over(
    held: distlock::LockGuard,
    other: &LockManager,
    key: &'static str,
    within: Duration,
) {
    let waiter = spawn_waiter(other, key);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = Instant::now();
    assert_eq!(
        held.release().await.unwrap(),
        distlock::ReleaseOutcome::Released
    );
    let acquired = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter got the lock")
        .unwrap();
    let handed_over = acquired - released;
    assert!(handed_over < within, "handed over after {handed_over:?}");
}
