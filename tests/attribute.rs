//! `#[distributed_lock]` against a real Redis: every promise of the generated code.
//!
//! Each test starts its own backend and registers its own manager name, so
//! the tests run in parallel without sharing state. The same tests run
//! in-memory and on a Redis Cluster (`attribute_in_memory.rs`,
//! `attribute_on_cluster.rs`; see `common/backend.rs`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use distlock::{LockError, LockGuard, distributed_lock};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("rejected: {0}")]
    Rejected(&'static str),
}

static INSIDE: AtomicUsize = AtomicUsize::new(0);
static MOST_INSIDE: AtomicUsize = AtomicUsize::new(0);

/// The body of both locked fns below: records how many calls are inside at once.
async fn critical_section() -> Result<(), AppError> {
    let now = INSIDE.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_INSIDE.fetch_max(now, Ordering::SeqCst);
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    INSIDE.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

// The same lock key through two managers, as two processes would use it:
// only Redis keeps calls of `exclusive_a` and `exclusive_b` apart.
#[distributed_lock(key = "order:<id>", ttl = "10s", wait = "60s", manager = "exclusion-a")]
async fn exclusive_a(id: u64) -> Result<(), AppError> {
    let _ = id;
    critical_section().await
}

#[distributed_lock(key = "order:<id>", ttl = "10s", wait = "60s", manager = "exclusion-b")]
async fn exclusive_b(id: u64) -> Result<(), AppError> {
    let _ = id;
    critical_section().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_from_two_processes_never_overlap() {
    let backend = common::backend_for("exclusion-a").await;
    distlock::register("exclusion-b", backend.manager().await).unwrap();
    let calls: Vec<_> = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                tokio::spawn(exclusive_a(7))
            } else {
                tokio::spawn(exclusive_b(7))
            }
        })
        .collect();
    for call in calls {
        call.await.expect("no panic").expect("locked call");
    }
    assert_eq!(
        MOST_INSIDE.load(Ordering::SeqCst),
        1,
        "two calls ran inside the lock at once"
    );
}

#[distributed_lock(key = "order:<id>", ttl = "10s", wait = "0s", manager = "parallel")]
async fn meet(id: u64, barrier: Arc<tokio::sync::Barrier>) -> Result<u64, AppError> {
    barrier.wait().await;
    Ok(id)
}

#[tokio::test]
async fn different_keys_run_in_parallel() {
    let _backend = common::backend_for("parallel").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    // Both bodies must be inside their locks at once to pass the barrier.
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(meet(1, barrier.clone()), meet(2, barrier.clone()))
    });
    let (a, b) = both
        .await
        .expect("different keys do not wait for each other");
    assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
}

static BODY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[distributed_lock(key = "step:<step>", ttl = "30s", wait = "0s", manager = "release")]
async fn step(step: &str, fail: bool) -> Result<&'static str, AppError> {
    BODY_RUNS.fetch_add(1, Ordering::SeqCst);
    match step {
        "early" => return Ok("returned early"),
        "question" => {
            let parsed: Result<u32, AppError> = Err(AppError::Rejected("by ?"));
            parsed?;
        }
        "panic" if fail => panic!("body panicked"),
        _ => {}
    }
    Ok("finished")
}

#[tokio::test]
async fn the_lock_is_gone_when_the_fn_returns_on_every_path() {
    let backend = common::backend_for("release").await;
    assert_eq!(step("normal", false).await.unwrap(), "finished");
    assert!(
        backend.locks_held().await.is_empty(),
        "normal return left the lock"
    );

    assert_eq!(step("early", false).await.unwrap(), "returned early");
    assert!(
        backend.locks_held().await.is_empty(),
        "early return left the lock"
    );

    assert!(matches!(
        step("question", false).await,
        Err(AppError::Rejected("by ?"))
    ));
    assert!(backend.locks_held().await.is_empty(), "`?` left the lock");

    let panicked = tokio::spawn(step("panic", true))
        .await
        .expect_err("the panic reaches the caller");
    assert!(panicked.is_panic());
    assert!(backend.locks_held().await.is_empty(), "panic left the lock");
    // The next call acquires at once (wait = 0s): nothing was left behind.
    assert_eq!(step("panic", false).await.unwrap(), "finished");
}

