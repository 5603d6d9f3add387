//! Network and server faults, injected between a lock manager and a real
//! Redis by `lock_testkit::FaultProxy`: Redis killed and restarted, the
//! connection black-holed under a renewed lock, Redis slowed past the command
//! timeout, and a release lost in transit.
//!
//! The manager under test talks to Redis through the proxy with a 300 ms
//! command timeout; "another process" is a manager connected to Redis
//! directly, which the faults do not touch.

// Each step is timed by moving its future into `timed_unhung`, once per
// test: a lock's futures are 16-22 KB, which clippy's 16 KB limit flags.
#![allow(clippy::large_futures)]

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::body::{DropWatch, Shared, stopped_in_time, ticking_body, wait_until_started};
use distlock::{LockError, LockManager, ReleaseOutcome, distributed_lock};
use lock_testkit::{FaultProxy, RedisServer};

const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Allowance for scheduling on a loaded machine, on top of a timeout.
const MARGIN: Duration = Duration::from_millis(300);
/// Longest a waiter naps between attempts (`request.rs`, `MAX_NAP`).
const MAX_NAP: Duration = Duration::from_millis(500);
/// Bound on any single call in these tests: reaching it means a hang.
const HANG: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A manager that reaches Redis only through `proxy`.
async fn manager_through(proxy: &FaultProxy) -> LockManager {
    LockManager::builder(proxy.url())
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .await
        .expect("connect through the proxy")
}

/// [`common::timed`], failing the test if `call` hangs for [`HANG`].
async fn timed_unhung<T>(what: &str, call: impl Future<Output = T>) -> (T, Duration) {
    common::timed(async {
        tokio::time::timeout(HANG, call)
            .await
            .unwrap_or_else(|_| panic!("{what} hung for {HANG:?}"))
    })
    .await
}

/// The errors of a call that could not reach Redis.
fn assert_unreachable<T: std::fmt::Debug>(what: &str, result: &Result<T, LockError>) {
    assert!(
        matches!(
            result,
            Err(LockError::Backend { .. } | LockError::Connect { .. })
        ),
        "{what}: expected a backend or connect error, got {result:?}"
    );
}

/// A backend error caused by the command timeout.
fn assert_timed_out<T: std::fmt::Debug>(what: &str, result: &Result<T, LockError>) {
    match result {
        Err(error @ LockError::Backend { source, .. }) => {
            let message = error.to_string().to_lowercase();
            assert!(
                source.is_timeout() && message.contains("timed out"),
                "{what}: not a timeout: {error}"
            );
        }
        other => panic!("{what}: expected a backend timeout, got {other:?}"),
    }
}

