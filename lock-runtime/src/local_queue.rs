//! In-process queueing: tasks of one process waiting for the same key line up
//! here in arrival order, so only the head of the line contends in Redis.
//!
//! The line never outlasts a lease: once the turn holder's validity is over
//! (a guard leaked or stuck past its lease), the waiters stop waiting for the
//! turn and contend in Redis directly, as waiters in other processes do.
//!
//! A holder that lets go while others wait in its line may leave them a
//! [`Baton`]: the lock itself, still held in Redis under its owner token.
//! The next in line takes it over with the next of the fencing tokens
//! reserved with the lock and the lock's validity, without a round trip,
//! while half the lease is left; else it re-arms the lease and takes new
//! tokens in one round trip. Either way instead of a release and an
//! acquire. At most [`MAX_SUCCESSIONS`] batons pass in a row, so a process
//! hands a hot key to the others' queue in Redis at least that often.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedMutexGuard};

use crate::clock::sleep_until;
use crate::lease::Validity;
use crate::unpoisoned;

type Lines = Arc<Mutex<HashMap<String, Arc<Line>>>>;

/// How many times in a row a lock may pass from one task of a process to
/// the next without going back through Redis: a bound on how long one
/// process keeps a hot key from the waiters of others (one round of 8
/// waiting tasks).
pub(crate) const MAX_SUCCESSIONS: u32 = 8;

/// A held lock left to the next task in line, and what to do with it if
/// nobody takes it (release it, owner-checked, in the background), which
/// the drop does.
pub(crate) struct Baton {
    lock: Option<Passed>,
    unclaimed: Option<Box<dyn FnOnce(Passed) + Send>>,
}

/// The lock a baton passes: still held in Redis under `owner`.
#[derive(Debug, Clone)]
pub(crate) struct Passed {
    pub(crate) owner: String,
    /// The lease the holder had, and until when it was certainly valid.
    pub(crate) ttl: Duration,
    pub(crate) valid_until: Instant,
    /// The next fencing token of the holder's reserved block, and how many
    /// of the block are left from it on (0: none).
    pub(crate) fencing_token: u64,
    pub(crate) tokens_left: u64,
}

impl Baton {
    pub(crate) fn new(lock: Passed, unclaimed: Box<dyn FnOnce(Passed) + Send>) -> Self {
        Baton {
            lock: Some(lock),
            unclaimed: Some(unclaimed),
        }
    }

    /// The lock, for the task that takes it over.
    pub(crate) fn take(mut self) -> Option<Passed> {
        self.unclaimed = None;
        self.lock.take()
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        if let (Some(unclaimed), Some(lock)) = (self.unclaimed.take(), self.lock.take()) {
            unclaimed(lock);
        }
    }
}

/// One FIFO line per key with waiters or a holder in this process.
#[derive(Default)]
pub(crate) struct LocalQueues {
    lines: Lines,
}

struct Line {
    /// tokio's mutex queues its waiters in FIFO order.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The validity of the lock the turn holder acquired, once it has one.
    holder: Mutex<Option<Validity>>,
    /// Signalled when the holder's validity is set, if anyone waits in line
    /// (the uncontended path never pays for a wake-up).
    holder_set: Notify,
    waiting: AtomicUsize,
    /// The lock, left by the last turn holder to the next.
    baton: Mutex<Option<Baton>>,
    /// Batons passed in a row since the lock last came from Redis.
    successions: AtomicU32,
}

impl Line {
    fn holder_valid_until(&self) -> Option<Instant> {
        unpoisoned::lock(&self.holder).as_ref().map(Validity::until)
    }

    fn holder_expired(&self) -> bool {
        unpoisoned::lock(&self.holder)
            .as_ref()
            .is_some_and(Validity::is_over)
    }
}

/// A task's place in a line while it asks for the turn; leaving it (with or
/// without the turn, or by being cancelled) removes the line when nobody else
/// is in it.
struct Joined<'a> {
    queues: &'a LocalQueues,
    key: &'a str,
    line: Arc<Line>,
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        remove_if_idle(&mut unpoisoned::lock(&self.queues.lines), self.key, 1);
    }
}

