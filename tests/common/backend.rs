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
use lock_testkit::{RedisCluster, RedisServer};

/// The backends a test target can run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Single,
    Cluster,
    Memory,
}

/// The backend of this test target, from its name.
pub fn kind() -> Kind {
    let target = env!("CARGO_CRATE_NAME");
    if target.ends_with("_on_cluster") {
        Kind::Cluster
    } else if target.ends_with("_in_memory") {
        Kind::Memory
    } else {
        Kind::Single
    }
}

/// One test's backend: its own Redis server, its own in-memory store, or
/// its own key prefix on the cluster the whole target shares (forming a
/// cluster takes seconds).
pub enum Backend {
    Single(RedisServer),
    Cluster { seeds: Vec<String>, prefix: String },
    Memory(InMemoryStore),
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
            Kind::Memory => Backend::Memory(InMemoryStore::new()),
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
            Backend::Memory(store) => LockManager::in_memory().store(store.clone()),
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
            Backend::Cluster { seeds, prefix } => {
                let mut held = Vec::new();
                for seed in seeds {
                    let mut conn = redis::Client::open(seed.as_str())
                        .expect("seed url")
                        .get_multiplexed_async_connection()
                        .await
                        .expect("connect to a cluster node");
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
            Backend::Memory(store) => store.held_keys(),
        }
    }
}

/// The cluster of this test target: 3 masters, started by a thread that
/// lives as long as the process, since the test kit kills a server when the
/// thread that started it ends.
static SHARED_CLUSTER: LazyLock<Vec<String>> = LazyLock::new(|| {
    let (seeds, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cluster = RedisCluster::start(3, 0);
        let _ = seeds.send(cluster.seed_urls());
        loop {
            std::thread::park();
        }
    });
    started.recv().expect("the test cluster started")
});

/// Starts a backend of this target's kind and registers a manager on it
/// under `name`.
pub async fn backend_for(name: &str) -> Backend {
    let backend = Backend::start();
    distlock::register(name, backend.manager().await).expect("fresh manager name");
    backend
}
