//! Where a test's locks live: the same test bodies run against every
//! backend, the backend chosen by the name of the test target.
//!
//! `tests/attribute.rs` is the target `attribute`, on one Redis server;
//! `tests/attribute_in_memory.rs` and `tests/attribute_on_cluster.rs` hold
//! nothing but `#[path = "attribute.rs"] mod attribute;`, so the very same
//! fns run in-memory and on a Redis Cluster.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use distlock::{InMemoryStore, LockManager};
use lock_testkit::{EtcdCluster, RedisCluster, RedisSentinel, RedisServer, for_process};

/// The backends a test target can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Single,
    Cluster,
    Sentinel,
    Memory,
    Etcd,
}

/// The backend of this test target, from its name.
pub fn kind() -> Kind {
    let target = env!("CARGO_CRATE_NAME");
    if target.ends_with("_on_cluster") {
        Kind::Cluster
    } else if target.ends_with("_on_sentinel") {
        Kind::Sentinel
    } else if target.ends_with("_in_memory") {
        Kind::Memory
    } else if target.ends_with("_on_etcd") {
        Kind::Etcd
    } else {
        Kind::Single
    }
}

/// One test's backend: its own Redis server, its own in-memory store, or
/// its own key prefix on the cluster the whole target shares (forming a
/// cluster takes seconds).
pub enum Backend {
    Single(RedisServer),
    Cluster {
        seeds: Vec<String>,
        prefix: String,
    },
    Sentinel {
        topology: &'static SharedSentinel,
        prefix: String,
    },
    Memory(InMemoryStore),
    Etcd {
        endpoints: Vec<String>,
        prefix: String,
    },
}

impl Backend {
    /// A fresh backend of this target's kind.
    pub fn start() -> Backend {
        match kind() {
            Kind::Single => Backend::Single(RedisServer::start()),
            Kind::Cluster => {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                Backend::Cluster {
                    seeds: SHARED_CLUSTER.clone(),
                    prefix: format!("t{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
                }
            }
            Kind::Sentinel => {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                Backend::Sentinel {
                    topology: &SHARED_SENTINEL,
                    prefix: format!("t{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
                }
            }
            Kind::Memory => Backend::Memory(InMemoryStore::new()),
            Kind::Etcd => {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                Backend::Etcd {
                    endpoints: SHARED_ETCD.clone(),
                    prefix: format!("t{}:", NEXT.fetch_add(1, Ordering::Relaxed)),
                }
            }
        }
    }

    /// A manager on this backend; managers of one backend see each other's
    /// locks, like processes sharing one Redis.
    pub async fn manager(&self) -> LockManager {
        let builder = match self {
            Backend::Single(server) => return super::manager(server).await,
            Backend::Cluster { seeds, prefix } => LockManager::cluster(seeds.clone())
                .key_prefix(prefix.as_str())
                .command_timeout(Duration::from_secs(2)),
            Backend::Sentinel { topology, prefix } => {
                LockManager::sentinel(topology.sentinels.clone(), topology.master_name.as_str())
                    .key_prefix(prefix.as_str())
                    .command_timeout(Duration::from_secs(2))
            }
            Backend::Memory(store) => LockManager::in_memory().store(store.clone()),
            Backend::Etcd { endpoints, prefix } => LockManager::etcd(endpoints.clone())
                .key_prefix(prefix.as_str())
                .command_timeout(Duration::from_secs(2)),
        };
        builder
            .build()
            .await
            .expect("a manager on the test backend")
    }

    /// The locks held now, of every kind: keys holding them on Redis, lock
    /// keys in memory.
    pub async fn locks_held(&self) -> Vec<String> {
        match self {
            Backend::Single(server) => super::lease_keys(server).await,
            Backend::Sentinel { topology, prefix } => {
                held_under(std::slice::from_ref(&topology.master), prefix).await
            }
            Backend::Cluster { seeds, prefix } => held_under(seeds, prefix).await,
            Backend::Memory(store) => store.held_keys(),
            Backend::Etcd { endpoints, prefix } => etcd_keys_under(endpoints, prefix).await,
        }
    }
}

/// The keys holding a lock under `prefix` on every node of `urls`.
async fn held_under(urls: &[String], prefix: &str) -> Vec<String> {
    let mut held = Vec::new();
    for url in urls {
        let mut conn = redis::Client::open(url.as_str())
            .expect("node url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a node");
        for segment in super::HOLDING {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*{segment}*"))
                .query_async(&mut conn)
                .await
                .expect("KEYS");
            held.extend(keys);
        }
    }
    held.sort();
    held
}

/// The keys holding a lock under `prefix` in the etcd cluster at
/// `endpoints`.
pub async fn etcd_keys_under(endpoints: &[String], prefix: &str) -> Vec<String> {
    let mut client = etcd_client::Client::connect(endpoints, None)
        .await
        .expect("connect to etcd");
    let found = client
        .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .expect("a range read");
    let mut held: Vec<String> = found
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .filter(|key| super::HOLDING.iter().any(|segment| key.contains(segment)))
        .collect();
    held.sort();
    held
}

/// The etcd cluster of this test target (3 members), kept until the
/// process exits.
static SHARED_ETCD: LazyLock<Vec<String>> =
    LazyLock::new(|| for_process(EtcdCluster::start, EtcdCluster::endpoints));

/// The Sentinel topology of this test target (1 master, 2 replicas, 3
/// sentinels), where it is; it never fails over.
pub struct SharedSentinel {
    pub sentinels: Vec<String>,
    pub master_name: String,
    pub master: String,
}

static SHARED_SENTINEL: LazyLock<SharedSentinel> = LazyLock::new(|| {
    for_process(
        || RedisSentinel::start(2, 3),
        |sentinel| SharedSentinel {
            sentinels: sentinel.sentinel_urls(),
            master_name: sentinel.master_name().to_owned(),
            master: sentinel.master_url(),
        },
    )
});

/// The cluster of this test target: 3 masters, kept until the process
/// exits.
static SHARED_CLUSTER: LazyLock<Vec<String>> =
    LazyLock::new(|| for_process(|| RedisCluster::start(3, 0), RedisCluster::seed_urls));

/// Whether this target's backend holds exclusive locks only (etcd): then
/// `first`, the outcome of a first call of a semaphore or a read-write
/// lock, must be its clear refusal, and the test of the shared kinds ends.
pub fn refuses_shared_kinds<T: std::fmt::Debug>(first: &Result<T, distlock::LockError>) -> bool {
    if kind() != Kind::Etcd {
        return false;
    }
    assert!(
        matches!(
            first,
            Err(distlock::LockError::Unsupported {
                backend: "etcd",
                ..
            })
        ),
        "{first:?}"
    );
    true
}

/// Starts a backend of this target's kind and registers a manager on it
/// under `name`.
pub async fn backend_for(name: &str) -> Backend {
    let backend = Backend::start();
    distlock::register(name, backend.manager().await).expect("fresh manager name");
    backend
}
