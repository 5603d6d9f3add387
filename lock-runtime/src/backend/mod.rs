//! Where locks live: one Redis server, a Redis Cluster, several independent
//! Redis masters (Redlock), or this process's memory.
//!
//! A manager owns one [`Backend`]; requests, guards and the renewal
//! watchdog go through it and never learn which one it is. Each backend
//! offers the same four steps, with the same meaning:
//!
//! - `acquire`: take the lease if it is free and hand out a fencing token;
//! - `release` and `extend`: owner-checked, telling what they found;
//! - `subscribe`: be woken when the lock may have been released.

mod address;
mod client;
mod cluster;
#[cfg(feature = "etcd")]
mod etcd;
mod eviction;
mod memory;
pub(crate) mod outcome;
mod protocol;
mod reconnect;
mod redlock;
mod replicas;
mod sentinel;
mod single;
mod step;
mod subscriber;
mod timeout;
mod waiters;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::LockError;
use crate::keyspace::LockKeys;
use crate::kind::Share;
use step::SharedStep;

pub(crate) use client::{Settings, redact};
#[cfg(feature = "etcd")]
pub(crate) use etcd::EtcdTopology;
pub use eviction::EvictingServer;
pub use memory::InMemoryStore;
pub(crate) use outcome::{Attempt, Fault, Ownership, Tokens, Unshared, step_failed};
pub use outcome::{ForcedRelease, LockInfo};
pub use replicas::{ReplicaAcks, Unacknowledged};
pub(crate) use sentinel::SentinelTopology;

/// A step of a shared kind, type-erased: the future of every annotated fn
/// embeds the backend's steps, and the compiler's queries over such futures
/// (their layout, `Send`) have a depth limit that the exclusive path alone
/// already comes near.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, Fault>> + Send + 'a>>;

/// Where a manager's locks live.
pub(crate) enum Backend {
    Single(single::Single),
    Cluster(cluster::Cluster),
    Redlock(redlock::Redlock),
    Memory(memory::Memory),
    /// Boxed: its client is far larger than the other backends.
    #[cfg(feature = "etcd")]
    Etcd(Box<etcd::Etcd>),
}

/// Which backend to build, as the builder was told.
#[derive(Clone)]
pub(crate) enum Topology {
    Single(String),
    /// The primary that Redis Sentinel names; one server's backend.
    Sentinel(SentinelTopology),
    Cluster(Vec<String>),
    Redlock(Vec<String>),
    Memory(InMemoryStore),
    #[cfg(feature = "etcd")]
    Etcd(EtcdTopology),
}

impl Topology {
    /// Where the locks live, for `Debug` and logs, without passwords.
    pub(crate) fn describe(&self) -> String {
        let urls = |urls: &[String]| {
            urls.iter()
                .map(|url| redact(url))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Topology::Single(url) => redact(url),
            Topology::Sentinel(sentinel) => sentinel.describe(),
            Topology::Cluster(seeds) => format!("cluster [{}]", urls(seeds)),
            Topology::Redlock(nodes) => format!("redlock [{}]", urls(nodes)),
            Topology::Memory(_) => "in-memory".to_owned(),
            #[cfg(feature = "etcd")]
            Topology::Etcd(etcd) => etcd.describe(),
        }
    }
}

impl Backend {
    /// Connects to (or, in memory, sets up) what `topology` names.
    pub(crate) async fn connect(
        topology: &Topology,
        settings: &Settings,
    ) -> Result<Backend, LockError> {
        Ok(match topology {
            Topology::Single(url) => Backend::Single(single::Single::connect(url, settings).await?),
            Topology::Sentinel(sentinel) => {
                Backend::Single(single::Single::sentinel(sentinel, settings).await?)
            }
            Topology::Cluster(seeds) => {
                Backend::Cluster(cluster::Cluster::connect(seeds, settings).await?)
            }
            Topology::Redlock(nodes) => {
                Backend::Redlock(redlock::Redlock::connect(nodes, settings).await?)
            }
            Topology::Memory(store) => Backend::Memory(memory::Memory::new(store.clone())),
            #[cfg(feature = "etcd")]
            Topology::Etcd(etcd) => Backend::Etcd(Box::new(
                Box::pin(etcd::Etcd::connect(etcd, settings)).await?,
            )),
        })
    }

