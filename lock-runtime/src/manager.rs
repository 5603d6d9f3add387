//! The lock manager: a backend (where the locks live) and the settings
//! shared by its locks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{
    Backend, EvictingServer, InMemoryStore, ReplicaAcks, SentinelTopology, Settings, Topology,
    Unacknowledged,
};
use crate::inner::{ManagerInner, ManagerSettings};
use crate::{LockError, LockRequest, keyspace, lease};

/// Default prefix of every Redis key distlock writes.
pub const DEFAULT_KEY_PREFIX: &str = "distlock:";
/// Default lease of a lock.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Default time Redis has to answer one command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time each Redlock node has to answer one command.
pub const DEFAULT_REDLOCK_NODE_TIMEOUT: Duration = Duration::from_millis(100);
/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands out locks on one Redis server, a Redis Cluster, several
/// independent Redis masters (Redlock), or this process's memory, chosen by
/// the constructor: [`builder`](Self::builder), [`cluster`](Self::cluster),
/// [`redlock`](Self::redlock) or [`in_memory`](Self::in_memory). Locks and
/// `#[distributed_lock]` fns work the same on each.
///
/// On one server, a manager holds one multiplexed connection shared by every
/// lock it hands out, and one pub/sub connection, opened at the first wait,
/// on which releases wake waiters. Cloning a manager is cheap and shares
/// both. A connection that died (Redis restarted, `CLIENT KILL`, a proxy's
/// idle timeout) is replaced by the step that finds it dead, and a manager
/// works from any tokio runtime: used from several, it keeps one connection
/// per runtime, built there, so a runtime that shuts down takes nothing from
/// the others.
///
/// ```no_run
/// # async fn demo() -> Result<(), distlock::LockError> {
/// use std::time::Duration;
/// use distlock::LockManager;
///
/// let manager = LockManager::builder("redis://127.0.0.1:6379/0")
///     .key_prefix("shop:")
///     .default_ttl(Duration::from_secs(10))
///     .build()
///     .await?;
/// let guard = manager.lock("order:42").acquire().await?;
/// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockManager {
    inner: Arc<ManagerInner>,
}

impl LockManager {
    /// Starts building a manager for the Redis server at `url`:
    /// `redis://[user][:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (with the `tls` feature, which also adds `tls_root_certificate` to
    /// trust a private CA). For `rediss://`, distlock makes ring rustls's
    /// process-wide crypto provider, unless the application installed one
    /// before.
    ///
    /// Every URL distlock takes, here and in [`connect`](Self::connect),
    /// [`cluster`](Self::cluster), [`redlock`](Self::redlock),
    /// [`init`](crate::init) and [`init_named`](crate::init_named), is an
    /// `impl Into<String>`: a `&str`, a `String` (moved, not copied) or a
    /// `&String`, as a URL read from configuration usually is. redis-rs's
    /// `Client::open` takes the first two; the third is what
    /// `&config.redis_url` gives.
    pub fn builder(url: impl Into<String>) -> LockManagerBuilder {
        LockManagerBuilder::new(Topology::Single(url.into()))
    }

