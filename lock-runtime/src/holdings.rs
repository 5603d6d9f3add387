//! The locks a manager holds right now, so that shutting it down can
//! release them, and whether it has been shut down.
//!
//! Exactly one party releases each lock: its guard or the shutdown. The
//! entry decides: whoever removes it from the map releases. Holding and
//! letting go cost one short, normally uncontended, mutex each; an acquire
//! attempt is counted with two atomic operations, so that a shutdown also
//! covers attempts whose answer is still on the way; waiting for the
//! shutdown costs nothing until someone actually waits.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::keyspace::LockKeys;
use crate::lease::Validity;
use crate::unpoisoned;

/// A manager's held locks, and its shutdown.
#[derive(Default)]
pub(crate) struct Holdings {
    shared: Arc<Ledger>,
}

#[derive(Default)]
struct Ledger {
    held: Mutex<HeldList>,
    /// Set (under `held`'s lock) when the shutdown starts; never cleared.
    closed: AtomicBool,
    /// Work under way that may still take a lock off Redis, which a
    /// shutdown waits for (bounded): releases by guards, and acquire
    /// attempts in flight, whose answer may grant a lock after the shutdown
    /// started (the requester then gives it back before its count drops).
    under_way: AtomicUsize,
    /// Signalled when the shutdown starts (waiters give up), and when the
    /// last work under way ends after it started.
    changed: Notify,
    /// A guard dropped as its runtime shut down could not reach Redis.
    unreachable_at_exit: AtomicBool,
}

#[derive(Default)]
struct HeldList {
    next_id: u64,
    locks: HashMap<u64, Arc<Holding>>,
}

/// One held lock: what releasing it takes, and its validity.
pub(crate) struct Holding {
    pub(crate) key: String,
    pub(crate) keys: LockKeys,
    pub(crate) owner: String,
    pub(crate) validity: Validity,
}

/// Identifies a held lock among its manager's holdings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HoldingId(u64);

/// The manager is shut down: no lock may be held through it any more.
#[derive(Debug)]
pub(crate) struct ShutDown;

/// Who releases a lock a guard lets go of.
pub(crate) enum Releaser {
    /// The guard does; the shutdown waits for this token to drop.
    Guard(UnderWay),
    /// The shutdown took the lock over and released it (or is doing so).
    Shutdown,
}

/// A guard's release, or an acquire attempt, under way; counted until
/// dropped.
pub(crate) struct UnderWay {
    shared: Arc<Ledger>,
}

impl Holdings {
    /// Records a lock just granted; refused once the manager is shut down.
    pub(crate) fn hold(&self, holding: Arc<Holding>) -> Result<HoldingId, ShutDown> {
        let mut held = self.shared.held();
        if self.is_closed() {
            return Err(ShutDown);
        }
        let id = held.next_id;
        held.next_id += 1;
        held.locks.insert(id, holding);
        Ok(HoldingId(id))
    }

    /// The guard of `id` lets go of its lock: tells who releases it.
    pub(crate) fn let_go(&self, id: HoldingId) -> Releaser {
        if self.shared.held().locks.remove(&id.0).is_none() {
            return Releaser::Shutdown;
        }
        Releaser::Guard(self.under_way())
    }

    /// An acquire attempt is about to be sent: counted until the token
    /// drops, which the requester keeps until it holds the lock or gave it
    /// back. Refused once the manager is shut down.
    pub(crate) fn attempt(&self) -> Result<UnderWay, ShutDown> {
        let attempting = self.under_way();
        // Counted before looking (both SeqCst): a shutdown closing after
        // this look sees the count and waits, so an attempt is either
        // never sent or covered by the shutdown.
        if self.is_closed() {
            return Err(ShutDown);
        }
        Ok(attempting)
    }

    fn under_way(&self) -> UnderWay {
        self.shared.under_way.fetch_add(1, Ordering::SeqCst);
        UnderWay {
            shared: self.shared.clone(),
        }
    }

