//! Grants acknowledged by replicas: after a grant on a primary that has
//! replicas, the holder re-arms its lease and sends `WAIT` on the same
//! connection, in one pipeline, so the body runs only once the lease is on
//! that many replicas (or the setting says what to do when it is not).
//! Redis replicates asynchronously: without this, a primary that dies
//! before its replicas copied a fresh lease lets a promoted replica grant
//! the lock again.

use std::time::Duration;

use crate::LockError;

/// How many replicas must acknowledge a grant before the lock is handed
/// out, and what happens when fewer do within the time
/// ([`LockManagerBuilder::replica_acks`](crate::LockManagerBuilder::replica_acks)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAcks {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
    pub(crate) otherwise: Unacknowledged,
}

/// What a grant does when fewer replicas than asked acknowledged it in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unacknowledged {
    /// Release the lock (owner-checked) and fail the request with
    /// [`LockError::NotReplicated`]: no body runs on a lease a failover could
    /// lose.
    Release,
    /// Hand the lock out anyway, and log a WARN with how many replicas
    /// acknowledged it.
    Proceed,
}

/// Longest time a grant may wait for replicas: it holds up every step on
/// the same connection meanwhile (`WAIT` blocks it).
pub(crate) const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(10);

impl ReplicaAcks {
    /// Checks the setting: at least one replica, a timeout above zero and
    /// at most [`MAX_ACK_TIMEOUT`].
    pub(crate) fn new(
        replicas: u32,
        timeout: Duration,
        otherwise: Unacknowledged,
    ) -> Result<Self, LockError> {
        if replicas == 0 {
            return Err(LockError::invalid_config(
                "replica_acks needs at least one replica; leave the setting out to wait for none",
            ));
        }
        if timeout.is_zero() || timeout > MAX_ACK_TIMEOUT {
            return Err(LockError::invalid_config(format!(
                "the replica_acks timeout must be above zero and at most {MAX_ACK_TIMEOUT:?} (WAIT holds up the connection's other steps), not {timeout:?}"
            )));
        }
        Ok(ReplicaAcks {
            replicas,
            timeout,
            otherwise,
        })
    }
}
