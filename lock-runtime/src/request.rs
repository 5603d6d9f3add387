//! A request for one lock: its lease, how long to wait, and the waiting itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{
    Attempt, Fault, Ownership, ReplicaAcks, Subscription, Tokens, Unacknowledged, step_failed,
};
use crate::guard::{Grant, Passing};
use crate::holdings::{Holding, UnderWay};
use crate::inner::ManagerInner;
use crate::keyspace::LockKeys;
use crate::kind::LockKind;
use crate::lease::Validity;
use crate::local_queue::{Baton, LocalTurn, Passed, Turn};
use crate::reentrancy::HeldLock;
use crate::{LockError, LockGuard, background, clock, lease, metrics, reentrancy};

/// Longest a waiter sleeps without re-checking Redis, in case a wake-up
/// message was lost; normally a release wakes it at once.
const MAX_NAP: Duration = Duration::from_millis(500);

/// How long a request waits between attempts while its backend fails over
/// (see `Backend::rides_out`).
const FAILOVER_PAUSE: Duration = Duration::from_millis(100);

/// A lock about to be acquired, made by [`LockManager::lock`](crate::LockManager::lock).
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
/// Once the manager is [shut down](crate::LockManager::shutdown), requests fail
/// with [`LockError::ShutDown`], also those already waiting.
#[derive(Debug, Clone)]
#[must_use = "a lock request does nothing until `acquire` or `try_acquire` is awaited"]
pub struct LockRequest {
    manager: Arc<ManagerInner>,
    key: String,
    terms: Terms,
    kind: LockKind,
    passing: Passing,
}

/// What a request asks for besides its key, shared by requests for one
/// key and for several ([`MultiLockRequest`](crate::MultiLockRequest)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    /// The lease of the lock (of each key).
    pub(crate) ttl: Duration,
    /// How long to wait; `None`: as long as the lease.
    pub(crate) wait: Option<Duration>,
    pub(crate) renew: bool,
    pub(crate) hold_at_least: Duration,
}

impl Terms {
    /// The defaults: the lease of `ttl`, waited for as long.
    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        Terms {
            ttl,
            wait: None,
            renew: false,
            hold_at_least: Duration::ZERO,
        }
    }

    /// How long `acquire` waits.
    pub(crate) fn wait(&self) -> Duration {
        self.wait.unwrap_or(self.ttl)
    }
}

