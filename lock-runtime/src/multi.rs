//! Locks over several keys: all of them, or none.
//!
//! A [`MultiLockRequest`] takes its keys one by one, each an ordinary lock,
//! in one order that every request follows (the keys sorted, duplicates
//! dropped). Two requests whose sets share keys therefore meet at the first
//! key they share and queue there like any two requests for that key: no
//! cycle of waiters can form, whatever order the caller named the keys in,
//! so there is no deadlock. A key that cannot be had within the wait gives
//! back every key taken before it, so nothing is held unless everything is.
//!
//! The lock's fencing token is the highest of its keys' tokens, which is
//! above every earlier holder's token of **each** key. Once every key is
//! held, the keys taken first are re-armed (their leases ran while the
//! others were awaited), each key's fencing counter is lifted to the token,
//! and only if every key is still certainly held after that is the guard
//! handed out: each key was then held without a break from its grant to the
//! lift, so every later holder of any of the keys gets a higher token. The
//! keys are never passed on within the process (a baton would carry a token
//! reserved before the lift), and a task that already holds one of the
//! keys cannot take them again as part of a set (its outer lock could pass
//! a baton below the token).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use futures_util::future::try_join_all;

use crate::backend::step_failed;
use crate::keyspace::LockKeys;
use crate::kind::Family;
use crate::lease;
use crate::request::{Terms, none_if_held};
use crate::{LockError, LockGuard, LockManager, LockRequest, ReleaseOutcome, clock, reentrancy};

/// The most keys one lock may have.
pub const MAX_KEYS: usize = 16;

impl LockManager {
    /// Starts a request for the locks of all of `keys` at once; see
    /// [`MultiLockRequest`].
    ///
    /// ```no_run
    /// # async fn demo(manager: distlock::LockManager) -> Result<(), distlock::LockError> {
    /// // A transfer from account 2 to account 1 and one from 1 to 2, at the
    /// // same time, take the same two locks in the same order: no deadlock.
    /// let both = manager.lock_all(["account:2", "account:1"]).acquire().await?;
    /// println!("fencing token {}", both.fencing_token());
    /// let _ = both.release().await?;
    /// # Ok(()) }
    /// ```
    pub fn lock_all<I, S>(&self, keys: I) -> MultiLockRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MultiLockRequest {
            manager: self.clone(),
            keys: keys.into_iter().map(Into::into).collect(),
            terms: Terms::with_ttl(self.default_ttl()),
        }
    }
}

/// A lock over several keys about to be acquired, made by
/// [`LockManager::lock_all`]: every key, or none.
///
/// The settings mean what they mean for one key ([`LockRequest`]) and apply
/// to every key; the wait covers them all.
#[derive(Debug, Clone)]
#[must_use = "a lock request does nothing until `acquire` or `try_acquire` is awaited"]
pub struct MultiLockRequest {
    manager: LockManager,
    keys: Vec<String>,
    terms: Terms,
}

