//! `#[distributed_lock]` on methods of `#[async_trait]` impls, against a real
//! Redis: the same promises as on an `async fn` (tests/attribute.rs).
//!
//! async-trait rewrites each method into a plain fn returning a boxed future
//! before `#[distributed_lock]` runs; these tests check that the lock still
//! wraps the method's body, and only it. Each test registers its own manager
//! name on its own server, so the tests run in parallel.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use distlock::{LockError, LockManager, distributed_lock};
use lock_testkit::RedisServer;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Parse(#[from] std::num::ParseIntError),
}

/// How a call of [`Payments::refund`] leaves its body.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Return,
    QuestionMark,
    Panic,
    /// Never: the caller cancels it.
    Hang,
}

/// A service trait in the shape tonic generates for a gRPC service.
#[async_trait]
trait Payments: Send + Sync + 'static {
    async fn pay(&self, order: u64) -> Result<u64, AppError>;
    async fn refund(&self, order_and_amount: (u64, u64), exit: Exit) -> Result<u64, AppError>;
}

struct Service {
    tenant: String,
    /// A second manager on the same server: another process, as far as
    /// locking goes.
    probe: LockManager,
    inside: AtomicUsize,
    most_inside: AtomicUsize,
    saw_lock_held: AtomicBool,
    /// Told when a call is inside the body for good (`Exit::Hang`).
    hanging: Notify,
}

impl Service {
    async fn new(server: &RedisServer) -> Arc<Service> {
        Arc::new(Service {
            tenant: "acme".to_owned(),
            probe: common::manager(server).await,
            inside: AtomicUsize::new(0),
            most_inside: AtomicUsize::new(0),
            saw_lock_held: AtomicBool::new(true),
            hanging: Notify::new(),
        })
    }

    /// Whether another process could take `key` now; a lock it takes is
    /// given back at once.
    async fn free_elsewhere(&self, key: &str) -> bool {
        match self.probe.lock(key).try_acquire().await {
            Ok(Some(guard)) => {
                let outcome = guard.release().await.expect("give the probe's lock back");
                assert_eq!(outcome, distlock::ReleaseOutcome::Released);
                true
            }
            Ok(None) => false,
            Err(error) => panic!("probe failed: {error}"),
        }
    }
}

#[async_trait]
impl Payments for Service {
    #[distributed_lock(key = "pay:<self.tenant>:<order>", ttl = "30s", wait = "20s", manager = "at-pay", guard = lock)]
    async fn pay(&self, order: u64) -> Result<u64, AppError> {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(now, Ordering::SeqCst);
        if self.free_elsewhere(lock.key()).await {
            self.saw_lock_held.store(false, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.inside.fetch_sub(1, Ordering::SeqCst);
        Ok(order)
    }

    #[distributed_lock(
        key = "refund:<self.tenant>:<order>",
        ttl = "30s",
        wait = "0s",
        manager = "at-exit"
    )]
    async fn refund(&self, (order, amount): (u64, u64), exit: Exit) -> Result<u64, AppError> {
        match exit {
            Exit::Return => Ok(order + amount),
            Exit::QuestionMark => {
                let parsed: u64 = "not a number".parse()?;
                Ok(parsed)
            }
            Exit::Panic => panic!("refund of order {order} failed"),
            Exit::Hang => {
                self.hanging.notify_one();
                std::future::pending::<()>().await;
                Ok(0)
            }
        }
    }
}

/// `tokio::spawn` needs a `Send` future: each call runs on a worker thread
/// of a multi-thread runtime, as a tonic server runs its handlers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_for_one_order_run_one_at_a_time_under_the_lock() {
    let server = RedisServer::start();
    distlock::register("at-pay", common::manager(&server).await).expect("fresh name");
    let service = Service::new(&server).await;

    let calls: Vec<_> = (0..8)
        .map(|_| {
            let service = Arc::clone(&service);
            tokio::spawn(async move { service.pay(7).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("no panic").expect("paid"), 7);
    }
    assert_eq!(service.most_inside.load(Ordering::SeqCst), 1);
    assert!(
        service.saw_lock_held.load(Ordering::SeqCst),
        "another process could take the lock while the body ran"
    );
    assert!(service.free_elsewhere("pay:acme:7").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_released_on_return_question_mark_panic_and_cancellation() {
    let server = RedisServer::start();
    distlock::register("at-exit", common::manager(&server).await).expect("fresh name");
    let service = Service::new(&server).await;
    // `<self.tenant>` and `<order>` from the tuple pattern.
    let key = "refund:acme:3";

    let refunded = service.refund((3, 4), Exit::Return).await;
    assert_eq!(refunded.expect("refunded"), 7);
    assert!(service.free_elsewhere(key).await, "held after return");

    let failed = service.refund((3, 4), Exit::QuestionMark).await;
    assert!(matches!(failed, Err(AppError::Parse(_))), "{failed:?}");
    assert!(service.free_elsewhere(key).await, "held after `?`");

    let panicking = Arc::clone(&service);
    let panicked = tokio::spawn(async move { panicking.refund((3, 4), Exit::Panic).await }).await;
    assert!(panicked.expect_err("the body panicked").is_panic());
    assert!(service.free_elsewhere(key).await, "held after a panic");

    let hanging = Arc::clone(&service);
    let call = tokio::spawn(async move { hanging.refund((3, 4), Exit::Hang).await });
    service.hanging.notified().await;
    assert!(
        !service.free_elsewhere(key).await,
        "not held inside the body"
    );
    call.abort();
    assert!(call.await.expect_err("cancelled").is_cancelled());
    // The dropped guard releases in the background.
    let mut released = false;
    for _ in 0..100 {
        if service.free_elsewhere(key).await {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "held 2 s after the call was cancelled");
}

/// A `?Send` trait: its futures may hold what cannot cross threads.
#[async_trait(?Send)]
trait Ledger {
    async fn post(&self, entry: u64) -> Result<usize, AppError>;
}

struct LocalLedger {
    entries: Rc<RefCell<Vec<u64>>>,
    probe: LockManager,
}

#[async_trait(?Send)]
impl Ledger for LocalLedger {
    #[distributed_lock(key = "ledger:<entry>", ttl = "30s", manager = "at-local")]
    async fn post(&self, entry: u64) -> Result<usize, AppError> {
        let entries = Rc::clone(&self.entries);
        let held = self
            .probe
            .lock(format!("ledger:{entry}"))
            .try_acquire()
            .await?
            .is_none();
        assert!(held, "another process could take the lock");
        entries.borrow_mut().push(entry);
        Ok(entries.borrow().len())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_non_send_service_locks_on_a_current_thread_runtime() {
    let server = RedisServer::start();
    distlock::register("at-local", common::manager(&server).await).expect("fresh name");
    let ledger = LocalLedger {
        entries: Rc::default(),
        probe: common::manager(&server).await,
    };
    assert_eq!(ledger.post(5).await.expect("posted"), 1);
    assert_eq!(ledger.post(6).await.expect("posted"), 2);
    assert!(!common::held_elsewhere(&server, "ledger:5").await);
    assert!(!common::held_elsewhere(&server, "ledger:6").await);
}
