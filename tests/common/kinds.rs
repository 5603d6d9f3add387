//! Semaphore scenarios the single-server and cluster suites share.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distlock::{LockKind, LockManager, ReleaseOutcome};

const LONG: Duration = Duration::from_secs(30);

/// One permit held through `managers[0]`, four waiters in line (two tasks
/// in each of the other two managers, each its own process); then the
/// holder releases. Returns how many scripts (`scripts` counts them in
/// Redis) ran from just before the release until 50 ms after one waiter
/// got the permit: 1, the release, when the grant woke its waiter alone.
///
/// Queued waiters also look again every 500 ms on their own; the release
/// follows their queueing within tens of milliseconds, so the window most
/// often ends before the first of those looks, but on a loaded machine one
/// may fall in it. So the scenario runs up to three times, on three keys,
/// and the fewest scripts count: a release that woke every waiter would
/// cost at least 4 every time.
pub async fn fewest_scripts_after_one_release<F>(
    managers: &[LockManager; 3],
    scripts: impl Fn() -> F,
) -> u64
where
    F: Future<Output = u64>,
{
    let mut fewest = u64::MAX;
    for key in ["export:1", "export:2", "export:3"] {
        fewest = fewest.min(scripts_after_one_release(managers, &scripts, key).await);
        if fewest <= 1 {
            break;
        }
    }
    fewest
}

async fn scripts_after_one_release<F>(
    managers: &[LockManager; 3],
    scripts: &impl Fn() -> F,
    key: &'static str,
) -> u64
where
    F: Future<Output = u64>,
{
    let permit = move |manager: &LockManager| {
        let request = manager.lock(key).kind(LockKind::Permits(1));
        request.ttl(LONG).wait(LONG).acquire()
    };
    let holder = permit(&managers[0]).await.unwrap();
    let (granted, mut calls) = (Arc::new(Mutex::new(Vec::new())), Vec::new());
    for waiter in 0..4 {
        let (manager, granted) = (managers[1 + waiter % 2].clone(), granted.clone());
        calls.push(tokio::spawn(async move {
            let guard = permit(&manager).await.unwrap();
            granted.lock().unwrap().push(guard);
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = managers[0].inspect_kind(key, LockKind::Permits(1)).await;
        let info = info.unwrap();
        if info.waiters == Some(4) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the waiters never queued: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = scripts().await;
    assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);
    while granted.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = scripts().await - before;
    eprintln!("{key}: {sent} scripts after the release");
    assert_eq!(
        granted.lock().unwrap().len(),
        1,
        "one waiter got the permit"
    );
    for call in calls {
        call.abort();
    }
    drop(granted);
    sent
}