impl MultiLockRequest {
    /// The lease of each key; see [`LockRequest::ttl`].
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.terms.ttl = ttl;
        self
    }

    /// How long to wait for all the keys together; see [`LockRequest::wait`].
    pub fn wait(mut self, wait: Duration) -> Self {
        self.terms.wait = Some(wait);
        self
    }

    /// Renews every key's lease while the guard lives; see
    /// [`LockRequest::renew`].
    pub fn renew(mut self) -> Self {
        self.terms.renew = true;
        self
    }

    /// Keeps every key held until this long after it was acquired; see
    /// [`LockRequest::hold_at_least`].
    pub fn hold_at_least(mut self, hold_at_least: Duration) -> Self {
        self.terms.hold_at_least = hold_at_least;
        self
    }

    /// Acquires every key, waiting up to the `wait` duration (by default
    /// the lease) for all of them together; on failure nothing is held.
    ///
    /// Fails with [`LockError::InvalidConfig`] for no keys or more than
    /// [`MAX_KEYS`], and as [`LockRequest::acquire`] does otherwise.
    pub async fn acquire(self) -> Result<MultiLockGuard, LockError> {
        let wait = self.terms.wait();
        self.acquire_within(wait).await
    }

    /// Asks for `terms` instead of what was set so far.
    pub(crate) fn with_terms(mut self, terms: Terms) -> Self {
        self.terms = terms;
        self
    }

    /// Makes one attempt per key: `Ok(None)` when another owner holds one
    /// of them, and then none is held.
    pub async fn try_acquire(self) -> Result<Option<MultiLockGuard>, LockError> {
        none_if_held(self.acquire_within(Duration::ZERO).await)
    }

    async fn acquire_within(self, wait: Duration) -> Result<MultiLockGuard, LockError> {
        let keys = self.ordered_keys()?;
        lease::validate_hold(self.terms.hold_at_least, self.terms.ttl)?;
        let started = Instant::now();
        let deadline = started.checked_add(wait);
        let mut guards = Vec::with_capacity(keys.len());
        for key in &keys {
            let left = clock::left_until(deadline);
            match Box::pin(self.one(key).wait(left).acquire()).await {
                Ok(guard) => guards.push(guard),
                Err(error) => {
                    give_back(guards).await;
                    return Err(waited_for_all(error, started));
                }
            }
        }
        let fencing_token = guards
            .iter()
            .map(LockGuard::fencing_token)
            .max()
            .unwrap_or(0);
        if let Err(error) = self.settle(&keys, &guards, fencing_token).await {
            give_back(guards).await;
            return Err(waited_for_all(error, started));
        }
        for guard in &mut guards {
            guard.hold_for(self.terms.hold_at_least);
        }
        Ok(MultiLockGuard {
            guards,
            fencing_token,
        })
    }

    /// Once every key is held: re-arms the keys taken before the last,
    /// lifts every key's fencing counter to `token`, and checks that every
    /// key is still certainly held. A key found lost on the way is a
    /// [`LockError::Timeout`] on it: its lease ran out while the others were
    /// awaited, and another holder may have had a lower token meanwhile.
    async fn settle(
        &self,
        keys: &[String],
        guards: &[LockGuard],
        token: u64,
    ) -> Result<(), LockError> {
        let lapsed = |guard: &LockGuard| LockError::Timeout {
            key: guard.key().to_owned(),
            waited: Duration::ZERO,
        };
        // Each step on every key at once: one round trip each.
        let rearming = guards.iter().rev().skip(1).map(|guard| async move {
            guard
                .extend(self.terms.ttl)
                .await
                .map_err(|_| lapsed(guard))
        });
        Box::pin(try_join_all(rearming)).await?;
        self.raise_fences(keys, token).await?;
        match guards.iter().find(|guard| !guard.is_held()) {
            Some(guard) => Err(lapsed(guard)),
            None => Ok(()),
        }
    }

    /// The keys in the one order every request takes them in: sorted,
    /// without duplicates.
    fn ordered_keys(&self) -> Result<Vec<String>, LockError> {
        let mut keys = self.keys.clone();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(LockError::invalid_config(format!(
                "a lock over several keys takes 1 to {MAX_KEYS} keys, got {}",
                keys.len()
            )));
        }
        let manager = self.manager.inner().id();
        if let Some(held) = keys
            .iter()
            .find(|key| reentrancy::find(manager, key, Family::Exclusive).is_some())
        {
            return Err(LockError::invalid_config(format!(
                "this task already holds `{held}`, so it cannot take it again as one of a lock over several keys; take the set before the single key, or leave `{held}` out of the set"
            )));
        }
        Ok(keys)
    }

    /// The request for one of the keys.
    fn one(&self, key: &str) -> LockRequest {
        // `hold_at_least` is set once every key is held: a key given back
        // on the way is released at once.
        let terms = Terms {
            hold_at_least: Duration::ZERO,
            ..self.terms
        };
        self.manager.lock(key).with_terms(terms).one_of_several()
    }

    /// Lifts every key's fencing counter to the lock's token.
    async fn raise_fences(&self, keys: &[String], token: u64) -> Result<(), LockError> {
        let backend = self.manager.inner().backend();
        let raising = keys.iter().map(|key| async move {
            let lock_keys = LockKeys::new(self.manager.key_prefix(), key)?;
            let raised = backend.raise_fence(&lock_keys, token).await;
            raised.map_err(|fault| step_failed(key, fault))
        });
        Box::pin(try_join_all(raising)).await?;
        Ok(())
    }
}

