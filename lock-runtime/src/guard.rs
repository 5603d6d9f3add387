//! The proof of holding a lock, and what releasing it found.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{Ownership, Tokens, step_failed};
use crate::background::{self, Unfinished};
use crate::holdings::{Holding, HoldingId, Releaser, UnderWay};
use crate::inner::ManagerInner;
use crate::keyspace::LockKeys;
use crate::lease;
use crate::local_queue::{Baton, LocalTurn, Passed};
use crate::reentrancy::HeldLock;
use crate::renewal::Renewal;
use crate::{LockError, metrics};

/// What [`LockGuard::release`] found in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an outcome other than `Released` means the lease ran out while the lock was in use"]
pub enum ReleaseOutcome {
    /// The lock was still ours and is now free (with
    /// [`hold_at_least`](crate::LockRequest::hold_at_least): its lease was
    /// shortened to what is left of that time, and ends by itself).
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
/// or its manager is [shut down](crate::LockManager::shutdown), and a warning is
/// logged.
///
/// **When dropping blocks.** Dropping a guard never waits for Redis, with
/// one exception: a guard dropped while its runtime shuts down
/// (`#[tokio::main]` returned while a spawned task held the lock) cannot
/// hand its release to that runtime any more. The release then runs on a
/// thread and a runtime of its own, over a new connection, and the thread
/// dropping the guard (or the release task the runtime drops) waits for it,
/// at most the manager's command timeout plus 100 ms; once one such release
/// found Redis unreachable, the manager's others are not tried. The same
/// wait happens if logging the failure of that very release panics (a
/// panicking `tracing` subscriber). Anything else that goes wrong in a
/// dropped guard's release task, such as a panicking `metrics` recorder, is
/// made up for by a task of the same runtime, without blocking.
/// [`crate::shutdown`] is the orderly way out; see there.
///
/// Ownership lives in the guard (its owner token), not in a thread or task:
/// a guard may be moved to and released from any task.
pub struct LockGuard {
    held: Option<Held>,
}

/// What a request hands the guard of a lock it was granted: the lock,
/// listed among the manager's holdings, and its renewal if one was asked
/// for. The guard only holds them, and lets go at its release.
pub(crate) struct Grant {
    pub(crate) lock: Arc<Holding>,
    /// Its place among the manager's holdings.
    pub(crate) listed: HoldingId,
    /// The holder's fencing token, and how many after it are reserved for
    /// the tasks of this process the lock may pass to (see `local_queue.rs`).
    pub(crate) tokens: Tokens,
    /// The lease asked for.
    pub(crate) ttl: Duration,
    /// Whether the lock may pass to the next task of this process.
    pub(crate) passing: Passing,
    pub(crate) renewal: Option<Renewal>,
    /// This process's turn on the key (see [`Held::turn`]).
    pub(crate) turn: Option<LocalTurn>,
}

struct Held {
    manager: Arc<ManagerInner>,
    /// Key, owner and validity, shared with the manager's holdings (for
    /// its shutdown); the validity also with nested guards and the renewal.
    lock: Arc<Holding>,
    /// Who releases the lock.
    duty: Duty,
    /// The fencing token and the reserved ones after it (see [`Grant`]).
    tokens: Tokens,
    /// The lease asked for.
    ttl: Duration,
    /// Until when the lock stays held however soon it is released.
    hold_until: Option<Instant>,
    passing: Passing,
    /// Whether a release was sent to Redis: then the lock may be gone
    /// there, and is never passed on (see `pass_to_next_in_line`).
    sent: Release,
    /// Re-arms the lease while the lock is held, if asked to.
    renewal: Option<Renewal>,
    /// This process's turn on the key; the next local waiter's turn starts
    /// when it drops, after the release. `None` for a nested guard, and for a
    /// lock taken after a stuck turn holder's validity ran out.
    turn: Option<LocalTurn>,
    acquired: Instant,
}

/// Whether a released lock may pass, still held in Redis, to the next task
/// of this process waiting for it (see `local_queue.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passing {
    /// When the backend allows it, and someone waits.
    ToNextInLine,
    /// Never: one key of a lock over several keys, whose token is the
    /// highest of its keys' tokens; a baton would hand the next task one of
    /// the key's reserved tokens, which may be lower.
    Never,
}

/// Whether a guard's release was sent to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    NotSent,
    /// Sent, perhaps by a release whose future was dropped before the
    /// answer: the lease may be gone, and a baton would hand on nothing.
    Sent,
}

