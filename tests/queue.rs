//! Protocol v2's queue on one Redis server: waiters of different processes
//! are served in arrival order, a release hands the lock straight to the
//! first live waiter, and a waiter that dies or gives up delays the others
//! by at most one lease of its own (plus one refresh period of theirs, at
//! most 500 ms).
//!
//! Each manager stands for a process: waiters of one manager line up in the
//! process, and only the first of them has a place in Redis's queue.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distlock::{LockManager, ReleaseOutcome};
use lock_testkit::RedisServer;

const LONG: Duration = Duration::from_secs(30);

/// A waiter (on its own manager) that records its number when it gets the
/// lock, holds it `hold`, then releases it.
fn waiter(
    manager: LockManager,
    key: &'static str,
    number: usize,
    hold: Duration,
    order: Arc<Mutex<Vec<usize>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let guard = manager
            .lock(key)
            .ttl(LONG)
            .wait(Duration::from_secs(10))
            .acquire()
            .await
            .expect("its turn came");
        order.lock().unwrap().push(number);
        tokio::time::sleep(hold).await;
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_different_processes_get_the_lock_in_arrival_order() {
    let server = RedisServer::start();
    let holder = common::manager(&server).await;
    let guard = common::hold(&holder, "fifo").await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for number in 0..5 {
        let manager = common::manager(&server).await;
        waiters.push(waiter(
            manager,
            "fifo",
            number,
            Duration::from_millis(20),
            order.clone(),
        ));
        // Each in line before the next arrives.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    // The queue and the waiters' entries are gone with the last of them.
    let keys = common::all_keys(&server).await;
    assert!(
        keys.iter()
            .all(|key| !key.contains(":queue:") && !key.contains(":waiter:")),
        "{keys:?}"
    );
}

/// What a waiter process killed while in line leaves in Redis: its place,
/// and an entry (lease 300 ms, round 1) that lives one lease.
async fn leave_dead_waiters(server: &RedisServer, key: &str, owners: &[&str]) {
    let lease = common::lease_keys(server)
        .await
        .into_iter()
        .find(|lease| lease.ends_with(&format!(":lock:{key}")))
        .expect("the lock is held");
    let tagged = lease.split(":lock:").next().unwrap().to_owned();
    let mut conn = common::raw(server).await;
    for owner in owners {
        let _: () = redis::pipe()
            .cmd("RPUSH")
            .arg(format!("{tagged}:queue:{key}"))
            .arg(*owner)
            .cmd("SET")
            .arg(format!("{tagged}:waiter:{owner}"))
            .arg("300 1")
            .arg("PX")
            .arg(300)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_waiters_ahead_delay_the_next_by_at_most_one_of_their_leases() {
    let server = RedisServer::start();
    let holder = common::manager(&server).await;
    let guard = common::hold(&holder, "dead").await;
    leave_dead_waiters(&server, "dead", &["dead-1", "dead-2", "dead-3"]).await;
    let live = common::manager(&server).await;
    let waiting = tokio::spawn(async move {
        let guard = live
            .lock("dead")
            .ttl(LONG)
            .wait(Duration::from_secs(10))
            .acquire()
            .await
            .expect("the lock");
        (guard, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released = Instant::now();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let (next, acquired) = waiting.await.unwrap();
    let waited = acquired.duration_since(released);
    // The first dead waiter was handed the lock (its entry was alive) and
    // kept it for its lease; the others' entries ran out meanwhile. The
    // live waiter sees the lease end at its next refresh of its place,
    // within 500 ms (`MAX_NAP`).
    assert!(
        waited >= Duration::from_millis(250),
        "the dead waiter was not handed the lock: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(300 + 500 + 100),
        "more than one dead lease: {waited:?}"
    );
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_dropped_around_its_grant_leaves_the_lock_free_at_once() {
    let server = RedisServer::start();
    let holder = common::manager(&server).await;
    let third = common::manager(&server).await;
    for round in 0..20 {
        let waiter_side = common::manager(&server).await;
        drop_around_release(&holder, waiter_side, &third, "dropped", round).await;
    }
}

/// One round: `holder` takes `key`, a task of `waiter` waits for it, and
/// the holder's release and the waiter's drop come together (the drop
/// first in even rounds), so the waiter is dropped before, while or after
/// it hears that the lock is its. The give-back runs in the background:
/// `third` must get the lock within moments, not after the 30 s lease the
/// waiter was handed.
async fn drop_around_release(
    holder: &LockManager,
    waiter: LockManager,
    third: &LockManager,
    key: &'static str,
    round: u32,
) {
    let guard = common::hold(holder, key).await;
    let waiting = tokio::spawn(async move {
        waiter
            .lock(key)
            .ttl(LONG)
            .wait(Duration::from_secs(10))
            .acquire()
            .await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let released = guard.release();
    if round.is_multiple_of(2) {
        waiting.abort();
        assert_eq!(released.await.unwrap(), ReleaseOutcome::Released);
    } else {
        assert_eq!(released.await.unwrap(), ReleaseOutcome::Released);
        waiting.abort();
    }
    let _ = waiting.await;
    let started = Instant::now();
    let next = third
        .lock(key)
        .ttl(LONG)
        .wait(Duration::from_secs(2))
        .acquire()
        .await
        .expect("free soon");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "round {round}: free only after {:?}",
        started.elapsed()
    );
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_lock_comes_with_a_higher_fencing_token_and_a_full_validity() {
    let server = RedisServer::start();
    let (holder, other) = (
        common::manager(&server).await,
        common::manager(&server).await,
    );
    let guard = common::hold(&holder, "token").await;
    let first = guard.fencing_token();
    let waiting = tokio::spawn(async move {
        other
            .lock("token")
            .ttl(Duration::from_secs(4))
            .acquire()
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let next = waiting.await.unwrap().expect("handed over");
    assert!(next.fencing_token() > first);
    // Its validity runs from its last attempt before the grant, well
    // within the 4 s lease it asked for.
    assert!(
        next.remaining() > Duration::from_secs(3),
        "{:?}",
        next.remaining()
    );
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
}

/// Tasks of one process pass a hot lock to each other without going back
/// through Redis (a baton: the next task takes the next of the fencing
/// tokens reserved with the lock, or re-arms the lease and takes new ones):
/// alone on the key, most holds cost no command; while another process
/// waits, at most 8 batons pass in a row. The commands are counted while the
/// busy process is alone, as how the two processes interleave in Redis
/// (the other may take the lock twice in a row) varies with the machine's
/// load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_passes_a_hot_lock_between_its_tasks_at_most_eight_times_in_a_row() {
    let server = RedisServer::start();
    let busy = common::manager(&server).await;
    let other = common::manager(&server).await;
    let log = Arc::new(Mutex::new(Vec::<(&str, u64)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (busy, log, stop) = (busy.clone(), log.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let guard = busy.lock("baton").ttl(LONG).acquire().await.unwrap();
                log.lock().unwrap().push(("busy", guard.fencing_token()));
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // What the process sends: a plain acquire has one INCRBY, every other
    // step is one script (commandstats also counts the commands scripts
    // run, so SET would count those too).
    let commands = || async {
        common::cluster::command_calls(&server, "incrby").await
            + common::evalsha_calls(&server).await
    };
    // Alone on the key, the busy process passes the lock from task to task:
    // most holds cost no command at all, as the next task takes one of the
    // fencing tokens its predecessor reserved, and its validity.
    let (commands_before, holds_before) = (commands().await, log.lock().unwrap().len());
    // Counted over at least 36 holds (four rounds of 9), so that where the
    // count starts and ends within a round matters little.
    let rounds = async {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let holds = log.lock().unwrap().len() - holds_before;
            if holds >= 36 {
                return holds;
            }
        }
    };
    let holds = tokio::time::timeout(Duration::from_secs(30), rounds)
        .await
        .expect("36 holds within 30 s");
    let sent = commands().await - commands_before;
    assert!(sent * 2 < holds as u64, "{sent} commands for {holds} holds");
    // While another process waits, the busy one still passes batons, but
    // hands the lock to the other's queue in Redis at least every 9 holds.
    for _ in 0..5 {
        let guard = other.lock("baton").ttl(LONG).acquire().await.unwrap();
        log.lock().unwrap().push(("other", guard.fencing_token()));
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    let tokens: Vec<u64> = log.iter().map(|(_, token)| *token).collect();
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "fencing tokens not rising: {log:?}"
    );
    // Between two holds of the other process, the busy one held the lock
    // at most 8 times in a row from a baton, plus once from Redis.
    let others: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, (who, _))| *who == "other")
        .map(|(at, _)| at)
        .collect();
    let runs: Vec<usize> = others
        .windows(2)
        .map(|pair| pair[1] - pair[0] - 1)
        .collect();
    assert!(runs.iter().all(|run| *run <= 9), "{runs:?}: {log:?}");
    // Batons did pass: without them the queue in Redis would alternate.
    assert!(runs.iter().any(|run| *run >= 2), "{runs:?}: {log:?}");
    assert!(common::lease_keys(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baton_nobody_takes_is_released_at_once() {
    let server = RedisServer::start();
    let busy = common::manager(&server).await;
    let third = common::manager(&server).await;
    for round in 0..20 {
        // Left to the waiting task of the same process.
        drop_around_release(&busy, busy.clone(), &third, "unclaimed", round).await;
    }
}

/// A release whose future is dropped while its answer is on the way may
/// still delete the lease in Redis; the drop's own release then must not
/// pass the lock to the next task of the process, or that task would hold
/// a lock another process gets next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_dropped_in_flight_passes_nothing_to_the_next_task() {
    let server = RedisServer::start();
    let proxy = lock_testkit::FaultProxy::start(server.port());
    let slow = distlock::LockManager::builder(proxy.url())
        .command_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let other = common::manager(&server).await;
    let guard = common::hold(&slow, "dropped-release").await;
    let holds = Arc::new(Mutex::new(Vec::<(Instant, Instant)>::new()));
    let hold_for = |manager: LockManager, holds: Arc<Mutex<Vec<(Instant, Instant)>>>| {
        tokio::spawn(async move {
            let guard = manager
                .lock("dropped-release")
                .ttl(LONG)
                .wait(Duration::from_secs(10))
                .acquire()
                .await
                .expect("the lock");
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(300)).await;
            holds.lock().unwrap().push((start, Instant::now()));
            assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        })
    };
    // The other process waits in Redis's queue.
    let waiting_elsewhere = hold_for(other, holds.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Every round trip of this process now takes 200 ms: the release is
    // sent (nobody of this process waits, so to Redis), and not answered
    // yet when this process's next task lines up; then it is dropped.
    proxy.delay(Duration::from_millis(100));
    let mut release = Box::pin(guard.release());
    let sent = tokio::time::timeout(Duration::from_millis(20), &mut release).await;
    assert!(sent.is_err(), "the release was answered already");
    let waiting_here = hold_for(slow.clone(), holds.clone());
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(release);
    waiting_elsewhere.await.unwrap();
    waiting_here.await.unwrap();
    let holds = holds.lock().unwrap().clone();
    assert_eq!(holds.len(), 2);
    let (first, second) = (holds[0], holds[1]);
    assert!(
        first.1 <= second.0 || second.1 <= first.0,
        "two holders at once: {holds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_permit_wakes_one_waiter_not_all_of_them() {
    let server = RedisServer::start();
    let managers = [
        common::manager(&server).await,
        common::manager(&server).await,
        common::manager(&server).await,
    ];
    let scripts = || common::evalsha_calls(&server);
    let sent = common::kinds::fewest_scripts_after_one_release(&managers, scripts).await;
    assert_eq!(sent, 1, "{sent} scripts ran after the release");
}