    pub(crate) async fn acquire(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<Attempt, Fault> {
        if let Some(share) = keys.kind.share() {
            let step = SharedStep::Acquire;
            return self.shared_attempt(keys, share, step, owner, lease).await;
        }
        match self {
            Backend::Single(single) => Ok(single.connection.acquire(keys, owner, lease).await?),
            Backend::Cluster(cluster) => Ok(cluster.connection.acquire(keys, owner, lease).await?),
            Backend::Redlock(redlock) => redlock.acquire(keys, owner, lease).await,
            Backend::Memory(memory) => Ok(memory.acquire(keys, owner, lease)),
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => Ok(Box::pin(etcd.acquire(keys, owner, lease)).await?),
        }
    }

    /// An attempt of a requester that found the lock held and is
    /// subscribed to its releases. On one server (protocol v2), it takes a
    /// place in the lock's queue, or keeps it, and a release hands the lock
    /// straight to the first in line ([`Subscription::granted`]); the place
    /// lasts one lease unless refreshed by the next `wait_turn`. Elsewhere
    /// it is one more acquire.
    /// `round` numbers the attempts made with `owner`; a grant names the
    /// round after which it came.
    pub(crate) async fn wait_turn(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
        round: u64,
    ) -> Result<Attempt, Fault> {
        if let Some(share) = keys.kind.share() {
            let step = SharedStep::Wait { round };
            return self.shared_attempt(keys, share, step, owner, lease).await;
        }
        match self {
            Backend::Single(single) => {
                let connection = &single.connection;
                Ok(connection.wait_turn(keys, owner, lease, round).await?)
            }
            _ => self.acquire(keys, owner, lease).await,
        }
    }

    /// Whether a lock let go of may pass to the next task of the process
    /// under the same owner token ([`succeed`](Self::succeed)): on one
    /// server, where it saves a release and an acquire.
    pub(crate) fn passes_batons(&self) -> bool {
        matches!(self, Backend::Single(_))
    }

    /// A task takes over, under `owner`, the lock the previous holder of its
    /// process left it: re-arms the lease from now and takes a new fencing
    /// token. `Held` when the lease ran out meanwhile (the task contends
    /// then). Only where [`passes_batons`](Self::passes_batons).
    pub(crate) async fn succeed(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<Attempt, Fault> {
        match self {
            Backend::Single(single) => Ok(single.connection.succeed(keys, owner, lease).await?),
            _ => {
                self.release(keys, owner).await?;
                Ok(Attempt::Held { remaining: None })
            }
        }
    }

    pub(crate) async fn release(&self, keys: &LockKeys, owner: &str) -> Result<Ownership, Fault> {
        if let Some(share) = keys.kind.share() {
            let step = SharedStep::Release;
            return self.shared_ownership(keys, share, step, owner, None).await;
        }
        match self {
            Backend::Single(single) => Ok(single.connection.release(keys, owner).await?),
            Backend::Cluster(cluster) => Ok(cluster.connection.release(keys, owner).await?),
            Backend::Redlock(redlock) => redlock.release(keys, owner).await,
            Backend::Memory(memory) => Ok(memory.release(keys, owner)),
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => Ok(Box::pin(etcd.release(keys, owner)).await?),
        }
    }

    /// A release by a requester that stops waiting, or gives back a lease
    /// it cannot use: on protocol v2 it also leaves the lock's queue (and
    /// hands on a lock granted to it meanwhile).
    pub(crate) async fn leave(&self, keys: &LockKeys, owner: &str) -> Result<Ownership, Fault> {
        if let Some(share) = keys.kind.share() {
            let step = SharedStep::Leave;
            return self.shared_ownership(keys, share, step, owner, None).await;
        }
        match self {
            Backend::Single(single) => Ok(single.connection.give_back(keys, owner).await?),
            _ => self.release(keys, owner).await,
        }
    }

    /// Gives back an attempt whose outcome is unknown (its connection
    /// died, or its requester stopped waiting), owner-checked. On protocol
    /// v2 this also leaves the lock's queue, handing the lock on if it had
    /// been granted; elsewhere it wakes nobody: the requester attempts again
    /// at once, and waking other processes' waiters would only have them
    /// contend with that attempt for a lock that, most often, was never
    /// taken.
    pub(crate) async fn give_back(&self, keys: &LockKeys, owner: &str) -> Result<(), Fault> {
        if keys.kind.share().is_some() {
            self.leave(keys, owner).await?;
            return Ok(());
        }
        match self {
            Backend::Single(single) => single.connection.give_back(keys, owner).await?,
            Backend::Cluster(cluster) => cluster.connection.give_back(keys, owner).await?,
            // A failed Redlock attempt gave its votes back, waking nobody,
            // before it reported the failure (`Redlock::acquire`).
            Backend::Redlock(_) => return Ok(()),
            // An in-memory attempt never fails.
            Backend::Memory(memory) => memory.release(keys, owner),
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => Box::pin(etcd.release(keys, owner)).await?,
        };
        Ok(())
    }

    pub(crate) async fn extend(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<Ownership, Fault> {
        if let Some(share) = keys.kind.share() {
            let step = SharedStep::Extend;
            let extend = self.shared_ownership(keys, share, step, owner, Some(lease));
            return extend.await;
        }
        match self {
            Backend::Single(single) => Ok(single.connection.extend(keys, owner, lease).await?),
            Backend::Cluster(cluster) => Ok(cluster.connection.extend(keys, owner, lease).await?),
            Backend::Redlock(redlock) => redlock.extend(keys, owner, lease).await,
            Backend::Memory(memory) => Ok(memory.extend(keys, owner, lease)),
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => Ok(Box::pin(etcd.extend(keys, owner, lease)).await?),
        }
    }

    /// Whether a request that waits should try again after `fault`, rather
    /// than fail: on Sentinel, whose primary is replaced by a failover, a
    /// step that found no connection, lost it, got no answer in time or
    /// reached a primary demoted to a replica, while the wait lasts. One
    /// server alone, whose loss is not followed by a new primary, fails the
    /// request at once.
    /// On etcd too, where a member's or the leader's loss is answered by
    /// another member once the cluster has a leader again.
    pub(crate) fn rides_out(&self, fault: &Fault) -> bool {
        #[cfg(feature = "etcd")]
        if let (Backend::Etcd(_), Fault::Redis(error)) = (self, fault) {
            return error.is_timeout() || error.is_connection_dropped();
        }
        let Backend::Single(single) = self else {
            return false;
        };
        match fault {
            Fault::Redis(error) => {
                single.follows_failovers()
                    && (error.is_io_error()
                        || error.is_timeout()
                        || error.is_connection_dropped()
                        || error.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
            }
            _ => false,
        }
    }

    /// Why the shared kinds (permits, readers and writers) cannot be held
    /// here, if they cannot: on Redlock, whose votes count single holders,
    /// and on etcd, whose lock is one key. Requests check it before their
    /// first step.
    pub(crate) fn refuses_shared(&self) -> Option<Unshared> {
        match self {
            Backend::Redlock(_) => Some(Unshared {
                backend: "Redlock",
                reason: "a Redlock majority counts single holders; use one Redis server or a cluster for semaphores and read-write locks",
            }),
            #[cfg(feature = "etcd")]
            Backend::Etcd(_) => Some(Unshared {
                backend: "etcd",
                reason: "an etcd lock is one key with one holder; use Redis (one server, Sentinel or a cluster) for semaphores and read-write locks",
            }),
            _ => None,
        }
    }

    /// The fault of a step of a shared kind where there is none.
    fn unshared(&self) -> Fault {
        let refused = self.refuses_shared();
        Fault::Unshared(refused.unwrap_or(Unshared {
            backend: "this backend",
            reason: "it holds exclusive locks only",
        }))
    }

    /// An acquire or a wait of a shared kind (see `scripts/shared.lua`).
    fn shared_attempt<'a>(
        &'a self,
        keys: &'a LockKeys,
        share: Share,
        step: SharedStep,
        owner: &'a str,
        lease: Duration,
    ) -> Boxed<'a, Attempt> {
        Box::pin(async move {
            Ok(match self {
                Backend::Single(single) => {
                    let connection = &single.connection;
                    connection
                        .shared_attempt(keys, share, step, owner, lease)
                        .await?
                }
                Backend::Cluster(cluster) => {
                    let connection = &cluster.connection;
                    connection
                        .shared_attempt(keys, share, step, owner, lease)
                        .await?
                }
                Backend::Memory(memory) => {
                    memory.shared_attempt(keys, share, step, owner, lease)?
                }
                Backend::Redlock(_) => return Err(self.unshared()),
                #[cfg(feature = "etcd")]
                Backend::Etcd(_) => return Err(self.unshared()),
            })
        })
    }

    /// A release, leave or extend of a shared kind; `lease` for an extend.
    fn shared_ownership<'a>(
        &'a self,
        keys: &'a LockKeys,
        share: Share,
        step: SharedStep,
        owner: &'a str,
        lease: Option<Duration>,
    ) -> Boxed<'a, Ownership> {
        let lease = lease.unwrap_or_default();
        Box::pin(async move {
            Ok(match self {
                Backend::Single(single) => {
                    let connection = &single.connection;
                    connection
                        .shared_ownership(keys, share, step, owner, lease)
                        .await?
                }
                Backend::Cluster(cluster) => {
                    let connection = &cluster.connection;
                    connection
                        .shared_ownership(keys, share, step, owner, lease)
                        .await?
                }
                Backend::Memory(memory) => memory.shared_ownership(keys, share, step, owner, lease),
                Backend::Redlock(_) => return Err(self.unshared()),
                #[cfg(feature = "etcd")]
                Backend::Etcd(_) => return Err(self.unshared()),
            })
        })
    }

