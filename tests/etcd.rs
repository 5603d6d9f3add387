//! The etcd backend (`LockManager::etcd`) on a throwaway 3-member etcd
//! cluster on loopback: fencing tokens from create revisions, owner-checked
//! steps, wake-ups from a watch, what it refuses, and its faults: the
//! leader killed while a lock is held and waited for, a member paused, the
//! quorum lost and restored. `over_tls_*`: the same cluster serving its
//! clients over TLS only.

mod common;

use std::time::{Duration, Instant};

use common::body::{Shared, assert_cancelled_at_its_validity, ticking_body, wait_until_started};
use distlock::{
    LockError, LockKind, LockManager, ReleaseOutcome, Unacknowledged, distributed_lock,
};
use lock_testkit::{EtcdCluster, TestCertificates};

const COMMAND_TIMEOUT: Duration = Duration::from_millis(1_500);

/// One cluster at a time: each test's cluster elects with 50 ms heartbeats,
/// and three on two cores at once starve each other into elections.
/// (An async mutex: each test holds it across its awaits, and a test that
/// failed holding it does not poison it for the others.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn manager(cluster: &EtcdCluster) -> LockManager {
    LockManager::etcd(cluster.endpoints())
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .build()
        .await
        .expect("a manager on etcd")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_rise_release_is_owner_checked_and_a_release_wakes_the_waiter() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = EtcdCluster::start();
    let (a, b) = (manager(&cluster).await, manager(&cluster).await);
    let mut last = 0;
    for _ in 0..5 {
        for holder in [&a, &b] {
            let guard = holder.lock("order:1").acquire().await.unwrap();
            assert!(
                guard.fencing_token() > last,
                "{} after {last}",
                guard.fencing_token()
            );
            last = guard.fencing_token();
            assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        }
    }
    // Another key's grant is above too: a token is a revision of the cluster.
    let other = a.lock("order:2").acquire().await.unwrap();
    assert!(other.fencing_token() > last);
    drop(other);

    // A waiter in another manager is woken by the watch, not by a nap.
    let held = a.lock("order:3").acquire().await.unwrap();
    common::assert_release_hands_over(held, &b, "order:3", Duration::from_millis(250)).await;

    // An owner whose lease ended cannot release or extend the new holder's.
    let expired = a
        .lock("order:4")
        .ttl(Duration::from_secs(1))
        .acquire()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let taken = loop {
        if let Some(guard) = b.lock("order:4").try_acquire().await.unwrap() {
            break guard;
        }
        assert!(Instant::now() < deadline, "the lease never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(matches!(
        expired.extend(Duration::from_secs(5)).await,
        Err(LockError::Lost { .. })
    ));
    assert_eq!(expired.release().await.unwrap(), ReleaseOutcome::TakenOver);
    assert!(taken.is_held());
    assert_eq!(taken.release().await.unwrap(), ReleaseOutcome::Released);
}

/// Each renewal puts the key on a lease granted for it, never keeps the
/// first one alive (see the guide's etcd chapter, `docs/guide/etcd.md`: a deposed etcd
/// leader could revoke a lease kept alive elsewhere, etcd-io/etcd#15247).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_renewal_puts_the_lock_on_a_lease_granted_for_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = EtcdCluster::start();
    let manager = manager(&cluster).await;
    let mut etcd = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .unwrap();
    let renewed = manager
        .lock("order:renewed")
        .ttl(Duration::from_secs(1))
        .renew()
        .acquire()
        .await
        .unwrap();
    let all = Some(etcd_client::GetOptions::new().with_prefix());
    let found = etcd.get("distlock:", all).await.unwrap();
    let kv = found
        .kvs()
        .iter()
        .find(|kv| kv.key().ends_with(b":lock:order:renewed"))
        .expect("the lock's key");
    let (key, first) = (kv.key().to_vec(), kv.lease());
    // Past the 1 s lease: renewed three times or more.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(renewed.is_held(), "the renewal failed");
    let found = etcd.get(key, None).await.unwrap();
    let now = found.kvs().first().map(etcd_client::KeyValue::lease);
    assert!(now.is_some_and(|now| now != first), "{first} then {now:?}");
    let leases = etcd.leases().await.unwrap();
    assert!(
        leases.leases().iter().all(|lease| lease.id() != first),
        "the first lease was not revoked"
    );
    assert_eq!(renewed.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn what_etcd_does_not_offer_is_refused_clearly() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = EtcdCluster::start();
    let manager = manager(&cluster).await;
    for kind in [LockKind::Permits(3), LockKind::Read, LockKind::Write] {
        let refused = manager.lock("export").kind(kind).acquire().await;
        assert!(
            matches!(
                refused,
                Err(LockError::Unsupported {
                    backend: "etcd",
                    ..
                })
            ),
            "{kind:?}: {refused:?}"
        );
    }
    let acks = LockManager::etcd(cluster.endpoints())
        .replica_acks(1, Duration::from_millis(100), Unacknowledged::Release)
        .build()
        .await;
    assert!(
        matches!(acks, Err(LockError::InvalidConfig { .. })),
        "{acks:?}"
    );
    let mixed = ["https://127.0.0.1:2379", "http://127.0.0.1:2380"];
    for endpoints in [&["127.0.0.1:2379"][..], &mixed] {
        let built = LockManager::etcd(endpoints.iter().copied()).build().await;
        assert!(
            matches!(built, Err(LockError::InvalidConfig { .. })),
            "{endpoints:?}: {built:?}"
        );
    }
}