#[distributed_lock(key = "slow:<id>", ttl = "30s", wait = "1s", manager = "cancel")]
async fn slow(id: u32) -> Result<u32, AppError> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(id)
}

#[tokio::test]
async fn a_cancelled_call_releases_within_100ms() {
    let backend = common::backend_for("cancel").await;
    let manager = distlock::manager("cancel").unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(200), slow(1)).await;
    assert!(cancelled.is_err(), "the call was still running");
    let started = Instant::now();
    let guard = manager
        .lock("slow:1")
        .wait(Duration::from_millis(100))
        .acquire()
        .await
        .expect("the dropped call released its lock");
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(
        guard.release().await.unwrap(),
        distlock::ReleaseOutcome::Released
    );
    assert!(backend.locks_held().await.is_empty());
}

static GUARDED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[distributed_lock(key = "busy:<id>", ttl = "5s", wait = "0s", manager = "busy")]
async fn guarded(id: u32) -> Result<(), anyhow::Error> {
    GUARDED_RUNS.fetch_add(1, Ordering::SeqCst);
    let _ = id;
    Ok(())
}

#[distributed_lock(key = "busy:<id>", ttl = "5s", wait = "300ms", manager = "busy")]
async fn guarded_waiting(id: u32) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    GUARDED_RUNS.fetch_add(1, Ordering::SeqCst);
    let _ = id;
    Ok(())
}

#[tokio::test]
async fn a_busy_lock_returns_the_error_and_the_body_does_not_run() {
    let backend = common::backend_for("busy").await;
    // Held by another process.
    let holder = backend
        .manager()
        .await
        .lock("busy:3")
        .acquire()
        .await
        .unwrap();

    let error = guarded(3).await.expect_err("busy");
    let error = error
        .downcast::<LockError>()
        .expect("a LockError inside anyhow");
    assert!(
        matches!(&error, LockError::Timeout { key, .. } if key == "busy:3"),
        "{error}"
    );

    let started = Instant::now();
    let error = guarded_waiting(3).await.expect_err("busy");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(error.downcast_ref::<LockError>().is_some(), "{error}");
    assert_eq!(
        GUARDED_RUNS.load(Ordering::SeqCst),
        0,
        "a body ran without the lock"
    );

    assert_eq!(
        holder.release().await.unwrap(),
        distlock::ReleaseOutcome::Released
    );
    guarded(3).await.expect("free now");
    assert_eq!(GUARDED_RUNS.load(Ordering::SeqCst), 1);
}

#[distributed_lock(key = "x:<id>", manager = "never-registered")]
async fn unmanaged(id: u32) -> Result<(), AppError> {
    let _ = id;
    unreachable!("the body must not run without a lock")
}

#[tokio::test]
async fn an_unregistered_manager_is_an_error_not_a_panic() {
    let error = unmanaged(1).await.unwrap_err();
    assert!(
        matches!(error, AppError::Lock(LockError::NotInitialized { name }) if name == "never-registered")
    );
}

// --- the key is built from the right values -------------------------------------

struct Tenant {
    tenant: String,
}

impl Tenant {
    #[distributed_lock(key = "user:<self.tenant>:<user_id>", ttl = "5s", manager = "keys", guard = lock)]
    async fn key_of(&self, user_id: u64) -> Result<String, AppError> {
        Ok(lock.key().to_owned())
    }

    #[distributed_lock(key = "user:<self.tenant>:mut", ttl = "5s", manager = "keys", guard = lock)]
    async fn key_of_mut(&mut self) -> Result<String, AppError> {
        self.tenant.push('!');
        Ok(lock.key().to_owned())
    }

    #[distributed_lock(key = "arc:<self.tenant>", ttl = "5s", manager = "keys", guard = lock)]
    async fn key_of_arc(self: Arc<Self>) -> Result<String, AppError> {
        Ok(lock.key().to_owned())
    }
}

trait Keyed {
    async fn key_in_trait(&self, n: u8) -> Result<String, AppError>;
}

impl Keyed for Tenant {
    #[distributed_lock(key = "trait:<self.tenant>:<n>", ttl = "5s", manager = "keys", guard = lock)]
    async fn key_in_trait(&self, n: u8) -> Result<String, AppError> {
        Ok(lock.key().to_owned())
    }
}

