//! Kinds of lock: one holder at a time, a number of permits (a semaphore),
//! or readers and a writer.
//!
//! Each kind keeps its keys of its own in Redis (see `keyspace.rs`), so an
//! exclusive lock, a semaphore and a read-write lock named alike are three
//! different locks. Fencing tokens strictly increase per lock; the tokens of
//! two kinds of one key come from one counter but are not ordered against
//! each other (an exclusive lock passed between the tasks of a process uses
//! tokens it reserved before a later grant of another kind). Holders of the shared kinds are weighed: a permit and a
//! reader weigh one, a writer the whole capacity, and a holder fits while
//! the weights held add up to at most the capacity (`backend/scripts/shared.lua`).

use std::fmt;

use crate::LockError;

/// Which kind of lock a request takes
/// ([`LockRequest::kind`](crate::LockRequest::kind), or the attribute's
/// `permits` and `mode`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), distlock::LockError> {
/// use distlock::{LockKind, LockManager};
///
/// let manager = LockManager::in_memory().build().await?;
/// let first = manager.lock("export").kind(LockKind::Permits(2)).acquire().await?;
/// let second = manager.lock("export").kind(LockKind::Permits(2)).acquire().await?;
/// let third = manager.lock("export").kind(LockKind::Permits(2)).try_acquire().await?;
/// assert!(third.is_none(), "two permits, both taken");
/// # drop((first, second)); Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LockKind {
    /// One holder at a time: the default.
    #[default]
    Exclusive,
    /// A semaphore: at most this many holders at once, each with a permit of
    /// its own (owner token, lease, renewal, fencing token). At least 1.
    /// Every request for the key must give the same number: while the
    /// semaphore is held or waited for, a request for another number fails
    /// with [`LockError::InvalidConfig`].
    Permits(u32),
    /// A reader of a read-write lock: readers hold it together, and a
    /// writer excludes them. A reader that arrives while a writer waits
    /// waits behind it, so a stream of readers cannot starve writers.
    Read,
    /// The writer of a read-write lock: excludes readers and other writers.
    Write,
}

/// How many readers a read-write lock admits at once; a writer weighs this
/// much, so it fits only when nobody holds the lock.
pub(crate) const READERS: u32 = 1 << 30;

/// What a holder of a shared kind weighs, and how much fits at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Share {
    pub(crate) weight: u32,
    pub(crate) capacity: u32,
}

/// Which locks of one name a nested acquisition may join (see
/// `reentrancy.rs`): those of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Exclusive,
    Permits,
    ReadWrite,
}

impl LockKind {
    /// Checks the kind: a semaphore has at least one permit.
    pub(crate) fn validate(self) -> Result<Self, LockError> {
        match self {
            LockKind::Permits(0) => Err(LockError::invalid_config(
                "a semaphore needs at least one permit: LockKind::Permits(1) or more",
            )),
            kind => Ok(kind),
        }
    }

    /// The weighing of a shared kind; `None` for an exclusive lock.
    pub(crate) fn share(self) -> Option<Share> {
        match self {
            LockKind::Exclusive => None,
            LockKind::Permits(capacity) => Some(Share {
                weight: 1,
                capacity,
            }),
            LockKind::Read => Some(Share {
                weight: 1,
                capacity: READERS,
            }),
            LockKind::Write => Some(Share {
                weight: READERS,
                capacity: READERS,
            }),
        }
    }

    pub(crate) fn family(self) -> Family {
        match self {
            LockKind::Exclusive => Family::Exclusive,
            LockKind::Permits(_) => Family::Permits,
            LockKind::Read | LockKind::Write => Family::ReadWrite,
        }
    }
}

impl fmt::Display for LockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockKind::Exclusive => f.write_str("exclusive"),
            LockKind::Permits(n) => write!(f, "{n} permits"),
            LockKind::Read => f.write_str("read"),
            LockKind::Write => f.write_str("write"),
        }
    }
}