/// Counts a task waiting in a line while it lives.
struct InLine<'a>(&'a Line);

impl<'a> InLine<'a> {
    fn new(line: &'a Line) -> Self {
        line.waiting.fetch_add(1, Ordering::SeqCst);
        InLine(line)
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The right to contend for a key in Redis from this process; the next task in
/// line gets it when this is dropped.
pub(crate) struct LocalTurn {
    turn: Option<OwnedMutexGuard<()>>,
    line: Arc<Line>,
    key: String,
    lines: Lines,
}

/// Where a task stands on its process's line for a key, once it may contend.
pub(crate) enum Turn {
    /// The turn is this task's: it alone of the process contends in Redis.
    Ours(LocalTurn),
    /// The task whose turn it is holds the lock past its validity: contend
    /// without the turn.
    Lapsed,
    /// A request for a shared kind (permits, readers and writers), whose
    /// tasks are not lined up in the process: each takes a place among the
    /// holders of its own.
    Unlined,
}

impl Turn {
    /// The turn, if it is this task's.
    pub(crate) fn ours(self) -> Option<LocalTurn> {
        match self {
            Turn::Ours(turn) => Some(turn),
            Turn::Lapsed | Turn::Unlined => None,
        }
    }
}

impl LocalQueues {
    /// Waits for this task's turn on `key`, or until the turn holder's
    /// validity runs out.
    pub(crate) async fn turn(&self, key: &str) -> Turn {
        let joined = self.join(key);
        let line = &joined.line;
        let waiting = InLine::new(line);
        let mut turn = pin!(line.turn.clone().lock_owned());
        loop {
            let mut holder_set = pin!(line.holder_set.notified());
            holder_set.as_mut().enable();
            if line.holder_expired() {
                return Turn::Lapsed;
            }
            tokio::select! {
                turn = &mut turn => {
                    drop(waiting);
                    return Turn::Ours(self.turn_from(&joined, turn));
                }
                () = holder_set => {}
                () = sleep_until(line.holder_valid_until()) => {}
            }
        }
    }

    /// Takes the turn if nobody in this process holds or waits for `key`;
    /// `None` when another task has it, and its validity is not over.
    pub(crate) fn try_turn(&self, key: &str) -> Option<Turn> {
        let joined = self.join(key);
        match joined.line.turn.clone().try_lock_owned() {
            Ok(turn) => Some(Turn::Ours(self.turn_from(&joined, turn))),
            Err(_) if joined.line.holder_expired() => Some(Turn::Lapsed),
            Err(_) => None,
        }
    }

    /// How many keys have a line right now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        unpoisoned::lock(&self.lines).len()
    }

    fn join<'a>(&'a self, key: &'a str) -> Joined<'a> {
        let line = unpoisoned::lock(&self.lines)
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Line {
                    turn: Arc::default(),
                    holder: Mutex::new(None),
                    holder_set: Notify::new(),
                    waiting: AtomicUsize::new(0),
                    baton: Mutex::new(None),
                    successions: AtomicU32::new(0),
                })
            })
            .clone();
        Joined {
            queues: self,
            key,
            line,
        }
    }

    fn turn_from(&self, joined: &Joined<'_>, turn: OwnedMutexGuard<()>) -> LocalTurn {
        LocalTurn {
            turn: Some(turn),
            line: joined.line.clone(),
            key: joined.key.to_owned(),
            lines: self.lines.clone(),
        }
    }
}

impl LocalTurn {
    /// The lock the previous turn holder left to this one, if any.
    pub(crate) fn take_baton(&self) -> Option<Baton> {
        unpoisoned::lock(&self.line.baton).take()
    }