#[distributed_lock(key = "generic:<item>", ttl = "5s", manager = "keys", guard = lock)]
async fn generic_key<T>(item: T, _extra: impl Send) -> Result<String, AppError>
where
    T: std::fmt::Display + Send,
{
    Ok(lock.key().to_owned())
}

struct Wrapper<T>(T);
struct Order {
    id: u64,
    region: &'static str,
}
struct Transfer {
    from: u32,
    to: u32,
}

#[distributed_lock(key = "pat<<<id>>>:<a>-<b>:<region>:<req.from>>><req.to>", ttl = "5s", manager = "keys", guard = lock)]
async fn pattern_key(
    Wrapper(id): Wrapper<u64>,
    (a, b): (u32, u32),
    &Order { region, .. }: &Order,
    Wrapper(req): Wrapper<Transfer>,
) -> Result<String, AppError> {
    Ok(lock.key().to_owned())
}

fn held(guard: &LockGuard) -> bool {
    !guard.remaining().is_zero()
}

#[distributed_lock(key = "order:<order.id>", ttl = "5s", manager = "keys", guard = lock)]
async fn field_key(order: &Order) -> Result<(String, bool), AppError> {
    Ok((lock.key().to_owned(), held(lock)))
}

#[tokio::test]
async fn methods_generics_and_patterns_lock_the_right_key() {
    let _backend = common::backend_for("keys").await;
    let mut tenant = Tenant {
        tenant: "acme".into(),
    };
    assert_eq!(tenant.key_of(7).await.unwrap(), "user:acme:7");
    assert_eq!(tenant.key_in_trait(3).await.unwrap(), "trait:acme:3");
    assert_eq!(tenant.key_of_mut().await.unwrap(), "user:acme:mut");
    assert_eq!(tenant.tenant, "acme!");
    assert_eq!(Arc::new(tenant).key_of_arc().await.unwrap(), "arc:acme!");
    assert_eq!(generic_key("g-1", ()).await.unwrap(), "generic:g-1");
    assert_eq!(generic_key(42u8, 1).await.unwrap(), "generic:42");
    let order = Order {
        id: 9,
        region: "eu",
    };
    assert_eq!(
        pattern_key(
            Wrapper(9),
            (1, 2),
            &order,
            Wrapper(Transfer { from: 5, to: 6 })
        )
        .await
        .unwrap(),
        "pat<9>:1-2:eu:5>6"
    );
    assert_eq!(
        field_key(&order).await.unwrap(),
        ("order:9".to_owned(), true)
    );
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::test]
async fn the_generated_future_is_send_and_works_on_a_spawned_task() {
    let _backend = common::backend_for("send").await;
    #[distributed_lock(key = "send:<id>", ttl = "5s", manager = "send")]
    async fn spawned(id: u32) -> Result<u32, AppError> {
        tokio::task::yield_now().await;
        Ok(id)
    }
    assert_eq!(
        tokio::spawn(assert_send(spawned(5)))
            .await
            .unwrap()
            .unwrap(),
        5
    );
}

// Returning `LockError` itself: the generated conversion is the identity,
// which must not trip clippy's `useless_conversion` in the user's crate
// (`cargo clippy --all-targets -- -D warnings` checks this file).
#[distributed_lock(key = "plain:<id>", wait = "0s", manager = "plain-error")]
async fn plain_error(id: u32) -> Result<u32, LockError> {
    Ok(id)
}

#[tokio::test]
async fn a_fn_may_return_lock_error_itself() {
    let backend = common::backend_for("plain-error").await;
    assert_eq!(plain_error(4).await.unwrap(), 4);
    let other = backend.manager().await;
    let held = other.lock("plain:4").acquire().await.unwrap();
    assert!(matches!(
        plain_error(4).await,
        Err(LockError::Timeout { .. })
    ));
    let _ = held.release().await;
}

// A job every node runs on the same tick: the lock outlives the quick body
// by `hold_at_least`, so a node a little behind skips instead of rerunning.
#[distributed_lock(
    key = "report:<day>",
    ttl = "5s",
    hold_at_least = "800ms",
    wait = "0s",
    manager = "hold-at-least"
)]
async fn daily_report(day: u32) -> Result<u32, LockError> {
    Ok(day)
}