/// `try_acquire` from what the attempt of `acquire_within(0)` found: a
/// timeout is a lock held by someone else.
pub(crate) fn none_if_held<G>(acquired: Result<G, LockError>) -> Result<Option<G>, LockError> {
    match acquired {
        Ok(guard) => Ok(Some(guard)),
        Err(LockError::Timeout { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

impl LockRequest {
    pub(crate) fn new(manager: Arc<ManagerInner>, key: String) -> Self {
        let terms = Terms::with_ttl(manager.default_ttl());
        LockRequest {
            manager,
            key,
            terms,
            kind: LockKind::Exclusive,
            passing: Passing::ToNextInLine,
        }
    }

    /// Asks for `terms` instead of what was set so far.
    pub(crate) fn with_terms(mut self, terms: Terms) -> Self {
        self.terms = terms;
        self
    }

    /// The lock is one key of a lock over several keys: never passed to
    /// the next task of this process (see [`Passing::Never`]).
    pub(crate) fn one_of_several(mut self) -> Self {
        self.passing = Passing::Never;
        self
    }

    /// The kind of lock: exclusive (the default), a number of permits (a
    /// semaphore), or a reader or the writer of a read-write lock. Each kind
    /// keeps keys of its own in Redis: an exclusive lock, a semaphore and a
    /// read-write lock of one name are three locks.
    ///
    /// The shared kinds work on one Redis server, on a Redis Cluster and in
    /// memory; on Redlock, acquiring them fails with
    /// [`LockError::Unsupported`]. Their holders each have an owner token,
    /// a lease, a renewal and a fencing token of their own, and they are
    /// never passed between the tasks of a process: each task takes its own
    /// permit. A release hands the freed capacity to the waiters first in
    /// line (in Redis, across processes), waking those it served and no
    /// others. A nested acquisition joins a lock of the same family the task
    /// holds: a permit inside a permit, a read inside a read or a write, a
    /// write inside a write; a write inside a read (an upgrade, which two
    /// readers doing it at once would deadlock) fails with
    /// [`LockError::InvalidConfig`], and so does a permit asked for with
    /// another number of permits than the semaphore is in use with.
    pub fn kind(mut self, kind: LockKind) -> Self {
        self.kind = kind;
        self
    }

    /// The lease: how long the lock stays held if its holder vanishes.
    /// Defaults to the manager's default lease.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.terms.ttl = ttl;
        self
    }

    /// How long [`acquire`](Self::acquire) waits for a held lock before
    /// returning [`LockError::Timeout`]. Defaults to the lease; zero makes a
    /// single attempt.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.terms.wait = Some(wait);
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
        self.terms.renew = true;
        self
    }

    /// Keeps the lock held until `hold_at_least` after it was acquired,
    /// however soon the guard is released (ShedLock's `lockAtLeastFor`): the
    /// release then only shortens the lease to what is left of that time,
    /// owner-checked, and the lock frees itself when it ends. For a job that
    /// every node runs on the same schedule: one runs it, and nodes whose
    /// clocks are a little behind find the lock still held and skip.
    ///
    /// At most the lease ([`ttl`](Self::ttl)); acquiring fails with
    /// [`LockError::InvalidConfig`] otherwise. The time counts from the
    /// moment the lock was granted to this process, after its lease began in
    /// Redis, so the lock stays held at least this long after its holder got
    /// it. A release sent during a shutdown of the manager, or after the
    /// guard's runtime shut down, deletes the lock at once instead.
    pub fn hold_at_least(mut self, hold_at_least: Duration) -> Self {
        self.terms.hold_at_least = hold_at_least;
        self
    }

    /// Acquires the lock, waiting up to the `wait` duration while another
    /// owner holds it.
    pub async fn acquire(self) -> Result<LockGuard, LockError> {
        let wait = self.terms.wait();
        self.acquire_within(wait).await
    }

    /// Makes one attempt: `Ok(None)` when another owner holds the lock.
    pub async fn try_acquire(self) -> Result<Option<LockGuard>, LockError> {
        none_if_held(self.acquire_within(Duration::ZERO).await)
    }

    async fn acquire_within(self, wait: Duration) -> Result<LockGuard, LockError> {
        // The attempts loop here, not in a helper of its own: each level of
        // `async fn` nesting deepens the future that `#[distributed_lock]`
        // fns embed, and the compiler's queries over it have a depth limit.
        let (contest, turn) = match self.enter(wait).await? {
            Entry::Joined(guard) => return Ok(guard),
            Entry::Contending(contest, turn) => (contest, turn),
        };
        let mut waiting = Waiting::new(contest.contended);
        let mut claim = Claim::new(&self.manager, &contest.keys);
        if let Some(granted) = self.baton(&contest, turn.as_ref(), &mut claim, &mut waiting)? {
            drop(claim);
            return self.hold(contest, granted, turn, true).await;
        }
        let mut reattempt = Reattempt::Available;
        loop {
            let step = waiting.next_step(&claim);
            let attempt_start = Instant::now();
            claim.attempting = Some(self.attempting()?);
            let attempt = match reattempt.send(&contest, &mut claim, step).await {
                Ok(Sent::Answered(attempt)) => attempt,
                Ok(Sent::Again) => continue,
                Err(fault) if self.manager.backend().rides_out(&fault) => {
                    reattempt = Reattempt::Available;
                    Box::pin(self.ride_out(fault, step, &contest, &mut claim)).await?;
                    continue;
                }
                Err(fault) => return Err(step_failed(&self.key, fault)),
            };
            let answered = Answered::new(attempt, step, attempt_start);
            let remaining = match waiting.after(answered, contest.ttl, &mut claim) {
                Next::Hold(granted) => {
                    drop(claim);
                    return self.hold(contest, granted, turn, waiting.contended).await;
                }
                Next::GiveBack => {
                    claim.give_back(Wake::Waiters).await;
                    Some(Duration::ZERO)
                }
                Next::Wait { remaining } => remaining,
                Next::Pause { retry_in } => {
                    self.pause_after_split(retry_in, &contest).await?;
                    continue;
                }
            };
            let waited = self.wait_for_release(&mut waiting.subscription, &contest, remaining);
            if let Err(error) = waited.await {
                // Out of the queue before the error is out: a release right
                // after must not hand the lock to a waiter that is gone.
                // Boxed: a rare path (see above).
                Box::pin(claim.give_back(Wake::Waiters)).await;
                return Err(error);
            }
            if let Some(granted) = self.handed_over(&contest, &mut waiting, &mut claim).await? {
                drop(claim);
                return self.hold(contest, granted, turn, waiting.contended).await;
            }
        }
    }

    /// Keeps a shutdown waiting for the attempt about to be made; a
    /// shutdown error once the manager is shut down.
    fn attempting(&self) -> Result<UnderWay, LockError> {
        self.manager
            .holdings()
            .attempt()
            .map_err(|_| self.shut_down())
    }

    /// The lock the previous holder of this process left to this task, if
    /// any (see `local_queue.rs`): granted now if it may be taken over
    /// without a round trip ([`baton_grant`]), else made the claim's, for
    /// the first attempt to take it over in Redis.
    fn baton(
        &self,
        contest: &Contest,
        turn: Option<&LocalTurn>,
        claim: &mut Claim<'_>,
        waiting: &mut Waiting,
    ) -> Result<Option<Granted>, LockError> {
        let Some(passed) = turn.and_then(LocalTurn::take_baton).and_then(Baton::take) else {
            return Ok(None);
        };
        // In Redis under this owner token: a drop from here on releases it.
        claim.take_over(passed.owner.clone());
        let Some(mut granted) = baton_grant(contest, &passed) else {
            waiting.pending = Some(Step::Succeed);
            return Ok(None);
        };
        granted.attempting = Some(self.attempting()?);
        claim.in_redis = InRedis::No; // the guard releases it
        Ok(Some(granted))
    }

    /// A lock a release handed over to this waiter while it waited in the
    /// lock's queue (protocol v2), once it can be used: its validity runs
    /// from the send time of the waiter's attempt that the grant came after,
    /// and if little of it is left, the lease is re-armed first (owner-
    /// checked), for a validity from now. `None` when nothing was handed
    /// over, or the lease ran out before the waiter heard of it.
    async fn handed_over(
        &self,
        contest: &Contest,
        waiting: &mut Waiting,
        claim: &mut Claim<'_>,
    ) -> Result<Option<Granted>, LockError> {
        let subscription = waiting.subscription.as_mut();
        let (Some(grant), Some(since)) = (
            subscription.and_then(|subscription| subscription.granted(&contest.keys)),
            waiting.queued_since,
        ) else {
            return Ok(None);
        };
        waiting.queued_since = None; // out of the queue now
        let valid_until = lease::valid_until(since, contest.ttl);
        if valid_until > Instant::now() + contest.ttl / 2 {
            return Ok(Some(claim.granted(grant, since)));
        }
        let rearm_start = Instant::now();
        let rearmed = self
            .manager
            .backend()
            .extend(&contest.keys, &claim.owner, contest.ttl);
        match Box::pin(rearmed).await {
            Ok(Ownership::Owned) => Ok(Some(claim.granted(grant, rearm_start))),
            Ok(Ownership::Expired | Ownership::TakenOver) => Ok(None),
            Err(fault) => Err(step_failed(&self.key, fault)),
        }
    }

    /// Everything before the first attempt: checks the request, joins a
    /// lock the task already holds, and waits for this task's turn among
    /// the waiters of this process.
    async fn enter(&self, wait: Duration) -> Result<Entry, LockError> {
        let ttl = lease::validate(self.terms.ttl)?;
        lease::validate_hold(self.terms.hold_at_least, ttl)?;
        let kind = self.kind.validate()?;
        let keys = LockKeys::of_kind(self.manager.key_prefix(), &self.key, kind)?;
        if kind.share().is_some()
            && let Some(unshared) = self.manager.backend().refuses_shared()
        {
            return Err(unshared.error());
        }
        if self.manager.holdings().is_closed() {
            return Err(self.shut_down());
        }
        if let Some(outer) = reentrancy::find(self.manager.id(), &self.key, kind.family()) {
            return self.join(outer).map(Entry::Joined);
        }
        let started = Instant::now();
        let deadline = started.checked_add(wait);
        let in_line = match kind.share() {
            Some(_) => InLine {
                turn: Turn::Unlined,
                contended: false,
            },
            None => self
                .local_turn(wait, deadline)
                .await
                .map_err(|why| self.interrupted(why, started))?,
        };
        let contest = Contest {
            keys,
            ttl,
            started,
            deadline,
            contended: in_line.contended,
        };
        Ok(Entry::Contending(contest, in_line.turn.ours()))
    }

    /// A nested acquisition joins `outer`, a lock of the same family the
    /// task holds, unless it would upgrade a read to a write.
    fn join(&self, outer: HeldLock) -> Result<LockGuard, LockError> {
        match (outer.kind, self.kind) {
            (LockKind::Read, LockKind::Write) => {
                return Err(LockError::invalid_config(format!(
                    "this task holds `{}` for reading, so it cannot take it for writing: an upgrade deadlocks when two readers try it at once; take the write lock first (a read inside a write joins it)",
                    self.key
                )));
            }
            (LockKind::Permits(held), LockKind::Permits(asked)) if held != asked => {
                return Err(LockError::invalid_config(format!(
                    "this task holds a permit of `{}` with {held} permits, and asks for it with {asked}: every call on a semaphore must ask for as many",
                    self.key
                )));
            }
            _ => {}
        }
        // Joining is only sound while the outer lock is still certainly ours.
        if outer.validity.is_over() {
            return Err(LockError::Lost {
                key: self.key.clone(),
            });
        }
        // The outer lock's keys: a read inside a write is the writer's.
        let keys = LockKeys::of_kind(self.manager.key_prefix(), &self.key, outer.kind)?;
        Ok(LockGuard::nested(self.manager.clone(), keys, outer))
    }

    /// Turns a granted attempt into a guard: lists the lock among the
    /// manager's holdings, starts its renewal if asked, and gives the lock
    /// back if the manager was shut down meanwhile.
    async fn hold(
        self,
        contest: Contest,
        mut granted: Granted,
        turn: Option<LocalTurn>,
        contended: bool,
    ) -> Result<LockGuard, LockError> {
        if let (Some(acks), Source::Redis) = (self.manager.replica_acks(), granted.source) {
            // Boxed: a path of managers that ask for it (see `acquire_within`).
            Box::pin(self.confirm_replicas(&contest, &mut granted, acks)).await?;
        }
        let elapsed = contest.started.elapsed();
        metrics::acquired(self.manager.name(), elapsed, contended);
        if let (Some(turn), Source::Redis) = (&turn, granted.source) {
            turn.count_successions_anew();
        }
        let (manager, ttl) = (self.manager, contest.ttl);
        let lock = Arc::new(Holding {
            key: self.key,
            keys: contest.keys,
            owner: granted.owner,
            validity: Validity::new(lease::valid_until(granted.started, ttl)),
        });
        // Listed among the holdings from here: a shutdown releases it.
        let Ok(listed) = manager.holdings().hold(lock.clone()) else {
            drop(turn); // the next task of this process hears of the shutdown now
            // Boxed: only after a shutdown, and it keeps the future of
            // every acquisition shallower (see `acquire_within`).
            let refusing = refuse_granted(&manager, lock, granted.attempting);
            return Err(Box::pin(refusing).await);
        };
        if let Some(turn) = &turn {
            turn.hold(lock.validity.clone());
        }
        let renewal = self.terms.renew.then(|| {
            let renewals = manager.renewals();
            renewals.start(manager.backend(), &lock, granted.started, ttl)
        });
        let grant = Grant {
            lock,
            listed,
            tokens: granted.tokens,
            ttl,
            // Shared holders are never passed on: each task has its own.
            passing: match self.kind.share() {
                Some(_) => Passing::Never,
                None => self.passing,
            },
            renewal,
            turn,
        };
        let mut guard = LockGuard::new(manager, grant);
        // From now, an instant after the lease began (and after a baton's or
        // a hand-over's earlier start).
        guard.hold_for(self.terms.hold_at_least);
        Ok(guard)
    }

    /// Waits until `acks.replicas` replicas acknowledged the fresh lease of
    /// `granted`, re-armed from now (so its validity runs from the re-arm);
    /// when fewer did in time, gives it back and fails, or hands it out with
    /// a WARN, as `acks` says. A lease that ran out meanwhile, or a step
    /// that failed, fails the request. Until it returns, a claim on the
    /// owner token gives the lock back if the request is dropped.
    async fn confirm_replicas(
        &self,
        contest: &Contest,
        granted: &mut Granted,
        acks: ReplicaAcks,
    ) -> Result<(), LockError> {
        let mut claim = Claim::new(&self.manager, &contest.keys);
        claim.take_over(granted.owner.clone());
        let rearm_start = Instant::now();
        let confirmed = self.manager.backend().confirm_replicas(
            &contest.keys,
            &granted.owner,
            contest.ttl,
            acks,
        );
        let acknowledged = match confirmed.await {
            None => {
                claim.in_redis = InRedis::No; // no replicas here (refused at build)
                return Ok(());
            }
            Some(Ok((Ownership::Owned, acknowledged))) => acknowledged,
            Some(Ok(_)) => {
                claim.renew(); // the lease ran out: nothing to give back
                return Err(LockError::Lost {
                    key: self.key.clone(),
                });
            }
            Some(Err(fault)) => {
                claim.give_back(Wake::Waiters).await;
                return Err(step_failed(&self.key, fault));
            }
        };
        let wanted = acks.replicas;
        if acknowledged < wanted && acks.otherwise == Unacknowledged::Release {
            claim.give_back(Wake::Waiters).await;
            return Err(LockError::NotReplicated {
                key: self.key.clone(),
                acknowledged,
                wanted,
            });
        }
        if acknowledged < wanted {
            tracing::warn!(key = %self.key, acknowledged, wanted, "lock granted with fewer replicas acknowledging it than asked for; handed out anyway (Unacknowledged::Proceed)");
        }
        claim.in_redis = InRedis::No; // the guard releases it from here
        granted.started = rearm_start;
        Ok(())
    }

    /// After a step lost to a failover (see `Backend::rides_out`): gives
    /// back, in the background, an acquire that may have landed, and pauses
    /// before the next attempt. When no time of the wait is left (at once,
    /// for `try_acquire`) the request fails with `fault`, not with
    /// [`LockError::Timeout`]: an outage is not a lock held by someone else.
    /// A place in line is kept when the step was a refresh of it that got
    /// no answer in time (the next refresh under the same owner token finds
    /// it, or the lock handed to it); a step whose connection died gave its
    /// place back first (see [`Reattempt`]).
    async fn ride_out(
        &self,
        fault: Fault,
        step: Step,
        contest: &Contest,
        claim: &mut Claim<'_>,
    ) -> Result<(), LockError> {
        if !matches!(step, Step::InQueue { .. }) {
            claim.abandon();
        }
        let left = contest
            .deadline
            .map(|end| end.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Err(step_failed(&self.key, fault));
        }
        let pause = left.map_or(FAILOVER_PAUSE, |left| left.min(FAILOVER_PAUSE));
        self.wait_for(None, tokio::time::sleep(pause))
            .await
            .map_err(|why| self.interrupted(why, contest.started))
    }

    /// Pauses for `retry_in` after split Redlock votes, or for what is left
    /// of the wait.
    async fn pause_after_split(
        &self,
        retry_in: Duration,
        contest: &Contest,
    ) -> Result<(), LockError> {
        let started = contest.started;
        let left = self.time_left(contest.deadline, started)?;
        self.wait_for(None, tokio::time::sleep(retry_in.min(left)))
            .await
            .map_err(|why| self.interrupted(why, started))
    }

    /// Waits until the lock may have been released, before the next
    /// attempt. The first time, it only subscribes: a release from then on
    /// wakes the waiter, and the next attempt runs at once.
    /// `remaining` is how long the holder's lease has left, if known.
    async fn wait_for_release(
        &self,
        subscription: &mut Option<Subscription>,
        contest: &Contest,
        remaining: Option<Duration>,
    ) -> Result<(), LockError> {
        let (keys, deadline, started) = (&contest.keys, contest.deadline, contest.started);
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
        // A release wakes us (or, on protocol v2, hands us the lock); the
        // timer covers a holder that crashed (its lease ends) and a lost
        // message, and refreshes our place in the queue, which lasts one
        // lease.
        let nap = remaining
            .map_or(MAX_NAP, |r| r + Duration::from_millis(1))
            .min(MAX_NAP)
            .min(contest.ttl / 3)
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
        let left = clock::left_until(deadline);
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

    /// Waits for this task's turn among the waiters of this process;
    /// `Err` when the wait ran out or the manager shut down first.
    async fn local_turn(
        &self,
        wait: Duration,
        deadline: Option<Instant>,
    ) -> Result<InLine, Interrupted> {
        let queues = self.manager.queues();
        // Nobody of this process on the key (the usual case): no waiting machinery.
        if let Some(turn) = queues.try_turn(&self.key) {
            let contended = matches!(turn, Turn::Lapsed);
            return Ok(InLine { turn, contended });
        }
        if wait.is_zero() {
            return Err(Interrupted::TimedOut);
        }
        let turn = self.wait_for(deadline, queues.turn(&self.key)).await?;
        Ok(InLine {
            turn,
            contended: true,
        })
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

/// The lock `passed` by the previous holder of this process, taken over
/// without a round trip, if it may be: one of its reserved fencing tokens
/// is left, it was held with the same lease, and at least half of it is
/// certainly still valid. Its validity carries over, as it was measured for
/// the previous holder; the token is above the previous holder's, and below
/// every token a later grant in Redis hands out.
fn baton_grant(contest: &Contest, passed: &Passed) -> Option<Granted> {
    let enough = Instant::now().checked_add(contest.ttl / 2)?;
    if passed.tokens_left == 0 || passed.ttl != contest.ttl || passed.valid_until < enough {
        return None;
    }
    Some(Granted {
        source: Source::Baton,
        owner: passed.owner.clone(),
        tokens: Tokens {
            fencing_token: passed.fencing_token,
            spare_tokens: passed.tokens_left - 1,
        },
        started: lease::start_for(passed.valid_until, passed.ttl)?,
        attempting: None,
    })
}

/// The manager was shut down after a request's lock was granted: gives it
/// back, owner-checked, handing it on, and reports the shutdown. The
/// shutdown waits for this while `attempting` lives.
async fn refuse_granted(
    manager: &ManagerInner,
    refused: Arc<Holding>,
    attempting: Option<UnderWay>,
) -> LockError {
    let mut claim = Claim::new(manager, &refused.keys);
    claim.take_over(refused.owner.clone());
    claim.attempting = attempting;
    claim.give_back(Wake::Waiters).await;
    LockError::ShutDown {
        key: refused.key.clone(),
        manager: manager.name().to_owned(),
    }
}

/// A request's place on its process's line for the key.
struct InLine {
    turn: Turn,
    /// Whether another task of this process was ahead.
    contended: bool,
}

/// Where a request stands once it may make attempts.
enum Entry {
    /// The task held the lock already; this guard joined it.
    Joined(LockGuard),
    /// Attempts are to be made, with this process's turn on the key (if any).
    Contending(Contest, Option<LocalTurn>),
}

/// What a request contends with, from its first attempt to its last.
struct Contest {
    keys: LockKeys,
    /// The lease each attempt asks for.
    ttl: Duration,
    /// When the request started, for its wait and its metrics.
    started: Instant,
    /// When the wait ends (`None`: no limit).
    deadline: Option<Instant>,
    /// Whether another task of this process was ahead in line.
    contended: bool,
}

/// A request's waiting, once it found the lock held.
struct Waiting {
    /// Subscribed after the first attempt that found the lock held.
    subscription: Option<Subscription>,
    /// Whether the lock was found held (here or in Redis) on the way.
    contended: bool,
    /// The send time of the last attempt that answered
    /// [`Attempt::Queued`] with the current owner token: a grant handed
    /// over after it came after that instant.
    queued_since: Option<Instant>,
    /// Attempts made so far, numbering the rounds of the queue.
    rounds: u64,
    /// An attempt decided before the first: taking over a lock the
    /// previous holder of this process left to this task (see
    /// `local_queue.rs`).
    pending: Option<Step>,
}

impl Waiting {
    fn new(contended: bool) -> Self {
        Waiting {
            subscription: None,
            contended,
            queued_since: None,
            rounds: 0,
            pending: None,
        }
    }

    /// The next attempt: the plain first one, or, once subscribed, one in
    /// the lock's queue, expecting a grant to `claim`'s owner token after it
    /// (wake-ups from before it are answered by the attempt itself).
    fn next_step(&mut self, claim: &Claim<'_>) -> Step {
        if let Some(step) = self.pending.take() {
            return step;
        }
        self.rounds += 1;
        let Some(subscription) = self.subscription.as_mut() else {
            return Step::First;
        };
        subscription.mark_seen();
        subscription.expect_grant(&claim.owner, self.rounds);
        Step::InQueue { round: self.rounds }
    }
}

impl Waiting {
    /// What to do after an attempt's answer. Every answer but a usable
    /// grant means the lock was contended.
    fn after(&mut self, answered: Answered, ttl: Duration, claim: &mut Claim<'_>) -> Next {
        let next = match answered.attempt {
            Attempt::Acquired {
                fencing_token,
                spare_tokens,
            } => {
                // A lease that ran out before the answer arrived (a slow
                // round trip, a paused process) is not safe to use.
                if lease::valid_until(answered.started, ttl) <= Instant::now() {
                    Next::GiveBack
                } else {
                    let tokens = Tokens {
                        fencing_token,
                        spare_tokens,
                    };
                    let mut granted = claim.granted(tokens, answered.started);
                    granted.source = answered.step.source();
                    return Next::Hold(granted);
                }
            }
            Attempt::Queued { remaining } => {
                self.queued_since = Some(answered.started);
                Next::Wait { remaining }
            }
            Attempt::Held { remaining } => {
                claim.renew(); // nothing of this owner token is in Redis
                Next::Wait { remaining }
            }
            Attempt::Split { retry_in } => {
                claim.renew();
                Next::Pause { retry_in }
            }
        };
        self.contended = true;
        next
    }
}

/// An attempt's answer, with what it was.
#[derive(Debug, Clone, Copy)]
struct Answered {
    attempt: Attempt,
    step: Step,
    /// When the attempt was sent.
    started: Instant,
}

impl Answered {
    fn new(attempt: Attempt, step: Step, started: Instant) -> Self {
        Answered {
            attempt,
            step,
            started,
        }
    }
}

/// What a request does after an attempt.
enum Next {
    /// The lock is the request's.
    Hold(Granted),
    /// Wait for a release; the holder's lease ends within `remaining`, if known.
    Wait { remaining: Option<Duration> },
    /// The lease was granted too late to be used: give it back, and attempt
    /// again at once.
    GiveBack,
    /// Nobody won a majority of the Redlock votes: attempt again after
    /// `retry_in`.
    Pause { retry_in: Duration },
}

/// Which kind of attempt to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Taking over the lock the previous holder of this process left.
    Succeed,
    /// The first: on protocol v2, plain commands.
    First,
    /// One made while subscribed: a place in the lock's queue (protocol
    /// v2), numbered by `round`.
    InQueue { round: u64 },
}

impl Step {
    /// Where a lock granted to this attempt came from.
    fn source(self) -> Source {
        match self {
            Step::Succeed => Source::Baton,
            Step::First | Step::InQueue { .. } => Source::Redis,
        }
    }
}

/// Where a granted lock came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// An acquire, or a hand-over by a release, in Redis.
    Redis,
    /// The previous holder of this process (see `local_queue.rs`).
    Baton,
}

/// A lock granted to a request.
struct Granted {
    source: Source,
    owner: String,
    /// The holder's fencing token, and those reserved after it for batons
    /// (see `local_queue.rs`).
    tokens: Tokens,
    /// An instant before the lease began.
    started: Instant,
    /// Keeps a shutdown waiting until the lock is listed or given back.
    attempting: Option<UnderWay>,
}

/// Why a request stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupted {
    TimedOut,
    ShutDown,
}

/// Whether a give-back wakes the waiters of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// The lock was granted: whoever waits for it may have it now.
    Waiters,
    /// The outcome is unknown and the requester attempts again at once.
    Nobody,
}

/// The owner token a request makes its attempts with, while it may be in
/// Redis with no guard to release it: an attempt sent and not answered, a
/// lease granted but not yet in a guard, or a place in the lock's queue. If
/// the request's future is dropped meanwhile (a timeout, `select!`) or an
/// answer is lost, the drop hands an owner-checked give-back to the runtime,
/// which also leaves the queue and hands on a lock granted meanwhile, so
/// that nothing is left to run out its lease.
struct Claim<'a> {
    manager: &'a ManagerInner,
    keys: &'a LockKeys,
    owner: String,
    /// Keeps a shutdown waiting for the request, background give-back
    /// included.
    attempting: Option<UnderWay>,
    in_redis: InRedis,
}

