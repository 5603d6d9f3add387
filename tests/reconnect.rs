//! Connections that die behind a manager's back, on every backend.
//!
//! Two ways this happens to users:
//!
//! - **Runtimes come and go.** A manager kept in a `static` (`OnceCell` +
//!   `distlock::init`) is used from `#[tokio::test]` fns, each on its own
//!   runtime, one after another or at once. Every background task the
//!   manager spawned (connection drivers, pub/sub readers, the renewal
//!   watchdog) dies with the runtime it ran on.
//! - **A connection dies while idle.** Redis restarts, an operator runs
//!   `CLIENT KILL`, a proxy or load balancer closes idle connections.
//!
//! In both cases the next step must succeed on its first call, as soon as
//! Redis answers again: every assertion below is on a first call, never a
//! retry loop. Runtimes are built by hand, so one test can outlive several.

mod common;

use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use distlock::{InMemoryStore, LockGuard, LockManager, ReleaseOutcome};
use lock_testkit::{FaultProxy, RedisCluster, RedisServer};
use tokio::runtime::Runtime;

/// The lease of the renewed locks: short, so a dead watchdog shows within
/// a few of them.
const RENEWED_TTL: Duration = Duration::from_millis(300);

/// Longer than any step here may take: a side waiting for the other gives
/// up after it.
const HANG: Duration = Duration::from_secs(20);

/// Where one test's locks live. Servers are owned by the test's thread,
/// which the test kit requires (they die with the thread that started them).
enum Servers {
    Single(RedisServer),
    Cluster(RedisCluster),
    Redlock(Vec<RedisServer>),
    Memory(InMemoryStore),
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Single,
    Cluster,
    Redlock,
    Memory,
}

impl Servers {
    fn start(kind: Kind) -> Servers {
        match kind {
            Kind::Single => Servers::Single(RedisServer::start()),
            Kind::Cluster => Servers::Cluster(RedisCluster::start(3, 0)),
            Kind::Redlock => Servers::Redlock(lock_testkit::start_many(3)),
            Kind::Memory => Servers::Memory(InMemoryStore::new()),
        }
    }

    async fn manager(&self) -> LockManager {
        let builder = match self {
            Servers::Single(server) => LockManager::builder(server.url()),
            Servers::Cluster(cluster) => LockManager::cluster(cluster.seed_urls()),
            Servers::Redlock(servers) => LockManager::redlock(servers.iter().map(RedisServer::url)),
            Servers::Memory(store) => LockManager::in_memory().store(store.clone()),
        };
        builder
            .command_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .await
            .expect("a manager on the test backend")
    }

    /// Every Redis server of the backend.
    fn nodes(&self) -> &[RedisServer] {
        match self {
            Servers::Single(server) => std::slice::from_ref(server),
            Servers::Cluster(cluster) => cluster.nodes(),
            Servers::Redlock(servers) => servers,
            Servers::Memory(_) => &[],
        }
    }

    /// Restarts every server on its port, each returning once a fresh
    /// client's PING succeeds (the test kit waits for that).
    fn restart(&mut self) {
        match self {
            Servers::Single(server) => server.restart(),
            Servers::Redlock(servers) => servers.iter_mut().for_each(RedisServer::restart),
            Servers::Cluster(_) | Servers::Memory(_) => {
                unreachable!("a restarted cluster node forgets its cluster")
            }
        }
    }

