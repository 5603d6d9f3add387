//! Locks kept in this process's memory: what the Lua scripts do, on a map
//! behind a mutex.
//!
//! Leases expire on the monotonic clock, fencing tokens are
//! `max(last + 1, wall clock in µs)` per fencing group as on Redis, and a
//! release wakes the waiters of its lock through the registry the Redis
//! backends use (`waiters.rs`), without pub/sub. Nothing is shared with other processes.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use redis::RedisResult;

use super::outcome::{Attempt, Fault, ForcedRelease, LockInfo, Ownership};
use super::step::SharedStep;
use super::waiters::{self, Link, Waiters};
use crate::keyspace::LockKeys;
use crate::kind::Share;
use crate::unpoisoned;

mod shared;

/// Where [in-memory](crate::LockManager::in_memory) managers keep their locks.
///
/// Clones share one store; managers built over the same store exclude each
/// other as processes sharing one Redis do. Useful in an application's
/// tests to play two processes, and to check that nothing stayed locked:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), distlock::LockError> {
/// use distlock::{InMemoryStore, LockManager};
///
/// let store = InMemoryStore::new();
/// let first = LockManager::in_memory().store(store.clone()).build().await?;
/// let second = LockManager::in_memory().store(store.clone()).build().await?;
///
/// let guard = first.lock("order:42").acquire().await?;
/// assert!(second.lock("order:42").try_acquire().await?.is_none());
/// assert_eq!(store.held_keys(), ["order:42"]);
///
/// let _ = guard.release().await?;
/// assert!(store.held_keys().is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct InMemoryStore {
    state: Arc<Mutex<Contents>>,
    /// Who waits for which lock, woken by a release in this store.
    waiters: Arc<Waiters<InProcess>>,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        InMemoryStore {
            state: Arc::default(),
            waiters: Waiters::new(InProcess),
        }
    }
}

#[derive(Default)]
struct Contents {
    /// By lease key, as on Redis; expired entries are dropped lazily.
    leases: HashMap<String, StoredLease>,
    /// The locks of the shared kinds, by holders' key, as on Redis.
    shared: HashMap<String, shared::SharedLock>,
    /// The last fencing token of each fencing group, by counter key.
    fences: HashMap<String, u64>,
    /// How many leases and shared locks there were after the last sweep of
    /// expired and idle ones.
    swept_at: usize,
}

/// A held lease, as a Redis lease key would hold it.
struct StoredLease {
    /// The key the lock was asked for ([`LockKeys::key`]).
    key: String,
    owner: String,
    expires: Instant,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys (as given to [`LockManager::lock`](crate::LockManager::lock))
    /// of every lock held in this store now, of every kind, sorted, each
    /// once.
    pub fn held_keys(&self) -> Vec<String> {
        let now = Instant::now();
        let state = self.state();
        let exclusive = state.leases.values().filter(|lease| lease.expires > now);
        let shared = state.shared.values().filter(|lock| lock.is_held(now));
        let mut keys: Vec<String> = exclusive
            .map(|lease| lease.key.clone())
            .chain(shared.map(|lock| lock.key.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn state(&self) -> MutexGuard<'_, Contents> {
        unpoisoned::lock(&self.state)
    }
}

impl fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryStore")
            .field("held_keys", &self.held_keys())
            .finish()
    }
}

/// A manager's view of its store.
pub(crate) struct Memory {
    store: InMemoryStore,
}

impl Memory {
    pub(crate) fn new(store: InMemoryStore) -> Self {
        Memory { store }
    }

    pub(crate) fn store(&self) -> &InMemoryStore {
        &self.store
    }

    pub(crate) fn acquire(&self, keys: &LockKeys, owner: &str, lease: Duration) -> Attempt {
        let now = Instant::now();
        let mut state = self.store.state();
        state.sweep(now);
        if let Some(holder) = state.live(&keys.lease, now) {
            return Attempt::Held {
                remaining: Some(holder.expires - now),
            };
        }
        state.leases.insert(
            keys.lease.clone(),
            StoredLease {
                key: keys.key().to_owned(),
                owner: owner.to_owned(),
                expires: now + lease,
            },
        );
        let fencing_token = next_token(state.fences.entry(keys.fence()).or_default());
        Attempt::Acquired {
            fencing_token,
            spare_tokens: 0,
        }
    }

    pub(crate) fn release(&self, keys: &LockKeys, owner: &str) -> Ownership {
        let found = {
            let mut state = self.store.state();
            let found = state.ownership(&keys.lease, owner);
            if found == Ownership::Owned {
                state.leases.remove(&keys.lease);
            }
            found
        };
        if found == Ownership::Owned {
            self.store.waiters.wake(&keys.lease);
        }
        found
    }

    pub(crate) fn extend(&self, keys: &LockKeys, owner: &str, lease: Duration) -> Ownership {
        let mut state = self.store.state();
        let found = state.ownership(&keys.lease, owner);
        if found == Ownership::Owned
            && let Some(held) = state.leases.get_mut(&keys.lease)
        {
            held.expires = Instant::now() + lease;
        }
        found
    }