    /// Re-arms `owner`'s fresh lease and waits for `acks.replicas` replicas
    /// to acknowledge it (see `replicas.rs`): what the re-arm found, and how
    /// many acknowledged. `None` on Redlock and in memory, which have no
    /// replicas (their builders refuse the setting).
    pub(crate) async fn confirm_replicas(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
        acks: ReplicaAcks,
    ) -> Option<Result<(Ownership, u32), Fault>> {
        let (replicas, timeout) = (acks.replicas, acks.timeout);
        let confirmed = match self {
            Backend::Single(single) => {
                let connection = &single.confirming;
                connection
                    .confirm_replicas(keys, owner, lease, replicas, timeout)
                    .await
            }
            Backend::Cluster(cluster) => {
                let connection = &cluster.confirming;
                connection
                    .confirm_replicas(keys, owner, lease, replicas, timeout)
                    .await
            }
            _ => return None,
        };
        Some(confirmed.map_err(Fault::from))
    }

    /// Lifts the fencing counter of `keys`' group to at least `token`, the
    /// token of a lock over several keys (see `multi.rs`). On Redlock, whose
    /// tokens are best-effort, every node is asked and none has to answer.
    pub(crate) async fn raise_fence(&self, keys: &LockKeys, token: u64) -> Result<(), Fault> {
        match self {
            Backend::Single(single) => Ok(single.connection.raise_fence(keys, token).await?),
            Backend::Cluster(cluster) => Ok(cluster.connection.raise_fence(keys, token).await?),
            Backend::Redlock(redlock) => {
                redlock.raise_fence(keys, token).await;
                Ok(())
            }
            Backend::Memory(memory) => {
                memory.raise_fence(keys, token);
                Ok(())
            }
            // A token is a revision of the whole cluster: every later grant,
            // of any key, is above it already.
            #[cfg(feature = "etcd")]
            Backend::Etcd(_) => Ok(()),
        }
    }

