//! An operator's view of a lock, and the override for a lock stuck with a
//! holder that will not let go: [`LockManager::inspect`] and
//! [`LockManager::force_release`].

use crate::backend::{ForcedRelease, LockInfo, step_failed};
use crate::clock::millis;
use crate::keyspace::LockKeys;
use crate::{LockError, LockKind, LockManager};

/// Why Redlock offers neither operation.
const REDLOCK: &str = "a Redlock lock is held by a majority of its nodes, and no node's answer alone describes or frees it; inspect or clear the key on each node";

impl LockManager {
    /// Looks at the lock `key` without taking it: whether it is held, what
    /// is left of its lease, the fencing counter of its group, and (on one
    /// Redis server) how many waiters its queue holds. Owner tokens are
    /// never read back. One round trip; what it reports may have changed by
    /// the time it returns.
    ///
    /// Fails with [`LockError::Unsupported`] on Redlock.
    ///
    /// ```no_run
    /// # async fn demo(manager: distlock::LockManager) -> Result<(), distlock::LockError> {
    /// let info = manager.inspect("order:42").await?;
    /// if info.is_held() {
    ///     println!("held, {:?} of its lease left", info.remaining);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn inspect(&self, key: impl Into<String>) -> Result<LockInfo, LockError> {
        self.inspect_kind(key, LockKind::Exclusive).await
    }

    /// [`inspect`](Self::inspect) for a lock of `kind`: a semaphore (any
    /// number of permits names the same one) or a read-write lock (`Read`
    /// and `Write` name the same one). `holders` counts the permits held, or
    /// the readers (1 for a writer); `remaining` is what is left of the
    /// longest of their leases, and `waiters` the places in its line, on
    /// every backend but Redlock.
    pub async fn inspect_kind(
        &self,
        key: impl Into<String>,
        kind: LockKind,
    ) -> Result<LockInfo, LockError> {
        let key = key.into();
        let keys = LockKeys::of_kind(self.key_prefix(), &key, kind)?;
        let inspected = self.inner().backend().inspect(&keys).await;
        let found = inspected.ok_or_else(|| unsupported("inspect"))?;
        found.map_err(|fault| step_failed(&key, fault))
    }

    /// Frees the lock `key` whoever holds it, and wakes its waiters: an
    /// operator's override for a lock whose holder is stuck, logged at WARN
    /// with what it freed.
    ///
    /// The holder is not told at once: it finds out at its next extension
    /// (a renewal, or [`LockGuard::extend`](crate::LockGuard::extend)),
    /// which marks the lock lost as any lost lock is, and its release
    /// reports the lock expired or taken over. Until then, and until its
    /// validity ends, it may still act on the lock, and pass it to the next
    /// task of its process without asking Redis: fencing tokens are what
    /// keeps their late writes out.
    ///
    /// Fails with [`LockError::Unsupported`] on Redlock.
    pub async fn force_release(&self, key: impl Into<String>) -> Result<ForcedRelease, LockError> {
        self.force_release_kind(key, LockKind::Exclusive).await
    }

    /// [`force_release`](Self::force_release) for a lock of `kind` (see
    /// [`inspect_kind`](Self::inspect_kind)): frees every permit, or every
    /// reader and writer, and wakes the waiters, whose next attempts serve
    /// them in order. Each holder finds out at its next extension.
    pub async fn force_release_kind(
        &self,
        key: impl Into<String>,
        kind: LockKind,
    ) -> Result<ForcedRelease, LockError> {
        let key = key.into();
        let keys = LockKeys::of_kind(self.key_prefix(), &key, kind)?;
        let forced = self.inner().backend().force_release(&keys).await;
        let freed = forced
            .ok_or_else(|| unsupported("force_release"))?
            .map_err(|fault| step_failed(&key, fault))?;
        match freed {
            ForcedRelease::Freed { remaining } => tracing::warn!(
                key = %key,
                kind = %kind,
                manager = self.name(),
                lease_left_ms = remaining.map(millis),
                "lock force-released: its holder loses it at its next extension"
            ),
            ForcedRelease::NotHeld => tracing::warn!(
                key = %key,
                kind = %kind,
                manager = self.name(),
                "lock force-release asked for, but nobody held the lock"
            ),
        }
        Ok(freed)
    }
}

fn unsupported(operation: &'static str) -> LockError {
    LockError::Unsupported {
        operation,
        backend: "Redlock",
        reason: REDLOCK,
    }
}