#[tokio::test]
async fn hold_at_least_keeps_the_lock_after_a_quick_body() {
    let backend = common::backend_for("hold-at-least").await;
    let other = backend.manager().await;
    let started = std::time::Instant::now();
    assert_eq!(daily_report(1).await.unwrap(), 1);
    let body_done = started.elapsed();
    // Inside the window: a second run on this node and an attempt from
    // another process both find the lock held.
    assert!(matches!(
        daily_report(1).await,
        Err(LockError::Timeout { .. })
    ));
    assert!(
        other
            .lock("report:1")
            .try_acquire()
            .await
            .unwrap()
            .is_none()
    );
    // Another day's lock is not held.
    assert_eq!(daily_report(2).await.unwrap(), 2);
    // Freed by itself once the window is over, and not before.
    let freed = loop {
        if let Some(guard) = other.lock("report:1").try_acquire().await.unwrap() {
            let freed = started.elapsed();
            assert_eq!(
                guard.release().await.unwrap(),
                distlock::ReleaseOutcome::Released
            );
            break freed;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "never freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        body_done < Duration::from_millis(400),
        "body took {body_done:?}"
    );
    assert!(freed >= Duration::from_millis(800), "freed after {freed:?}");
    // etcd's leases count whole seconds: the rest of the window is a lease
    // of one second, which etcd ends within about half a second after.
    let bound = match common::backend::kind() {
        common::backend::Kind::Etcd => Duration::from_millis(2_200),
        _ => Duration::from_millis(1_300),
    };
    assert!(freed < bound, "freed after {freed:?}");
}

/// A transfer between two accounts, locking both at once.
struct Payment {
    from: u32,
    to: u32,
}

static BALANCES: std::sync::Mutex<[i64; 3]> = std::sync::Mutex::new([100, 100, 100]);

#[distributed_lock(keys = ["account:<req.from>", "account:<req.to>"], ttl = "5s", wait = "30s", manager = "transfers", guard = both)]
async fn transfer(req: Payment) -> Result<u64, LockError> {
    let (from, to) = (req.from as usize, req.to as usize);
    let (a, b) = {
        let balances = BALANCES.lock().unwrap();
        (balances[from], balances[to])
    };
    // A read-modify-write across an await: only the lock keeps it whole.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    {
        let mut balances = BALANCES.lock().unwrap();
        balances[from] = a - 1;
        balances[to] = b + 1;
    }
    assert_eq!(both.keys().count(), 2);
    // A nested call on one of the keys joins the lock, with its token.
    let nested = audit(req.from).await?;
    assert_eq!(nested, both.fencing_token());
    Ok(both.fencing_token())
}

#[distributed_lock(key = "account:<account>", ttl = "5s", wait = "0s", manager = "transfers", guard = lock)]
async fn audit(account: u32) -> Result<u64, LockError> {
    assert!(lock.is_nested());
    let _ = account;
    Ok(lock.fencing_token())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_both_ways_at_once_keep_every_balance_and_never_deadlock() {
    let _backend = common::backend_for("transfers").await;
    let mut calls = Vec::new();
    for i in 0..30u32 {
        // A→B, B→A, B→C, C→A: opposite orders at once.
        let (from, to) = [(0, 1), (1, 0), (1, 2), (2, 0)][(i % 4) as usize];
        calls.push(tokio::spawn(transfer(Payment { from, to })));
    }
    let all = futures_util::future::join_all(calls);
    let done = tokio::time::timeout(Duration::from_secs(60), all).await;
    let mut tokens = Vec::new();
    for call in done.expect("no deadlock: every transfer finished") {
        tokens.push(call.unwrap().unwrap());
    }
    let balances = *BALANCES.lock().unwrap();
    // 30 transfers: 0→1 ×8, 1→0 ×8, 1→2 ×7, 2→0 ×7.
    assert_eq!(
        balances,
        [100 - 8 + 8 + 7, 100 + 8 - 8 - 7, 100 + 7 - 7],
        "{balances:?}"
    );
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 30, "each transfer had a token of its own");
}

#[distributed_lock(key = "account:<account>", ttl = "5s", manager = "nested-set")]
async fn close_account(account: u32) -> Result<(), LockError> {
    // A set including the key this call holds: refused, not a deadlock.
    move_out(account, account + 1).await
}

