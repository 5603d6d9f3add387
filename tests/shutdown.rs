//! Shutting a manager down: every lock it holds is released at once (its
//! key gone from Redis, its waiters elsewhere woken), after being marked
//! lost; acquisitions, new and waiting, fail with `LockError::ShutDown`;
//! renewals stop; and the shutdown returns within its bound even when Redis
//! does not answer.
//!
//! These tests shut down their own, unregistered managers (or one
//! registered under a name of its own), never every registered manager:
//! `tests/shutdown_process.rs` does that, in a binary of its own.

mod common;

use std::time::{Duration, Instant};

use common::body::{Shared, ticking_body, wait_until_started};
use distlock::{LockError, LockManager, ShutdownReport, distributed_lock};
use lock_testkit::{FaultProxy, RedisServer};

const LONG_LEASE: Duration = Duration::from_secs(30);

/// What `PTTL` says about the lease of the lock `key`: -2, as for any
/// missing key, when it has none.
async fn lease_pttl(server: &RedisServer, key: &str) -> i64 {
    let mut conn = common::raw(server).await;
    match common::lease_keys_of(&mut conn, key).await.pop() {
        Some(lease) => common::pttl(&mut conn, &lease).await,
        None => -2,
    }
}

#[tokio::test]
async fn shutdown_deletes_every_held_key_at_once_and_marks_the_guards_lost() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let plain = manager
        .lock("job:1")
        .ttl(LONG_LEASE)
        .acquire()
        .await
        .unwrap();
    let renewed = manager
        .lock("job:2")
        .ttl(LONG_LEASE)
        .renew()
        .acquire()
        .await
        .unwrap();
    let waited = manager
        .lock("job:3")
        .ttl(LONG_LEASE)
        .wait(Duration::from_secs(1))
        .acquire()
        .await
        .unwrap();
    let names = ["job:1", "job:2", "job:3"];
    let mut keys = Vec::new();
    for name in names {
        assert!(lease_pttl(&server, name).await > 25_000, "{name} is held");
        keys.push(common::lease_key(&mut common::raw(&server).await, name).await);
    }

    let started = Instant::now();
    let report = manager.shutdown().await;
    let took = started.elapsed();

    assert_eq!(
        (report.released, report.expired, report.unconfirmed),
        (3, 0, 0)
    );
    assert!(took < Duration::from_millis(500), "{took:?}");
    let mut conn = common::raw(&server).await;
    for key in &keys {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(exists, 0, "{key} was released by the shutdown");
    }
    for name in names {
        assert_eq!(lease_pttl(&server, name).await, -2, "{name}");
    }
    for guard in [&plain, &renewed, &waited] {
        assert!(!guard.is_held(), "{guard:?}");
        tokio::time::timeout(Duration::from_millis(100), guard.lost())
            .await
            .expect("lost() completes once the manager shut down");
    }
    // The shutdown released them: the guards do not go to Redis again.
    for guard in [plain, renewed, waited] {
        let found = guard.release().await;
        assert!(
            matches!(&found, Err(LockError::ShutDown { key, .. }) if names.contains(&key.as_str())),
            "{found:?}"
        );
    }
    // Calling it again finds nothing more to do.
    assert_eq!(manager.shutdown().await, ShutdownReport::default());
}

