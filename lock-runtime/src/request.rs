//! A request for one lock: its lease, how long to wait, and the waiting itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{Attempt, Fault, Subscription};
use crate::guard::Grant;
use crate::holdings::Holding;
use crate::keyspace::LockKeys;
use crate::local_queue::LocalTurn;
use crate::{LockError, LockGuard, LockManager, background, lease, metrics, reentrancy};

/// Longest a waiter sleeps without re-checking Redis, in case a wake-up
/// message was lost; normally a release wakes it at once.
const MAX_NAP: Duration = Duration::from_millis(500);

/// A lock about to be acquired, made by [`LockManager::lock`].
///
/// ```no_run
/// # async fn demo(manager: distlock::LockManager) -> Result<(), distlock::LockError> {
/// use std::time::Duration;
///
/// let guard = manager
///     .lock("order:42")
///     .ttl(Duration::from_secs(10))
///     .wait(Duration::from_millis(500))
///     .acquire()
///     .await?;
/// println!("fencing token {}", guard.fencing_token());
/// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
/// # Ok(()) }
/// ```
///
/// Waiting does not poll: a release wakes the waiters of its key through
/// Redis pub/sub, and tasks of one process waiting for the same key are
/// served in arrival order, only the first of them contending in Redis.
/// Inside a `#[distributed_lock]` body, a request for a key the task already
/// holds (on the same manager) returns at once with a nested guard.
///
/// Once the manager is [shut down](LockManager::shutdown), requests fail
/// with [`LockError::ShutDown`], also those already waiting.
#[derive(Debug, Clone)]
#[must_use = "a lock request does nothing until `acquire` or `try_acquire` is awaited"]
pub struct LockRequest {
    manager: LockManager,
    key: String,
    ttl: Duration,
    wait: Option<Duration>,
    renew: bool,
}

impl LockRequest {
    pub(crate) fn new(manager: LockManager, key: String) -> Self {
        let ttl = manager.default_ttl();
        LockRequest {
            manager,
            key,
            ttl,
            wait: None,
            renew: false,
        }
    }

    /// The lease: how long the lock stays held if its holder vanishes.
    /// Defaults to the manager's default lease.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long [`acquire`](Self::acquire) waits for a held lock before
    /// returning [`LockError::Timeout`]. Defaults to the lease; zero makes a
    /// single attempt.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Keeps the lease alive while the guard lives: the manager's watchdog
    /// re-arms it every third of the lease until the guard is released or
    /// dropped, so the lock is held for as long as the work takes and still
    /// freed one lease after a crash.
    ///
    /// If renewing fails (the lock was taken over, or Redis stayed
    /// unreachable until the validity ran out) the lock is lost:
    /// [`LockGuard::is_held`] turns `false` and [`LockGuard::lost`] completes.
    pub fn renew(mut self) -> Self {
        self.renew = true;
        self
    }

    /// Acquires the lock, waiting up to the `wait` duration while another
    /// owner holds it.
    pub async fn acquire(self) -> Result<LockGuard, LockError> {
        let wait = self.wait.unwrap_or(self.ttl);
        self.acquire_within(wait).await
    }