    /// Closes every client connection of every server, pub/sub ones
    /// included, as an operator's `CLIENT KILL` or a proxy's idle timeout
    /// does; returns once the servers confirmed it.
    async fn kill_connections(&self) {
        for node in self.nodes() {
            let mut conn = common::raw(node).await;
            for kind in ["normal", "pubsub"] {
                let _: i64 = redis::cmd("CLIENT")
                    .arg(&["KILL", "TYPE", kind, "SKIPME", "yes"])
                    .query_async(&mut conn)
                    .await
                    .expect("CLIENT KILL");
            }
        }
    }
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// The current-thread runtime for even `turn`s, the multi-thread one for
/// odd ones.
fn alternating_runtime(turn: usize) -> Runtime {
    if turn.is_multiple_of(2) {
        current_thread()
    } else {
        multi_thread()
    }
}

/// A manager of `servers` built on `runtime`, which ran one lock cycle with
/// it and then shut down.
fn manager_outliving(runtime: Runtime, servers: &Servers) -> LockManager {
    let manager = runtime.block_on(async {
        let manager = servers.manager().await;
        cycle(&manager, "first").await;
        manager
    });
    drop(runtime);
    manager
}

/// Every step of one lock, each on its first call: a single acquire
/// attempt, an extension, a release.
async fn cycle(manager: &LockManager, key: &str) {
    let guard = manager
        .lock(key)
        .ttl(Duration::from_secs(5))
        .try_acquire()
        .await
        .unwrap_or_else(|error| panic!("acquiring `{key}` failed: {error}"))
        .unwrap_or_else(|| panic!("`{key}` is free, yet held"));
    guard
        .extend(Duration::from_secs(5))
        .await
        .unwrap_or_else(|error| panic!("extending `{key}` failed: {error}"));
    let released = guard
        .release()
        .await
        .unwrap_or_else(|error| panic!("releasing `{key}` failed: {error}"));
    assert_eq!(released, ReleaseOutcome::Released, "`{key}`");
}

/// A waiter woken by a release on this runtime: the wake-up connection
/// works here, not only the fallback timer (whose nap is 500 ms at most,
/// bounded by the holder's 10 s lease).
async fn handoff(manager: &LockManager, key: &str) {
    handoff_within(manager, key, Duration::from_millis(400)).await;
}

/// A handoff whose waiter gets the lock within `bound` of the release. The
/// release comes 200 ms after the waiter started, so a waiter that missed
/// the wake-up and naps (500 ms) takes about 300 ms.
async fn handoff_within(manager: &LockManager, key: &str, bound: Duration) {
    let holder = manager
        .lock(key)
        .ttl(Duration::from_secs(10))
        .try_acquire()
        .await
        .expect("acquire")
        .expect("free");
    let waiter = {
        let (manager, key) = (manager.clone(), key.to_owned());
        tokio::spawn(async move {
            let guard = manager
                .lock(&key)
                .wait(Duration::from_secs(5))
                .acquire()
                .await;
            (guard, Instant::now())
        })
    };
    // Long enough for the waiter to subscribe and fail its attempt.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        holder.release().await.expect("release"),
        ReleaseOutcome::Released
    );
    let released = Instant::now();
    let (guard, woken) = waiter.await.expect("the waiter did not panic");
    let guard = guard.expect("the waiter got the lock");
    assert!(
        woken - released < bound,
        "`{key}`: the waiter got the lock {:?} after the release",
        woken - released
    );
    assert_eq!(
        guard.release().await.expect("release"),
        ReleaseOutcome::Released
    );
}

/// Takes the free lock `key`, renewed, with one attempt.
async fn take_renewed(manager: &LockManager, key: &str) -> LockGuard {
    manager
        .lock(key)
        .ttl(RENEWED_TTL)
        .renew()
        .try_acquire()
        .await
        .expect("acquire")
        .expect("free")
}

/// A renewed lock held for several of its leases, then released as ours:
/// the renewal watchdog runs on this runtime.
async fn renewed(manager: &LockManager, key: &str) {
    let guard = take_renewed(manager, key).await;
    tokio::time::sleep(RENEWED_TTL * 3).await;
    assert!(guard.is_held(), "`{key}` lost its renewal");
    assert_eq!(
        guard.release().await.expect("release"),
        ReleaseOutcome::Released
    );
}