#[tokio::test]
async fn new_and_waiting_acquisitions_fail_with_shut_down() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let other_process = common::manager(&server).await;
    let _held_here = common::hold(&manager, "in-line").await;
    let _held_elsewhere = common::hold(&other_process, "in-redis").await;

    // One waits for its turn behind a task of this process, one for a lock
    // another process holds (subscribed, napping).
    let waiters: Vec<_> = ["in-line", "in-redis"]
        .into_iter()
        .map(|key| {
            let manager = manager.clone();
            tokio::spawn(async move {
                let result = manager
                    .lock(key)
                    .wait(Duration::from_secs(20))
                    .acquire()
                    .await;
                (result, Instant::now())
            })
        })
        .collect();
    // Let both get to waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shutdown_started = Instant::now();
    manager.shutdown().await;

    for waiter in waiters {
        let (result, returned) = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("the waiter stopped waiting")
            .unwrap();
        assert!(
            matches!(&result, Err(LockError::ShutDown { manager, .. }) if manager == "unregistered"),
            "{result:?}"
        );
        assert!(
            returned - shutdown_started < Duration::from_millis(200),
            "{:?}",
            returned - shutdown_started
        );
    }
    let fresh = manager.lock("fresh").acquire().await;
    assert!(
        matches!(&fresh, Err(LockError::ShutDown { key, .. }) if key == "fresh"),
        "{fresh:?}"
    );
    let once = manager.lock("fresh").try_acquire().await;
    assert!(matches!(once, Err(LockError::ShutDown { .. })), "{once:?}");
    assert!(
        !common::lease_keys(&server)
            .await
            .iter()
            .any(|k| k.ends_with(":fresh")),
        "nothing was written for a refused acquisition"
    );
}

#[tokio::test]
async fn a_waiter_in_another_process_gets_the_lock_as_soon_as_the_holder_shuts_down() {
    let server = RedisServer::start();
    let holder = common::manager(&server).await;
    let other_process = common::manager(&server).await;
    let _guard = common::hold(&holder, "order:7").await;
    let waiter = common::spawn_waiter(&other_process, "order:7");
    // Let the waiter subscribe and nap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());

    holder.shutdown().await;
    let shut_down = Instant::now();
    let acquired = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter got the lock long before the 30 s lease ended")
        .unwrap();
    // Woken by the release, not by its fallback nap (up to 500 ms).
    let after = acquired.saturating_duration_since(shut_down);
    assert!(after < Duration::from_millis(150), "{after:?}");
}

#[tokio::test]
async fn renewals_stop_at_shutdown() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    // Renewed every ~100 ms while held.
    let guard = manager
        .lock("renewed")
        .ttl(Duration::from_millis(300))
        .renew()
        .acquire()
        .await
        .unwrap();
    let before = common::evalsha_calls(&server).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let renewing = common::evalsha_calls(&server).await - before;
    assert!(
        renewing >= 2,
        "renewed {renewing} times before the shutdown"
    );

    manager.shutdown().await;
    let after_shutdown = common::evalsha_calls(&server).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = common::evalsha_calls(&server).await - after_shutdown;
    assert_eq!(sent, 0, "scripts sent after the shutdown");
    assert_eq!(lease_pttl(&server, "renewed").await, -2);
    assert!(!guard.is_held());
}

