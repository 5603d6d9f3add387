//! The shared kinds (semaphores, read-write locks) in memory: what
//! `scripts/shared.lua` does in Redis, on the store's map.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backend::outcome::{Attempt, Ownership};
use crate::backend::step::SharedStep;
use crate::kind::Share;

/// A lock of a shared kind: its holders, and its waiters in arrival order.
#[derive(Default)]
pub(super) struct SharedLock {
    /// The key the lock was asked for ([`LockKeys::key`]).
    pub(super) key: String,
    holders: Vec<SharedHolder>,
    queue: VecDeque<Place>,
    /// The capacity it is in use with, which every caller must ask for.
    capacity: Option<u32>,
}

struct SharedHolder {
    owner: String,
    weight: u32,
    expires: Instant,
}

/// A waiter's place in line, living one lease unless refreshed.
struct Place {
    owner: String,
    weight: u32,
    lease: Duration,
    round: u64,
    expires: Instant,
}

/// A grant to a waiter, to be delivered once the store is unlocked.
pub(super) struct WaiterGrant {
    pub(super) owner: String,
    pub(super) fencing_token: u64,
    pub(super) round: u64,
}

/// What an operator sees of a shared lock.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Census {
    /// How many hold it.
    pub(super) holders: u32,
    /// What is left of the longest lease.
    pub(super) remaining: Option<Duration>,
    /// How many live places its line holds.
    pub(super) waiters: u64,
}

impl SharedLock {
    /// The weighing of a caller asking for `share`: refused with the
    /// capacity in use when it asks for another while the lock is in use;
    /// a lock nobody holds or waits for takes the caller's.
    pub(super) fn admit(&mut self, share: Share, now: Instant) -> Result<Share, u32> {
        match self.capacity {
            Some(in_use) if in_use != share.capacity && !self.is_idle(now) => Err(in_use),
            _ => {
                self.capacity = Some(share.capacity);
                Ok(share)
            }
        }
    }

    /// `share` with the capacity the lock is in use with, for letting go.
    pub(super) fn in_use(&self, share: Share) -> Share {
        Share {
            capacity: self.capacity.unwrap_or(share.capacity),
            ..share
        }
    }

    /// Drops the leases that ran out.
    pub(super) fn expire(&mut self, now: Instant) {
        self.holders.retain(|holder| holder.expires > now);
    }

    /// How many hold it, what is left of the longest lease, and how many
    /// live places the line holds, for an operator.
    pub(super) fn census(&self, now: Instant) -> Census {
        let live = self.holders.iter().filter(|holder| holder.expires > now);
        let holders = u32::try_from(live.clone().count()).unwrap_or(u32::MAX);
        let last = live.map(|holder| holder.expires - now).max();
        let waiters = self
            .queue
            .iter()
            .filter(|place| place.expires > now)
            .count();
        Census {
            holders,
            remaining: last,
            waiters: u64::try_from(waiters).unwrap_or(u64::MAX),
        }
    }

    /// Frees it whoever holds it (an operator's override).
    pub(super) fn clear(&mut self) {
        self.holders.clear();
    }

    /// Whether nobody holds it and nobody alive waits for it.
    pub(super) fn is_idle(&self, now: Instant) -> bool {
        !self.is_held(now) && self.queue.iter().all(|place| place.expires <= now)
    }

    /// Whether someone holds a lease that has not run out.
    pub(super) fn is_held(&self, now: Instant) -> bool {
        self.holders.iter().any(|holder| holder.expires > now)
    }

    /// An acquire, or a wait that also takes or refreshes a place in line.
    pub(super) fn attempt(
        &mut self,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
        now: Instant,
        token: &mut impl FnMut() -> u64,
    ) -> Attempt {
        if let Some(held) = self.holders.iter_mut().find(|holder| holder.owner == owner) {
            // Granted from the queue before this attempt, unheard so far.
            held.expires = now + lease;
            return acquired(token());
        }
        self.queue.retain(|place| place.expires > now);
        let first = self.queue.front().is_none_or(|place| place.owner == owner);
        let fits = self.held_weight() + u64::from(share.weight) <= u64::from(share.capacity);
        if first && fits {
            self.queue.retain(|place| place.owner != owner);
            self.hold(owner, share.weight, lease, now);
            return acquired(token());
        }
        let remaining = self.first_lease_ends(now);
        let SharedStep::Wait { round } = step else {
            return Attempt::Held { remaining };
        };
        let place = Place {
            owner: owner.to_owned(),
            weight: share.weight,
            lease,
            round,
            expires: now + lease,
        };
        match self.queue.iter_mut().find(|place| place.owner == owner) {
            Some(kept) => *kept = place,
            None => self.queue.push_back(place),
        }
        Attempt::Queued { remaining }
    }

    /// A release, a leave (also out of line) or an extend, owner-checked.
    pub(super) fn let_go(
        &mut self,
        step: SharedStep,
        owner: &str,
        lease: Duration,
        now: Instant,
    ) -> Ownership {
        if step == SharedStep::Leave {
            self.queue.retain(|place| place.owner != owner);
        }
        let Some(at) = self.holders.iter().position(|holder| holder.owner == owner) else {
            return Ownership::Expired;
        };
        if step == SharedStep::Extend {
            self.holders[at].expires = now + lease;
        } else {
            self.holders.swap_remove(at);
        }
        Ownership::Owned
    }

    /// Hands free capacity to the first live waiters that fit, in order;
    /// the caller (`me`), if among them, learns it from its own attempt's
    /// answer.
    pub(super) fn grant_waiting(
        &mut self,
        share: Share,
        now: Instant,
        grants: &mut Vec<WaiterGrant>,
        me: Option<&str>,
        token: &mut impl FnMut() -> u64,
    ) {
        self.queue.retain(|place| place.expires > now);
        while let Some(place) = self.queue.front() {
            if self.held_weight() + u64::from(place.weight) > u64::from(share.capacity) {
                return;
            }
            let Some(place) = self.queue.pop_front() else {
                return;
            };
            self.hold(&place.owner, place.weight, place.lease, now);
            let token = token();
            if me == Some(place.owner.as_str()) {
                continue;
            }
            grants.push(WaiterGrant {
                owner: place.owner,
                fencing_token: token,
                round: place.round,
            });
        }
    }

    fn hold(&mut self, owner: &str, weight: u32, lease: Duration, now: Instant) {
        self.holders.push(SharedHolder {
            owner: owner.to_owned(),
            weight,
            expires: now + lease,
        });
    }

    fn held_weight(&self) -> u64 {
        self.holders
            .iter()
            .map(|holder| u64::from(holder.weight))
            .sum()
    }

    fn first_lease_ends(&self, now: Instant) -> Option<Duration> {
        let first = self.holders.iter().map(|holder| holder.expires).min()?;
        Some(first.saturating_duration_since(now))
    }
}

fn acquired(fencing_token: u64) -> Attempt {
    Attempt::Acquired {
        fencing_token,
        spare_tokens: 0,
    }
}