/// Releases the keys taken so far, the last first.
async fn give_back(guards: Vec<LockGuard>) {
    for guard in guards.into_iter().rev() {
        // A key whose release fails is freed by its lease.
        let _ = Box::pin(guard.release()).await;
    }
}

/// A key's timeout, as the wait for all of them.
fn waited_for_all(error: LockError, started: Instant) -> LockError {
    match error {
        LockError::Timeout { key, .. } => LockError::Timeout {
            key,
            waited: started.elapsed(),
        },
        other => other,
    }
}

/// A held lock over several keys.
///
/// Release it with [`release`](Self::release); dropped, each key is
/// released as a dropped [`LockGuard`] is.
#[derive(Debug)]
pub struct MultiLockGuard {
    guards: Vec<LockGuard>,
    fencing_token: u64,
}

impl MultiLockGuard {
    /// The keys, in the order they were taken (sorted).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.guards.iter().map(LockGuard::key)
    }

    /// The guard of each key, in the order they were taken.
    pub fn guards(&self) -> &[LockGuard] {
        &self.guards
    }

    /// The lock's fencing token: above the token of every earlier holder of
    /// each of its keys, and below the token of every later one (on Redlock,
    /// whose tokens are best-effort, as far as its nodes agree).
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    /// Until when every key is certainly ours: the earliest of their
    /// validities.
    pub fn valid_until(&self) -> Instant {
        self.guards
            .iter()
            .map(LockGuard::valid_until)
            .min()
            .unwrap_or_else(Instant::now)
    }

    /// How much of the validity is left (zero once it has run out).
    pub fn remaining(&self) -> Duration {
        self.valid_until().saturating_duration_since(Instant::now())
    }

    /// Whether every key is still certainly ours.
    pub fn is_held(&self) -> bool {
        self.guards.iter().all(LockGuard::is_held)
    }

    /// Completes when any of the keys is lost; see [`LockGuard::lost`].
    pub async fn lost(&self) {
        let mut losses: FuturesUnordered<_> = self.guards.iter().map(LockGuard::lost).collect();
        losses.next().await;
    }

    /// Re-arms every key's lease to `ttl` from now; fails with the first
    /// key that is no longer certainly ours. See [`LockGuard::extend`].
    pub async fn extend(&self, ttl: Duration) -> Result<(), LockError> {
        for guard in &self.guards {
            Box::pin(guard.extend(ttl)).await?;
        }
        Ok(())
    }

    /// Releases every key, the last taken first, and tells what was found:
    /// [`ReleaseOutcome::Released`] when every key was still ours, else the
    /// outcome of a key that was not (taken over before expired). The first
    /// error is returned once every key's release was tried.
    pub async fn release(self) -> Result<ReleaseOutcome, LockError> {
        let mut outcome = ReleaseOutcome::Released;
        let mut failed = None;
        for guard in self.guards.into_iter().rev() {
            match Box::pin(guard.release()).await {
                Ok(found) => outcome = worse(outcome, found),
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        failed.map_or(Ok(outcome), Err)
    }
}

/// The outcome that tells more of two: a key taken over over one expired,
/// either over one released or joined.
fn worse(a: ReleaseOutcome, b: ReleaseOutcome) -> ReleaseOutcome {
    let rank = |outcome| match outcome {
        ReleaseOutcome::Released | ReleaseOutcome::Nested => 0,
        ReleaseOutcome::Expired => 1,
        ReleaseOutcome::TakenOver => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}