#[tokio::test]
async fn shutdown_returns_within_the_command_timeout_when_redis_does_not_answer() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let command_timeout = Duration::from_millis(300);
    let manager = LockManager::builder(proxy.url())
        .command_timeout(command_timeout)
        .build()
        .await
        .unwrap();
    let guards = [
        common::hold(&manager, "a").await,
        common::hold(&manager, "b").await,
    ];
    proxy.blackhole();

    let started = Instant::now();
    let report = manager.shutdown().await;
    let took = started.elapsed();
    // The bound is the command timeout plus 100 ms.
    assert!(took >= command_timeout, "{took:?}");
    assert!(
        took < command_timeout + Duration::from_millis(250),
        "{took:?}"
    );
    assert_eq!(report.unconfirmed, 2, "{report:?}");
    assert_eq!(report.released, 0, "{report:?}");
    for guard in guards {
        assert!(!guard.is_held());
        let started = Instant::now();
        let found = guard.release().await;
        assert!(
            matches!(found, Err(LockError::ShutDown { .. })),
            "{found:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

#[distributed_lock(
    key = "export:<id>",
    ttl = "30s",
    renew,
    on_lost = "cancel",
    manager = "shutdown-cancel"
)]
async fn export(id: u32, trace: Shared) -> Result<(), AppError> {
    let _ = id;
    ticking_body(trace, Duration::from_secs(20)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_running_is_cancelled_and_its_lock_released() {
    let server = common::redis_for("shutdown-cancel").await;
    let trace = Shared::default();
    let call = tokio::spawn(export(1, trace.clone()));
    wait_until_started(&trace).await;
    assert!(lease_pttl(&server, "export:1").await > 25_000);

    let report = distlock::manager("shutdown-cancel")
        .unwrap()
        .shutdown()
        .await;
    let shut_down = Instant::now();
    assert_eq!(report.released, 1, "{report:?}");
    assert_eq!(lease_pttl(&server, "export:1").await, -2);

    let result = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("the call ended")
        .unwrap();
    assert!(
        matches!(&result, Err(AppError::Lock(LockError::Lost { key })) if key == "export:1"),
        "{result:?}"
    );
    let (dropped, last_tick) = {
        let trace = trace.lock().unwrap();
        (trace.dropped, trace.last_tick)
    };
    let dropped = dropped.expect("the body was cancelled");
    assert!(
        dropped.saturating_duration_since(shut_down) < Duration::from_millis(100),
        "dropped {:?} after the shutdown",
        dropped.saturating_duration_since(shut_down)
    );
    // Marked lost before the release went out: no poll of the body after it.
    let (last_tick, _) = last_tick.unwrap();
    assert!(
        last_tick <= shut_down,
        "the body ran after its lock was released"
    );

    let again = export(2, Shared::default()).await;
    assert!(
        matches!(&again, Err(AppError::Lock(LockError::ShutDown { manager, .. })) if manager == "shutdown-cancel"),
        "{again:?}"
    );
}

#[tokio::test]
async fn an_in_memory_manager_shuts_down_the_same_way() {
    let manager = LockManager::in_memory().build().await.unwrap();
    let store = manager.in_memory_store().unwrap();
    let other_process = LockManager::in_memory()
        .store(store.clone())
        .build()
        .await
        .unwrap();
    let guard = manager.lock("job").ttl(LONG_LEASE).acquire().await.unwrap();
    let waiter = common::spawn_waiter(&other_process, "job");
    tokio::time::sleep(Duration::from_millis(50)).await;

    let report = manager.shutdown().await;
    assert_eq!(report.released, 1, "{report:?}");
    tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("woken by the release")
        .unwrap();
    assert!(!guard.is_held());
    assert!(matches!(
        manager.lock("job").acquire().await,
        Err(LockError::ShutDown { .. })
    ));
}

/// Builds a manager on a new runtime of `flavor` and spawns tasks on it
/// that each hold one of `keys` for a minute; once they all hold theirs,
/// runs `then` and drops the runtime (as `#[tokio::main]` does when `main`
/// returns), and tells how long dropping it took.
fn drop_runtime_while_tasks_hold(
    flavor: &str,
    manager: impl std::future::Future<Output = LockManager>,
    keys: &[&'static str],
    then: impl FnOnce(),
) -> Duration {
    let runtime = match flavor {
        "current_thread" => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .unwrap();
    runtime.block_on(async {
        let manager = manager.await;
        let (holding, mut held) = tokio::sync::mpsc::unbounded_channel();
        for &key in keys {
            let (manager, holding) = (manager.clone(), holding.clone());
            tokio::spawn(async move {
                let _guard = common::hold(&manager, key).await;
                holding.send(()).unwrap();
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
        for _ in keys {
            held.recv().await.unwrap();
        }
    });
    then();
    let started = Instant::now();
    drop(runtime);
    started.elapsed()
}

fn leases_left(server: &RedisServer) -> Vec<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(common::lease_keys(server))
}

#[test]
fn locks_of_tasks_dropped_as_their_runtime_shuts_down_are_released_before_it_is_gone() {
    for flavor in ["current_thread", "multi_thread"] {
        let server = RedisServer::start();
        let keys = ["task:1", "task:2", "task:3"];
        let took = drop_runtime_while_tasks_hold(flavor, common::manager(&server), &keys, || {
            assert_eq!(leases_left(&server).len(), keys.len());
        });
        assert_eq!(leases_left(&server), Vec::<String>::new(), "{flavor}");
        assert!(took < Duration::from_secs(1), "{flavor}: {took:?}");
    }
}

#[test]
fn with_redis_unreachable_a_runtime_shutting_down_waits_for_one_release_at_most() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let command_timeout = Duration::from_millis(300);
    let manager = LockManager::builder(proxy.url())
        .command_timeout(command_timeout)
        .build();
    let keys = ["cut:1", "cut:2", "cut:3"];
    let took = drop_runtime_while_tasks_hold(
        "current_thread",
        async { manager.await.unwrap() },
        &keys,
        || proxy.blackhole(),
    );
    // One release runs into the command timeout (bounded by it plus
    // 100 ms); the others are not tried. Three in a row would take 0.9 s.
    assert!(took >= command_timeout, "{took:?}");
    assert!(
        took < command_timeout + Duration::from_millis(400),
        "{took:?}"
    );
    assert_eq!(
        leases_left(&server).len(),
        keys.len(),
        "left to their leases"
    );
}

#[test]
fn on_a_cluster_and_on_redlock_too_the_locks_of_dropped_tasks_are_released() {
    let cluster = lock_testkit::RedisCluster::start(3, 0);
    let seeds = cluster.seed_urls();
    let keys = ["cluster:1", "cluster:2", "cluster:3"];
    let on_cluster = common::cluster::manager(&seeds, "shutdown:");
    drop_runtime_while_tasks_hold("multi_thread", on_cluster, &keys, || {});
    let left = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let other = common::cluster::manager(&seeds, "shutdown:").await;
            let mut left = Vec::new();
            for key in keys {
                if other.lock(key).try_acquire().await.unwrap().is_none() {
                    left.push(key);
                }
            }
            left
        });
    assert_eq!(left, Vec::<&str>::new(), "still held on the cluster");

    let nodes = lock_testkit::start_many(3);
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let on_redlock = async { LockManager::redlock(urls.clone()).build().await.unwrap() };
    drop_runtime_while_tasks_hold("current_thread", on_redlock, &["redlock:1"], || {});
    // A Redlock release ends once a majority agreed; the last node's answer
    // is not waited for. So a majority is free, and another process gets
    // the lock at once.
    let free = nodes.iter().filter(|node| leases_left(node).is_empty());
    assert!(free.count() >= 2);
    let taken = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let other = LockManager::redlock(urls.clone()).build().await.unwrap();
            let guard = other.lock("redlock:1").try_acquire().await.unwrap();
            guard.expect("free").release().await.unwrap()
        });
    assert_eq!(taken, distlock::ReleaseOutcome::Released);
}

#[tokio::test]
async fn a_guard_dropped_outside_any_runtime_is_released_by_the_shutdown() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = common::hold(&manager, "dropped-outside").await;
    std::thread::spawn(move || drop(guard)).join().unwrap();
    assert!(
        lease_pttl(&server, "dropped-outside").await > 25_000,
        "not released"
    );

    let report = manager.shutdown().await;
    assert_eq!(report.released, 1, "{report:?}");
    assert_eq!(lease_pttl(&server, "dropped-outside").await, -2);
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_lock_released_as_its_runtime_shut_down_is_not_released_again_by_a_shutdown() {
    let server = RedisServer::start();
    let kept = std::sync::Mutex::new(None);
    let manager = async {
        let manager = common::manager(&server).await;
        *kept.lock().unwrap() = Some(manager.clone());
        manager
    };
    drop_runtime_while_tasks_hold("current_thread", manager, &["torn:1"], || {});
    assert_eq!(leases_left(&server), Vec::<String>::new());

    // Released once, as the runtime went away: off the manager's list, so a
    // shutdown finds nothing left to release (a second release would find
    // the key gone and count it as expired).
    let manager = kept.lock().unwrap().take().unwrap();
    let report = current_thread_runtime().block_on(manager.shutdown());
    assert_eq!(report, ShutdownReport::default());
}

/// A manager reaching Redis through `proxy`, which has run one lock cycle,
/// so the server knows its scripts and every later step is one round trip.
async fn warmed_up_behind(proxy: &FaultProxy) -> LockManager {
    let manager = LockManager::builder(proxy.url())
        .command_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let warm = common::hold(&manager, "warm").await;
    assert_eq!(
        warm.release().await.unwrap(),
        distlock::ReleaseOutcome::Released
    );
    manager
}

#[test]
fn an_acquire_in_flight_at_shutdown_is_given_back_before_the_shutdown_returns() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let runtime = current_thread_runtime();
    let report = runtime.block_on(async {
        // Scripts loaded, so each step below is one round trip.
        let manager = warmed_up_behind(&proxy).await;
        // Every round trip now takes 300 ms.
        proxy.delay(Duration::from_millis(150));
        let requester = manager.clone();
        let _request =
            tokio::spawn(
                async move { requester.lock("in-flight").ttl(LONG_LEASE).acquire().await },
            );
        // The acquire script is on the wire.
        tokio::time::sleep(Duration::from_millis(50)).await;
        manager.shutdown().await
    });
    // The process exits right after the shutdown: the request's task goes
    // with its runtime.
    drop(runtime);
    // Whatever was on the wire has landed by now.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(leases_left(&server), Vec::<String>::new(), "{report:?}");
    assert_eq!(report.unconfirmed, 0, "{report:?}");
}

