//! The proof of holding a lock, and what releasing it found.

use std::fmt;
use std::time::{Duration, Instant};

use crate::backend::Ownership;
use crate::keyspace::LockKeys;
use crate::lease::{self, Validity};
use crate::local_queue::LocalTurn;
use crate::reentrancy::HeldLock;
use crate::renewal::Renewal;
use crate::{LockError, LockManager, metrics};

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
    /// This guard joined a lock its task already held (a reentrant
    /// acquisition); the outermost holder keeps the lock and releases it.
    Nested,
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

/// What an acquire attempt was granted.
pub(crate) struct Grant {
    pub(crate) key: String,
    pub(crate) keys: LockKeys,
    pub(crate) owner: String,
    pub(crate) fencing_token: u64,
    /// When the attempt that was granted the lease started.
    pub(crate) started: Instant,
    pub(crate) ttl: Duration,
    pub(crate) renew: bool,
}

struct Held {
    manager: LockManager,
    key: String,
    keys: LockKeys,
    owner: String,
    fencing_token: u64,
    /// Shared with nested guards of the same lock and the renewal.
    validity: Validity,
    /// Re-arms the lease while the lock is held, if asked to.
    renewal: Option<Renewal>,
    /// This process's turn on the key; the next local waiter's turn starts
    /// when it drops, after the release. `None` for a nested guard, and for a
    /// lock taken after a stuck turn holder's validity ran out.
    turn: Option<LocalTurn>,
    /// Joined a lock the task already held; the outer guard releases it.
    nested: bool,
    acquired: Instant,
}

impl LockGuard {
    pub(crate) fn new(manager: LockManager, grant: Grant, turn: Option<LocalTurn>) -> Self {
        let validity = Validity::new(lease::valid_until(grant.started, grant.ttl));
        if let Some(turn) = &turn {
            turn.hold(validity.clone());
        }
        let renewal = grant.renew.then(|| {
            manager
                .renewals()
                .start(manager.backend(), &grant, &validity)
        });
        LockGuard {
            held: Some(Held {
                manager,
                key: grant.key,
                keys: grant.keys,
                owner: grant.owner,
                fencing_token: grant.fencing_token,
                validity,
                renewal,
                turn,
                nested: false,
                acquired: Instant::now(),
            }),
        }
    }

    /// A guard for a lock the task already holds further out.
    pub(crate) fn nested(manager: LockManager, keys: LockKeys, outer: HeldLock) -> Self {
        LockGuard {
            held: Some(Held {
                manager,
                key: outer.key,
                keys,
                owner: outer.owner,
                fencing_token: outer.fencing_token,
                validity: outer.validity,
                renewal: None,
                turn: None,
                nested: true,
                acquired: Instant::now(),
            }),
        }
    }

    /// What a nested acquisition inside this guard's scope joins.
    pub(crate) fn held_lock(&self) -> Option<HeldLock> {
        self.held().map(|held| HeldLock {
            manager: held.manager.id(),
            key: held.key.clone(),
            owner: held.owner.clone(),
            fencing_token: held.fencing_token,
            validity: held.validity.clone(),
        })
    }

    /// Whether this guard joined a lock its task already held; releasing it
    /// leaves the lock to the outer holder.
    pub fn is_nested(&self) -> bool {
        self.held().is_some_and(|held| held.nested)
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
        self.held()
            .map_or_else(Instant::now, |held| held.validity.until())
    }

    /// How much of the validity is left (zero once it has run out).
    pub fn remaining(&self) -> Duration {
        self.valid_until().saturating_duration_since(Instant::now())
    }

    /// Whether the lock is still certainly ours: its validity has not run
    /// out and no extension found it gone or taken over.
    ///
    /// `false` means another owner may hold the lock now: stop writing to
    /// what it protects, or pass the [fencing token](Self::fencing_token) so
    /// the storage can reject late writes.
    pub fn is_held(&self) -> bool {
        self.held().is_some_and(|held| !held.validity.is_over())
    }