#[distributed_lock(keys = ["account:<from>", "account:<to>"], ttl = "5s", wait = "1s", manager = "nested-set")]
async fn move_out(from: u32, to: u32) -> Result<(), LockError> {
    let _ = (from, to);
    Ok(())
}

#[tokio::test]
async fn a_set_including_a_key_the_task_holds_is_refused() {
    let _backend = common::backend_for("nested-set").await;
    let error = close_account(5).await.unwrap_err();
    assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
    assert!(
        error.to_string().contains("already holds `account:5`"),
        "{error}"
    );
    // Outside, the same set is taken.
    move_out(5, 6).await.unwrap();
}

static EXPORTING: AtomicUsize = AtomicUsize::new(0);
static MOST_EXPORTING: AtomicUsize = AtomicUsize::new(0);

#[distributed_lock(
    key = "export",
    permits = 2,
    ttl = "5s",
    wait = "10s",
    manager = "permits"
)]
async fn export(id: u32) -> Result<u64, LockError> {
    let now = EXPORTING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_EXPORTING.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(30)).await;
    EXPORTING.fetch_sub(1, Ordering::SeqCst);
    let _ = id;
    Ok(distlock::current()
        .expect("inside a locked call")
        .fencing_token())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_let_that_many_calls_run_at_once() {
    let _backend = common::backend_for("permits").await;
    if common::backend::refuses_shared_kinds(&export(0).await) {
        return;
    }
    let calls = (0..8).map(|id| tokio::spawn(export(id)));
    let mut tokens = Vec::new();
    for call in futures_util::future::join_all(calls).await {
        tokens.push(call.unwrap().unwrap());
    }
    assert_eq!(
        MOST_EXPORTING.load(Ordering::SeqCst),
        2,
        "2 permits, 8 calls"
    );
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 8, "a fencing token per permit");
}

#[distributed_lock(
    key = "catalog:<shop>",
    mode = "read",
    ttl = "5s",
    wait = "1s",
    manager = "modes"
)]
async fn show(shop: u32) -> Result<u64, LockError> {
    let _ = shop;
    Ok(distlock::current()
        .expect("inside a locked call")
        .fencing_token())
}

#[distributed_lock(
    key = "catalog:<shop>",
    mode = "write",
    ttl = "5s",
    wait = "1s",
    manager = "modes"
)]
async fn reprice(shop: u32) -> Result<(u64, u64), LockError> {
    let mine = distlock::current()
        .expect("inside a locked call")
        .fencing_token();
    // A read inside the write joins it, with the writer's token.
    Ok((mine, show(shop).await?))
}

#[distributed_lock(
    key = "catalog:<shop>",
    mode = "read",
    ttl = "5s",
    wait = "1s",
    manager = "modes"
)]
async fn show_then_reprice(shop: u32) -> Result<(u64, u64), LockError> {
    // An upgrade: refused, not a deadlock.
    reprice(shop).await
}

#[tokio::test]
async fn a_read_inside_a_write_joins_it_and_an_upgrade_is_refused() {
    let _backend = common::backend_for("modes").await;
    if common::backend::refuses_shared_kinds(&reprice(1).await) {
        return;
    }
    let (writer, nested) = reprice(1).await.unwrap();
    assert_eq!(writer, nested, "the nested read joined the write");
    let error = Box::pin(show_then_reprice(1)).await.unwrap_err();
    assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
    assert!(error.to_string().contains("for reading"), "{error}");
    // Readers share: two readers wait for each other inside their bodies,
    // which only ends if both are in at once.
    let inside = Arc::new(tokio::sync::Barrier::new(2));
    let (one, two) = tokio::join!(show_with(1, inside.clone()), show_with(1, inside));
    assert_ne!(one.unwrap(), two.unwrap());
}

#[distributed_lock(
    key = "catalog:<shop>",
    mode = "read",
    ttl = "5s",
    wait = "1s",
    manager = "modes"
)]
async fn show_with(shop: u32, inside: Arc<tokio::sync::Barrier>) -> Result<u64, LockError> {
    let _ = shop;
    let together = tokio::time::timeout(Duration::from_secs(3), inside.wait()).await;
    assert!(together.is_ok(), "the other reader never came in");
    Ok(distlock::current()
        .expect("inside a locked call")
        .fencing_token())
}