/// With authentication on, the endpoint's user and password let a manager
/// lock; a wrong password fails the build with a `Connect` error, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_endpoint_url_are_used_and_a_wrong_password_fails_the_build() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = EtcdCluster::start();
    let mut admin = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .unwrap();
    admin.role_add("root").await.unwrap();
    admin.user_add("root", "s3cret", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();
    let with = |password: &str| -> Vec<String> {
        let mut endpoints = cluster.endpoints();
        endpoints[0] = endpoints[0].replace("http://", &format!("http://root:{password}@"));
        endpoints
    };
    let manager = LockManager::etcd(with("s3cret"))
        .command_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .unwrap();
    let guard = manager.lock("order:auth").acquire().await.unwrap();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let (wrong, took) = common::timed(LockManager::etcd(with("guess")).build()).await;
    let error = wrong.unwrap_err();
    assert!(matches!(error, LockError::Connect { .. }), "{error:?}");
    assert!(!error.to_string().contains("guess"), "{error}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let anonymous = LockManager::etcd(cluster.endpoints())
        .command_timeout(COMMAND_TIMEOUT)
        .build()
        .await;
    assert!(
        anonymous.is_err()
            || anonymous
                .unwrap()
                .lock("order:auth")
                .try_acquire()
                .await
                .is_err(),
        "a manager without credentials locked"
    );
}

/// A cluster serving clients over TLS only: a manager trusting its CA
/// locks, is woken by a release and releases; one trusting the default
/// roots or another CA fails to build with a `Connect` error about the
/// certificate, within its connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_an_etcd_manager_locks_and_a_wrong_ca_fails_with_connect() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = EtcdCluster::start_tls();
    let endpoints = cluster.endpoints();
    assert!(endpoints.iter().all(|url| url.starts_with("https://")));
    let ca = cluster.ca_pem().expect("a TLS cluster");
    let trusting = || {
        LockManager::etcd(&endpoints)
            .tls_root_certificate(ca)
            .command_timeout(COMMAND_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
    };
    let (a, b) = (trusting().await.unwrap(), trusting().await.unwrap());
    let held = a.lock("order:tls").acquire().await.unwrap();
    assert!(held.fencing_token() > 0);
    common::assert_release_hands_over(held, &b, "order:tls", Duration::from_millis(250)).await;
    let again = b.lock("order:tls").acquire().await.unwrap();
    assert_eq!(again.release().await.unwrap(), ReleaseOutcome::Released);

    let another_ca = TestCertificates::generate().unwrap();
    let attempts = [
        ("the default roots", LockManager::etcd(&endpoints)),
        (
            "another CA",
            LockManager::etcd(&endpoints).tls_root_certificate(another_ca.ca_pem()),
        ),
    ];
    common::urls::assert_untrusted_refused(attempts, Duration::from_millis(3_200)).await;
    // A root certificate for endpoints reached without TLS would mean
    // nothing, and says so.
    let plain: Vec<String> = endpoints
        .iter()
        .map(|url| url.replacen("https://", "http://", 1))
        .collect();
    let built = LockManager::etcd(&plain)
        .tls_root_certificate(ca)
        .build()
        .await;
    let message = common::urls::config_error("a root certificate with http://", built);
    assert!(message.contains("https://"), "{message}");
}

/// The leader killed while a renewed lock is held and another manager
/// waits for it: every call returns within its bounds, nobody else holds
/// the lock meanwhile, and the waiter gets it after the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_grants_nothing_twice_and_the_waiter_gets_the_lock_after_the_release() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = EtcdCluster::start();
    let (holder, other) = (manager(&cluster).await, manager(&cluster).await);
    let held = holder
        .lock("order:leader")
        .ttl(Duration::from_secs(5))
        .renew()
        .acquire()
        .await
        .unwrap();
    let token = held.fencing_token();
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move {
            let lock = other.lock("order:leader").wait(Duration::from_secs(20));
            lock.acquire().await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let leader = cluster.leader();
    cluster.stop(leader);
    let new_leader = cluster.leader();
    assert_ne!(new_leader, leader);
    // Through the election and past the lease: the renewal keeps the lock.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(held.is_held(), "the renewed lock was lost");
    let (tried, took) = common::timed(other.lock("order:leader").try_acquire()).await;
    assert!(took < COMMAND_TIMEOUT * 2, "try_acquire took {took:?}");
    assert!(
        matches!(tried, Ok(None) | Err(LockError::Backend { .. })),
        "granted twice: {tried:?}"
    );
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
    let granted = waiter.await.unwrap().expect("the waiter got the lock");
    assert!(granted.fencing_token() > token);
    drop(granted);
    cluster.restart(leader);
}

/// A paused member (SIGSTOP) answers nothing: calls that reach it fail
/// within their timeout or go to another member, and locks are granted
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_member_holds_up_calls_no_longer_than_their_timeout() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = EtcdCluster::start();
    let manager = manager(&cluster).await;
    let paused = cluster.leader();
    cluster.pause(paused);
    let started = Instant::now();
    let (mut granted, mut failed) = (0, 0);
    // At least 4 s of calls, and on until one is granted: the two others
    // elect a leader, which a loaded machine has taken over 4 s to reach.
    let deadline = started + Duration::from_secs(20);
    while (granted == 0 || started.elapsed() < Duration::from_secs(4)) && Instant::now() < deadline
    {
        let (attempt, took) = common::timed(
            manager
                .lock("order:paused")
                .wait(Duration::from_millis(500))
                .acquire(),
        )
        .await;
        assert!(
            took < COMMAND_TIMEOUT + Duration::from_millis(700),
            "a call took {took:?}: {attempt:?}"
        );
        match attempt {
            Ok(guard) => {
                granted += 1;
                // A release that fails leaves the lock to its lease.
                let (released, took) = common::timed(guard.release()).await;
                assert!(took < COMMAND_TIMEOUT + Duration::from_millis(200));
                assert!(
                    matches!(
                        released,
                        Ok(ReleaseOutcome::Released) | Err(LockError::Backend { .. })
                    ),
                    "{released:?}"
                );
            }
            Err(LockError::Backend { .. } | LockError::Timeout { .. }) => failed += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    cluster.resume(paused);
    eprintln!(
        "with the leader paused: {granted} granted, {failed} failed within the bounds, in {:?}",
        started.elapsed()
    );
    assert!(
        granted > 0,
        "no lock granted in 20 s while one member of three was paused"
    );
    let guard = manager.lock("order:paused").acquire().await.unwrap();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

/// Two members of three down: no quorum, so calls fail within their
/// timeout and no lock is granted; with the members back, locking resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_nothing_is_granted_and_locking_resumes_when_it_returns() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = EtcdCluster::start();
    let manager = manager(&cluster).await;
    let before = manager.lock("order:quorum").acquire().await.unwrap();
    let token = before.fencing_token();
    assert_eq!(before.release().await.unwrap(), ReleaseOutcome::Released);
    let survivor = cluster.leader();
    let down: Vec<usize> = (0..3).filter(|member| *member != survivor).collect();
    for member in &down {
        cluster.stop(*member);
    }
    for _ in 0..3 {
        let (attempt, took) = common::timed(manager.lock("order:quorum").try_acquire()).await;
        assert!(
            took < COMMAND_TIMEOUT + Duration::from_millis(300),
            "took {took:?}"
        );
        assert!(
            matches!(attempt, Err(LockError::Backend { .. })),
            "granted without a quorum: {attempt:?}"
        );
    }
    cluster.restart_many(&down);
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        match manager.lock("order:quorum").try_acquire().await {
            Ok(Some(guard)) => break guard,
            Ok(None) => panic!("held by nobody, yet refused"),
            Err(error) => {
                assert!(Instant::now() < deadline, "locking never resumed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(after.fencing_token() > token);
    assert_eq!(after.release().await.unwrap(), ReleaseOutcome::Released);
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

#[distributed_lock(key = "pay:<id>", ttl = "2s", renew, manager = "etcd-frozen")]
async fn pay_slowly(id: u32, trace: Shared) -> Result<(), AppError> {
    let _ = id;
    ticking_body(trace, Duration::from_secs(20)).await;
    Ok(())
}

/// The whole cluster frozen past the validity of a renewed lock: the body
/// is dropped at its validity, before etcd could end the lease, and once
/// the cluster answers again another manager gets the lock only after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_cluster_cancels_the_body_before_anyone_else_holds_the_lock() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = EtcdCluster::start();
    distlock::register("etcd-frozen", manager(&cluster).await).unwrap();
    let other = manager(&cluster).await;
    let trace = Shared::default();
    let call = tokio::spawn(pay_slowly(7, trace.clone()));
    wait_until_started(&trace).await;
    // A few renewals go through, then nobody answers.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for member in 0..3 {
        cluster.pause(member);
    }
    let frozen_at = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(8), call)
        .await
        .expect("the call ended without etcd")
        .unwrap();
    assert!(
        matches!(&result, Err(AppError::Lock(LockError::Lost { key })) if key == "pay:7"),
        "{result:?}"
    );
    let dropped = assert_cancelled_at_its_validity(&trace, Duration::from_secs(2), frozen_at);
    for member in 0..3 {
        cluster.resume(member);
    }
    let guard = other
        .lock("pay:7")
        .wait(Duration::from_secs(10))
        .acquire()
        .await
        .unwrap();
    assert!(Instant::now() > dropped);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}