    /// Completes when the lock is lost: when its validity runs out before
    /// an extension succeeded (Redis unreachable, the process paused, no
    /// renewal asked for), or when an extension finds the lock gone or held
    /// by another owner. Never completes while the lock is held.
    ///
    /// ```no_run
    /// # async fn demo(manager: distlock::LockManager) -> Result<(), distlock::LockError> {
    /// # async fn long_job() {}
    /// use std::time::Duration;
    ///
    /// let guard = manager.lock("report").ttl(Duration::from_secs(5)).renew().acquire().await?;
    /// tokio::select! {
    ///     () = long_job() => {}
    ///     () = guard.lost() => eprintln!("lock lost; job abandoned"),
    /// }
    /// let _ = guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn lost(&self) {
        if let Some(held) = self.held() {
            held.validity.over().await;
        }
    }

    /// Re-arms the lease to `ttl` from now, if the lock is still ours.
    ///
    /// Fails with [`LockError::Lost`] when the lock is no longer certainly
    /// ours (see [`is_held`](Self::is_held)); a lock once lost stays lost.
    pub async fn extend(&self, ttl: Duration) -> Result<(), LockError> {
        let Some(held) = self.held() else {
            return Err(LockError::Lost { key: String::new() });
        };
        let ttl = lease::validate(ttl)?;
        let start = Instant::now();
        let found = held
            .manager
            .backend()
            .extend(&held.keys, &held.owner, ttl)
            .await
            .map_err(|source| LockError::backend(&held.key, source))?;
        let renewed = match found {
            Ownership::Owned => held.validity.renew(lease::valid_until(start, ttl)),
            Ownership::Expired | Ownership::TakenOver => {
                held.validity.mark_lost();
                false
            }
        };
        if renewed {
            Ok(())
        } else {
            Err(LockError::Lost {
                key: held.key.clone(),
            })
        }
    }

    /// Releases the lock, if it is still ours, and tells what Redis found.
    ///
    /// Never deletes another owner's lock: the owner token is checked in the
    /// same script that deletes. If this future is dropped before Redis
    /// answered, the guard's drop sends the release instead.
    pub async fn release(mut self) -> Result<ReleaseOutcome, LockError> {
        let outcome = match self.held.as_mut() {
            Some(held) => held.release().await,
            None => Ok(ReleaseOutcome::Expired),
        };
        // Done: disarm the drop, end the validity, hand the turn on.
        if let Some(held) = self.held.take() {
            held.finish();
        }
        outcome
    }

    fn held(&self) -> Option<&Held> {
        self.held.as_ref()
    }
}

impl Held {
    async fn release(&mut self) -> Result<ReleaseOutcome, LockError> {
        if self.nested {
            return Ok(ReleaseOutcome::Nested);
        }
        // No extension may land after the release.
        if let Some(renewal) = self.renewal.take() {
            renewal.stop().await;
        }
        let found = self
            .manager
            .backend()
            .release(&self.keys, &self.owner)
            .await
            .map_err(|source| LockError::backend(&self.key, source))?;
        Ok(match found {
            Ownership::Owned => ReleaseOutcome::Released,
            Ownership::Expired => ReleaseOutcome::Expired,
            Ownership::TakenOver => ReleaseOutcome::TakenOver,
        })
    }

    /// After the release: nested guards see no validity left, then the next
    /// waiter of this process gets its turn.
    fn finish(self) {
        if !self.nested {
            let lost = self.validity.is_over();
            metrics::released(self.manager.name(), self.acquired.elapsed(), lost);
            self.validity.end();
        }
        drop(self.turn);
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        if held.nested {
            return; // the outer holder releases
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = held.release().await {
                        tracing::warn!(key = %held.key, %error, "releasing a dropped lock guard failed; the lock is freed when its lease ends at the latest");
                    }
                    held.finish();
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