/// Polls until `lease` is gone; returns when that was seen.
async fn gone_at(server: &RedisServer, lease: &str) -> Instant {
    let deadline = Instant::now() + HANG;
    while common::pttl(&mut common::raw(server).await, lease).await != -2 {
        assert!(Instant::now() < deadline, "`{lease}` never went away");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Instant::now()
}

/// Acquires `key` on `manager` with one attempt at a time until one
/// succeeds; returns the guard and how long that took.
async fn first_success(manager: &LockManager, key: &str) -> (distlock::LockGuard, Duration) {
    let started = Instant::now();
    loop {
        let attempt = tokio::time::timeout(
            HANG,
            manager
                .lock(key)
                .ttl(Duration::from_secs(5))
                .wait(Duration::ZERO)
                .acquire(),
        )
        .await
        .expect("an acquire attempt hung");
        match attempt {
            Ok(guard) => return (guard, started.elapsed()),
            Err(LockError::Backend { .. } | LockError::Connect { .. }) => {
                assert!(started.elapsed() < HANG, "no lock for {HANG:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}

/// Runs every lock script once through `manager`, so the server has them
/// cached and each step is one round trip, as in steady state. (The first
/// call of a script on a server costs three: EVALSHA answered NOSCRIPT,
/// SCRIPT LOAD, EVALSHA.)
async fn warm_up(manager: &LockManager) {
    let guard = manager.lock("warm-up").acquire().await.unwrap();
    guard.extend(Duration::from_secs(1)).await.unwrap();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_fails_pending_and_new_calls_and_a_restart_heals_the_same_manager() {
    let mut server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = manager_through(&proxy).await;
    let elsewhere = common::manager(&server).await;

    let held = manager
        .lock("held")
        .ttl(Duration::from_secs(10))
        .acquire()
        .await
        .unwrap();
    let renewed = manager
        .lock("renewed")
        .ttl(Duration::from_millis(600))
        .renew()
        .acquire()
        .await
        .unwrap();
    let renewed = tokio::spawn(async move {
        renewed.lost().await;
        (Instant::now(), renewed)
    });
    // Another process holds `busy`; three tasks wait for it: one contends
    // in Redis, two wait in this process's line behind it.
    let busy = elsewhere
        .lock("busy")
        .ttl(Duration::from_secs(10))
        .acquire()
        .await
        .unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move {
                let result = manager
                    .lock("busy")
                    .wait(Duration::from_secs(10))
                    .acquire()
                    .await;
                (result, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(waiters.iter().all(|waiter| !waiter.is_finished()));

    server.stop();
    let stopped = Instant::now();

    // New calls fail, each within the command timeout, which bounds the
    // reconnect attempts too.
    let (acquired, took) = timed_unhung("acquire", manager.lock("new").acquire()).await;
    assert_unreachable("acquire", &acquired);
    eprintln!("killed: a new acquire failed after {took:?}");
    assert!(took < COMMAND_TIMEOUT + MARGIN, "acquire took {took:?}");
    let (extended, took) = timed_unhung("extend", held.extend(Duration::from_secs(10))).await;
    assert_unreachable("extend", &extended);
    eprintln!("killed: extend failed after {took:?}");
    assert!(took < COMMAND_TIMEOUT + MARGIN, "extend took {took:?}");
    let (released, took) = timed_unhung("release", held.release()).await;
    assert_unreachable("release", &released);
    eprintln!("killed: release failed after {took:?}");
    assert!(took < COMMAND_TIMEOUT + MARGIN, "release took {took:?}");

    // Each waiter fails at its next attempt in Redis: the one contending
    // after at most one nap, those in line after it one at a time, each
    // paying a command timeout of its own.
    let mut failed = Vec::new();
    for waiter in waiters {
        let (joined, _) = timed_unhung("a waiter", waiter).await;
        let (result, failed_at) = joined.expect("the waiter did not panic");
        assert_unreachable("waiter", &result.map(drop));
        failed.push(failed_at - stopped);
    }
    failed.sort();
    eprintln!("killed: the waiters failed {failed:?} after the kill");
    for (place, after) in failed.into_iter().enumerate() {
        let cycles = u32::try_from(place).unwrap() + 1;
        assert!(
            after < MAX_NAP + COMMAND_TIMEOUT * cycles + MARGIN,
            "waiter {place} failed {after:?} after the kill"
        );
    }
    // The renewed lock was reported lost when the validity of its last
    // renewal before the kill ran out, within one lease of the kill.
    let (joined, _) = timed_unhung("lost()", renewed).await;
    let (lost_at, renewed) = joined.unwrap();
    eprintln!(
        "killed: the renewed lock was lost {:?} after the kill",
        lost_at - stopped
    );
    assert!(!renewed.is_held());
    assert!(lost_at >= renewed.valid_until());
    assert!(
        lost_at - stopped < Duration::from_millis(600) + MARGIN,
        "lost {:?} after the kill",
        lost_at - stopped
    );
    drop((renewed, busy));

    // Same port, empty data: the same manager locks again within a second.
    server.restart();
    let (guard, recovered) = first_success(&manager, "after-restart").await;
    eprintln!("killed: first lock after the restart {recovered:?} after it");
    assert!(
        recovered < Duration::from_secs(1),
        "first lock after the restart took {recovered:?}"
    );
    assert!(guard.is_held());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

/// `command_timeout` bounds a whole step, also while the manager's broken
/// connection is being re-established: without that bound a call would wait
/// for redis-rs's reconnect cycle (three connection attempts, each bounded by
/// the connect timeout, with backoff between them), ~1.45 s here against a
/// 300 ms command timeout, and ~15.6 s with the default settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_unreachable_every_call_fails_within_the_command_timeout() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = manager_through(&proxy).await;
    warm_up(&manager).await;
    // A partition that also reset the open connection: new connections are
    // accepted, then never answered.
    proxy.blackhole();
    proxy.drop_connections();
    for attempt in 0..3 {
        let (acquired, took) = timed_unhung("acquire", manager.lock("partitioned").acquire()).await;
        assert_unreachable("acquire", &acquired);
        assert!(
            took < COMMAND_TIMEOUT + MARGIN,
            "attempt {attempt} took {took:?}"
        );
    }
}

#[distributed_lock(
    key = "invoice:<id>",
    ttl = "600ms",
    renew,
    manager = "faults-blackhole"
)]
async fn settle(id: u32, trace: Shared) -> Result<(), AppError> {
    let _ = id;
    ticking_body(trace, HANG * 4).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_connection_cancels_a_renewed_body_before_anyone_else_holds_the_lock() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = manager_through(&proxy).await;
    distlock::register("faults-blackhole", manager.clone()).unwrap();
    let elsewhere = common::manager(&server).await;

    let trace = Shared::default();
    let call = tokio::spawn(settle(9, trace.clone()));
    wait_until_started(&trace).await;
    // Two renewals (every ~200 ms) go through, then nothing does.
    tokio::time::sleep(Duration::from_millis(450)).await;
    proxy.blackhole();
    let cut = Instant::now();
    // Another process, not behind the proxy, waits for the lock.
    let other = tokio::spawn(async move {
        let guard = elsewhere
            .lock("invoice:9")
            .ttl(Duration::from_secs(5))
            .wait(HANG)
            .acquire()
            .await;
        (guard, Instant::now())
    });

    let (result, _) = timed_unhung("the locked call", call).await;
    let returned = Instant::now();
    assert!(
        matches!(&result, Ok(Err(AppError::Lock(LockError::Lost { key }))) if key == "invoice:9"),
        "{result:?}"
    );
    let (last_poll, valid_until, dropped) = {
        let trace = trace.lock().unwrap();
        let (last_poll, valid_until) = trace.last_tick.expect("the body ran");
        (
            last_poll,
            valid_until,
            trace.dropped.expect("the body was dropped"),
        )
    };
    assert!(valid_until > cut, "lost before the black hole");
    // Before Redis could give the lock to anyone: the loss is checked before
    // every poll, and the body reads the clock a little after that check, so
    // the bound is the drift allowance by which Redis's lease outlasts the
    // validity.
    assert!(
        stopped_in_time(last_poll, valid_until, Duration::from_millis(600)),
        "the body ran {:?} after its validity",
        last_poll - valid_until
    );
    // With renewals black-holed, the validity of the last one ends within a
    // lease of the cut.
    let after_cut = returned - cut;
    eprintln!("black hole: the call returned Lost {after_cut:?} after the cut");
    assert!(
        after_cut < Duration::from_millis(600) + MARGIN,
        "{after_cut:?}"
    );

    let (joined, _) = timed_unhung("the other process", other).await;
    let (taken, taken_at) = joined.unwrap();
    let taken = taken.expect("the other process gets the lock");
    eprintln!(
        "black hole: body dropped {:?} after its validity; other process acquired {:?} after the drop",
        dropped.saturating_duration_since(valid_until),
        taken_at - dropped
    );
    assert!(
        taken_at > dropped,
        "the lock was taken before the body was dropped"
    );
    assert!(
        taken_at >= valid_until,
        "the lock was taken within the validity"
    );
    assert!(taken.fencing_token() > 0);
    assert_eq!(taken.release().await.unwrap(), ReleaseOutcome::Released);

    // The partition heals: the connection that lost bytes is closed and
    // the same manager, reconnected, locks again.
    proxy.pass();
    let (guard, recovered) = first_success(&manager, "invoice:9").await;
    eprintln!("black hole: first lock after it lifted {recovered:?} after");
    assert!(recovered < Duration::from_secs(1), "{recovered:?}");
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[distributed_lock(
    key = "deadline:<run>",
    ttl = "100ms",
    on_lost = "cancel",
    manager = "faults-deadline"
)]
async fn woken_just_after_its_validity(run: u32, trace: Shared) -> Result<(), AppError> {
    let _ = run;
    let _watch = DropWatch(trace.clone());
    let valid_until = distlock::current().expect("locked").valid_until();
    // Woken by a thread, not by a tokio timer, 50 µs after the validity.
    let (wake, woken) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(
            (valid_until + Duration::from_micros(50)).saturating_duration_since(Instant::now()),
        );
        let _ = wake.send(());
    });
    let _ = woken.await;
    trace.lock().unwrap().last_tick = Some((Instant::now(), valid_until));
    std::future::pending::<()>().await;
    Ok(())
}

/// docs/guide/lost-lock.md: "the loss is checked before every poll of the body, so the body
/// does not run past its validity". tokio fires timers on millisecond ticks,
/// rounded up, so a check that waited for the timer set for the end of the
/// validity would let a body woken by anything else in between (I/O, a
/// channel, its own timer on the same tick) resume after its validity;
/// `Validity::over` reads the clock on every poll instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_body_is_never_resumed_after_its_validity() {
    let server = RedisServer::start();
    distlock::register("faults-deadline", common::manager(&server).await).unwrap();
    for run in 0..5 {
        let trace = Shared::default();
        let (result, _) = timed_unhung(
            "the locked call",
            woken_just_after_its_validity(run, trace.clone()),
        )
        .await;
        assert!(
            matches!(result, Err(AppError::Lock(LockError::Lost { .. }))),
            "{result:?}"
        );
        if let Some((polled, valid_until)) = trace.lock().unwrap().last_tick {
            panic!(
                "run {run}: the body was resumed {:?} after its validity",
                polled - valid_until
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowed_redis_fails_each_step_and_a_timed_out_release_lands_late() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = manager_through(&proxy).await;
    warm_up(&manager).await;
    let lease = Duration::from_secs(10);
    let guard = manager.lock("slow").ttl(lease).acquire().await.unwrap();
    let slow_lease = common::lease_key(&mut common::raw(&server).await, "slow").await;

    // Each way: a round trip takes a second, over three command timeouts.
    let delay = Duration::from_millis(500);
    proxy.delay(delay);

    let (extended, took) = timed_unhung("extend", guard.extend(lease)).await;
    assert_timed_out("extend", &extended);
    eprintln!("slow: extend failed after {took:?}");
    assert!(
        took >= COMMAND_TIMEOUT && took < COMMAND_TIMEOUT + MARGIN,
        "{took:?}"
    );
    assert!(guard.is_held(), "a failed extension is not a loss");

    let (acquired, took) =
        timed_unhung("acquire", manager.lock("slow-acquire").ttl(lease).acquire()).await;
    assert_timed_out("acquire", &acquired);
    eprintln!("slow: acquire failed after {took:?}");
    assert!(
        took >= COMMAND_TIMEOUT && took < COMMAND_TIMEOUT + MARGIN,
        "{took:?}"
    );

    let release_sent = Instant::now();
    let (released, took) = timed_unhung("release", guard.release()).await;
    assert_timed_out("release", &released);
    eprintln!("slow: release failed after {took:?}");
    assert!(
        took >= COMMAND_TIMEOUT && took < COMMAND_TIMEOUT + MARGIN,
        "{took:?}"
    );

    // Nobody retries it, but it was written before the client gave up: it
    // reaches Redis late and frees the lock then, long before its lease.
    let remaining = common::pttl(&mut common::raw(&server).await, &slow_lease).await;
    assert!(
        remaining > 9_000,
        "PTTL {remaining} right after the failed release"
    );
    let freed = gone_at(&server, &slow_lease).await - release_sent;
    eprintln!("slow: the timed-out release freed the lock {freed:?} after it was sent");
    assert!(freed >= delay && freed < delay + MARGIN, "{freed:?}");
    // The acquire that timed out ran late too, and the release sent on its
    // behalf when it failed undid it: no lock is left to a lease.
    tokio::time::sleep(delay + Duration::from_millis(100)).await;
    let left = common::lease_keys(&server).await;
    assert!(left.is_empty(), "left behind: {left:?}");

    // Back to normal: the same connection answers at once, in step.
    proxy.pass();
    let (guard, took) = first_success(&manager, "slow").await;
    assert!(took < Duration::from_millis(100), "{took:?}");
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);

    // Unless Redis does not know the release script yet (restarted, failed
    // over): then the late answer is NOSCRIPT, the fallback that would load
    // the script is never sent, and the lock stays until its lease ends.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut common::raw(&server).await)
        .await
        .unwrap();
    let guard = manager.lock("cold").ttl(lease).acquire().await.unwrap();
    let cold_lease = common::lease_key(&mut common::raw(&server).await, "cold").await;
    proxy.delay(delay);
    let (released, _) = timed_unhung("release", guard.release()).await;
    assert_timed_out("release", &released);
    tokio::time::sleep(delay * 2).await;
    let remaining = common::pttl(&mut common::raw(&server).await, &cold_lease).await;
    eprintln!("slow, cold script cache: PTTL {remaining} ms after the release would have landed");
    assert!(
        remaining > 8_000,
        "PTTL {remaining}: the release ran after all"
    );
}

/// Runs the release script as distlock does, for `owner` of `lease`: 1
/// released, 0 nobody held it, -1 another owner holds it.
async fn release_again(server: &RedisServer, lease: &str, owner: &str) -> i64 {
    redis::Script::new(include_str!(
        "../lock-runtime/src/backend/scripts/release.lua"
    ))
    .key(lease)
    .arg(owner)
    .arg("PUBLISH")
    .invoke_async(&mut common::raw(server).await)
    .await
    .expect("release script")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_lost_in_transit_is_left_to_the_lease_and_a_retry_spares_a_newer_holder() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = manager_through(&proxy).await;
    let elsewhere = common::manager(&server).await;
    let lease = Duration::from_millis(800);

    warm_up(&manager).await;

    // The release reaches Redis; its answer is lost.
    let guard = manager.lock("receipt").ttl(lease).acquire().await.unwrap();
    let receipt = common::lease_key(&mut common::raw(&server).await, "receipt").await;
    let first_owner = guard.owner_token().to_owned();
    proxy.lose_next_reply();
    let (released, took) = timed_unhung("release", guard.release()).await;
    assert_timed_out("release", &released);
    assert!(took < COMMAND_TIMEOUT + MARGIN, "{took:?}");
    assert_eq!(
        common::pttl(&mut common::raw(&server).await, &receipt).await,
        -2,
        "the release did not run"
    );
    // Retrying it is harmless: nobody holds the lock.
    assert_eq!(release_again(&server, &receipt, &first_owner).await, 0);

    // The release never reaches Redis.
    proxy.pass();
    let (guard, _) = first_success(&manager, "receipt").await;
    guard.extend(lease).await.unwrap();
    let acquired = Instant::now();
    let owner = guard.owner_token().to_owned();
    proxy.blackhole();
    let (released, _) = timed_unhung("release", guard.release()).await;
    assert_timed_out("release", &released);
    // The lock is still held, by its lease alone, and freed when it ends.
    let remaining = common::pttl(&mut common::raw(&server).await, &receipt).await;
    assert!(
        remaining > 0 && remaining <= 800 - 300,
        "PTTL {remaining} after the lost release"
    );
    assert!(
        elsewhere
            .lock("receipt")
            .try_acquire()
            .await
            .unwrap()
            .is_none(),
        "the lock was free before its lease ended"
    );
    let freed = gone_at(&server, &receipt).await - acquired;
    eprintln!("lost release: the lease freed the lock {freed:?} after it was armed");
    assert!(
        freed + Duration::from_millis(10) >= lease && freed < lease + MARGIN,
        "{freed:?}"
    );

    // A newer holder takes the lock; the retried release of the old owner
    // finds it taken over and leaves it alone.
    let newer = elsewhere
        .lock("receipt")
        .ttl(Duration::from_secs(5))
        .acquire()
        .await
        .unwrap();
    assert_eq!(release_again(&server, &receipt, &owner).await, -1);
    assert_eq!(release_again(&server, &receipt, &first_owner).await, -1);
    let remaining = common::pttl(&mut common::raw(&server).await, &receipt).await;
    assert!(remaining > 4_000, "the newer holder's PTTL is {remaining}");
    assert!(newer.is_held());
    assert_eq!(newer.release().await.unwrap(), ReleaseOutcome::Released);
    // And once that holder released, retrying is still a no-op.
    assert_eq!(release_again(&server, &receipt, &owner).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_attempt_after_a_dead_connection_ends_within_the_command_timeout() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = manager_through(&proxy).await;
    warm_up(&manager).await;
    // The connection dies while idle, and each round trip now takes
    // 200 ms: the attempt finds its connection dead and a new one is built;
    // giving the attempt back and making it again would take two more
    // round trips, past the command timeout.
    proxy.drop_connections();
    proxy.delay(Duration::from_millis(100));

    let (found, took) = timed_unhung("try_acquire", manager.lock("once").try_acquire()).await;
    assert!(took < COMMAND_TIMEOUT + MARGIN / 2, "{took:?}: {found:?}");
    if let Err(error) = &found {
        assert!(matches!(error, LockError::Backend { .. }), "{error:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_back_an_attempt_whose_connection_died_wakes_nobody() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let manager = manager_through(&proxy).await;
    warm_up(&manager).await;
    let published = common::cluster::command_calls(&server, "publish").await;

    // The attempt is granted, its answer lost, then its connection dies: it
    // is given back and made again at once.
    proxy.lose_next_reply();
    let requester = manager.clone();
    let attempt = tokio::spawn(async move { requester.lock("quiet").try_acquire().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.drop_connections();
    let guard = tokio::time::timeout(HANG, attempt)
        .await
        .expect("the attempt ended")
        .unwrap()
        .expect("made again on a new connection")
        .expect("free");

    // The give-back deleted the first attempt's lease without waking
    // anyone: the lock was not free for others, it was taken again at once.
    assert_eq!(
        common::cluster::command_calls(&server, "publish").await,
        published
    );
    // Nor does the release: protocol v2 publishes only to hand the lock
    // to a waiter, and nobody waits.
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(
        common::cluster::command_calls(&server, "publish").await,
        published
    );
}
