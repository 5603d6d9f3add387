//! `distlock::shutdown` shuts down every registered manager at once. In a
//! binary of its own: it would shut down the managers of other tests.

mod common;

use std::time::Duration;

use distlock::{LockError, distributed_lock};

#[distributed_lock(key = "report:<id>", ttl = "30s", manager = "reports")]
async fn report(id: u32) -> Result<u32, LockError> {
    Ok(id)
}

#[tokio::test]
async fn shutdown_releases_the_locks_of_every_registered_manager_and_refuses_new_ones() {
    let orders = common::redis_for("orders").await;
    let reports = common::redis_for("reports").await;
    let order = common::hold(&distlock::manager("orders").unwrap(), "order:1").await;
    let first = common::hold(&distlock::manager("reports").unwrap(), "report:1").await;
    let second = common::hold(&distlock::manager("reports").unwrap(), "report:2").await;
    assert_eq!(common::lease_keys(&orders).await.len(), 1);
    assert_eq!(common::lease_keys(&reports).await.len(), 2);

    let total = tokio::time::timeout(Duration::from_secs(3), distlock::shutdown())
        .await
        .expect("within the command timeout plus 100 ms");
    assert_eq!(
        (total.released, total.expired, total.unconfirmed),
        (3, 0, 0),
        "{total:?}"
    );
    assert!(common::lease_keys(&orders).await.is_empty());
    assert!(common::lease_keys(&reports).await.is_empty());
    assert!(!order.is_held() && !first.is_held() && !second.is_held());

    // Still registered: annotated fns learn that the manager shut down.
    let refused = report(3).await;
    assert!(
        matches!(&refused, Err(LockError::ShutDown { key, manager }) if key == "report:3" && manager == "reports"),
        "{refused:?}"
    );
}