/// A manager built on a runtime that then shut down, used from a sequence
/// of runtimes of both flavours: what a global manager sees under
/// `cargo test --test-threads=1`.
fn runtimes_in_sequence(kind: Kind) {
    let servers = Servers::start(kind);
    let manager = manager_outliving(multi_thread(), &servers);
    for round in 0..4 {
        alternating_runtime(round).block_on(async {
            cycle(&manager, &format!("step:{round}")).await;
            handoff(&manager, &format!("handoff:{round}")).await;
            renewed(&manager, &format!("renewed:{round}")).await;
        });
    }
}

/// A manager whose first runtime shut down, used from four threads at
/// once, each running three runtimes in turn (current-thread and
/// multi-thread): runtimes end while others have steps in flight and
/// renewed locks held.
fn runtimes_at_once(kind: Kind) {
    let servers = Servers::start(kind);
    let manager = manager_outliving(current_thread(), &servers);
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let (manager, start) = (manager.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for round in 0..3 {
                    alternating_runtime(thread + round).block_on(async {
                        for step in 0..3 {
                            cycle(&manager, &format!("t{thread}:r{round}:s{step}")).await;
                        }
                        renewed(&manager, &format!("renewed:t{thread}:r{round}")).await;
                    });
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a thread's locking failed");
    }
}

/// The renewal watchdog starts on the runtime of the first renewed lock.
/// That runtime shuts down while another runtime holds a renewed lock:
/// its lease must go on being renewed.
fn renewal_outlives_the_runtime_it_started_on(kind: Kind) {
    let servers = Servers::start(kind);
    let manager = multi_thread().block_on(servers.manager());
    // Channels, not barriers: a side that fails must not leave the other
    // waiting forever.
    let (first_taken, first_is_taken) = mpsc::channel::<()>();
    let (second_taken, second_is_taken) = mpsc::channel::<()>();
    let (first_gone, first_is_gone) = mpsc::channel::<()>();
    let first = {
        let manager = manager.clone();
        std::thread::spawn(move || {
            let runtime = current_thread();
            runtime.block_on(async {
                let guard = take_renewed(&manager, "first").await;
                first_taken.send(()).expect("the test waits");
                // The watchdog started here; the second lock is taken meanwhile.
                second_is_taken.recv_timeout(HANG).expect("the second lock");
                assert_eq!(
                    guard.release().await.expect("release"),
                    ReleaseOutcome::Released
                );
            });
            drop(runtime);
            first_gone.send(()).expect("the test waits");
        })
    };
    multi_thread().block_on(async {
        first_is_taken.recv_timeout(HANG).expect("the first lock");
        let guard = take_renewed(&manager, "second").await;
        second_taken.send(()).expect("the first thread waits");
        first_is_gone
            .recv_timeout(HANG)
            .expect("the first runtime's end");
        tokio::time::sleep(RENEWED_TTL * 4).await;
        assert!(guard.is_held(), "the renewal died with the first runtime");
        assert_eq!(
            guard.release().await.expect("release"),
            ReleaseOutcome::Released
        );
    });
    first.join().expect("the first runtime's locking failed");
}

/// Every connection of the manager closed by the servers while idle: the
/// next step of each kind succeeds on its first call.
async fn killed_while_idle(kind: Kind) {
    let servers = Servers::start(kind);
    let manager = servers.manager().await;
    cycle(&manager, "before").await;
    handoff(&manager, "handoff-before").await;

    let held = manager
        .lock("held")
        .ttl(Duration::from_secs(10))
        .try_acquire()
        .await
        .expect("acquire")
        .expect("free");
    servers.kill_connections().await;
    held.extend(Duration::from_secs(10))
        .await
        .expect("the first extend after CLIENT KILL");
    servers.kill_connections().await;
    assert_eq!(
        held.release()
            .await
            .expect("the first release after CLIENT KILL"),
        ReleaseOutcome::Released
    );
    servers.kill_connections().await;
    let started = Instant::now();
    cycle(&manager, "after").await;
    eprintln!(
        "{kind:?}: first lock cycle after CLIENT KILL took {:?}",
        started.elapsed()
    );
    servers.kill_connections().await;
    handoff(&manager, "handoff-after").await;
}

/// Every server restarted (empty, same port) while the manager was idle:
/// its next lock cycle succeeds on the first call.
async fn restarted_while_idle(kind: Kind) {
    let mut servers = Servers::start(kind);
    let manager = servers.manager().await;
    cycle(&manager, "before").await;
    handoff(&manager, "handoff-before").await;
    servers.restart();
    let started = Instant::now();
    cycle(&manager, "after").await;
    eprintln!(
        "{kind:?}: first lock cycle after the restart took {:?}",
        started.elapsed()
    );
    handoff(&manager, "handoff-after").await;
}

/// Tests that each run `scenario` on one backend, `name => Kind`:
/// `#[test]`s, or `#[tokio::test]`s on two worker threads for an `async`
/// scenario.
macro_rules! on_each_backend {
    ($scenario:ident { $($name:ident => $kind:ident),+ $(,)? }) => {
        $(
            #[test]
            fn $name() {
                $scenario(Kind::$kind);
            }
        )+
    };
    (async $scenario:ident { $($name:ident => $kind:ident),+ $(,)? }) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $scenario(Kind::$kind).await;
            }
        )+
    };
}

