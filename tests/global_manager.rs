//! The pattern users write their integration tests in: one manager per
//! process (`OnceCell` + `distlock::init`), used by `#[tokio::test]` fns,
//! each on its own runtime. Run at once (the default) and one after another
//! (`--test-threads=1`), every call succeeds on the first try, whichever
//! test built the manager and whether its runtime has shut down.
//!
//! `tests/reconnect.rs` checks the same on every backend with runtimes it
//! builds by hand; this file is the user's own shape, with the attribute.

use std::sync::LazyLock;
use std::time::Duration;

use distlock::{LockError, distributed_lock};
use lock_testkit::{RedisServer, for_process};
use tokio::sync::OnceCell;

/// The server of this process, kept until it exits.
static URL: LazyLock<String> = LazyLock::new(|| for_process(RedisServer::start, RedisServer::url));

static INIT: OnceCell<()> = OnceCell::const_new();

async fn setup() {
    INIT.get_or_init(|| async {
        distlock::init(URL.as_str())
            .await
            .map(drop)
            .expect("distlock::init");
    })
    .await;
}

#[distributed_lock(key = "order:<id>", ttl = "2s")]
async fn pay(id: u64) -> Result<u64, LockError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(id)
}

/// Three calls, each of which must succeed on the first try.
async fn three_payments(first: u64) {
    setup().await;
    for id in first..first + 3 {
        assert_eq!(pay(id).await.expect("the first call succeeds"), id);
    }
}

#[tokio::test]
async fn a1() {
    three_payments(10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2() {
    three_payments(20).await;
}

#[tokio::test]
async fn a3() {
    three_payments(30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a4() {
    three_payments(40).await;
}
