//! A Redis that evicts keys: a cache with `maxmemory` and an evicting
//! `maxmemory-policy` deletes a held lock's lease under memory pressure,
//! and a second holder gets the lock. Building a manager reads each
//! server's policy (`INFO memory`) and warns, or refuses with
//! `EvictingServer::Refuse`.
//!
//! Every server is a throwaway `redis-server` started by lock-testkit. Each
//! test captures the `tracing` output of its own thread (a current-thread
//! runtime, so every task of the test logs there).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock::{EvictingServer, LockError, LockManager, ReleaseOutcome};
use lock_testkit::{RedisCluster, RedisServer};
use redis::aio::MultiplexedConnection;
use tracing::subscriber::DefaultGuard;

/// The words of the warning every evicting server gets.
const HAZARD: &str = "evicts keys under memory pressure";

/// What this thread logged, as `tracing-subscriber`'s fmt layer prints it.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's logs, DEBUG and above, while the guard lives.
    fn capture() -> (Logs, DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// The lines logged at `level` (`WARN`, `INFO`, …).
    fn at(&self, level: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        let level = format!(" {level} ");
        text.lines()
            .filter(|line| line.contains(&level))
            .map(str::to_owned)
            .collect()
    }

    /// The eviction warnings logged so far.
    fn eviction_warnings(&self) -> Vec<String> {
        self.at("WARN")
            .into_iter()
            .filter(|line| line.contains(HAZARD))
            .collect()
    }
}

/// A server run as a cache: `maxmemory` and `policy`.
fn cache(maxmemory: &str, policy: &str) -> RedisServer {
    RedisServer::builder()
        .arg("--maxmemory")
        .arg(maxmemory)
        .arg("--maxmemory-policy")
        .arg(policy)
        .start()
        .expect("redis-server should start")
}

fn address(server: &RedisServer) -> String {
    format!("127.0.0.1:{}", server.port())
}

/// Whether `key` exists, asked without touching it: `OBJECT` looks keys up
/// without updating their LRU clock (`EXISTS` would make the lease the most
/// recently used key, the last one an LRU policy evicts).
async fn exists_untouched(conn: &mut MultiplexedConnection, key: &str) -> bool {
    let encoding: Option<String> = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query_async(conn)
        .await
        .expect("OBJECT ENCODING");
    encoding.is_some()
}

/// Writes filler keys of 4 KiB, 100 KiB at a time, until `lease` is gone;
/// returns how many bytes that took. Panics after 64 MiB.
async fn fill_until_evicted(conn: &mut MultiplexedConnection, lease: &str) -> usize {
    let value = vec![b'x'; 4096];
    let mut written = 0;
    for batch in 0..640 {
        let mut pipe = redis::pipe();
        for i in 0..25 {
            pipe.set(format!("cache:{batch}:{i}"), &value).ignore();
        }
        let () = pipe.query_async(conn).await.expect("filler SETs");
        written += 25 * value.len();
        if !exists_untouched(conn, lease).await {
            return written;
        }
    }
    panic!("the lease {lease} was never evicted, after {written} bytes of other keys");
}