/// Whether a [`Claim`]'s owner token may be in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InRedis {
    Maybe,
    No,
}

impl<'a> Claim<'a> {
    fn new(manager: &'a ManagerInner, keys: &'a LockKeys) -> Self {
        Claim {
            manager,
            keys,
            owner: new_owner(),
            attempting: None,
            in_redis: InRedis::No,
        }
    }

    /// Nothing of the owner token is in Redis (the attempt found the lock
    /// held, and takes no place in a queue): the next attempt gets a fresh
    /// one, so that a late give-back of this one can never remove it.
    fn renew(&mut self) {
        self.in_redis = InRedis::No;
        self.owner = new_owner();
    }

    /// Makes the attempts with `owner`, the token of a lock in Redis already
    /// (left by the previous holder of this process, or granted to a request
    /// that is refused), so that a give-back or a drop releases it.
    fn take_over(&mut self, owner: String) {
        self.owner = owner;
        self.in_redis = InRedis::Maybe;
    }

    /// The lease is the request's: the guard releases it from now on.
    fn granted(&mut self, tokens: Tokens, started: Instant) -> Granted {
        self.in_redis = InRedis::No;
        Granted {
            source: Source::Redis,
            owner: std::mem::take(&mut self.owner),
            tokens,
            started,
            attempting: self.attempting.take(),
        }
    }