    /// Starts building a manager for a Redis Cluster (Redis 7 or later),
    /// found through one or more of its nodes (`redis://host:port`, or
    /// `rediss://` with the `tls` feature; the others are discovered). All
    /// seeds share the credentials of the first.
    ///
    /// Every key of one lock shares a hash slot, and waiters are woken by
    /// sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`) on that slot's node, so a
    /// lock costs what it costs on one server. [`build`](LockManagerBuilder::build)
    /// checks that every master answers a `PING`. Redirections (MOVED, ASK)
    /// and failovers are followed: a step keeps trying within its command
    /// timeout while a replica takes over. Replication is asynchronous: a
    /// lock granted by a master that fails before its replica copied it can
    /// be granted again by the promoted replica (see the guide's "Redis
    /// Cluster", `docs/guide/cluster.md`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// let manager = distlock::LockManager::cluster([
    ///     "redis://10.0.0.1:7000",
    ///     "redis://10.0.0.2:7000",
    /// ])
    /// .build()
    /// .await?;
    /// distlock::register(distlock::DEFAULT_MANAGER, manager)?; // for `#[distributed_lock]`
    /// # Ok(()) }
    /// ```
    pub fn cluster<I, S>(seeds: I) -> LockManagerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LockManagerBuilder::new(Topology::Cluster(
            seeds.into_iter().map(Into::into).collect(),
        ))
    }

    /// Starts building a manager on the primary that Redis Sentinel watches
    /// under `master_name`, asking the `sentinels` (`redis://` or
    /// `rediss://` URLs, with the sentinels' own credentials if any) where
    /// it is at every connect. It locks as on one server, and follows
    /// failovers: once Sentinel has promoted a replica, a step whose
    /// connection died with the old primary asks the sentinels again and
    /// goes to the new one (a step sent before fails within its command
    /// timeout, and a waiting request tries again while its wait lasts),
    /// waiters' subscriptions move there, renewals carry on, and fencing
    /// tokens keep rising (a promotion starts new counters above the clock).
    /// The primary is reached with TLS when the sentinels are (its
    /// certificate must name the address they report), and with the
    /// credentials of [`master_credentials`](LockManagerBuilder::master_credentials);
    /// `tls_root_certificate` applies to the sentinels and the primary.
    ///
    /// Replication is asynchronous: a lock granted by a primary that dies
    /// before its replicas copied it can be granted again by the promoted
    /// one, as on a cluster.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// let manager = distlock::LockManager::sentinel(
    ///     ["redis://sentinel-a:26379", "redis://sentinel-b:26379", "redis://sentinel-c:26379"],
    ///     "locks",
    /// )
    /// .master_credentials(None, "s3cret")
    /// .build()
    /// .await?;
    /// let guard = manager.lock("order:42").acquire().await?;
    /// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
    /// # Ok(()) }
    /// ```
    pub fn sentinel<I, S>(sentinels: I, master_name: impl Into<String>) -> LockManagerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LockManagerBuilder::new(Topology::Sentinel(SentinelTopology {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            master_name: master_name.into(),
            master_username: None,
            master_password: None,
        }))
    }

    /// Starts building a manager whose locks live in an etcd cluster (with
    /// the `etcd` feature): mutual exclusion and fencing tokens come from
    /// etcd's Raft log, so a lock survives the loss of any minority of
    /// members, leader included, and is never granted twice by a failover.
    /// `endpoints` are client URLs of its members, `http://host:port`, the
    /// first one's user info, if any, the user and password
    /// (`http://user:password@host:2379`).
    ///
    /// With the `tls` feature too, `https://host:port` endpoints speak TLS
    /// (rustls with ring): the members' certificates must name the hosts of
    /// the URLs, and are checked against Mozilla's roots, or against your
    /// own CA given to
    /// [`tls_root_certificate`](LockManagerBuilder::tls_root_certificate).
    /// All endpoints are `http://` or all `https://`: a mix, or `https://`
    /// without the `tls` feature, is a [`LockError::InvalidConfig`]; a
    /// certificate the manager does not trust fails the build with a
    /// [`LockError::Connect`] naming it.
    ///
    /// A lock is one key (named as on Redis) holding the owner token, on an
    /// etcd lease of the lock's ttl rounded up to whole seconds (etcd's
    /// unit; a lease longer than asked holds the lock longer after its
    /// holder died, never shorter than its validity). Its fencing token is
    /// the key's create revision: every later write to the cluster has a
    /// higher revision, so tokens strictly increase per key, and across
    /// keys, for as long as the cluster keeps its data (member failures,
    /// leader changes and restarts included; not a cluster rebuilt from an
    /// older snapshot). Waiters watch the key; a freed lock goes to the
    /// first attempt, not in the order they asked. Exclusive locks only:
    /// semaphores and read-write locks fail with
    /// [`LockError::Unsupported`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// let manager = distlock::LockManager::etcd([
    ///     "http://etcd-a:2379",
    ///     "http://etcd-b:2379",
    ///     "http://etcd-c:2379",
    /// ])
    /// .build()
    /// .await?;
    /// let guard = manager.lock("order:42").acquire().await?;
    /// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
    /// # Ok(()) }
    /// ```
    ///
    /// Over TLS, trusting the CA that issued the members' certificates
    /// (features `etcd` and `tls`):
    ///
    /// ```no_run
    /// # #[cfg(feature = "tls")]
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// let ca = std::fs::read("/etc/etcd/pki/ca.crt").expect("CA certificate");
    /// let manager = distlock::LockManager::etcd([
    ///     "https://etcd-a:2379",
    ///     "https://etcd-b:2379",
    ///     "https://etcd-c:2379",
    /// ])
    /// .tls_root_certificate(ca)
    /// .build()
    /// .await?;
    /// # drop(manager); Ok(()) }
    /// ```
    #[cfg(feature = "etcd")]
    pub fn etcd<I, S>(endpoints: I) -> LockManagerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LockManagerBuilder::new(Topology::Etcd(crate::backend::EtcdTopology {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
        }))
    }

    /// Starts building a Redlock manager over independent Redis masters
    /// (3 or 5 is usual; `redis://` or `rediss://` URLs, each a separate
    /// server): a lock is held when a majority of them granted it within
    /// its validity, so locking survives a minority of them failing.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// use std::time::Duration;
    ///
    /// let manager = distlock::LockManager::redlock([
    ///     "redis://redis-a:6379",
    ///     "redis://redis-b:6379",
    ///     "redis://redis-c:6379",
    /// ])
    /// .command_timeout(Duration::from_millis(50)) // each node's time to answer
    /// .build()
    /// .await?;
    /// let guard = manager.lock("order:42").acquire().await?;
    /// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
    /// # Ok(()) }
    /// ```
    ///
    /// **Steps.** Acquire, release and extend each send the one-node Lua
    /// script to every node at once, one round trip, and finish as soon as
    /// a majority agreed. The command timeout is the time each node has to
    /// answer (default 100 ms, [`DEFAULT_REDLOCK_NODE_TIMEOUT`]); the
    /// validity runs from the start of the attempt, so a slow round only
    /// shortens it. An attempt that won no majority gives its votes back (a
    /// second round) and then waits for the holder (a release on any node
    /// wakes it), retries after a short random pause when contenders split
    /// the votes, or fails with [`LockError::NoQuorum`] when fewer than a
    /// majority of the nodes answered. An extension that finds the lock
    /// lost on a majority gives back the nodes it did extend.
    ///
    /// **Nodes down.** [`build`](LockManagerBuilder::build) connects to all
    /// nodes at once and needs a majority of them reachable within the
    /// connect timeout; the others are logged and retried at every step, so
    /// they join in once they are back. A node that refuses us (a wrong
    /// password) fails the build. With a minority down, locking goes on
    /// without waiting for them.
    ///
    /// **Restarts.** A node that restarts without its data forgets the
    /// leases it granted. Keep such a node down for at least the longest
    /// lease before it rejoins (or run it with `appendfsync always`):
    /// restarted at once, it can form a majority for a second holder while
    /// the first is still valid.
    ///
    /// **Fencing tokens are best-effort.** Each node issues `max(its last
    /// token + 1, its clock in µs)`, and a lock's token is the highest of
    /// the tokens of the majority that granted it. Two successive holders'
    /// majorities share at least one node, which issued the later holder a
    /// larger token than the earlier one (also after losing its counter, as
    /// long as its clock moved on). But the earlier holder's token may have
    /// come from another node, outside the later majority: the order holds
    /// only when the nodes' clocks agree to within the time between the two
    /// acquisitions. That time is at least about a lease when the earlier
    /// holder's lease ran out (the case fencing is for), but can be under a
    /// millisecond when a release hands the lock straight on. So tokens can
    /// go backwards when node clocks disagree by more than that, when a
    /// node's clock is far ahead (its tokens win while it is in the
    /// majority, and the next holder's may not), or when the shared node
    /// lost its counter and its clock was stepped back. A strict order would
    /// take a second round before the lock is used; when the storage relies
    /// on strictly ordered tokens, use one Redis server or a Cluster.
    pub fn redlock<I, S>(nodes: I) -> LockManagerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut builder = LockManagerBuilder::new(Topology::Redlock(
            nodes.into_iter().map(Into::into).collect(),
        ));
        builder.command_timeout = DEFAULT_REDLOCK_NODE_TIMEOUT;
        builder
    }

    /// Starts building a manager whose locks live in this process's memory,
    /// for an application's own tests and for running without Redis: the
    /// same leases, fencing tokens, wake-ups and renewal, within one process.
    ///
    /// Each manager gets a store of its own; managers given the same
    /// [`InMemoryStore`] (see [`LockManagerBuilder::store`]) exclude each
    /// other like two processes sharing one Redis.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), distlock::LockError> {
    /// let manager = distlock::LockManager::in_memory().build().await?;
    /// let guard = manager.lock("order:42").acquire().await?;
    /// assert!(manager.lock("order:42").try_acquire().await?.is_none());
    /// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
    /// # Ok(()) }
    /// ```
    pub fn in_memory() -> LockManagerBuilder {
        LockManagerBuilder::new(Topology::Memory(InMemoryStore::new()))
    }

    /// Connects a manager on one Redis server with the default settings.
    pub async fn connect(url: impl Into<String>) -> Result<Self, LockError> {
        Self::builder(url).build().await
    }

    /// Starts a request for the lock `key`; see [`LockRequest`].
    pub fn lock(&self, key: impl Into<String>) -> LockRequest {
        LockRequest::new(self.inner.clone(), key.into())
    }

    /// The prefix of every Redis key this manager writes.
    pub fn key_prefix(&self) -> &str {
        self.inner.key_prefix()
    }

    /// The lease of locks whose request sets none.
    pub fn default_ttl(&self) -> Duration {
        self.inner.default_ttl()
    }

    /// The store of an [in-memory](Self::in_memory) manager (`None` for
    /// one on Redis): to see which locks are held, or to build another
    /// manager on it, for example on the default manager installed by
    /// [`init_in_memory`](crate::init_in_memory).
    pub fn in_memory_store(&self) -> Option<InMemoryStore> {
        match &**self.inner.backend() {
            Backend::Memory(memory) => Some(memory.store().clone()),
            _ => None,
        }
    }
}