    /// The lease's time left and the group's fencing counter; waiters are
    /// not counted in memory.
    pub(crate) fn inspect(&self, keys: &LockKeys) -> LockInfo {
        let state = self.store.state();
        if keys.kind.share().is_some() {
            let now = Instant::now();
            let census = state.shared.get(&keys.lease).map(|lock| lock.census(now));
            let census = census.unwrap_or_default();
            return LockInfo {
                key: keys.key().to_owned(),
                holders: census.holders,
                remaining: census.remaining,
                fencing_counter: state.fences.get(&keys.fence()).copied(),
                waiters: Some(census.waiters),
            };
        }
        let remaining = state.remaining(&keys.lease);
        LockInfo {
            key: keys.key().to_owned(),
            holders: u32::from(remaining.is_some()),
            remaining,
            fencing_counter: state.fences.get(&keys.fence()).copied(),
            waiters: None,
        }
    }

    /// Lifts the fencing counter of `keys`' group to at least `token`.
    pub(crate) fn raise_fence(&self, keys: &LockKeys, token: u64) {
        let mut state = self.store.state();
        let last = state.fences.entry(keys.fence()).or_default();
        *last = (*last).max(token);
    }

    /// Deletes the lease whoever holds it, and wakes the lock's waiters.
    pub(crate) fn force_release(&self, keys: &LockKeys) -> ForcedRelease {
        let freed = {
            let mut state = self.store.state();
            if keys.kind.share().is_some() {
                let lock = state.shared.get_mut(&keys.lease);
                lock.and_then(|lock| {
                    let census = lock.census(Instant::now());
                    lock.clear();
                    (census.holders > 0).then_some(census.remaining)
                })
            } else {
                let remaining = state.remaining(&keys.lease);
                state.leases.remove(&keys.lease);
                remaining.map(Some)
            }
        };
        match freed {
            Some(remaining) => {
                self.store.waiters.wake(&keys.lease);
                ForcedRelease::Freed { remaining }
            }
            None => ForcedRelease::NotHeld,
        }
    }

    pub(crate) async fn subscribe(&self, keys: &LockKeys) -> Subscription {
        self.store.waiters.subscribe(&keys.lease).await
    }
}

impl Contents {
    /// The lease of `lease_key`, unless there is none or it has run out.
    fn live(&self, lease_key: &str, now: Instant) -> Option<&StoredLease> {
        self.leases
            .get(lease_key)
            .filter(|lease| lease.expires > now)
    }

    /// What is left of the lease of `lease_key`, unless there is none.
    fn remaining(&self, lease_key: &str) -> Option<Duration> {
        let now = Instant::now();
        self.live(lease_key, now).map(|lease| lease.expires - now)
    }

    /// What an owner-checked step by `owner` finds.
    fn ownership(&self, lease_key: &str, owner: &str) -> Ownership {
        match self.live(lease_key, Instant::now()) {
            Some(lease) if lease.owner == owner => Ownership::Owned,
            Some(_) => Ownership::TakenOver,
            None => Ownership::Expired,
        }
    }

    /// Drops expired leases once their number has doubled since the last
    /// sweep, so a store serving ever new keys stays bounded by the live
    /// ones at amortized constant cost.
    fn sweep(&mut self, now: Instant) {
        let stored = self.leases.len() + self.shared.len();
        if stored < 64 || stored < 2 * self.swept_at {
            return;
        }
        self.leases.retain(|_, lease| lease.expires > now);
        self.shared.retain(|_, lock| !lock.is_idle(now));
        self.swept_at = self.leases.len() + self.shared.len();
    }
}