    /// Gives the owner token back now, owner-checked (leaving the queue,
    /// on protocol v2), then takes a fresh one. If this gets no answer
    /// either, the drop sends it in the background.
    async fn give_back(&mut self, wake: Wake) {
        if self.in_redis == InRedis::No {
            return;
        }
        let backend = self.manager.backend();
        let given_back = match wake {
            Wake::Waiters => backend.leave(self.keys, &self.owner).await.map(drop),
            Wake::Nobody => backend.give_back(self.keys, &self.owner).await,
        };
        if given_back.is_ok() {
            self.renew();
        }
    }
}

impl Claim<'_> {
    /// Hands the give-back of an owner token that may be in Redis to the
    /// runtime, and takes a fresh one.
    fn abandon(&mut self) {
        if self.in_redis == InRedis::No {
            return;
        }
        let (backend, keys, owner) = (
            self.manager.backend().clone(),
            self.keys.clone(),
            std::mem::replace(&mut self.owner, new_owner()),
        );
        self.in_redis = InRedis::No;
        // Shared with the attempts still to come: a shutdown waits for this
        // give-back while any of them lives.
        let attempting = self.attempting.take();
        background::spawn(async move {
            let _ = backend.leave(&keys, &owner).await;
            drop(attempting);
        });
    }
}

