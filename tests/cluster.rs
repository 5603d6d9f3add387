//! The Redis Cluster backend against real local clusters: where locks live,
//! exclusion between managers (two processes, as far as locking goes),
//! fencing, renewal, wake-ups by sharded pub/sub, redirections, failover,
//! and seeds that cannot work.
//!
//! Each cluster takes a second or two to form, so each test starts one and
//! runs several steps on it.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{
    command_calls, command_stat, fence_key, is_master, keys, keyslot, lease_holder, manager,
    node_cmd, replica_of, serving, shard_subscribers,
};
use distlock::{LockManager, ReleaseOutcome};
use lock_testkit::{RedisCluster, RedisServer};

/// A waiter that holds the lock this soon after the release was woken by
/// it (`SPUBLISH`), not by its fallback nap of up to 500 ms. Not tighter:
/// a loaded CI machine once took 212 ms after a failover.
const WOKEN_WITHIN: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_master_serves_locks_that_exclude_fence_renew_and_follow_ask_and_moved() {
    let cluster = RedisCluster::start(3, 0);
    let seeds = cluster.seed_urls();
    locks_live_on_the_master_serving_their_slot(&cluster, &seeds).await;
    two_managers_exclude_each_other_with_rising_fencing_tokens(&seeds).await;
    renewal_keeps_the_lock_for_several_leases(&seeds).await;
    one_seed_is_enough_and_ask_and_moved_are_followed(&cluster, &seeds[..1]).await;
}

/// Thirty keys land on all three masters, each lock's keys on the master
/// serving their slot, and another manager cannot take a held one.
async fn locks_live_on_the_master_serving_their_slot(cluster: &RedisCluster, seeds: &[String]) {
    let (a, b) = (
        manager(seeds, "spread:").await,
        manager(seeds, "spread:").await,
    );
    let mut masters = BTreeSet::new();
    for i in 0..30 {
        let key = format!("order:{i}");
        let guard = a.lock(&key).acquire().await.expect("acquire");
        let (holder, lease) = lease_holder(cluster, "spread:", &key)
            .await
            .expect("the lease key is on a master");
        assert_eq!(serving(cluster, &lease).await, [holder], "{lease}");
        let node = &cluster.nodes()[holder];
        let fence = fence_key(&lease);
        assert_eq!(keyslot(node, &fence).await, keyslot(node, &lease).await);
        let fence_here: i64 = node_cmd(node, redis::cmd("EXISTS").arg(&fence))
            .await
            .expect("EXISTS on the lease's node");
        assert_eq!(fence_here, 1, "{fence} is not next to {lease}");
        assert!(
            b.lock(&key).try_acquire().await.expect("try").is_none(),
            "{key} taken twice"
        );
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        masters.insert(holder);
    }
    assert_eq!(masters, BTreeSet::from([0, 1, 2]));
}

/// Two managers, four tasks each, take one key forty times in all: never
/// two holders at once, and each holder's fencing token is above the last.
async fn two_managers_exclude_each_other_with_rising_fencing_tokens(seeds: &[String]) {
    let managers = [
        manager(seeds, "exclusion:").await,
        manager(seeds, "exclusion:").await,
    ];
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let manager = managers[task % 2].clone();
            let (inside, most, tokens) = (inside.clone(), most.clone(), tokens.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    let guard = manager
                        .lock("invoice:7")
                        .wait(Duration::from_secs(10))
                        .acquire()
                        .await
                        .expect("acquire");
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokens.lock().unwrap().push(guard.fencing_token());
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 40);
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "fencing tokens not increasing: {tokens:?}"
    );
}

