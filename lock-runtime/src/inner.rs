//! What a manager shares with its requests and guards: where its locks live,
//! this process's lines and renewals, the locks it holds, and its settings.
//!
//! [`LockManager`](crate::LockManager) is the public handle on it (an
//! `Arc`); requests and guards hold the same `Arc`, so they never reach back
//! into the manager's public API.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::backend::{Backend, ReplicaAcks};
use crate::holdings::Holdings;
use crate::local_queue::LocalQueues;
use crate::renewal::Renewals;

/// What a release on the way out may take beyond the command timeout:
/// scheduling, and the wait for the answer of the last node.
const RELEASE_MARGIN: Duration = Duration::from_millis(100);

/// The state of one manager, shared by its clones, requests and guards.
pub(crate) struct ManagerInner {
    backend: Arc<Backend>,
    queues: LocalQueues,
    renewals: Renewals,
    /// The locks held through this manager, for its shutdown.
    holdings: Holdings,
    /// The name it is registered under, for logs and metrics.
    name: OnceLock<String>,
    settings: ManagerSettings,
}

/// What a manager was built with, besides its backend.
pub(crate) struct ManagerSettings {
    /// Where the locks live, without passwords.
    pub(crate) location: String,
    pub(crate) key_prefix: String,
    pub(crate) default_ttl: Duration,
    pub(crate) command_timeout: Duration,
    /// How many replicas acknowledge each grant, if any.
    pub(crate) replica_acks: Option<ReplicaAcks>,
}

impl ManagerInner {
    pub(crate) fn new(backend: Backend, settings: ManagerSettings) -> Self {
        ManagerInner {
            backend: Arc::new(backend),
            queues: LocalQueues::default(),
            renewals: Renewals::default(),
            holdings: Holdings::default(),
            name: OnceLock::new(),
            settings,
        }
    }

    /// Where this manager's locks live.
    pub(crate) fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// The lines of this process's tasks waiting for the same key.
    pub(crate) fn queues(&self) -> &LocalQueues {
        &self.queues
    }

    /// The renewed locks and their watchdog.
    pub(crate) fn renewals(&self) -> &Renewals {
        &self.renewals
    }

    /// The locks held through this manager, for its shutdown.
    pub(crate) fn holdings(&self) -> &Holdings {
        &self.holdings
    }

    /// The prefix of every Redis key this manager writes.
    pub(crate) fn key_prefix(&self) -> &str {
        &self.settings.key_prefix
    }

    /// The lease of locks whose request sets none.
    pub(crate) fn default_ttl(&self) -> Duration {
        self.settings.default_ttl
    }

    /// How many replicas must acknowledge each grant, if any.
    pub(crate) fn replica_acks(&self) -> Option<ReplicaAcks> {
        self.settings.replica_acks
    }

    /// How long Redis (each node, for Redlock) has to answer one step.
    pub(crate) fn command_timeout(&self) -> Duration {
        self.settings.command_timeout
    }

    /// How long a release on the way out (a shutdown, a guard dropped as
    /// its runtime shuts down) may take: the command timeout plus 100 ms.
    pub(crate) fn release_bound(&self) -> Duration {
        self.settings.command_timeout + RELEASE_MARGIN
    }

    /// The name this manager is registered under (the first one, if
    /// registered twice), or `unregistered`.
    pub(crate) fn name(&self) -> &str {
        self.name.get().map_or("unregistered", String::as_str)
    }

    /// Records the name the registry knows this manager by.
    pub(crate) fn set_name(&self, name: &str) {
        let _ = self.name.set(name.to_owned());
    }

    /// Identifies this manager (and its clones) within the process.
    pub(crate) fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

impl fmt::Debug for ManagerInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockManager")
            .field("name", &self.name())
            .field("backend", &self.settings.location)
            .field("key_prefix", &self.settings.key_prefix)
            .field("default_ttl", &self.settings.default_ttl)
            .finish_non_exhaustive()
    }
}
