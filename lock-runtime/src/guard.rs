//! The proof of holding a lock, and what releasing it found.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::keyspace::LockKeys;
use crate::protocol::{self, Ownership};
use crate::{LockError, LockManager, lease};

/// What [`LockGuard::release`] found in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an outcome other than `Released` means the lease ran out while the lock was in use"]
pub enum ReleaseOutcome {
    /// The lock was still ours and is now free.
    Released,
    /// The lease had already run out; nobody held the lock any more.
    Expired,
    /// The lease had run out and another owner had acquired the lock.
    TakenOver,
}

/// A held lock.
///
/// Release it with [`release`](Self::release), which tells whether the lock
/// was still held. A guard dropped without `release` (an early return, a
/// panic, a cancelled future) hands the release to the current tokio runtime
/// without blocking; outside any runtime the lock stays until its lease ends
/// and a warning is logged.
///
/// Ownership lives in the guard (its owner token), not in a thread or task:
/// a guard may be moved to and released from any task.
pub struct LockGuard {
    held: Option<Held>,
}

struct Held {
    manager: LockManager,
    key: String,
    keys: LockKeys,
    owner: String,
    fencing_token: u64,
    valid_until: Mutex<Instant>,
}

impl LockGuard {
    pub(crate) fn new(
        manager: LockManager,
        key: String,
        keys: LockKeys,
        owner: String,
        fencing_token: u64,
        valid_until: Instant,
    ) -> Self {
        LockGuard {
            held: Some(Held {
                manager,
                key,
                keys,
                owner,
                fencing_token,
                valid_until: Mutex::new(valid_until),
            }),
        }
    }

    /// The lock's key, as given to [`LockManager::lock`].
    pub fn key(&self) -> &str {
        self.held().map_or("", |held| held.key.as_str())
    }

    /// The random owner token (a uuid v4) that identifies this holder in Redis.
    pub fn owner_token(&self) -> &str {
        self.held().map_or("", |held| held.owner.as_str())
    }

    /// The fencing token: greater than the token of every earlier holder of
    /// this key. Pass it to the storage the lock protects and have the storage
    /// reject writes carrying a token lower than one it has seen.
    pub fn fencing_token(&self) -> u64 {
        self.held().map_or(0, |held| held.fencing_token)
    }

    /// The instant until which the lock is certainly ours, on this process's
    /// monotonic clock: the start of the acquire attempt plus the lease, minus
    /// an allowance for clock drift.
    pub fn valid_until(&self) -> Instant {
        self.held().map_or_else(Instant::now, |held| *lock(&held.valid_until))
    }

    /// How much of the validity is left (zero once it has run out).
    pub fn remaining(&self) -> Duration {
        self.valid_until().saturating_duration_since(Instant::now())
    }

    /// Re-arms the lease to `ttl` from now, if the lock is still ours.
    ///
    /// Fails with [`LockError::Lost`] when the lease had already run out.
    pub async fn extend(&self, ttl: Duration) -> Result<(), LockError> {
        let Some(held) = self.held() else {
            return Err(LockError::Lost { key: String::new() });
        };
        let ttl = lease::validate(ttl)?;
        let start = Instant::now();
        let mut conn = held.manager.connection();
        let found = protocol::extend(&mut conn, &held.keys, &held.owner, ttl)
            .await
            .map_err(|source| LockError::backend(&held.key, source))?;
        match found {
            Ownership::Owned => {
                *lock(&held.valid_until) = lease::valid_until(start, ttl);
                Ok(())
            }
            Ownership::Expired | Ownership::TakenOver => Err(LockError::Lost {
                key: held.key.clone(),
            }),
        }
    }

    /// Releases the lock, if it is still ours, and tells what Redis found.
    ///
    /// Never deletes another owner's lock: the owner token is checked in the
    /// same script that deletes.
    pub async fn release(mut self) -> Result<ReleaseOutcome, LockError> {
        let Some(held) = self.held.take() else {
            return Ok(ReleaseOutcome::Expired);
        };
        held.release().await
    }

    fn held(&self) -> Option<&Held> {
        self.held.as_ref()
    }
}

impl Held {
    async fn release(self) -> Result<ReleaseOutcome, LockError> {
        let mut conn = self.manager.connection();
        let found = protocol::release(&mut conn, &self.keys, &self.owner)
            .await
            .map_err(|source| LockError::backend(&self.key, source))?;
        Ok(match found {
            Ownership::Owned => ReleaseOutcome::Released,
            Ownership::Expired => ReleaseOutcome::Expired,
            Ownership::TakenOver => ReleaseOutcome::TakenOver,
        })
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let key = held.key.clone();
                    if let Err(error) = held.release().await {
                        tracing::warn!(%key, %error, "releasing a dropped lock guard failed; the lock is freed when its lease ends");
                    }
                });
            }
            Err(_) => tracing::warn!(
                key = %held.key,
                "lock guard dropped outside a tokio runtime; the lock is freed when its lease ends"
            ),
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.key())
            .field("fencing_token", &self.fencing_token())
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

/// The validity is a plain value: a poisoned mutex still holds a usable one.
fn lock(valid_until: &Mutex<Instant>) -> std::sync::MutexGuard<'_, Instant> {
    valid_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