/// Who is to release a guard's lock, as far as the guard knows.
enum Duty {
    /// Listed in the manager's holdings: whoever takes it off releases.
    Listed(HoldingId),
    /// This guard took it off the list, and releases it; a shutdown waits
    /// until the token drops.
    Ours { under_way: UnderWay },
    /// This guard took it off the list as it was dropped, and handed the
    /// release, with the token, to a task.
    Handed,
    /// The manager's shutdown took it off the list, and released it.
    Shutdown,
    /// Joined a lock the task already held; the outer guard releases it.
    Nested,
}

impl LockGuard {
    /// The guard of a lock a request was granted.
    pub(crate) fn new(manager: Arc<ManagerInner>, grant: Grant) -> Self {
        LockGuard {
            held: Some(Held {
                manager,
                lock: grant.lock,
                duty: Duty::Listed(grant.listed),
                tokens: grant.tokens,
                ttl: grant.ttl,
                hold_until: None,
                passing: grant.passing,
                sent: Release::NotSent,
                renewal: grant.renewal,
                turn: grant.turn,
                acquired: Instant::now(),
            }),
        }
    }

    /// A guard for a lock the task already holds further out.
    pub(crate) fn nested(manager: Arc<ManagerInner>, keys: LockKeys, outer: HeldLock) -> Self {
        let lock = Arc::new(Holding {
            key: outer.key,
            keys,
            owner: outer.owner,
            validity: outer.validity,
        });
        LockGuard {
            held: Some(Held {
                manager,
                lock,
                duty: Duty::Nested,
                tokens: Tokens {
                    fencing_token: outer.fencing_token,
                    spare_tokens: 0,
                },
                ttl: Duration::ZERO,
                hold_until: None,
                passing: Passing::Never,
                sent: Release::NotSent,
                renewal: None,
                turn: None,
                acquired: Instant::now(),
            }),
        }
    }

    /// Keeps the lock held until `hold_at_least` from now, however soon it
    /// is released (see [`Held::shorten_to`]): set once the lock is granted
    /// (for a lock over several keys, once all of them are held).
    pub(crate) fn hold_for(&mut self, hold_at_least: Duration) {
        if let Some(held) = self.held.as_mut()
            && !hold_at_least.is_zero()
        {
            held.hold_until = Instant::now().checked_add(hold_at_least);
        }
    }

    /// What a nested acquisition inside this guard's scope joins.
    pub(crate) fn held_lock(&self) -> Option<HeldLock> {
        self.held().map(|held| HeldLock {
            manager: held.manager.id(),
            key: held.lock.key.clone(),
            kind: held.lock.keys.kind,
            owner: held.lock.owner.clone(),
            fencing_token: held.tokens.fencing_token,
            validity: held.lock.validity.clone(),
        })
    }

    /// Whether this guard joined a lock its task already held; releasing it
    /// leaves the lock to the outer holder.
    pub fn is_nested(&self) -> bool {
        self.held()
            .is_some_and(|held| matches!(held.duty, Duty::Nested))
    }

    /// The lock's key, as given to [`LockManager::lock`](crate::LockManager::lock).
    pub fn key(&self) -> &str {
        self.held().map_or("", |held| held.lock.key.as_str())
    }

    /// The random owner token (a uuid v4) that identifies this holder in Redis.
    pub fn owner_token(&self) -> &str {
        self.held().map_or("", |held| held.lock.owner.as_str())
    }

    /// The fencing token: greater than the token of every earlier holder of
    /// this key. Pass it to the storage the lock protects and have the storage
    /// reject writes carrying a token lower than one it has seen.
    pub fn fencing_token(&self) -> u64 {
        self.held().map_or(0, |held| held.tokens.fencing_token)
    }

    /// The instant until which the lock is certainly ours, on this process's
    /// monotonic clock: the start of the acquire attempt plus the lease, minus
    /// an allowance for clock drift.
    pub fn valid_until(&self) -> Instant {
        self.held()
            .map_or_else(Instant::now, |held| held.lock.validity.until())
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
        self.held()
            .is_some_and(|held| !held.lock.validity.is_over())
    }