    /// Looks at a lock without taking it; `None` on Redlock, where a lock is
    /// a majority's and no node's answer alone describes it.
    pub(crate) async fn inspect(&self, keys: &LockKeys) -> Option<Result<LockInfo, Fault>> {
        Some(match self {
            Backend::Single(single) => single.connection.inspect(keys).await.map_err(Fault::from),
            Backend::Cluster(cluster) => {
                cluster.connection.inspect(keys).await.map_err(Fault::from)
            }
            Backend::Redlock(_) => return None,
            Backend::Memory(memory) => Ok(memory.inspect(keys)),
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => Box::pin(etcd.inspect(keys)).await.map_err(Fault::from),
        })
    }

    /// Frees a lock whoever holds it, waking its waiters; `None` on Redlock
    /// (see [`inspect`](Self::inspect)).
    pub(crate) async fn force_release(
        &self,
        keys: &LockKeys,
    ) -> Option<Result<ForcedRelease, Fault>> {
        Some(match self {
            Backend::Single(single) => {
                let connection = &single.connection;
                connection.force_release(keys).await.map_err(Fault::from)
            }
            Backend::Cluster(cluster) => {
                let connection = &cluster.connection;
                connection.force_release(keys).await.map_err(Fault::from)
            }
            Backend::Redlock(_) => return None,
            Backend::Memory(memory) => Ok(memory.force_release(keys)),
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => Box::pin(etcd.force_release(keys))
                .await
                .map_err(Fault::from),
        })
    }

