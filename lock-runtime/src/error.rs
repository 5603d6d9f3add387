//! The one error type of distlock.

use std::time::Duration;

/// Why a lock operation failed.
///
/// Each variant is something a caller can act on: wait longer or report
/// "busy" ([`Timeout`](Self::Timeout)), stop relying on the lock
/// ([`Lost`](Self::Lost)), retry later or fail the request
/// ([`Backend`](Self::Backend), [`NoQuorum`](Self::NoQuorum),
/// [`Connect`](Self::Connect)), stop taking work because the process is
/// shutting down ([`ShutDown`](Self::ShutDown)), or fix the program's
/// set-up (the rest).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock stayed held by another owner for the whole wait.
    #[error("timed out after {waited:?} waiting for lock `{key}`")]
    Timeout {
        /// The lock's key as the caller gave it.
        key: String,
        /// How long the caller waited (zero for a single attempt).
        waited: Duration,
    },
    /// The lock is no longer ours: its lease ran out, or another owner holds it now.
    #[error("lock `{key}` was lost: its lease expired or another owner took it over")]
    Lost {
        /// The lock's key as the caller gave it.
        key: String,
    },
    /// Fewer replicas than
    /// [`replica_acks`](crate::LockManagerBuilder::replica_acks) asks for
    /// acknowledged the grant in time, and the setting said to release it:
    /// the lock was released and no body ran.
    #[error(
        "lock `{key}`: {acknowledged} of the {wanted} replicas asked for acknowledged the grant in time, so it was released"
    )]
    NotReplicated {
        /// The lock's key as the caller gave it.
        key: String,
        /// How many replicas acknowledged the lease.
        acknowledged: u32,
        /// How many were asked for.
        wanted: u32,
    },
    /// The manager was shut down ([`crate::shutdown`] or
    /// [`LockManager::shutdown`](crate::LockManager::shutdown)): it hands out
    /// no lock any more, waiters stop waiting, and a guard's lock was
    /// released by the shutdown (see there).
    #[error("lock `{key}`: lock manager `{manager}` is shut down and hands out no locks")]
    ShutDown {
        /// The lock's key as the caller gave it.
        key: String,
        /// The name the manager is registered under, or `unregistered`.
        manager: String,
    },
    /// Redis answered with an error, or did not answer within the command timeout.
    #[error("redis failed during an operation on lock `{key}`: {source}")]
    Backend {
        /// The lock's key as the caller gave it.
        key: String,
        /// What the Redis client reported.
        #[source]
        source: redis::RedisError,
    },
    /// Too few of a Redlock manager's nodes answered for a majority to be
    /// possible, so the step could not be done (for an acquire: the lock is
    /// not held). Retry later, or fail the request.
    #[error(
        "lock `{key}`: only {answered} of {nodes} Redis nodes answered, a majority needs {quorum}: {source}"
    )]
    NoQuorum {
        /// The lock's key as the caller gave it.
        key: String,
        /// How many nodes answered.
        answered: usize,
        /// How many must answer (and agree): a majority of `nodes`.
        quorum: usize,
        /// How many nodes the manager has.
        nodes: usize,
        /// What one of the nodes that did not answer reported.
        #[source]
        source: redis::RedisError,
    },
    /// The manager could not connect to Redis.
    #[error("cannot connect to redis at {url}: {source}")]
    Connect {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What the Redis client reported.
        #[source]
        source: redis::RedisError,
    },
    /// No manager was registered under this name (see [`init`](crate::init)).
    #[error(
        "no lock manager named `{name}` is initialized; call distlock::init (or init_named) at start-up"
    )]
    NotInitialized {
        /// The manager's name; `default` for the default manager.
        name: String,
    },
    /// The manager's backend does not offer this operation (for example,
    /// inspecting a lock on Redlock).
    #[error("`{operation}` is not offered on {backend}: {reason}")]
    Unsupported {
        /// The operation, like `inspect`.
        operation: &'static str,
        /// The backend, like `Redlock`.
        backend: &'static str,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// A manager was already registered under this name.
    #[error("a lock manager named `{name}` is already initialized")]
    AlreadyInitialized {
        /// The manager's name; `default` for the default manager.
        name: String,
    },
    /// A setting or URL given to distlock is unusable.
    #[error("invalid lock configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The lock key itself is unusable (for example, empty).
    #[error("invalid lock key `{key}`: {reason}")]
    InvalidKey {
        /// The key as the caller gave it.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl LockError {
    pub(crate) fn invalid_config(reason: impl Into<String>) -> Self {
        LockError::InvalidConfig {
            reason: reason.into(),
        }
    }
}