/// A renewed 300 ms lease is held for 1.5 s while another manager keeps
/// trying to take it.
async fn renewal_keeps_the_lock_for_several_leases(seeds: &[String]) {
    let (owner, rival) = (
        manager(seeds, "renew:").await,
        manager(seeds, "renew:").await,
    );
    let lease = Duration::from_millis(300);
    let guard = owner
        .lock("report")
        .ttl(lease)
        .renew()
        .acquire()
        .await
        .expect("acquire");
    let started = Instant::now();
    while started.elapsed() < lease * 5 {
        assert!(
            rival.lock("report").try_acquire().await.unwrap().is_none(),
            "taken after {:?} despite renewal",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(guard.is_held());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(rival.lock("report").try_acquire().await.unwrap().is_some());
}

/// A manager given one seed finds the other masters. Then a held lock's slot
/// is resharded to another master, the way `redis-cli --cluster reshard`
/// does it: while its keys are migrated, steps are answered ASK (or, for a
/// free lock, TRYAGAIN, since Redis runs a script only where all its keys
/// are) and retried until the slot settles; once it changed hands, MOVED is
/// followed; a waiter whose sharded subscription the old master ended still
/// gets the lock.
async fn one_seed_is_enough_and_ask_and_moved_are_followed(
    cluster: &RedisCluster,
    seed: &[String],
) {
    let locks = manager(seed, "moved:").await;
    let rival = manager(&cluster.seed_urls(), "moved:").await;
    let guard = locks.lock("m").acquire().await.expect("acquire");
    let (from, lease) = lease_holder(cluster, "moved:", "m").await.expect("held");
    let to = (from + 1) % 3;
    let nodes = cluster.nodes();
    let slot = keyslot(&nodes[from], &lease).await;
    let id = async |node: &RedisServer| -> String {
        node_cmd(node, redis::cmd("CLUSTER").arg("MYID"))
            .await
            .unwrap()
    };
    let (from_id, to_id) = (id(&nodes[from]).await, id(&nodes[to]).await);
    // A waiter subscribes where the slot is, on `from`.
    let waiting = common::spawn_waiter(&rival, "m");
    until_subscribers(&nodes[from], &lease, 1).await;

    let setslot = async |node: &RedisServer, state: &str, id: &str| {
        let _: () = node_cmd(
            node,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(state)
                .arg(id),
        )
        .await
        .expect("CLUSTER SETSLOT");
    };
    setslot(&nodes[to], "IMPORTING", &from_id).await;
    setslot(&nodes[from], "MIGRATING", &to_id).await;
    let _: () = node_cmd(
        &nodes[from],
        redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(nodes[to].port())
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&lease)
            .arg(fence_key(&lease)),
    )
    .await
    .expect("MIGRATE");

    // The keys are on `to`, the slot still `from`'s: `from` answers ASK.
    let asked = command_calls(&nodes[to], "asking").await;
    let third = manager(&cluster.seed_urls(), "moved:").await;
    assert!(third.lock("m").try_acquire().await.unwrap().is_none());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(command_calls(&nodes[to], "asking").await >= asked + 2);
    // The lock is free now, so the waiter's attempts get TRYAGAIN (its lease
    // key is missing) until the slot is settled. The new owner first, then
    // the old one, then the rest.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = Instant::now();
    for index in [to, from, 3 - to - from] {
        setslot(&nodes[index], "NODE", &to_id).await;
    }
    let waited = waiting.await.expect("waiter").duration_since(settled);
    println!("resharding: the waiter held the lock {waited:?} after the slot settled");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    // Giving up the slot, `from` ended the waiter's subscription.
    until_subscribers(&nodes[from], &lease, 0).await;
    assert_eq!(serving(cluster, &lease).await, [to]);

    let refused = command_stat(&nodes[from], "evalsha", "rejected_calls").await;
    let guard = locks
        .lock("m")
        .acquire()
        .await
        .expect("acquire after MOVED");
    assert_eq!(
        lease_holder(cluster, "moved:", "m")
            .await
            .map(|(node, _)| node),
        Some(to)
    );
    // This manager's slot map was stale: `from` refused the script first.
    assert!(command_stat(&nodes[from], "evalsha", "rejected_calls").await > refused);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_permit_wakes_one_waiter_on_the_slot_node() {
    let cluster = RedisCluster::start(3, 0);
    let seeds = cluster.seed_urls();
    let managers = [
        manager(&seeds, "permits:").await,
        manager(&seeds, "permits:").await,
        manager(&seeds, "permits:").await,
    ];
    // Every script any master ran: the lock's keys live on one of them.
    let scripts = || async {
        let mut calls = 0;
        for node in cluster.nodes() {
            calls += common::cluster::command_calls(node, "evalsha").await;
        }
        calls
    };
    let sent = common::kinds::fewest_scripts_after_one_release(&managers, scripts).await;
    assert_eq!(sent, 1, "{sent} scripts ran after the release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_by_spublish_on_the_slot_node_and_unsubscribes_after() {
    let cluster = RedisCluster::start(3, 0);
    let seeds = cluster.seed_urls();
    let (holder, waiter) = (
        manager(&seeds, "wake:").await,
        manager(&seeds, "wake:").await,
    );
    let mut latencies = Vec::new();
    let mut node = None;
    for _ in 0..5 {
        let guard = holder.lock("job").acquire().await.expect("acquire");
        let (index, lease) = lease_holder(&cluster, "wake:", "job").await.expect("held");
        node = Some((index, lease.clone()));
        let slot_node = &cluster.nodes()[index];
        let waiting = common::spawn_waiter(&waiter, "job");
        // Subscribed; then its attempt fails and its 500 ms fallback timer
        // starts. Releasing 50 ms later, only a message wakes it early.
        until_subscribers(slot_node, &lease, 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let released = Instant::now();
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        let acquired = waiting.await.expect("waiter");
        latencies.push(acquired.duration_since(released));
    }
    println!("cluster wake-up latency (release start -> waiter holds): {latencies:?}");
    assert!(
        latencies.iter().all(|latency| *latency < WOKEN_WITHIN),
        "woken by the fallback timer, not by SPUBLISH: {latencies:?}"
    );

    let (index, lease) = node.expect("five rounds");
    for (i, node) in cluster.nodes().iter().enumerate() {
        let spublish = command_calls(node, "spublish").await;
        if i == index {
            assert!(spublish >= 10, "{spublish} SPUBLISH on the slot's node");
        } else {
            assert_eq!(spublish, 0, "SPUBLISH on node {i}, not the slot's");
        }
        assert_eq!(
            command_calls(node, "publish").await,
            0,
            "PUBLISH on node {i}"
        );
    }
    // The last waiter left: its channel is unsubscribed.
    until_subscribers(&cluster.nodes()[index], &lease, 0).await;

    a_killed_connection_is_subscribed_again_and_wakes_its_waiter(&cluster, &holder, &waiter).await;
    a_user_with_the_documented_acl_rights_can_lock_and_wait(&cluster).await;
}

/// The node drops the waiter's connection: the manager reconnects, its
/// channel is subscribed again on its own, and a release wakes the waiter.
async fn a_killed_connection_is_subscribed_again_and_wakes_its_waiter(
    cluster: &RedisCluster,
    holder: &LockManager,
    waiter: &LockManager,
) {
    let guard = holder.lock("cut").acquire().await.expect("acquire");
    let (index, lease) = lease_holder(cluster, "wake:", "cut").await.expect("held");
    let node = &cluster.nodes()[index];
    let waiting = common::spawn_waiter(waiter, "cut");
    until_subscribers(node, &lease, 1).await;
    // Only the waiting manager's connection subscribes anything.
    let killed: i64 = node_cmd(
        node,
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"),
    )
    .await
    .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    until_subscribers(node, &lease, 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released = Instant::now();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let latency = waiting.await.expect("waiter").duration_since(released);
    println!("cluster wake-up after a reconnect: {latency:?}");
    assert!(latency < WOKEN_WITHIN, "{latency:?}");
}

/// The ACL rule the guide gives for a cluster (`docs/guide/cluster.md`) is enough for locking and
/// waking; a wrong password is refused at build.
async fn a_user_with_the_documented_acl_rights_can_lock_and_wait(cluster: &RedisCluster) {
    for node in cluster.nodes() {
        let _: () = node_cmd(
            node,
            redis::cmd("ACL")
                .arg("SETUSER")
                .arg("locker")
                .arg("reset")
                .arg("on")
                .arg(">s3cret")
                .arg("~acl:*")
                .arg("&acl:*")
                .arg("+evalsha")
                .arg("+script|load")
                .arg("+set")
                .arg("+get")
                .arg("+del")
                .arg("+pexpire")
                .arg("+pttl")
                .arg("+time")
                .arg("+spublish")
                .arg("+ssubscribe")
                .arg("+sunsubscribe")
                .arg("+ping")
                .arg("+cluster|slots")
                .arg("+asking"),
        )
        .await
        .expect("ACL SETUSER");
    }
    let seeds: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|node| format!("redis://locker:s3cret@127.0.0.1:{}", node.port()))
        .collect();
    let (a, b) = (manager(&seeds, "acl:").await, manager(&seeds, "acl:").await);
    let guard = a.lock("k").acquire().await.expect("acquire as locker");
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let guard = b
            .lock("k")
            .wait(Duration::from_secs(5))
            .acquire()
            .await
            .expect("wait as locker");
        let waited = started.elapsed();
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        waited
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let waited = waiting.await.expect("waiter");
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");

    let wrong: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|node| format!("redis://locker:hunter2@127.0.0.1:{}", node.port()))
        .collect();
    let built = LockManager::cluster(wrong).build().await;
    let message = common::urls::connect_error("wrong password", built);
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_every_call_bounded_and_locking_resumes_within_seconds() {
    let mut cluster = RedisCluster::start(3, 1);
    let seeds = cluster.seed_urls();
    let timeout = Duration::from_secs(1);
    let bounded = |prefix: &'static str, timeout: Duration| {
        let seeds = seeds.clone();
        async move {
            LockManager::cluster(seeds)
                .key_prefix(prefix)
                .command_timeout(timeout)
                .connect_timeout(timeout)
                .build()
                .await
                .expect("connect")
        }
    };
    let holder = bounded("fo:", timeout).await;
    let prober = bounded("fo:", timeout).await;
    // Its command timeout outlasts the failover, so its wait survives it.
    let patient = bounded("fo:", Duration::from_secs(8)).await;

    let guard = holder
        .lock("held")
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .expect("acquire");
    let (master, lease) = lease_holder(&cluster, "fo:", "held").await.expect("held");
    let replica = replica_of(&cluster, master).await.expect("a replica");
    // Replication is asynchronous: only a lease the replica has survives.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if keys(&cluster.nodes()[replica], &lease).await == [lease.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "never replicated");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Keys whose slots the doomed master and another master serve, to probe with.
    let (mut victim, mut calm) = (None, None);
    for i in 0..100 {
        let key = format!("probe:{i}");
        let probe = prober.lock(&key).acquire().await.expect("probe");
        let on = lease_holder(&cluster, "fo:", &key)
            .await
            .map(|(node, _)| node);
        let _ = probe.release().await.expect("release probe");
        match on {
            Some(node) if node == master => victim = victim.or(Some(key)),
            Some(_) => calm = calm.or(Some(key)),
            None => {}
        }
        if victim.is_some() && calm.is_some() {
            break;
        }
    }
    let (victim, calm) = (victim.expect("a key there"), calm.expect("a key elsewhere"));

    let waiter = common::spawn_waiter(&patient, "held");
    until_subscribers(&cluster.nodes()[master], &lease, 1).await;

    let killed = Instant::now();
    cluster.node_mut(master).stop();
    // Every call returns, Ok or not, within its command timeout.
    let bound = timeout + Duration::from_millis(300);
    let mut recovered = None;
    let (mut failed, mut elsewhere_failed) = (0, 0);
    while recovered.is_none() {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "no acquisition within 15 s of the kill"
        );
        // Short leases: an attempt that timed out on our side may still
        // have taken its lock in Redis, which then holds it a moment.
        let probe = |key: &str| {
            prober
                .lock(key)
                .ttl(Duration::from_millis(500))
                .try_acquire()
        };
        let (there, elsewhere, extended) = tokio::join!(
            common::timed(probe(&victim)),
            common::timed(probe(&calm)),
            common::timed(guard.extend(Duration::from_secs(30))),
        );
        for took in [there.1, elsewhere.1, extended.1] {
            assert!(took < bound, "a call took {took:?}");
        }
        // An answer, held or not, is the new master serving the slot.
        match there.0 {
            Ok(_) => recovered = Some(killed.elapsed()),
            Err(_) => failed += 1,
        }
        if elsewhere.0.is_err() {
            elsewhere_failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = recovered.expect("recovered");
    println!(
        "failover: first answer on the failed master's slots {recovered:?} after the kill; \
         meanwhile {failed} attempts there and {elsewhere_failed} on another master's slots \
         failed, each within {timeout:?}"
    );
    assert!(
        is_master(&cluster.nodes()[replica]).await,
        "replica not promoted"
    );
    assert!(recovered < Duration::from_secs(10), "{recovered:?}");
    let fresh = prober
        .lock(&victim)
        .wait(Duration::from_secs(2))
        .acquire()
        .await
        .expect("a new acquisition on the failed master's slots");
    assert_eq!(fresh.release().await.unwrap(), ReleaseOutcome::Released);

    // The waiter's sharded subscription moved to the promoted replica.
    until_subscribers(&cluster.nodes()[replica], &lease, 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released = Instant::now();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let latency = waiter.await.expect("waiter").duration_since(released);
    println!("failover: waiter woken {latency:?} after the release on the new master");
    assert!(latency < WOKEN_WITHIN, "{latency:?}");
}

#[tokio::test]
async fn unusable_seeds_are_errors_at_build() {
    // Nothing listens there: a Connect error within the connect timeout,
    // password hidden.
    let port = common::urls::closed_port();
    let seed = format!("redis://:hunter2@127.0.0.1:{port}");
    common::urls::assert_unreachable_masks_password(LockManager::cluster([seed])).await;

    // A server that is not in cluster mode.
    let server = RedisServer::start();
    let built = LockManager::cluster([server.url()]).build().await;
    common::urls::connect_error("not a cluster", built);

    // No seeds, a malformed one, and TLS settings that cannot apply.
    let none: [&str; 0] = [];
    let built = LockManager::cluster(none).build().await;
    common::urls::config_error("no seeds", built);
    let built = LockManager::cluster(["http://:hunter2@h:1"]).build().await;
    let message = common::urls::config_error("not a redis URL", built);
    assert!(!message.contains("hunter2"), "{message}");
    let built = LockManager::cluster(["redis://127.0.0.1:1"])
        .tls_root_certificate("not a certificate")
        .build()
        .await;
    common::urls::config_error("no certificate", built);
    let ca = lock_testkit::TestCertificates::generate().expect("a test CA");
    let built = LockManager::cluster(["redis://127.0.0.1:1"])
        .tls_root_certificate(ca.ca_pem())
        .build()
        .await;
    let message = common::urls::config_error("a root certificate without rediss://", built);
    assert!(message.contains("rediss://"), "{message}");
}

/// Waits (up to 5 s) until `node` counts `count` subscribers of `channel`.
async fn until_subscribers(node: &RedisServer, channel: &str, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while shard_subscribers(node, channel).await != count {
        assert!(
            Instant::now() < deadline,
            "{channel} never had {count} subscribers on port {}",
            node.port()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
