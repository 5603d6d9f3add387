//! Locks on a Redis Sentinel topology (1 master, 2 replicas, 3 sentinels,
//! all on loopback, from the test kit): locking, waiting and wake-ups, and
//! a failover with a lock held and waited for. The attribute, context and
//! reentrancy suites also run here unchanged (`*_on_sentinel.rs`). The
//! `over_tls_*` tests run on a topology that speaks TLS to its clients and
//! within itself (skipped on Valkey, whose build has no TLS).

mod common;

use std::time::{Duration, Instant};

use distlock::{LockError, LockManager, ReleaseOutcome};
use lock_testkit::{RedisSentinel, TestCertificates};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

async fn manager(topology: &RedisSentinel) -> LockManager {
    LockManager::sentinel(topology.sentinel_urls(), topology.master_name())
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .expect("a manager on the sentinels' primary")
}

/// Waits until the replicas have every write the primary took so far:
/// `WAIT` counts the writes of its own connection, so it follows one write
/// of its own, which the replicas apply after all earlier ones.
async fn replicated(topology: &RedisSentinel) {
    let client = redis::Client::open(topology.master_url()).unwrap();
    let mut primary = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("SET")
        .arg("test:replication-probe")
        .arg(1)
        .query_async(&mut primary)
        .await
        .unwrap();
    let acknowledged: u64 = redis::cmd("WAIT")
        .arg(2)
        .arg(2000)
        .query_async(&mut primary)
        .await
        .unwrap();
    assert_eq!(acknowledged, 2, "both replicas have the writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_exclude_wait_and_wake_on_the_primary() {
    let topology = RedisSentinel::start(2, 3);
    let (one, two) = (manager(&topology).await, manager(&topology).await);
    let guard = one.lock("job").acquire().await.unwrap();
    assert!(two.lock("job").try_acquire().await.unwrap().is_none());
    // Woken by the release, not found by a later poll.
    common::assert_release_hands_over(guard, &two, "job", Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_calls_bounded_and_the_waiter_gets_the_lock_after_the_release() {
    let mut topology = RedisSentinel::start(2, 3);
    let (holder, waiter, other) = (
        manager(&topology).await,
        manager(&topology).await,
        manager(&topology).await,
    );
    let lease = Duration::from_secs(30);
    let guard = holder.lock("order:1").ttl(lease).acquire().await.unwrap();
    let renewed = holder
        .lock("order:2")
        .ttl(Duration::from_secs(9))
        .renew()
        .acquire()
        .await
        .unwrap();
    let first_token = guard.fencing_token();
    let waiting = {
        let waiter = waiter.clone();
        tokio::spawn(async move {
            let request = waiter
                .lock("order:1")
                .ttl(lease)
                .wait(Duration::from_secs(60));
            let guard = request.acquire().await.expect("the waiter gets the lock");
            (Instant::now(), guard)
        })
    };
    // The waiter is in line, and its place, like the leases, reached the replicas.
    tokio::time::sleep(Duration::from_millis(300)).await;
    replicated(&topology).await;

    let killed = Instant::now();
    topology.kill_master();
    // Calls made while Sentinel promotes a replica end within their
    // command timeout, whatever they find.
    let attempted = Instant::now();
    let during = other.lock("elsewhere").try_acquire().await;
    let took = attempted.elapsed();
    // An outage is an error, not a lock held by someone else.
    assert!(
        matches!(during, Err(LockError::Backend { .. }) | Ok(Some(_))),
        "{during:?}"
    );
    assert!(
        took < COMMAND_TIMEOUT + Duration::from_millis(500),
        "{took:?}: {during:?}"
    );
    let promoted =
        tokio::task::block_in_place(|| topology.wait_for_failover(Duration::from_secs(30)))
            .expect("a replica is promoted");
    let failover = killed.elapsed();

    // The lease moved with the data: the holder still owns the lock, and
    // releasing it on the new primary hands it to the waiter.
    let release_sent = Instant::now();
    let released = tokio::time::timeout(2 * COMMAND_TIMEOUT, guard.release()).await;
    assert_eq!(
        released.expect("bounded").unwrap(),
        ReleaseOutcome::Released
    );
    let (acquired, next) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiter is served")
        .unwrap();
    assert!(
        acquired >= release_sent,
        "the waiter held the lock before the release"
    );
    // A promotion starts new fencing counters above every earlier token.
    assert!(next.fencing_token() > first_token);
    // The renewal carried on: the lock was held through the failover.
    assert!(
        renewed.is_held(),
        "the renewed lock was lost in a {failover:?} failover to {promoted}"
    );
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(renewed.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn bad_sentinel_settings_are_errors_at_build() {
    let no_sentinels: [&str; 0] = [];
    for (builder, says) in [
        (
            LockManager::sentinel(no_sentinels, "m"),
            "at least one sentinel",
        ),
        (
            LockManager::sentinel(["redis://127.0.0.1:1"], ""),
            "master name",
        ),
        (
            LockManager::sentinel(["redis://a:b@127.0.0.1:1", "redis://127.0.0.1:2"], "m"),
            "differ in user, password or TLS",
        ),
        (
            LockManager::builder("redis://127.0.0.1:1").master_credentials(None, "p"),
            "not on Sentinel",
        ),
    ] {
        let error = builder.build().await.unwrap_err();
        assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
        assert!(error.to_string().contains(says), "{error}");
    }
}

/// Sends one command to the node at `url`, as its admin.
async fn admin(url: &str, command: &[&str]) {
    let mut node = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async::<redis::Value>(&mut node).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_and_the_sentinels_take_their_own_credentials() {
    let topology = RedisSentinel::start(2, 3);
    let master = topology.master_name().to_owned();
    // Passwords on every data node (replicas reach the primary with it) and
    // on every sentinel (which reach the data nodes with auth-pass).
    for node in topology.nodes() {
        admin(&node.url(), &["CONFIG", "SET", "masterauth", "data-secret"]).await;
        admin(
            &node.url(),
            &["CONFIG", "SET", "requirepass", "data-secret"],
        )
        .await;
    }
    for sentinel in topology.sentinels() {
        admin(
            &sentinel.url(),
            &["SENTINEL", "SET", &master, "auth-pass", "data-secret"],
        )
        .await;
        let password = ["ACL", "SETUSER", "default", "resetpass", ">sentinel-secret"];
        admin(&sentinel.url(), &password).await;
    }
    let sentinels: Vec<String> = topology
        .sentinels()
        .iter()
        .map(|sentinel| format!("redis://:sentinel-secret@127.0.0.1:{}", sentinel.port()))
        .collect();

    let manager = LockManager::sentinel(sentinels.clone(), master.as_str())
        .master_credentials(None, "data-secret")
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .expect("both credentials given");
    let guard = manager.lock("order:9").acquire().await.unwrap();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);

    let without_master = LockManager::sentinel(sentinels, master.as_str())
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await;
    assert!(
        matches!(without_master, Err(LockError::Connect { .. })),
        "{without_master:?}"
    );
    let without_sentinels = LockManager::sentinel(topology.sentinel_urls(), master.as_str())
        .master_credentials(None, "data-secret")
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await;
    assert!(
        matches!(without_sentinels, Err(LockError::Connect { .. })),
        "{without_sentinels:?}"
    );
}

// ---------------------------------------------------------------- TLS

/// A manager on the TLS topology's `rediss://` sentinels, trusting its CA.
async fn tls_manager(topology: &RedisSentinel) -> LockManager {
    LockManager::sentinel(topology.sentinel_urls(), topology.master_name())
        .tls_root_certificate(topology.ca_pem().expect("a TLS topology"))
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .expect("a manager on the sentinels' primary over TLS")
}

/// Whether a plain (non-TLS) client gets no `PING` answered at `url`'s
/// address: the port speaks TLS only.
async fn refuses_plain_clients(url: &str) -> bool {
    let plain = url.replacen("rediss://", "redis://", 1);
    let ping = async {
        let mut connection = redis::Client::open(plain)?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    !matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_sentinel_managers_lock_wait_release_and_follow_a_failover() {
    let mut topology = RedisSentinel::start_tls(1, 3);
    // Every address a client is given or told is a TLS port.
    let primary = topology.master_url();
    for url in topology.sentinel_urls().iter().chain([&primary]) {
        assert!(url.starts_with("rediss://127.0.0.1:"), "{url}");
        assert!(refuses_plain_clients(url).await, "{url} answers plain RESP");
    }
    let (one, two) = (tls_manager(&topology).await, tls_manager(&topology).await);
    let guard = one.lock("job").acquire().await.unwrap();
    assert!(two.lock("job").try_acquire().await.unwrap().is_none());
    // Woken by the release, not found by a later poll.
    common::assert_release_hands_over(guard, &two, "job", Duration::from_millis(100)).await;

    topology.kill_master();
    let promoted =
        tokio::task::block_in_place(|| topology.wait_for_failover(Duration::from_secs(30)))
            .expect("the replica is promoted");
    assert!(
        promoted.starts_with("rediss://") && promoted != primary,
        "{promoted}"
    );
    // A manager from before asks the sentinels again, over TLS, and reaches
    // the new primary over TLS; so does a new one.
    let after = one
        .lock("after-failover")
        .wait(Duration::from_secs(10))
        .acquire()
        .await
        .expect("the old manager locks on the new primary");
    assert_eq!(after.release().await.unwrap(), ReleaseOutcome::Released);
    let fresh = tls_manager(&topology).await;
    let guard = common::hold(&fresh, "after-failover").await;
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn over_tls_a_sentinel_manager_without_the_ca_fails_with_a_certificate_error() {
    let topology = RedisSentinel::start_tls(0, 1);
    let (sentinels, master) = (topology.sentinel_urls(), topology.master_name());
    let another_ca = TestCertificates::generate().unwrap();
    let attempts = [
        (
            "the default roots",
            LockManager::sentinel(&sentinels, master),
        ),
        (
            "another CA",
            LockManager::sentinel(&sentinels, master).tls_root_certificate(another_ca.ca_pem()),
        ),
    ];
    common::urls::assert_untrusted_refused(attempts, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn over_tls_plain_sentinel_urls_fail_and_a_root_certificate_needs_rediss() {
    let topology = RedisSentinel::start_tls(0, 1);
    let ca = topology.ca_pem().unwrap();
    let plain: Vec<String> = topology
        .sentinel_urls()
        .iter()
        .map(|url| url.replacen("rediss://", "redis://", 1))
        .collect();
    let built = LockManager::sentinel(&plain, topology.master_name())
        .connect_timeout(Duration::from_secs(1))
        .build()
        .await;
    common::urls::connect_error("plain URLs to TLS sentinels", built);
    // As for one server: a root certificate for sentinels reached without
    // TLS would mean nothing, and says so.
    let built = LockManager::sentinel(&plain, topology.master_name())
        .tls_root_certificate(ca)
        .build()
        .await;
    let message = common::urls::config_error("a root certificate with redis:// sentinels", built);
    assert!(message.contains("rediss://"), "{message}");
}
