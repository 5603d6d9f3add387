//! Runtime of [distlock](https://docs.rs/distlock): lock managers and their
//! registry, the backends (one Redis, Redis Cluster, Redlock, in-memory) and
//! the Lua lock protocol, guards and waiting.
//!
//! Applications depend on the `distlock` facade, which re-exports this crate.

#![deny(missing_docs)]

mod backend;
mod background;
mod clock;
mod context;
mod error;
mod guard;
mod holdings;
mod inner;
mod keyspace;
mod kind;
mod lease;
mod local_queue;
mod manager;
mod metrics;
mod multi;
mod operator;
mod reentrancy;
mod registry;
mod renewal;
mod request;
mod shutdown;
mod unpoisoned;

#[doc(hidden)]
pub mod __attribute {
    //! Support for the code `#[distributed_lock]` generates; see `attribute.rs`.
    pub use crate::attribute::*;
    pub use crate::kind::LockKind;
}
mod attribute;

pub use backend::{
    EvictingServer, ForcedRelease, InMemoryStore, LockInfo, ReplicaAcks, Unacknowledged,
};
pub use context::{LockContext, current};
pub use error::LockError;
pub use guard::{LockGuard, ReleaseOutcome};
pub use kind::LockKind;
pub use lease::{MAX_LEASE, MIN_LEASE, drift_allowance};
pub use manager::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEY_PREFIX,
    DEFAULT_REDLOCK_NODE_TIMEOUT, DEFAULT_TTL, LockManager, LockManagerBuilder,
};
pub use multi::{MAX_KEYS, MultiLockGuard, MultiLockRequest};
pub use registry::{
    DEFAULT_MANAGER, default_manager, init, init_in_memory, init_named, manager, register,
};
pub use request::LockRequest;
pub use shutdown::{ShutdownReport, shutdown};