impl LockManager {
    /// The name this manager is registered under (the first one, if
    /// registered twice), or `unregistered`.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// What the manager shares with its requests and guards.
    pub(crate) fn inner(&self) -> &Arc<ManagerInner> {
        &self.inner
    }
}

impl fmt::Debug for LockManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Settings of a [`LockManager`]; made by [`LockManager::builder`],
/// [`cluster`](LockManager::cluster), [`redlock`](LockManager::redlock) or
/// [`in_memory`](LockManager::in_memory).
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct LockManagerBuilder {
    topology: Topology,
    key_prefix: String,
    default_ttl: Duration,
    command_timeout: Duration,
    connect_timeout: Duration,
    on_evicting_server: EvictingServer,
    /// `replica_acks`, as given (checked by `build`).
    replica_acks: Option<(u32, Duration, Unacknowledged)>,
    /// PEM certificates that replace the default trust roots (`rediss://`).
    #[cfg(feature = "tls")]
    tls_root_certificate: Option<Vec<u8>>,
    /// A setting given to a builder of a backend it does not apply to.
    misplaced: Option<Misplaced>,
}

/// A setting that does not apply to the backend being built, reported by
/// [`LockManagerBuilder::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misplaced {
    /// `store`, on a builder for Redis.
    Store,
    /// `master_credentials`, on a builder for anything but Sentinel.
    MasterCredentials,
    /// `replica_acks`, on Redlock, in memory or on etcd.
    ReplicaAcks,
}