/// A fresh owner token: a random uuid v4, hyphenated (without going
/// through `fmt`, on the path of every lock).
fn new_owner() -> String {
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
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
///   owner-checked ([`Claim::give_back`]), as a cancelled attempt's is:
///   if the earlier attempt was granted, its lease is deleted before the new
///   attempt is sent (or, if the give-back gets no answer, it stays until
///   its lease ends: a delay, never a second holder);
/// - its fencing token comes after the earlier one's;
/// - its validity runs from its own start, after the earlier one ended.
///
/// One re-attempt per failure: a connection that dies again at once means
/// Redis is not there, and the caller hears it. The give-back and the
/// re-attempt count as part of the failed attempt: they end within the
/// wait, or one command timeout from the failed attempt's start, whichever
/// is later, so a single attempt (`try_acquire`) takes one step's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reattempt {
    /// The next attempt may be made again if its connection died.
    Available,
    /// The next attempt is one, and must end by `until` (`None`: no limit).
    Made { until: Option<Instant> },
}

/// What became of one acquire attempt that did not fail.
enum Sent {
    /// Its answer.
    Answered(Attempt),
    /// Its connection had died; the attempt is to be made again at once.
    Again,
}

impl Reattempt {
    /// Sends one attempt of `contest` with `claim`'s owner token.
    async fn send(
        &mut self,
        contest: &Contest,
        claim: &mut Claim<'_>,
        step: Step,
    ) -> Result<Sent, Fault> {
        let (keys, lease, deadline) = (&contest.keys, contest.ttl, contest.deadline);
        let started = Instant::now();
        let backend = claim.manager.backend();
        claim.in_redis = InRedis::Maybe;
        let owner = claim.owner.as_str();
        let answer = match (step, *self) {
            (Step::First, Reattempt::Available) => backend.acquire(keys, owner, lease).await,
            (Step::Succeed, _) => Box::pin(backend.succeed(keys, owner, lease)).await,
            // The rare paths are boxed, keeping the future of every attempt
            // as shallow as it was (see `acquire_within`).
            (step, until) => {
                let attempt = async {
                    match step {
                        Step::First | Step::Succeed => backend.acquire(keys, owner, lease).await,
                        Step::InQueue { round } => {
                            backend.wait_turn(keys, owner, lease, round).await
                        }
                    }
                };
                let until = match until {
                    Reattempt::Available => None,
                    Reattempt::Made { until } => until,
                };
                Box::pin(within(until, attempt))
                    .await
                    .and_then(|answer| answer)
            }
        };
        match answer {
            Ok(attempt) => {
                *self = Reattempt::Available;
                Ok(Sent::Answered(attempt))
            }
            Err(fault) if fault.connection_died() && *self == Reattempt::Available => {
                let until = deadline.map(|end| end.max(started + claim.manager.command_timeout()));
                if until.is_some_and(|until| until <= Instant::now()) {
                    return Err(fault); // the drop gives the attempt back
                }
                *self = Reattempt::Made { until };
                let giving_back = within(until, claim.give_back(Wake::Nobody));
                Box::pin(giving_back).await.map_err(|_| fault)?;
                // Unanswered again: given back in the background instead.
                claim.abandon();
                Ok(Sent::Again)
            }
            Err(fault) => Err(fault),
        }
    }
}

/// Awaits `step` until `until` (`None`: no limit); a timeout fault after.
async fn within<T>(until: Option<Instant>, step: impl Future<Output = T>) -> Result<T, Fault> {
    let Some(until) = until else {
        return Ok(step.await);
    };
    tokio::time::timeout_at(until.into(), step).await.map_err(|_| {
        Fault::Redis(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out: an acquire attempt made again after its connection died did not end within the wait or the command timeout",
        )))
    })
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}