    /// Completes when the lock is lost: when its validity runs out before
    /// an extension succeeded (Redis unreachable, the process paused, no
    /// renewal asked for), when an extension finds the lock gone or held
    /// by another owner, or when the manager is shut down under the guard.
    /// Never completes while the lock is held.
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
            held.lock.validity.over().await;
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
        let lock = &held.lock;
        let found = held
            .manager
            .backend()
            .extend(&lock.keys, &lock.owner, ttl)
            .await
            .map_err(|source| step_failed(&lock.key, source))?;
        let renewed = match found {
            Ownership::Owned => lock.validity.renew(lease::valid_until(start, ttl)),
            Ownership::Expired | Ownership::TakenOver => {
                lock.validity.mark_lost();
                false
            }
        };
        if renewed {
            Ok(())
        } else {
            Err(LockError::Lost {
                key: lock.key.clone(),
            })
        }
    }

    /// Releases the lock, if it is still ours, and tells what Redis found.
    ///
    /// Never deletes another owner's lock: the owner token is checked in the
    /// same script that deletes. If this future is dropped before Redis
    /// answered, the guard's drop sends the release instead.
    ///
    /// Fails with [`LockError::ShutDown`] when the manager was shut down
    /// while this guard held the lock: the shutdown released it (after
    /// marking it lost), so whatever the guard protected since then ran
    /// without the lock.
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
        match self.take_duty() {
            Duty::Nested => return Ok(ReleaseOutcome::Nested),
            Duty::Shutdown => {
                return Err(LockError::ShutDown {
                    key: self.lock.key.clone(),
                    manager: self.manager.name().to_owned(),
                });
            }
            Duty::Listed(_) | Duty::Ours { .. } | Duty::Handed => {}
        }
        // No extension may land after the release.
        if let Some(renewal) = self.renewal.take() {
            renewal.stop().await;
        }
        if let Some(left) = self.hold_left() {
            return self.shorten_to(left).await;
        }
        if self.pass_to_next_in_line() {
            return Ok(ReleaseOutcome::Released);
        }
        // From here the lease may be deleted in Redis at any moment, also if
        // this future is dropped (its guard's drop then releases again).
        self.sent = Release::Sent;
        let found = self
            .manager
            .backend()
            .release(&self.lock.keys, &self.lock.owner)
            .await
            .map_err(|source| step_failed(&self.lock.key, source))?;
        Ok(released(found))
    }

    /// What is left of the `hold_at_least` time, if at least a millisecond.
    fn hold_left(&self) -> Option<Duration> {
        let left = self.hold_until?.checked_duration_since(Instant::now())?;
        (left >= Duration::from_millis(1)).then_some(left)
    }

    /// The release of a lock to be held `left` longer: its lease is
    /// shortened to that, owner-checked, and ends by itself. Never a baton:
    /// the lock stays with nobody in this process until then.
    async fn shorten_to(&mut self, left: Duration) -> Result<ReleaseOutcome, LockError> {
        self.sent = Release::Sent;
        let lock = &self.lock;
        let found = self
            .manager
            .backend()
            .extend(&lock.keys, &lock.owner, left)
            .await
            .map_err(|source| step_failed(&lock.key, source))?;
        Ok(released(found))
    }

    /// Takes the lock off the manager's list, unless it is off already, and
    /// tells who releases it. Kept in the guard: a release that is cancelled
    /// half-way leaves the duty with the guard's drop.
    fn take_duty(&mut self) -> &Duty {
        if let Duty::Listed(id) = self.duty {
            self.duty = match self.manager.holdings().let_go(id) {
                Releaser::Guard(under_way) => Duty::Ours { under_way },
                Releaser::Shutdown => Duty::Shutdown,
            };
        }
        &self.duty
    }

    /// Leaves the lock, still held in Redis, to the next task of this
    /// process waiting for it, when one waits, the lock is still ours, and
    /// the backend allows it (see `local_queue.rs`). That task takes the
    /// next of the reserved fencing tokens and this lock's validity, or (if
    /// none is left, or too little validity) re-arms the lease and takes new
    /// tokens in one round trip; where a release and an acquire would take
    /// two, and let the lock go to another process between them. An
    /// unclaimed baton is released by whoever drops it.
    fn pass_to_next_in_line(&self) -> bool {
        let Some(turn) = &self.turn else {
            return false;
        };
        let backend = self.manager.backend();
        if self.passing == Passing::Never
            || self.sent == Release::Sent
            || !backend.passes_batons()
            || !turn.may_pass()
            || self.lock.validity.is_over()
        {
            return false;
        }
        let passed = Passed {
            owner: self.lock.owner.clone(),
            ttl: self.ttl,
            valid_until: self.lock.validity.until(),
            fencing_token: self.tokens.fencing_token + 1,
            tokens_left: self.tokens.spare_tokens,
        };
        let (backend, keys) = (backend.clone(), self.lock.keys.clone());
        let unclaimed = Box::new(move |passed: Passed| {
            background::spawn(async move {
                let _ = backend.leave(&keys, &passed.owner).await;
            });
        });
        turn.pass(Baton::new(passed, unclaimed));
        true
    }

    /// After the release: nested guards see no validity left, then the next
    /// waiter of this process gets its turn.
    fn finish(self) {
        if !matches!(self.duty, Duty::Nested) {
            let lost = self.lock.validity.is_over();
            metrics::released(self.manager.name(), self.acquired.elapsed(), lost);
            self.lock.validity.end();
        }
        drop(self.turn);
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        let Some(runtime) = background::runtime() else {
            // Left on the manager's list (if it is there), for a shutdown.
            if matches!(held.duty, Duty::Listed(_) | Duty::Ours { .. }) {
                tracing::warn!(
                    key = %held.lock.key,
                    "lock guard dropped outside a tokio runtime; the lock is freed by a shutdown of its manager or when its lease ends"
                );
            }
            return;
        };
        // Off the list before the task exists: if the runtime refuses or
        // drops the task, the redo below is the one release, and a later
        // shutdown does not release the lock a second time.
        let Some(under_way) = held.hand_over() else {
            return; // the outer holder, or the shutdown, releases
        };
        let (manager, lock) = (held.manager.clone(), held.lock.clone());
        let release = move |unfinished: Unfinished| async move {
            let found = held.release().await;
            // Nothing after the release may make it be redone: logging and
            // metrics call the application's code, which may panic.
            unfinished.done();
            match found {
                Ok(_) | Err(LockError::ShutDown { .. }) => {}
                Err(error) => {
                    tracing::warn!(key = %held.lock.key, %error, "releasing a dropped lock guard failed; the lock is freed when its lease ends at the latest");
                }
            }
            held.finish();
        };
        // Owner-checked, so it may follow a release that got part of the
        // way. Keeps the shutdown waiting for it while it runs.
        let redo = move || {
            let _counted = &under_way;
            release_again(manager.clone(), lock.clone())
        };
        background::spawn_finishing(&runtime, release, redo);
    }
}

