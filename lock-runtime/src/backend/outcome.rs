//! What a backend's steps find, and why a step found nothing: the
//! vocabulary every backend answers in, and the one requests, guards and
//! the renewal watchdog read.

use std::fmt;
use std::time::Duration;

use crate::LockError;

/// What one acquire attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The lock is ours, with this fencing token; the next `spare_tokens`
    /// tokens are reserved for it too (protocol v2's blocks), for the tasks
    /// of this process it passes the lock to.
    Acquired {
        fencing_token: u64,
        spare_tokens: u64,
    },
    /// Someone else holds it; their lease ends within `remaining`
    /// (`None`: not known, or the key has no expiry).
    Held { remaining: Option<Duration> },
    /// Someone else holds it, and the requester has a place in the lock's
    /// queue (protocol v2), which a release hands the lock to in turn.
    Queued { remaining: Option<Duration> },
    /// Nobody won a majority of the Redlock nodes (contenders split the
    /// votes): every vote was given back, and this contender retries after
    /// `retry_in`, a random pause, and not at a wake-up, which would line
    /// the contenders up to split again.
    Split { retry_in: Duration },
}

/// The fencing tokens of a grant: the holder's, and how many after it are
/// reserved for it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tokens {
    pub(crate) fencing_token: u64,
    pub(crate) spare_tokens: u64,
}

/// What the backend found when an owner released or extended its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// The lock was still ours (and is now released or extended).
    Owned,
    /// The lease had run out: nobody holds the lock.
    Expired,
    /// The lease had run out and another owner holds the lock now.
    TakenOver,
}

/// What [`LockManager::inspect`](crate::LockManager::inspect) found about one
/// lock, at one instant. It never holds an owner token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    /// The lock's key, as given.
    pub key: String,
    /// How many hold the lock: 0 or 1, or for a semaphore the permits held,
    /// for a read-write lock the readers (or 1, its writer).
    pub holders: u32,
    /// What is left of the lease; `None` when nobody holds the lock (or, set
    /// by hand in Redis, it has no expiry).
    pub remaining: Option<Duration>,
    /// The fencing counter of the lock's group: every fencing token handed
    /// out for this key by the current counter is at most this, and every
    /// later one is above it. `None` before the first token, and after the
    /// counter's key is gone (unused for a day, lost with Redis's data, or,
    /// on one server, a new server run, whose counter starts again above
    /// the clock). On etcd, the cluster's revision, which every write of
    /// any key moves.
    pub fencing_counter: Option<u64>,
    /// How many waiters the lock's queue holds (waiters of every process,
    /// including places whose owner died, until the queue drops them: once
    /// they expire and reach its head, or with the queue):
    /// for an exclusive lock on one Redis server, and for the shared kinds
    /// everywhere; `None` where the queue is not kept (an exclusive lock on
    /// a cluster or in memory).
    pub waiters: Option<u64>,
}

impl LockInfo {
    /// Whether someone holds the lock.
    pub fn is_held(&self) -> bool {
        self.holders > 0
    }
}

/// What [`LockManager::force_release`](crate::LockManager::force_release)
/// freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForcedRelease {
    /// The lock was held, with this much of its lease left (`None`: no
    /// expiry), and is free now.
    Freed {
        /// What was left of the lease.
        remaining: Option<Duration>,
    },
    /// Nobody held the lock.
    NotHeld,
}

impl ForcedRelease {
    /// What a force release freed, from what it found before.
    pub(crate) fn of(found: &LockInfo) -> Self {
        match found.holders {
            0 => ForcedRelease::NotHeld,
            _ => ForcedRelease::Freed {
                remaining: found.remaining,
            },
        }
    }
}

/// Why a backend holds exclusive locks only: what a request for a
/// semaphore or a read-write lock is refused with there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unshared {
    pub(crate) backend: &'static str,
    pub(crate) reason: &'static str,
}

impl Unshared {
    /// The error of a shared kind asked of this backend.
    pub(crate) fn error(self) -> LockError {
        LockError::Unsupported {
            operation: "permits, read and write locks",
            backend: self.backend,
            reason: self.reason,
        }
    }
}

/// Why a step did not get an answer.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Redis answered with an error, or not within the command timeout.
    Redis(redis::RedisError),
    /// Too few Redlock nodes answered for a majority to be possible.
    NoQuorum {
        answered: usize,
        quorum: usize,
        nodes: usize,
        /// What one of the nodes that did not answer reported.
        source: redis::RedisError,
    },
    /// A step of a shared kind on a backend that has none (requests refuse
    /// them before their first step, see `Backend::refuses_shared`).
    Unshared(Unshared),
    /// A semaphore asked for with another number of permits than the one
    /// it is in use with (`in_use`).
    Capacity { in_use: u32 },
}

impl Fault {
    /// Whether the step failed because its connection had died (on
    /// Redlock: the connection of a node that did not answer), which a new
    /// attempt on a new connection may not (see `protocol::Resend`).
    pub(crate) fn connection_died(&self) -> bool {
        match self {
            Fault::Redis(error) | Fault::NoQuorum { source: error, .. } => connection_died(error),
            Fault::Unshared(_) | Fault::Capacity { .. } => false,
        }
    }
}

/// The error of a step on `key` that got no answer from the backend: what
/// a request, a guard or the operator reports for `fault`.
pub(crate) fn step_failed(key: &str, fault: impl Into<Fault>) -> LockError {
    let key = key.to_owned();
    match fault.into() {
        Fault::Redis(source) => LockError::Backend { key, source },
        Fault::NoQuorum {
            answered,
            quorum,
            nodes,
            source,
        } => LockError::NoQuorum {
            key,
            answered,
            quorum,
            nodes,
            source,
        },
        Fault::Unshared(unshared) => unshared.error(),
        Fault::Capacity { in_use } => LockError::invalid_config(format!(
            "the semaphore `{key}` is in use with {in_use} permits: every call on it must ask for as many (LockKind::Permits({in_use}), or `permits = {in_use}`)"
        )),
    }
}

impl From<redis::RedisError> for Fault {
    fn from(error: redis::RedisError) -> Self {
        Fault::Redis(error)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Redis(error) => error.fmt(f),
            Fault::NoQuorum {
                answered,
                quorum,
                nodes,
                source,
            } => write!(
                f,
                "only {answered} of {nodes} Redis nodes answered, a majority needs {quorum}: {source}"
            ),
            Fault::Unshared(unshared) => {
                write!(f, "{} holds exclusive locks only", unshared.backend)
            }
            Fault::Capacity { in_use } => write!(f, "the lock is in use with {in_use} permits"),
        }
    }
}

/// Whether `error` says the connection is dead (reset, closed, refused,
/// never written to because its driver is gone), as opposed to Redis
/// answering with an error or not answering in time.
pub(crate) fn connection_died(error: &redis::RedisError) -> bool {
    // Broken pipe, reset, aborted, refused, unexpected EOF, not connected:
    // what redis-rs returns for a closed socket and for a dead driver task.
    error.is_connection_dropped()
}