    /// Makes one attempt: `Ok(None)` when another owner holds the lock.
    pub async fn try_acquire(self) -> Result<Option<LockGuard>, LockError> {
        match self.acquire_within(Duration::ZERO).await {
            Ok(guard) => Ok(Some(guard)),
            Err(LockError::Timeout { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn acquire_within(self, wait: Duration) -> Result<LockGuard, LockError> {
        let ttl = lease::validate(self.ttl)?;
        let keys = LockKeys::new(self.manager.key_prefix(), &self.key)?;
        if self.manager.holdings().is_closed() {
            return Err(self.shut_down());
        }
        if let Some(outer) = reentrancy::find(self.manager.id(), &self.key) {
            // Joining is only sound while the outer lock is still certainly ours.
            if outer.validity.is_over() {
                return Err(LockError::Lost { key: self.key });
            }
            return Ok(LockGuard::nested(self.manager, keys, outer));
        }
        let started = Instant::now();
        let deadline = started.checked_add(wait);
        let (turn, mut contended) = self
            .local_turn(wait, deadline)
            .await
            .map_err(|why| self.interrupted(why, started))?;
        let backend = self.manager.backend();
        let mut subscription: Option<Subscription> = None;
        let mut reattempt = Reattempt::Available;
        loop {
            // Wake-ups from before this attempt are answered by the attempt.
            if let Some(subscription) = subscription.as_mut() {
                subscription.mark_seen();
            }
            // A fresh owner token per attempt: a give-back or an in-flight
            // release of an earlier attempt that lands late must not remove
            // what this attempt was granted.
            let owner = uuid::Uuid::new_v4().to_string();
            let attempt_start = Instant::now();
            let attempt = match reattempt.send(&self.manager, &keys, &owner, ttl).await {
                Ok(Sent::Answered(attempt)) => attempt,
                Ok(Sent::Again) => continue,
                Err(fault) => return Err(LockError::backend(&self.key, fault)),
            };
            let remaining = match attempt {
                Attempt::Acquired { fencing_token } => {
                    let valid_until = lease::valid_until(attempt_start, ttl);
                    if valid_until > Instant::now() {
                        metrics::acquired(self.manager.name(), started.elapsed(), contended);
                        let grant = Grant {
                            key: self.key,
                            keys,
                            owner,
                            fencing_token,
                            started: attempt_start,
                            ttl,
                            renew: self.renew,
                        };
                        return match LockGuard::new(self.manager.clone(), grant, turn) {
                            Ok(guard) => Ok(guard),
                            Err(refused) => Err(refuse_granted(&self.manager, refused).await),
                        };
                    }
                    // The lease ran out before the answer arrived (a slow round
                    // trip, a paused process): it is not safe to use. Give it
                    // back and try again.
                    let _ = backend.release(&keys, &owner).await;
                    Some(Duration::ZERO)
                }
                Attempt::Held { remaining } => remaining,
                Attempt::Split { retry_in } => {
                    contended = true;
                    let left = self.time_left(deadline, started)?;
                    self.wait_for(None, tokio::time::sleep(retry_in.min(left)))
                        .await
                        .map_err(|why| self.interrupted(why, started))?;
                    continue;
                }
            };
            contended = true;
            let waiting = Waiting {
                keys: &keys,
                remaining,
                deadline,
                started,
            };
            self.wait_for_release(&mut subscription, waiting).await?;
        }
    }

    /// Waits until the lock may have been released, before the next
    /// attempt. The first time, it only subscribes: a release from then on
    /// wakes the waiter, and the next attempt runs at once.
    async fn wait_for_release(
        &self,
        subscription: &mut Option<Subscription>,
        waiting: Waiting<'_>,
    ) -> Result<(), LockError> {
        let Waiting {
            keys,
            remaining,
            deadline,
            started,
        } = waiting;
        let left = self.time_left(deadline, started)?;
        let Some(subscribed) = subscription.as_mut() else {
            let subscribe = self.manager.backend().subscribe(keys);
            *subscription = Some(
                self.wait_for(deadline, subscribe)
                    .await
                    .map_err(|why| self.interrupted(why, started))?,
            );
            return Ok(());
        };
        // A release wakes us; the timer covers a holder that crashed (its
        // lease ends) and a lost message.
        let nap = remaining
            .map_or(MAX_NAP, |r| r + Duration::from_millis(1))
            .min(MAX_NAP)
            .min(left);
        let woken = async {
            tokio::select! {
                () = subscribed.woken() => {}
                () = tokio::time::sleep(nap) => {}
            }
        };
        self.wait_for(None, woken)
            .await
            .map_err(|why| self.interrupted(why, started))
    }

    /// What is left of the wait; a timeout once nothing is.
    fn time_left(
        &self,
        deadline: Option<Instant>,
        started: Instant,
    ) -> Result<Duration, LockError> {
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return Err(self.timeout(started));
        }
        Ok(left)
    }

    /// Awaits `step` until `deadline` (`None`: no limit), unless the
    /// manager shuts down first. Only waiting pays for watching the
    /// shutdown; an uncontended lock never gets here.
    async fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        step: impl Future<Output = T>,
    ) -> Result<T, Interrupted> {
        let step = async {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline.into(), step)
                    .await
                    .map_err(|_| Interrupted::TimedOut),
                None => Ok(step.await),
            }
        };
        tokio::select! {
            biased;
            () = self.manager.holdings().closed() => Err(Interrupted::ShutDown),
            done = step => done,
        }
    }

    /// Waits for this task's turn among the waiters of this process:
    /// `Ok(None)` to contend without one (the turn holder outlived its
    /// validity), `Err` when the wait ran out or the manager shut down
    /// first. The flag tells whether another task of this process was ahead.
    async fn local_turn(
        &self,
        wait: Duration,
        deadline: Option<Instant>,
    ) -> Result<(Option<LocalTurn>, bool), Interrupted> {
        let queues = self.manager.queues();
        // Nobody of this process on the key (the usual case): no waiting machinery.
        match queues.try_turn(&self.key) {
            Ok(turn) => return Ok((Some(turn), false)),
            Err(true) => return Ok((None, true)),
            Err(false) if wait.is_zero() => return Err(Interrupted::TimedOut),
            Err(false) => {}
        }
        let turn = self.wait_for(deadline, queues.turn(&self.key)).await?;
        Ok((turn, true))
    }