impl Memory {
    pub(crate) fn shared_attempt(
        &self,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> Result<Attempt, Fault> {
        let now = Instant::now();
        let (attempt, grants) = {
            let mut state = self.store.state();
            state.sweep(now);
            let (lock, fence) = state.shared_lock(keys, now);
            let share = lock
                .admit(share, now)
                .map_err(|in_use| Fault::Capacity { in_use })?;
            // First those ahead (and the caller, if it is next): as a
            // release would have, had it seen their places alive.
            let mut grants = Vec::new();
            lock.grant_waiting(share, now, &mut grants, Some(owner), &mut || {
                next_token(fence)
            });
            let attempt = lock.attempt(share, step, owner, lease, now, &mut || next_token(fence));
            state.forget_if_idle(keys, now);
            (attempt, grants)
        };
        self.deliver(keys, grants);
        Ok(attempt)
    }

    pub(crate) fn shared_ownership(
        &self,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> Ownership {
        let now = Instant::now();
        let (found, grants) = {
            let mut state = self.store.state();
            let (lock, fence) = state.shared_lock(keys, now);
            let share = lock.in_use(share);
            let found = lock.let_go(step, owner, lease, now);
            let mut grants = Vec::new();
            lock.grant_waiting(share, now, &mut grants, None, &mut || next_token(fence));
            state.forget_if_idle(keys, now);
            (found, grants)
        };
        self.deliver(keys, grants);
        found
    }

    fn deliver(&self, keys: &LockKeys, grants: Vec<shared::WaiterGrant>) {
        for grant in grants {
            let waiters = &self.store.waiters;
            waiters.grant(&keys.lease, &grant.owner, grant.fencing_token, grant.round);
        }
    }
}

impl Contents {
    /// The shared lock of `keys`, with its leases that ran out dropped, and
    /// its group's fencing counter.
    fn shared_lock(
        &mut self,
        keys: &LockKeys,
        now: Instant,
    ) -> (&mut shared::SharedLock, &mut u64) {
        let lock = self.shared.entry(keys.lease.clone()).or_default();
        keys.key().clone_into(&mut lock.key);
        lock.expire(now);
        let fence = self.fences.entry(keys.fence()).or_default();
        (lock, fence)
    }

    /// Drops the shared lock of `keys` once nobody holds it or waits for
    /// it, as Redis drops an empty set: a store serving ever new keys keeps
    /// only those in use.
    fn forget_if_idle(&mut self, keys: &LockKeys, now: Instant) {
        if self
            .shared
            .get(&keys.lease)
            .is_some_and(|lock| lock.is_idle(now))
        {
            self.shared.remove(&keys.lease);
        }
    }
}

/// A waiter's interest in the releases of one lock.
pub(crate) type Subscription = waiters::Subscription<InProcess>;

/// Wake-ups within the process: a release wakes the waiters of this store
/// directly, so there is nothing to subscribe to.
pub(crate) struct InProcess;

impl Link for InProcess {
    async fn subscribe(&mut self, _channel: &str) -> RedisResult<()> {
        Ok(())
    }

    async fn unsubscribe(&mut self, _channel: &str) -> RedisResult<()> {
        Ok(())
    }
}

/// The next fencing token of a group whose last was `last`, as on Redis:
/// one above it, and at least the wall clock in microseconds.
fn next_token(last: &mut u64) -> u64 {
    *last = (*last + 1).max(wall_clock_micros());
    *last
}

fn wall_clock_micros() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(key: &str) -> LockKeys {
        LockKeys::new("distlock:", key).expect("valid key")
    }

    #[test]
    fn a_lease_is_exclusive_until_it_runs_out() {
        let memory = Memory::new(InMemoryStore::new());
        let k = keys("a");
        let first = memory.acquire(&k, "one", Duration::from_millis(30));
        let Attempt::Acquired { fencing_token, .. } = first else {
            panic!("{first:?}")
        };
        assert!(matches!(
            memory.acquire(&k, "two", Duration::from_secs(1)),
            Attempt::Held { remaining: Some(r) } if r <= Duration::from_millis(30)
        ));
        std::thread::sleep(Duration::from_millis(35));
        assert_eq!(
            memory.extend(&k, "one", Duration::from_secs(1)),
            Ownership::Expired
        );
        let Attempt::Acquired {
            fencing_token: next,
            ..
        } = memory.acquire(&k, "two", Duration::from_secs(1))
        else {
            panic!("expired lease not taken")
        };
        assert!(next > fencing_token);
        assert_eq!(memory.release(&k, "one"), Ownership::TakenOver);
        assert_eq!(memory.release(&k, "two"), Ownership::Owned);
        assert_eq!(memory.release(&k, "two"), Ownership::Expired);
    }

    #[test]
    fn sweeping_keeps_live_leases_only() {
        let store = InMemoryStore::new();
        let memory = Memory::new(store.clone());
        for i in 0..200 {
            let _ = memory.acquire(&keys(&format!("gone:{i}")), "o", Duration::from_millis(3));
        }
        std::thread::sleep(Duration::from_millis(5));
        for i in 0..200 {
            let _ = memory.acquire(&keys(&format!("kept:{i}")), "o", Duration::from_secs(5));
        }
        assert_eq!(store.state().leases.len(), 200, "expired leases were kept");
        assert_eq!(store.held_keys().len(), 200);
    }

    #[test]
    fn shared_locks_are_kept_while_held_or_waited_for_only() {
        let store = InMemoryStore::new();
        let memory = Memory::new(store.clone());
        let permits = crate::LockKind::Permits(2).share().expect("a shared kind");
        let keys = |key: &str| {
            LockKeys::of_kind("distlock:", key, crate::LockKind::Permits(2)).expect("valid key")
        };
        let (acquire, release) = (SharedStep::Acquire, SharedStep::Release);
        let long = Duration::from_secs(5);
        for i in 0..100 {
            let k = keys(&format!("released:{i}"));
            let _ = memory.shared_attempt(&k, permits, acquire, "o", long);
            memory.shared_ownership(&k, permits, release, "o", long);
        }
        assert!(store.state().shared.is_empty(), "released locks were kept");
        for i in 0..100 {
            let k = keys(&format!("crashed:{i}"));
            let _ = memory.shared_attempt(&k, permits, acquire, "o", Duration::from_millis(3));
        }
        std::thread::sleep(Duration::from_millis(5));
        for i in 0..100 {
            let k = keys(&format!("held:{i}"));
            let _ = memory.shared_attempt(&k, permits, acquire, "o", long);
        }
        assert_eq!(store.state().shared.len(), 100, "expired holders were kept");
        assert_eq!(store.held_keys().len(), 100);
    }
}