impl Misplaced {
    fn error(self) -> LockError {
        LockError::invalid_config(match self {
            Misplaced::Store => {
                "an in-memory store was given to a manager on Redis; build it with LockManager::in_memory()"
            }
            Misplaced::MasterCredentials => {
                "master credentials were given to a manager that is not on Sentinel; put the credentials in the Redis URL instead"
            }
            Misplaced::ReplicaAcks => {
                "replica_acks applies to a primary with replicas (one server, Sentinel, a cluster), not to Redlock's independent masters, to memory or to etcd (whose writes a majority has before they are answered)"
            }
        })
    }
}

impl fmt::Debug for LockManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockManagerBuilder")
            .field("backend", &self.topology.describe())
            .field("key_prefix", &self.key_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("on_evicting_server", &self.on_evicting_server)
            .finish_non_exhaustive()
    }
}

impl LockManagerBuilder {
    fn new(topology: Topology) -> Self {
        LockManagerBuilder {
            topology,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            default_ttl: DEFAULT_TTL,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            on_evicting_server: EvictingServer::Warn,
            replica_acks: None,
            #[cfg(feature = "tls")]
            tls_root_certificate: None,
            misplaced: None,
        }
    }

    /// Keeps an [in-memory](LockManager::in_memory) manager's locks in
    /// `store`, shared with every manager given the same store (its clones
    /// share it). [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`] for a manager on Redis.
    pub fn store(mut self, store: InMemoryStore) -> Self {
        match &mut self.topology {
            Topology::Memory(own) => *own = store,
            _ => self.misplaced = Some(Misplaced::Store),
        }
        self
    }