    fn interrupted(&self, why: Interrupted, started: Instant) -> LockError {
        match why {
            Interrupted::TimedOut => self.timeout(started),
            Interrupted::ShutDown => self.shut_down(),
        }
    }

    fn shut_down(&self) -> LockError {
        LockError::ShutDown {
            key: self.key.clone(),
            manager: self.manager.name().to_owned(),
        }
    }

    fn timeout(&self, started: Instant) -> LockError {
        metrics::timed_out(self.manager.name());
        LockError::Timeout {
            key: self.key.clone(),
            waited: started.elapsed(),
        }
    }
}

/// The manager was shut down after a request's lock was granted: gives it
/// back, owner-checked, and reports the shutdown.
async fn refuse_granted(manager: &LockManager, refused: Arc<Holding>) -> LockError {
    InFlight::new(manager, &refused.keys, &refused.owner)
        .give_back()
        .await;
    LockError::ShutDown {
        key: refused.key.clone(),
        manager: manager.name().to_owned(),
    }
}

/// Where a waiter stands between two attempts.
struct Waiting<'a> {
    keys: &'a LockKeys,
    /// How long the holder's lease has left, if known.
    remaining: Option<Duration>,
    deadline: Option<Instant>,
    started: Instant,
}

/// Why a request stopped waiting.
enum Interrupted {
    TimedOut,
    ShutDown,
}

/// An acquire attempt whose answer has not arrived. If the caller's future is
/// dropped meanwhile (a timeout, `select!`) or the answer is lost, the lock
/// may have been set with an owner token nobody will release: hand an
/// owner-checked release to the runtime so the lease is not left to run out.
struct InFlight<'a> {
    manager: &'a LockManager,
    keys: &'a LockKeys,
    owner: &'a str,
    settled: bool,
}

impl<'a> InFlight<'a> {
    fn new(manager: &'a LockManager, keys: &'a LockKeys, owner: &'a str) -> Self {
        InFlight {
            manager,
            keys,
            owner,
            settled: false,
        }
    }

    fn settled(mut self) {
        self.settled = true;
    }

    /// Gives the attempt's owner token back now, owner-checked: the attempt
    /// failed, but its script may have run before the connection died. If
    /// this gets no answer either, the drop sends it in the background.
    async fn give_back(self) {
        let released = self.manager.backend().release(self.keys, self.owner).await;
        if released.is_ok() {
            self.settled();
        }
    }
}

/// Whether an acquire attempt that failed because its connection had died
/// may be made again at once.
///
/// redis-rs reports a connection that died while idle (a restart,
/// `CLIENT KILL`, a proxy's idle timeout) or whose driver task ended with
/// its tokio runtime at the next request, which is then never written; a
/// new attempt on the new connection succeeds. The same errors come for an
/// attempt that was written and whose answer was lost, so the new attempt
/// can never make two holders:
///
/// - it has a fresh owner token, and the earlier token is first given back
///   owner-checked ([`InFlight::give_back`]), as a cancelled attempt's is:
///   if the earlier attempt was granted, its lease is deleted before the new
///   attempt is sent (or, if the give-back gets no answer, it stays until
///   its lease ends: a delay, never a second holder);
/// - its fencing token comes from its own INCR, above the earlier one's;
/// - its validity runs from its own start, after the earlier one ended.
///
/// One re-attempt per failure: a connection that dies again at once means
/// Redis is not there, and the caller hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reattempt {
    Available,
    Spent,
}

/// What became of one acquire attempt that did not fail.
enum Sent {
    Answered(Attempt),
    /// Its connection had died; the attempt is to be made again at once.
    Again,
}

impl Reattempt {
    /// Sends one acquire attempt with `owner`, its own fresh token.
    async fn send(
        &mut self,
        manager: &LockManager,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<Sent, Fault> {
        let in_flight = InFlight::new(manager, keys, owner);
        match manager.backend().acquire(keys, owner, lease).await {
            Ok(attempt) => {
                in_flight.settled();
                *self = Reattempt::Available;
                Ok(Sent::Answered(attempt))
            }
            Err(fault) if fault.connection_died() && *self == Reattempt::Available => {
                *self = Reattempt::Spent;
                in_flight.give_back().await;
                Ok(Sent::Again)
            }
            Err(fault) => Err(fault),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (backend, keys, owner) = (
            self.manager.backend().clone(),
            self.keys.clone(),
            self.owner.to_owned(),
        );
        background::spawn(async move {
            let _ = backend.release(&keys, &owner).await;
        });
    }
}