on_each_backend!(runtimes_in_sequence {
    single_server_works_from_runtimes_in_sequence => Single,
    cluster_works_from_runtimes_in_sequence => Cluster,
    redlock_works_from_runtimes_in_sequence => Redlock,
    in_memory_works_from_runtimes_in_sequence => Memory,
});

on_each_backend!(runtimes_at_once {
    single_server_works_from_runtimes_at_once => Single,
    cluster_works_from_runtimes_at_once => Cluster,
    redlock_works_from_runtimes_at_once => Redlock,
    in_memory_works_from_runtimes_at_once => Memory,
});

on_each_backend!(renewal_outlives_the_runtime_it_started_on {
    single_server_renewal_outlives_the_runtime_it_started_on => Single,
    cluster_renewal_outlives_the_runtime_it_started_on => Cluster,
    redlock_renewal_outlives_the_runtime_it_started_on => Redlock,
    in_memory_renewal_outlives_the_runtime_it_started_on => Memory,
});

on_each_backend!(async killed_while_idle {
    single_server_survives_killed_connections => Single,
    cluster_survives_killed_connections => Cluster,
    redlock_survives_killed_connections => Redlock,
});

on_each_backend!(async restarted_while_idle {
    single_server_survives_a_restart => Single,
    redlock_survives_a_restart_of_every_node => Redlock,
});

/// The wake-up reader started on a runtime that then shut down: the first
/// waiter on each new runtime is woken by the release itself, not by its
/// fallback timer.
#[test]
fn single_server_wakes_the_first_waiter_after_the_wakeup_runtime_ended() {
    let servers = Servers::start(Kind::Single);
    let first = current_thread();
    let manager = first.block_on(async {
        let manager = servers.manager().await;
        handoff(&manager, "first").await;
        manager
    });
    drop(first);
    // A wake-up takes a few milliseconds on loopback; missing it costs
    // about 300.
    let prompt = Duration::from_millis(150);
    current_thread().block_on(handoff_within(&manager, "current-thread", prompt));
    multi_thread().block_on(handoff_within(&manager, "multi-thread", prompt));
}

/// A proxy (or cloud load balancer) closing idle connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_survives_a_proxy_closing_idle_connections() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = LockManager::builder(proxy.url())
        .command_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("a manager through the proxy");
    cycle(&manager, "before").await;
    let held = manager.lock("held").try_acquire().await.unwrap().unwrap();
    proxy.drop_connections();
    held.extend(Duration::from_secs(10))
        .await
        .expect("the first extend after the proxy closed the connection");
    proxy.drop_connections();
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
    proxy.drop_connections();
    cycle(&manager, "after").await;
    proxy.drop_connections();
    handoff(&manager, "handoff").await;
}