async fn info_field(conn: &mut MultiplexedConnection, section: &str, name: &str) -> String {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_cache_is_warned_about_and_really_evicts_a_held_lock_which_is_then_granted_twice() {
    let (logs, _capture) = Logs::capture();
    let server = cache("2mb", "allkeys-lru");
    let first = LockManager::builder(server.url())
        .build()
        .await
        .expect("an evicting server is only warned about by default");

    let warnings = logs.eviction_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let warning = &warnings[0];
    for part in [
        "allkeys-lru",
        &address(&server),
        "maxmemory 2097152 bytes",
        "granted twice, to a second holder while the first still holds it",
        "maxmemory-policy noeviction",
        "a Redis of their own",
    ] {
        assert!(warning.contains(part), "no `{part}` in: {warning}");
    }
    println!("{warning}");

    // The hazard itself: a held lock, well within its validity, is evicted
    // under memory pressure from other keys, and granted again.
    let mut raw = common::raw(&server).await;
    let guard = first
        .lock("nightly-report")
        .ttl(Duration::from_secs(60))
        .acquire()
        .await
        .expect("acquire");
    let lease = common::lease_key(&mut raw, "nightly-report").await;
    let written = fill_until_evicted(&mut raw, &lease).await;
    let evicted: u64 = info_field(&mut raw, "stats", "evicted_keys")
        .await
        .parse()
        .unwrap();
    println!("lease evicted after {written} bytes of other keys; {evicted} keys evicted");
    assert!(evicted > 0);
    assert!(
        guard.is_held() && guard.remaining() > Duration::from_secs(50),
        "the first holder's validity should be nearly whole: {:?}",
        guard.remaining()
    );

    let second_manager = common::manager(&server).await;
    let second = second_manager
        .lock("nightly-report")
        .try_acquire()
        .await
        .expect("try_acquire")
        .expect("the evicted lock is free for a second holder");
    assert!(
        guard.is_held(),
        "the first holder still believes it holds the lock"
    );
    assert_ne!(guard.owner_token(), second.owner_token());
    // Fencing still orders them: the evicted counter starts again at the
    // server clock, above the first holder's token.
    assert!(second.fencing_token() > guard.fencing_token());
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::TakenOver);
    assert_eq!(second.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn servers_that_keep_lock_keys_are_not_warned_about() {
    let (logs, _capture) = Logs::capture();
    let default = RedisServer::start();
    let noeviction = cache("2mb", "noeviction");
    // An evicting policy without a maxmemory never evicts: logged at INFO.
    let unlimited = cache("0", "allkeys-lru");
    for server in [&default, &noeviction, &unlimited] {
        for action in [EvictingServer::Warn, EvictingServer::Refuse] {
            let manager = LockManager::builder(server.url())
                .on_evicting_server(action)
                .build()
                .await
                .expect("a server that evicts nothing is not refused");
            let guard = common::hold(&manager, "k").await;
            assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        }
    }
    assert_eq!(logs.eviction_warnings(), Vec::<String>::new());
    let infos = logs.at("INFO");
    assert!(
        infos.iter().any(|line| line.contains(&address(&unlimited))
            && line.contains("allkeys-lru but no maxmemory")),
        "{infos:#?}"
    );
}

/// What `noeviction` does instead: a full server refuses writes, so a
/// second acquire fails with an error rather than being granted the lock,
/// and the first holder's lease stays.
#[tokio::test]
async fn a_full_noeviction_server_refuses_a_second_acquire_and_keeps_the_lease() {
    let server = cache("2mb", "noeviction");
    let first = common::manager(&server).await;
    let second = common::manager(&server).await;
    let guard = first
        .lock("nightly-report")
        .ttl(Duration::from_secs(60))
        .acquire()
        .await
        .expect("acquire");
    let mut raw = common::raw(&server).await;
    let value = vec![b'x'; 4096];
    let full = 'fill: {
        for i in 0..1024 {
            let set: redis::RedisResult<()> = redis::cmd("SET")
                .arg(format!("cache:{i}"))
                .arg(&value)
                .query_async(&mut raw)
                .await;
            if let Err(error) = set {
                break 'fill error;
            }
        }
        panic!("a 2 MB server took 4 MB of keys");
    };
    assert!(full.to_string().contains("OOM"), "{full}");

    let refused = second.lock("nightly-report").try_acquire().await;
    let Err(LockError::Backend { source, .. }) = refused else {
        panic!("a full server granted or refused the lock without an error: {refused:?}");
    };
    assert!(source.to_string().contains("OOM"), "{source}");
    let lease = common::lease_key(&mut raw, "nightly-report").await;
    assert!(exists_untouched(&mut raw, &lease).await);
    assert!(guard.is_held());
    // A release only deletes, which a full server allows.
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn refusing_an_evicting_server_is_a_configuration_error_naming_its_policy() {
    let (logs, _capture) = Logs::capture();
    let server = cache("100mb", "volatile-lru");
    let built = LockManager::builder(server.url())
        .on_evicting_server(EvictingServer::Refuse)
        .build()
        .await;
    let Err(LockError::InvalidConfig { reason }) = built else {
        panic!("an evicting server was not refused: {built:?}");
    };
    println!("{reason}");
    for part in [
        "volatile-lru",
        &address(&server),
        "maxmemory 104857600 bytes",
        "every lease has one",
        "granted twice",
        "maxmemory-policy noeviction",
    ] {
        assert!(reason.contains(part), "no `{part}` in: {reason}");
    }
    // Refused, not also warned about.
    assert_eq!(logs.eviction_warnings(), Vec::<String>::new());
}

#[tokio::test]
async fn each_redlock_node_is_checked() {
    let (logs, _capture) = Logs::capture();
    let nodes = [
        RedisServer::start(),
        cache("100mb", "volatile-ttl"),
        cache("100mb", "noeviction"),
    ];
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let manager = LockManager::redlock(urls.clone())
        .build()
        .await
        .expect("warned about by default");
    let warnings = logs.eviction_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains(&address(&nodes[1])), "{}", warnings[0]);
    assert!(warnings[0].contains("volatile-ttl"), "{}", warnings[0]);
    drop(manager);

    let built = LockManager::redlock(urls)
        .on_evicting_server(EvictingServer::Refuse)
        .build()
        .await;
    let Err(LockError::InvalidConfig { reason }) = built else {
        panic!("an evicting node was not refused: {built:?}");
    };
    assert!(reason.contains(&address(&nodes[1])), "{reason}");
    for other in [&nodes[0], &nodes[2]] {
        assert!(!reason.contains(&address(other)), "{reason}");
    }
}

#[tokio::test]
async fn every_cluster_master_is_checked_not_only_the_seeds() {
    let (logs, _capture) = Logs::capture();
    let cluster = RedisCluster::start(3, 0);
    let evicting = &cluster.nodes()[2];
    for (name, value) in [("maxmemory", "100mb"), ("maxmemory-policy", "allkeys-lfu")] {
        let mut config = redis::cmd("CONFIG");
        config.arg("SET").arg(name).arg(value);
        let () = common::cluster::node_cmd(evicting, &mut config)
            .await
            .expect("CONFIG SET");
    }
    // One seed, not the evicting master: that one is found by the client.
    let seed = vec![cluster.nodes()[0].url()];
    let manager = LockManager::cluster(seed.clone())
        .build()
        .await
        .expect("warned about by default");
    let warnings = logs.eviction_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains(&address(evicting)), "{}", warnings[0]);
    assert!(warnings[0].contains("allkeys-lfu"), "{}", warnings[0]);
    drop(manager);

    let built = LockManager::cluster(seed)
        .on_evicting_server(EvictingServer::Refuse)
        .build()
        .await;
    let Err(LockError::InvalidConfig { reason }) = built else {
        panic!("an evicting master was not refused: {built:?}");
    };
    assert!(
        reason.contains(&address(evicting)) && reason.contains("allkeys-lfu"),
        "{reason}"
    );
}

/// Where `INFO` is denied (an ACL, or renamed away on a managed service),
/// the policy cannot be read: the build goes on, even when refusing, and
/// says so at INFO.
#[tokio::test]
async fn a_policy_that_cannot_be_read_is_logged_and_fails_no_build() {
    let (logs, _capture) = Logs::capture();
    let server = cache("2mb", "allkeys-lru");
    let mut admin = common::raw(&server).await;
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("noinfo")
        .arg("on")
        .arg(">secret")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-info")
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let url = format!("redis://noinfo:secret@{}", address(&server));
    let manager = LockManager::builder(&url)
        .on_evicting_server(EvictingServer::Refuse)
        .build()
        .await
        .expect("an unreadable policy fails no build");
    let guard = common::hold(&manager, "k").await;
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(logs.eviction_warnings(), Vec::<String>::new());
    let infos = logs.at("INFO");
    assert!(
        infos
            .iter()
            .any(|line| line.contains("could not read the eviction policy")
                && line.contains(&address(&server))
                && !line.contains("secret")),
        "{infos:#?}"
    );
}