    /// The user (if any) and password of a [Sentinel](LockManager::sentinel)
    /// manager's primary, which the sentinels' URLs do not carry (theirs
    /// are in their URLs). [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`] for any other backend.
    pub fn master_credentials(mut self, username: Option<&str>, password: &str) -> Self {
        match &mut self.topology {
            Topology::Sentinel(sentinel) => {
                sentinel.master_username = username.map(str::to_owned);
                sentinel.master_password = Some(password.to_owned());
            }
            _ => self.misplaced = Some(Misplaced::MasterCredentials),
        }
        self
    }

    /// Waits, after each grant, until `replicas` replicas of the primary
    /// acknowledged the lease (`WAIT`, after an owner-checked re-arm of the
    /// lease on the same connection: one more round trip per grant), at most
    /// `timeout`; when fewer did, `otherwise` says whether the lock is
    /// released and the request fails with [`LockError::NotReplicated`], or
    /// handed out with a WARN. It narrows the window in which a failover to
    /// a replica that had not copied a fresh lease grants the lock twice;
    /// it does not close it (`WAIT` is not a consensus, and a lease renewed
    /// later is not waited for). On one server with replicas, Sentinel and
    /// a cluster; [`build`](Self::build) fails with
    /// [`LockError::InvalidConfig`] on Redlock and in memory, for 0 replicas,
    /// and for a timeout of zero or over 10 s (`WAIT` holds up the other
    /// steps of its connection meanwhile).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// use std::time::Duration;
    /// use distlock::{LockManager, Unacknowledged};
    ///
    /// let manager = LockManager::sentinel(["redis://sentinel-a:26379"], "locks")
    ///     .replica_acks(1, Duration::from_millis(50), Unacknowledged::Release)
    ///     .build()
    ///     .await?;
    /// # drop(manager); Ok(()) }
    /// ```
    pub fn replica_acks(
        mut self,
        replicas: u32,
        timeout: Duration,
        otherwise: Unacknowledged,
    ) -> Self {
        match self.topology {
            Topology::Redlock(_) | Topology::Memory(_) => {
                self.misplaced = Some(Misplaced::ReplicaAcks);
            }
            #[cfg(feature = "etcd")]
            Topology::Etcd(_) => self.misplaced = Some(Misplaced::ReplicaAcks),
            _ => self.replica_acks = Some((replicas, timeout, otherwise)),
        }
        self
    }

    /// Prefix of every Redis key the manager writes (default `distlock:`).
    /// It may not contain `{` or `}`: distlock picks the hash tag itself.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Lease of locks whose request sets none (default 30 s).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// How long Redis has to answer one command before the operation fails
    /// with [`LockError::Backend`] (default 2 s; for Redlock, the time each
    /// node has, default 100 ms: a node that does not answer in time counts
    /// as down, and too few answers are a [`LockError::NoQuorum`]).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long establishing the connection may take (default 5 s). On a
    /// cluster, one node's connection waits at most a quarter of the
    /// command timeout: redis-rs reconnects every node, replicas too, when
    /// it refreshes its slot map, and holds up every command meanwhile, so
    /// a node that accepts connections but never answers would stall each
    /// step past its command timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// What [`build`](Self::build) does about a Redis server that may evict
    /// lock keys (default [`EvictingServer::Warn`]).
    ///
    /// A Redis used as a cache, with `maxmemory` and an evicting
    /// `maxmemory-policy`, deletes keys once its memory is full:
    /// `allkeys-*` policies any key, `volatile-*` policies keys with a
    /// TTL, which every lease is. A held lock's lease deleted that way
    /// lets a second holder acquire the lock while the first still holds it
    /// (its validity is not over). Only `noeviction` keeps lock keys.
    ///
    /// `build` reads each server's policy with `INFO memory` (which managed
    /// services answer where `CONFIG` is disabled): the server of
    /// [`builder`](LockManager::builder), every master of a
    /// [`cluster`](LockManager::cluster) that redis-rs knows at build (not
    /// only the seeds), each [Redlock](LockManager::redlock) node reachable
    /// at build. For a server whose policy is not `noeviction` and whose
    /// `maxmemory` is set, [`EvictingServer::Warn`] logs a WARN naming the
    /// server and its policy, and [`EvictingServer::Refuse`] fails the build
    /// with [`LockError::InvalidConfig`].
    ///
    /// Neither warns about nor refuses:
    ///
    /// - a server with an evicting policy but `maxmemory 0`: with no limit
    ///   (the default on 64-bit builds) Redis never evicts, and a warning
    ///   that fires on servers which never evict would teach people to
    ///   ignore it. Such a server is logged at INFO. Managed Redis services
    ///   set `maxmemory` to the size of the plan, so their policy is
    ///   checked;
    /// - a server whose policy cannot be read (`INFO` denied by an ACL or
    ///   renamed away, no answer within the command timeout): logged at
    ///   INFO, not checked;
    /// - a policy or `maxmemory` changed after the build (`CONFIG SET`), or
    ///   a cluster master or Redlock node that joins later.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// use distlock::{EvictingServer, LockManager};
    ///
    /// // A Redis run as a cache (`allkeys-lru`) fails this build.
    /// let manager = LockManager::builder("redis://locks.internal:6379")
    ///     .on_evicting_server(EvictingServer::Refuse)
    ///     .build()
    ///     .await?;
    /// # drop(manager); Ok(()) }
    /// ```
    pub fn on_evicting_server(mut self, action: EvictingServer) -> Self {
        self.on_evicting_server = action;
        self
    }

