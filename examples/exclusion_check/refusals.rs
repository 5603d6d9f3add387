//! Telling a late write from an overlap.
//!
//! A fenced write refused while its section still waits for the answer is an
//! overlap, and the section reports it. A refused write whose section had
//! been cancelled (dropped with the write in flight) needs more: it is a
//! late write if the section that took the lock next did so after the drop
//! (the drop released the lock, and the write reached Redis after that), and
//! an overlap if it took the lock before, while the dropped body still ran.
//! Fencing tokens are Redis's clock in µs at acquisition, and each refusal
//! names the first successor that entered, so the worker that dropped the
//! body compares that instant with when it dropped it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;

use crate::section::{Refusal, Slot};

/// Cancellations kept: far more than a process makes between two looks at
/// the refusals.
const KEPT: usize = 1024;

/// A body dropped somewhere between two instants (µs since the Unix epoch).
#[derive(Debug, Clone, Copy)]
pub struct Dropped {
    pub token: u64,
    /// When the canceller fired: the body still ran.
    pub from: u64,
    /// After the drop.
    pub to: u64,
}

/// The latest bodies this process dropped.
pub struct Cancellations {
    ring: Mutex<VecDeque<Dropped>>,
}

impl Cancellations {
    pub fn new() -> Cancellations {
        let unused = Dropped {
            token: 0,
            from: 0,
            to: 0,
        };
        let mut ring = VecDeque::with_capacity(KEPT);
        // Touch the memory now, so it counts before the soak measures any.
        ring.extend(std::iter::repeat_n(unused, KEPT));
        ring.clear();
        Cancellations {
            ring: Mutex::new(ring),
        }
    }

    pub fn record(&self, dropped: Dropped) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == KEPT {
            ring.pop_front();
        }
        ring.push_back(dropped);
    }

    fn find(&self, token: u64) -> Option<Dropped> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter()
            .rev()
            .find(|dropped| dropped.token == token)
            .copied()
    }
}

/// What a refused write of a dropped body was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The successor took the lock after the drop.
    Late,
    /// The successor took the lock while the body still ran.
    Overlap,
    /// The successor took the lock during the drop, or is no longer known.
    Undecided,
}

/// This process's refused writes, by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Explained {
    pub late: u64,
    pub overlaps: u64,
    pub undecided: u64,
}

/// Matches the state's refusals with this process's dropped bodies.
pub struct Explainer {
    kinds: HashMap<u64, (Kind, Dropped)>,
}

impl Explainer {
    pub fn new() -> Explainer {
        Explainer {
            kinds: HashMap::with_capacity(64),
        }
    }

    /// Reads every refusal and explains those of bodies this process dropped.
    /// Refusals are rare, so rereading them all is cheap.
    pub async fn look(
        &mut self,
        state: &MultiplexedConnection,
        slots: &[Slot],
        cancellations: &Cancellations,
    ) -> Result<(), redis::RedisError> {
        let mut conn = state.clone();
        for slot in slots {
            let refusals: Vec<String> = redis::cmd("LRANGE")
                .arg(&slot.refusals)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await?;
            for refusal in refusals.iter().filter_map(|text| Refusal::parse(text)) {
                if self.kinds.contains_key(&refusal.token) {
                    continue;
                }
                if let Some(dropped) = cancellations.find(refusal.token) {
                    self.kinds
                        .insert(refusal.token, (kind(refusal, dropped), dropped));
                }
            }
        }
        Ok(())
    }

    pub fn explained(&self) -> Explained {
        let count = |wanted| {
            self.kinds
                .values()
                .filter(|(kind, _)| *kind == wanted)
                .count() as u64
        };
        Explained {
            late: count(Kind::Late),
            overlaps: count(Kind::Overlap),
            undecided: count(Kind::Undecided),
        }
    }

    /// The dropped bodies whose writes were refused.
    pub fn dropped(&self) -> Vec<Dropped> {
        self.kinds.values().map(|(_, dropped)| *dropped).collect()
    }
}

fn kind(refusal: Refusal, dropped: Dropped) -> Kind {
    match refusal.successor {
        0 => Kind::Undecided,
        taken if taken > dropped.to => Kind::Late,
        taken if taken < dropped.from => Kind::Overlap,
        _ => Kind::Undecided,
    }
}

/// Now, in µs since the Unix epoch: the clock Redis's `TIME` reads on this
/// machine.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}