impl Held {
    /// Takes the lock off the manager's list for the guard's drop, unless
    /// someone else releases it: the token of the release under way.
    fn hand_over(&mut self) -> Option<UnderWay> {
        match std::mem::replace(&mut self.duty, Duty::Handed) {
            Duty::Listed(id) => match self.manager.holdings().let_go(id) {
                Releaser::Guard(under_way) => Some(under_way),
                Releaser::Shutdown => {
                    self.duty = Duty::Shutdown;
                    None
                }
            },
            Duty::Ours { under_way } => Some(under_way),
            other => {
                self.duty = other;
                None
            }
        }
    }
}

/// What a release found, as the guard reports it.
fn released(found: Ownership) -> ReleaseOutcome {
    match found {
        Ownership::Owned => ReleaseOutcome::Released,
        Ownership::Expired => ReleaseOutcome::Expired,
        Ownership::TakenOver => ReleaseOutcome::TakenOver,
    }
}

/// Releases `lock` where a dropped guard's release task could not: on a
/// runtime of its own, the one it was handed to shutting down (or, after
/// that task panicked, as a task of the same runtime), within the command
/// timeout plus 100 ms. The manager's
/// backend opens connections for this runtime: those of the runtime going
/// away cannot be used, as its tasks are dropped one by one, so a
/// connection's task may be gone already or still there but never polled
/// again (measured: both happen; the second makes a step hang until its
/// timeout).
///
/// The thread dropping the guard waits for this, so once one such release
/// failed, the manager's others are not tried: each would only hold the
/// exit up for another bound.
async fn release_again(manager: Arc<ManagerInner>, lock: Arc<Holding>) {
    let holdings = manager.holdings();
    if holdings.unreachable_at_exit() {
        tracing::warn!(key = %lock.key, "lock guard dropped as its runtime shut down, with Redis unreachable; the lock is freed when its lease ends");
        return;
    }
    let release = manager.backend().release(&lock.keys, &lock.owner);
    let error = match tokio::time::timeout(manager.release_bound(), release).await {
        Ok(Ok(_)) => return,
        Ok(Err(fault)) => fault.to_string(),
        Err(_) => "no answer in time".to_owned(),
    };
    holdings.mark_unreachable_at_exit();
    tracing::warn!(key = %lock.key, %error, "releasing a lock after its runtime shut down failed; it is freed when its lease ends");
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