    /// Trusts the CA certificate(s) in `pem` — for a `rediss://` server, or
    /// `https://` etcd members, whose certificate your own CA issued —
    /// instead of the default trust roots (Mozilla's, from `webpki-roots`).
    /// The server's certificate must name the host of the URL; on a
    /// cluster, every node's certificate must name the address the cluster
    /// announces for it (`CLUSTER SLOTS`). Pass several certificates in one
    /// PEM to trust several CAs. With the `tls` feature only.
    ///
    /// [`build`](Self::build) fails with [`LockError::InvalidConfig`] when
    /// `pem` holds no certificate or a URL is not `rediss://` (or, on etcd,
    /// `https://`), and with
    /// [`LockError::Connect`] when the server's certificate is not issued by
    /// one of these CAs.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt").expect("CA certificate");
    /// let manager = distlock::LockManager::builder("rediss://redis.internal:6380")
    ///     .tls_root_certificate(ca)
    ///     .build()
    ///     .await?;
    /// # drop(manager); Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificate = Some(pem.into());
        self
    }

    /// Checks the settings and connects.
    pub async fn build(self) -> Result<LockManager, LockError> {
        keyspace::validate_prefix(&self.key_prefix)?;
        lease::validate(self.default_ttl)?;
        for (name, value) in [
            ("command timeout", self.command_timeout),
            ("connect timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(LockError::invalid_config(format!(
                    "the {name} must be above zero"
                )));
            }
        }
        if let Some(misplaced) = self.misplaced {
            return Err(misplaced.error());
        }
        let replica_acks = self
            .replica_acks
            .map(|(replicas, timeout, otherwise)| ReplicaAcks::new(replicas, timeout, otherwise))
            .transpose()?;
        let settings = Settings {
            command_timeout: self.command_timeout,
            connect_timeout: self.connect_timeout,
            on_evicting_server: self.on_evicting_server,
            replica_acks,
            #[cfg(feature = "etcd")]
            key_prefix: self.key_prefix.clone(),
            #[cfg(feature = "tls")]
            tls_root_certificate: self.tls_root_certificate,
        };
        // Boxed: the connect futures of four backends nest deeply, and an
        // application awaiting `build` (or `init`) inside a few async layers
        // of its own would otherwise reach rustc's and clippy's type-layout
        // depth limit ("queries overflow the depth limit") in its own crate.
        // One allocation per manager built.
        let backend = Box::pin(Backend::connect(&self.topology, &settings)).await?;
        let settings = ManagerSettings {
            location: self.topology.describe(),
            key_prefix: self.key_prefix,
            default_ttl: self.default_ttl,
            command_timeout: self.command_timeout,
            replica_acks,
        };
        Ok(LockManager {
            inner: Arc::new(ManagerInner::new(backend, settings)),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builder_debug_hides_the_password() {
        let debug = format!("{:?}", super::LockManager::builder("redis://u:hunter2@h:1"));
        assert!(
            !debug.contains("hunter2") && debug.contains("***"),
            "{debug}"
        );
    }
}
