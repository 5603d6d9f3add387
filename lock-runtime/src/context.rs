//! The lock of the current locked call, for code deep in its call stack.

use std::fmt;
use std::time::{Duration, Instant};

use crate::reentrancy::{self, HeldLock};

/// The lock held by the innermost `#[distributed_lock]` call of the current
/// task, as returned by [`current`].
#[derive(Clone)]
pub struct LockContext {
    held: HeldLock,
}

/// The lock of the innermost `#[distributed_lock]` call running on the
/// current task, or `None` outside of one.
///
/// For code far from the annotated fn that must carry the fencing token to
/// the storage it writes, without threading a guard through every call:
///
/// ```no_run
/// # struct Db;
/// # impl Db { async fn write(&self, _: &str, _: u64) {} }
/// async fn save(db: &Db, row: &str) {
///     let fencing_token = distlock::current().map_or(0, |lock| lock.fencing_token());
///     db.write(row, fencing_token).await;
/// }
/// ```
///
/// Tasks spawned from the body do not inherit it (they are not the holder).
/// Guards taken with [`LockManager::lock`](crate::LockManager::lock) are not
/// seen; pass the guard itself instead.
pub fn current() -> Option<LockContext> {
    reentrancy::innermost().map(|held| LockContext { held })
}

impl LockContext {
    /// The lock's key.
    pub fn key(&self) -> &str {
        &self.held.key
    }

    /// The lock's fencing token; see [`LockGuard::fencing_token`](crate::LockGuard::fencing_token).
    pub fn fencing_token(&self) -> u64 {
        self.held.fencing_token
    }

    /// Until when the lock is certainly held, on this process's monotonic clock.
    pub fn valid_until(&self) -> Instant {
        self.held.validity.until()
    }

    /// How much of the validity is left (zero once over).
    pub fn remaining(&self) -> Duration {
        self.valid_until().saturating_duration_since(Instant::now())
    }

    /// Whether the lock is still certainly held; see
    /// [`LockGuard::is_held`](crate::LockGuard::is_held).
    pub fn is_held(&self) -> bool {
        !self.held.validity.is_over()
    }

    /// Completes when the lock is lost (or released); see
    /// [`LockGuard::lost`](crate::LockGuard::lost).
    pub async fn lost(&self) {
        self.held.validity.over().await;
    }
}

impl fmt::Debug for LockContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockContext")
            .field("key", &self.key())
            .field("fencing_token", &self.fencing_token())
            .field("remaining", &self.remaining())
            .finish()
    }
}