const PANIC_MESSAGE: &str = "the application's metrics recorder panicked";

/// Keeps the panic hook from reporting panics whose message is `message`;
/// every other panic is reported as before.
fn quiet_panics_saying(message: &'static str) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let said = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied());
        if said != Some(message) {
            report(info);
        }
    }));
}

/// A `metrics` recorder whose hold-time histogram panics, as a faulty
/// recorder of the application's might.
struct PanicsOnHoldTime;

struct Panics;

impl metrics::HistogramFn for Panics {
    fn record(&self, _value: f64) {
        panic!("{PANIC_MESSAGE}");
    }
}

impl metrics::Recorder for PanicsOnHoldTime {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        if key.name() == "distlock_hold_seconds" {
            metrics::Histogram::from_arc(std::sync::Arc::new(Panics))
        } else {
            metrics::Histogram::noop()
        }
    }
}

/// The longest the runtime this runs on went without polling it, over `during`.
async fn longest_stall(during: Duration) -> Duration {
    let end = Instant::now() + during;
    let (mut last, mut longest) = (Instant::now(), Duration::ZERO);
    while last < end {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = Instant::now();
        longest = longest.max(now - last);
        last = now;
    }
    longest
}

#[test]
fn a_panic_after_a_dropped_guard_s_release_does_not_block_its_runtime() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let runtime = current_thread_runtime();
    let (manager, guard) = runtime.block_on(async {
        let manager = warmed_up_behind(&proxy).await;
        let guard = common::hold(&manager, "panicky").await;
        (manager, guard)
    });
    // Each round trip takes 200 ms: a release redone on a thread of its
    // own would stall the runtime that long at least.
    proxy.delay(Duration::from_millis(100));
    // The intended panic is reported by the panic hook, which with
    // RUST_BACKTRACE=1 symbolizes a backtrace on this runtime's thread for
    // 100-300 ms: a stall of the test's making, not distlock's.
    quiet_panics_saying(PANIC_MESSAGE);
    let stalled = metrics::with_local_recorder(&PanicsOnHoldTime, || {
        runtime.block_on(async {
            let stall = tokio::spawn(longest_stall(Duration::from_secs(1)));
            // Released by a task; recording the hold time then panics.
            drop(guard);
            stall.await.unwrap()
        })
    });
    assert!(stalled < Duration::from_millis(100), "stalled {stalled:?}");
    assert_eq!(leases_left(&server), Vec::<String>::new());
    drop(manager);
}