    /// Subscribes to the releases of the lock whose keys are `keys`,
    /// returning once the subscription is in place (or once it failed: the
    /// waiter's fallback timer covers that case).
    pub(crate) async fn subscribe(&self, keys: &LockKeys) -> Subscription {
        match self {
            Backend::Single(single) => {
                Subscription::Redis(single.subscriber.subscribe(&keys.lease).await)
            }
            Backend::Cluster(cluster) => Subscription::Cluster(cluster.subscribe(keys).await),
            Backend::Redlock(redlock) => Subscription::Redlock(redlock.subscribe(keys).await),
            Backend::Memory(memory) => Subscription::Memory(memory.subscribe(keys).await),
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => Subscription::Etcd(Box::pin(etcd.subscribe(keys)).await),
        }
    }
}

/// A waiter's interest in the releases of one lock.
pub(crate) enum Subscription {
    Redis(subscriber::Subscription),
    Cluster(cluster::Subscription),
    Redlock(redlock::Subscription),
    Memory(memory::Subscription),
    #[cfg(feature = "etcd")]
    Etcd(etcd::Subscription),
}

impl Subscription {
    /// Marks every wake-up so far as seen; call before each acquire attempt.
    pub(crate) fn mark_seen(&mut self) {
        match self {
            Subscription::Redis(subscription) => subscription.mark_seen(),
            Subscription::Cluster(subscription) => subscription.mark_seen(),
            Subscription::Redlock(subscription) => subscription.mark_seen(),
            Subscription::Memory(subscription) => subscription.mark_seen(),
            #[cfg(feature = "etcd")]
            Subscription::Etcd(subscription) => subscription.mark_seen(),
        }
    }

    /// From now on, a grant to `owner` after its attempt `round` (the
    /// requester's place in the lock's queue: protocol v2, and the shared
    /// kinds) wakes this waiter and is kept for [`granted`](Self::granted).
    /// Redlock grants nothing this way.
    pub(crate) fn expect_grant(&mut self, owner: &str, round: u64) {
        match self {
            Subscription::Redis(subscription) => subscription.expect_grant(owner, round),
            Subscription::Cluster(subscription) => subscription.expect_grant(owner, round),
            Subscription::Memory(subscription) => subscription.expect_grant(owner, round),
            Subscription::Redlock(_) => {}
            #[cfg(feature = "etcd")]
            Subscription::Etcd(_) => {}
        }
    }

    /// The fencing token of a grant to the expected owner after its
    /// expected round, once a release handed it the lock; taken, so a later
    /// call returns `None`.
    pub(crate) fn granted(&mut self, keys: &LockKeys) -> Option<Tokens> {
        let fencing_token = match self {
            Subscription::Redis(subscription) => subscription.granted()?,
            Subscription::Cluster(subscription) => subscription.granted()?,
            Subscription::Memory(subscription) => subscription.granted()?,
            Subscription::Redlock(_) => return None,
            #[cfg(feature = "etcd")]
            Subscription::Etcd(_) => return None,
        };
        // A hand-over of an exclusive lock reserves a block, as every v2
        // grant; shared holders pass no batons.
        let spare_tokens = match keys.kind.share() {
            Some(_) => 0,
            None => protocol::TOKEN_BLOCK - 1,
        };
        Some(Tokens {
            fencing_token,
            spare_tokens,
        })
    }

    /// Completes at the first wake-up not yet marked seen.
    pub(crate) async fn woken(&mut self) {
        match self {
            Subscription::Redis(subscription) => subscription.woken().await,
            Subscription::Cluster(subscription) => subscription.woken().await,
            Subscription::Redlock(subscription) => subscription.woken().await,
            Subscription::Memory(subscription) => subscription.woken().await,
            #[cfg(feature = "etcd")]
            Subscription::Etcd(subscription) => subscription.woken().await,
        }
    }
}