    /// Whether a lock let go of now may pass to the next task in line: one
    /// waits, and fewer than [`MAX_SUCCESSIONS`] passed in a row.
    pub(crate) fn may_pass(&self) -> bool {
        self.line.waiting.load(Ordering::SeqCst) > 0
            && self.line.successions.load(Ordering::SeqCst) < MAX_SUCCESSIONS
    }

    /// Leaves `baton` to the next task in line, which gets the turn when
    /// this one drops.
    pub(crate) fn pass(&self, baton: Baton) {
        self.line.successions.fetch_add(1, Ordering::SeqCst);
        let owner = baton.lock.as_ref().map(|lock| lock.owner.clone());
        let left = unpoisoned::lock(&self.line.baton).replace(baton);
        // The turn holder took the baton it was left, so none should be
        // here; one left by an earlier holder is released as it drops,
        // unless it is this very lock, which must not be.
        if let Some(left) = left
            && left.lock.as_ref().map(|lock| &lock.owner) == owner.as_ref()
        {
            let _ = left.take();
        }
    }

    /// The lock came from Redis, not from a baton: the count starts again.
    pub(crate) fn count_successions_anew(&self) {
        self.line.successions.store(0, Ordering::SeqCst);
    }

    /// Records the validity of the lock this turn acquired.
    pub(crate) fn hold(&self, validity: Validity) {
        *unpoisoned::lock(&self.line.holder) = Some(validity);
        if self.line.waiting.load(Ordering::SeqCst) > 0 {
            self.line.holder_set.notify_waiters();
        }
    }
}

impl Drop for LocalTurn {
    fn drop(&mut self) {
        *unpoisoned::lock(&self.line.holder) = None;
        let mut lines = unpoisoned::lock(&self.lines);
        // Hand the turn on (or free the line) while the map is locked, so a
        // newcomer either joins this line or finds it gone, never a stale one.
        drop(self.turn.take());
        remove_if_idle(&mut lines, &self.key, 1);
    }
}

/// Removes the line of `key` if nobody but the map and the caller (holding
/// `callers` references it is about to drop) refers to it. New references are
/// only made under the map's lock, which the caller holds.
fn remove_if_idle(lines: &mut HashMap<String, Arc<Line>>, key: &str, callers: usize) {
    if lines
        .get(key)
        .is_some_and(|line| Arc::strong_count(line) == 1 + callers)
    {
        lines.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn turns_are_served_in_arrival_order_and_lines_are_removed() {
        let queues = Arc::new(LocalQueues::default());
        let first = queues.turn("k").await.ours().expect("free line");
        assert!(queues.try_turn("k").is_none());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..5 {
            let (queues, order) = (queues.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _turn = queues.turn("k").await.ours().expect("a turn");
                unpoisoned::lock(&order).push(i);
            }));
            // Let each waiter join the line before the next one.
            tokio::task::yield_now().await;
        }
        drop(first);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(*unpoisoned::lock(&order), [0, 1, 2, 3, 4]);
        assert_eq!(queues.len(), 0);
        assert!(matches!(queues.try_turn("other"), Some(Turn::Ours(_))));
        assert_eq!(queues.len(), 0);
    }

    #[tokio::test]
    async fn waiters_stop_waiting_when_the_holders_validity_ends() {
        let queues = LocalQueues::default();
        let stuck = queues.turn("k").await.ours().expect("free line");
        stuck.hold(Validity::new(Instant::now() + Duration::from_millis(50)));
        let started = Instant::now();
        assert!(matches!(queues.turn("k").await, Turn::Lapsed));
        assert!(started.elapsed() >= Duration::from_millis(45));
        assert!(matches!(queues.try_turn("k"), Some(Turn::Lapsed)));
        drop(stuck);
        assert_eq!(queues.len(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_no_line_behind() {
        let queues = LocalQueues::default();
        let holder = queues.turn("k").await.ours().expect("free line");
        let gave_up = tokio::time::timeout(Duration::from_millis(20), queues.turn("k")).await;
        assert!(gave_up.is_err());
        drop(holder);
        assert_eq!(queues.len(), 0);
    }
}