    /// How many releases by guards and acquire attempts are under way.
    pub(crate) fn count_under_way(&self) -> usize {
        self.shared.under_way.load(Ordering::SeqCst)
    }

    /// Whether a release of a guard dropped as its runtime shut down found
    /// Redis unreachable.
    pub(crate) fn unreachable_at_exit(&self) -> bool {
        self.shared.unreachable_at_exit.load(Ordering::SeqCst)
    }

    /// Records that such a release got no answer in time.
    pub(crate) fn mark_unreachable_at_exit(&self) {
        self.shared
            .unreachable_at_exit
            .store(true, Ordering::SeqCst);
    }

    /// Whether the manager has been shut down.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Shuts the manager down: from now on nothing is held through it,
    /// waiters give up, and the caller releases the locks returned.
    pub(crate) fn close(&self) -> Vec<Arc<Holding>> {
        let taken: Vec<Arc<Holding>> = {
            let mut held = self.shared.held();
            self.shared.closed.store(true, Ordering::SeqCst);
            held.locks.drain().map(|(_, holding)| holding).collect()
        };
        self.shared.changed.notify_waiters();
        taken
    }

    /// Completes once the manager is shut down.
    pub(crate) async fn closed(&self) {
        self.wait_for(|shared| shared.closed.load(Ordering::SeqCst))
            .await;
    }

    /// Completes once no guard's release and no acquire attempt is under
    /// way (after [`close`](Self::close)).
    pub(crate) async fn settled(&self) {
        self.wait_for(|shared| shared.under_way.load(Ordering::SeqCst) == 0)
            .await;
    }

    async fn wait_for(&self, done: impl Fn(&Ledger) -> bool) {
        loop {
            let mut changed = pin!(self.shared.changed.notified());
            changed.as_mut().enable();
            if done(&self.shared) {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        let was_last = self.shared.under_way.fetch_sub(1, Ordering::SeqCst) == 1;
        // Only a shutdown waits for the count to reach zero.
        if was_last && self.shared.closed.load(Ordering::SeqCst) {
            self.shared.changed.notify_waiters();
        }
    }
}

impl Ledger {
    fn held(&self) -> MutexGuard<'_, HeldList> {
        unpoisoned::lock(&self.held)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn holding(key: &str) -> Arc<Holding> {
        Arc::new(Holding {
            key: key.to_owned(),
            keys: LockKeys::new("p:", key).expect("valid key"),
            owner: "owner".to_owned(),
            validity: Validity::new(Instant::now() + Duration::from_secs(10)),
        })
    }

    #[tokio::test]
    async fn exactly_one_party_releases_each_lock() {
        let holdings = Holdings::default();
        let kept = holdings.hold(holding("kept")).expect("open");
        let let_go = holdings.hold(holding("let go")).expect("open");
        let releasing = holdings.let_go(let_go);
        assert!(matches!(releasing, Releaser::Guard(_)));

        let taken = holdings.close();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].key, "kept");
        assert!(matches!(holdings.let_go(kept), Releaser::Shutdown));
        assert!(holdings.hold(holding("late")).is_err());
        holdings.closed().await;

        // The shutdown waits for the guard's release under way.
        let waiting = tokio::time::timeout(Duration::from_millis(20), holdings.settled());
        assert!(waiting.await.is_err());
        drop(releasing);
        tokio::time::timeout(Duration::from_secs(1), holdings.settled())
            .await
            .expect("released");
    }

    #[tokio::test]
    async fn a_shutdown_waits_for_attempts_in_flight_and_refuses_new_ones() {
        let holdings = Holdings::default();
        let attempting = holdings.attempt().expect("open");
        assert!(holdings.close().is_empty());
        assert!(holdings.attempt().is_err());
        assert_eq!(holdings.count_under_way(), 1);
        let waiting = tokio::time::timeout(Duration::from_millis(20), holdings.settled());
        assert!(waiting.await.is_err());
        drop(attempting);
        tokio::time::timeout(Duration::from_secs(1), holdings.settled())
            .await
            .expect("the attempt was given back");
    }
}
