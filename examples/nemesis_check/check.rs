//! The checker: what a run's history and the store's final state say about
//! exclusion, fencing, liveness and leftovers.
//!
//! Two bodies on one key **overlap** when their intervals intersect (a
//! body's interval runs from its start line to its end line; a body ended
//! by a kill ends at the kill). Each overlap is put in one class:
//!
//! - *a paused process involved*: the earlier body's worker was stopped
//!   with SIGSTOP after that body began and before the later one did. A
//!   process frozen past its lease cannot know its lock ran out; the next
//!   holder is granted it, and the frozen body carries on when continued.
//!   No lock service prevents that: fencing tokens are what keep the store
//!   right. Reported. (A pause of the later body's worker excuses
//!   nothing: distlock never runs a body past its validity.)
//! - *after data loss*: no such pause, but the lock service may have
//!   forgotten this key's lease (a Redis server restarted empty at once, a
//!   Sentinel master failed over, the cluster master serving the key's
//!   slot failed over; see [`Forgotten`]) while one of the two bodies ran,
//!   or less than a lease before it started. A lock service
//!   that forgot a valid lease grants it again: a real safety gap of a
//!   Redis server without persistence, which only fencing covers. Reported
//!   on a line of its own. The lease before the start counts because a
//!   body may run under a lease granted before it started: a holder passes
//!   the lock to another task of its process (a baton) without asking the
//!   server, up to 8 times in a row, so a process can go on running bodies
//!   under a lease the server forgot, while another process is granted the
//!   lock afresh. A validity ends at most a lease after the server last
//!   confirmed the lease, so a loss longer ago cannot be the cause.
//! - *neither*: the lock service granted a lock twice with nothing to
//!   excuse it. **Must be 0.**
//!
//! The other musts: the fenced counter equals its accepted writes on every
//! key (always, whatever the faults: fencing holds when exclusion does
//! not); no two grants on a key share a fencing token; no hung tasks or
//! workers and no panics; bodies completed in the quiet period after the
//! faults; no lease of the workers' locks left one lease after they
//! stopped. Plain-counter lost updates must be 0 when no worker was paused
//! and no data-loss fault was injected, and are reported otherwise.

use std::collections::HashMap;

use crate::body::LEASE;
use crate::fault::{Fault, Forgotten, Kind};
use crate::fleet::Instance;
use crate::history::{Body, Ending, History};
use crate::store::Totals;

/// How many overlapping pairs of each class, and where each was.
#[derive(Debug, Default, Clone)]
pub struct Overlaps {
    /// Pairs with no excuse: a must of 0.
    pub unexplained: u64,
    /// Pairs whose earlier body's worker was frozen past its lease.
    pub paused: u64,
    /// Pairs under a fault that may have lost the key's lease.
    pub data_loss: u64,
    /// Every overlapping pair, for the timeline.
    pub spans: Vec<OverlapSpan>,
}

/// When two bodies held one key at once (`CLOCK_MONOTONIC` µs): from the
/// later one's start to the first end of the two.
#[derive(Debug, Clone, Copy)]
pub struct OverlapSpan {
    /// The hot key both bodies held.
    pub key: usize,
    /// When the later body started.
    pub from: u64,
    /// When the first of the two ended.
    pub to: u64,
}

/// Everything the report prints.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Overlapping pairs of bodies by class, and where each was.
    pub overlaps: Overlaps,
    /// The store's counters, all keys together.
    pub totals: Totals,
    /// Keys whose fenced counter differs from its accepted writes.
    pub fenced_mismatches: usize,
    /// Grants beyond the first of each (key, fencing token).
    pub duplicate_tokens: u64,
    /// Bodies that completed after the faults stopped.
    pub quiet_bodies: u64,
    /// Lease keys of the workers' locks left one lease after the stop.
    pub leftover_locks: usize,
    /// Whether a worker was frozen in this run.
    pub workers_paused: bool,
    /// Whether a fault may have lost a lease in this run.
    pub data_loss: bool,
}

impl Verdict {
    /// Plain-counter writes the counter does not show.
    pub fn lost_updates(&self) -> i64 {
        self.totals.plain_writes - self.totals.plain
    }

    /// Whether the lost-update count is held to 0 in this run.
    pub fn lost_updates_must_be_zero(&self) -> bool {
        !self.workers_paused && !self.data_loss
    }
}

/// What the checker is given.
pub struct Run<'a> {
    pub history: &'a History,
    pub instances: &'a [Instance],
    pub faults: &'a [Fault],
    pub quiet_from: u64,
    pub totals: &'a [Totals],
    pub leftover_locks: usize,
}

pub fn check(run: &Run<'_>) -> Verdict {
    let mut totals = Totals::default();
    for key in run.totals {
        totals.add(*key);
    }
    Verdict {
        overlaps: overlaps(run),
        totals,
        fenced_mismatches: run
            .totals
            .iter()
            .filter(|key| key.fenced != key.fenced_accepted)
            .count(),
        duplicate_tokens: duplicate_tokens(&run.history.bodies),
        quiet_bodies: run
            .history
            .bodies
            .iter()
            .filter(|body| body.ending == Ending::Done && body.start >= run.quiet_from)
            .count() as u64,
        leftover_locks: run.leftover_locks,
        workers_paused: run
            .faults
            .iter()
            .any(|fault| fault.kind == Kind::WorkerPause),
        data_loss: run
            .faults
            .iter()
            .any(|fault| fault.forgotten != Forgotten::Nothing),
    }
}

/// Every pair of bodies on one key whose intervals intersect, by class.
fn overlaps(run: &Run<'_>) -> Overlaps {
    let mut by_key: HashMap<usize, Vec<&Body>> = HashMap::new();
    for body in &run.history.bodies {
        by_key.entry(body.key).or_default().push(body);
    }
    let mut found = Overlaps::default();
    for bodies in by_key.values_mut() {
        bodies.sort_by_key(|body| body.start);
        let mut active: Vec<&Body> = Vec::new();
        for &body in bodies.iter() {
            active.retain(|earlier| earlier.end > body.start);
            for earlier in &active {
                let class = classify(run, earlier, body);
                found.spans.push(OverlapSpan {
                    key: body.key,
                    from: body.start,
                    to: earlier.end.min(body.end),
                });
                match class {
                    Class::Paused => found.paused += 1,
                    Class::DataLoss => found.data_loss += 1,
                    Class::Unexplained => {
                        found.unexplained += 1;
                        describe(run, earlier, body);
                    }
                }
            }
            active.push(body);
        }
    }
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Paused,
    DataLoss,
    Unexplained,
}

fn classify(run: &Run<'_>, earlier: &Body, later: &Body) -> Class {
    // The earlier body's process frozen after that body began and before
    // the later one did: its lease ran out under the pause, the lock went
    // to the later body, and the frozen body carried on when continued. A
    // pause that began after the later body started cannot have caused the
    // second grant, nor can a pause of the later body's process: its body
    // is never run past its validity.
    let frozen = run.instances[earlier.instance]
        .pauses
        .iter()
        .any(|&(from, to)| from < later.start && to > earlier.start);
    if frozen {
        return Class::Paused;
    }
    // A body runs only within a validity, which ends at most one lease
    // after the lock service last confirmed the lease: a loss more than a
    // lease before the body started cannot have taken its lease. Only a
    // fault that may have forgotten this key's lease counts.
    let lease = u64::try_from(LEASE.as_micros()).unwrap_or(u64::MAX);
    let lost_under = |body: &Body| {
        run.faults.iter().any(|fault| {
            fault.forgotten.covers(body.key)
                && fault.from <= body.end
                && fault.to.saturating_add(lease) >= body.start
        })
    };
    if lost_under(earlier) || lost_under(later) {
        Class::DataLoss
    } else {
        Class::Unexplained
    }
}

/// Prints an unexplained overlap, for whoever looks into it.
fn describe(run: &Run<'_>, earlier: &Body, later: &Body) {
    let pid = |body: &Body| run.instances[body.instance].pid;
    println!(
        "  OVERLAP key {}: pid {} token {} [{}, {}] {:?} and pid {} token {} [{}, {}] {:?}",
        earlier.key,
        pid(earlier),
        earlier.token,
        earlier.start,
        earlier.end,
        earlier.ending,
        pid(later),
        later.token,
        later.start,
        later.end,
        later.ending,
    );
}

/// Grants beyond the first of each (key, fencing token).
fn duplicate_tokens(bodies: &[Body]) -> u64 {
    let mut seen: HashMap<(usize, u64), u64> = HashMap::new();
    for body in bodies {
        *seen.entry((body.key, body.token)).or_default() += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

#[cfg(test)]
mod tests {
    //! The classes of an overlap, on hand-made histories: what excuses a
    //! second holder, and what does not.

    use std::collections::BTreeSet;

    use super::{Class, Run, classify};
    use crate::fault::{Fault, Forgotten, Kind};
    use crate::fleet::Instance;
    use crate::history::{Body, Ending, History};

    /// One second, in the checker's µs.
    const S: u64 = 1_000_000;

    fn body(instance: usize, key: usize, start: u64, end: u64) -> Body {
        Body {
            instance,
            key,
            token: start,
            start,
            end,
            ending: Ending::Done,
        }
    }

    fn worker(pauses: Vec<(u64, u64)>) -> Instance {
        Instance {
            pauses,
            ..Instance::default()
        }
    }

    fn fault(kind: Kind, from: u64, to: u64, forgotten: Forgotten) -> Fault {
        Fault {
            kind,
            from,
            to,
            detail: String::new(),
            forgotten,
        }
    }

    /// Body A of worker 0 on `key` from 10 s to 20 s, body B of worker 1
    /// from 15 s to 25 s: how the checker classes the pair.
    fn class_of(key: usize, instances: &[Instance], faults: &[Fault]) -> Class {
        let history = History::default();
        let run = Run {
            history: &history,
            instances,
            faults,
            quiet_from: 0,
            totals: &[],
            leftover_locks: 0,
        };
        classify(
            &run,
            &body(0, key, 10 * S, 20 * S),
            &body(1, key, 15 * S, 25 * S),
        )
    }

    #[test]
    fn the_earlier_holder_frozen_before_the_second_grant_excuses_it() {
        let instances = [worker(vec![(11 * S, 14 * S)]), worker(vec![])];
        assert_eq!(class_of(0, &instances, &[]), Class::Paused);
    }

    #[test]
    fn a_pause_after_the_second_body_began_excuses_nothing() {
        let instances = [worker(vec![(16 * S, 18 * S)]), worker(vec![])];
        assert_eq!(class_of(0, &instances, &[]), Class::Unexplained);
    }

    #[test]
    fn a_pause_of_the_later_holder_excuses_nothing() {
        let instances = [worker(vec![]), worker(vec![(12 * S, 16 * S)])];
        assert_eq!(class_of(0, &instances, &[]), Class::Unexplained);
    }

    #[test]
    fn a_failover_excuses_only_the_keys_of_its_master() {
        let instances = [worker(vec![]), worker(vec![])];
        let keys = Forgotten::LeasesOf(BTreeSet::from([1]));
        let failover = [fault(Kind::MasterKill, 12 * S, 14 * S, keys)];
        assert_eq!(class_of(1, &instances, &failover), Class::DataLoss);
        assert_eq!(class_of(0, &instances, &failover), Class::Unexplained);
    }

    #[test]
    fn a_fault_that_forgot_nothing_excuses_nothing() {
        let instances = [worker(vec![]), worker(vec![])];
        let pause = [fault(Kind::MasterPause, 12 * S, 14 * S, Forgotten::Nothing)];
        assert_eq!(class_of(0, &instances, &pause), Class::Unexplained);
    }

    #[test]
    fn a_loss_more_than_a_lease_before_both_bodies_excuses_nothing() {
        let instances = [worker(vec![]), worker(vec![])];
        let empty = Forgotten::AnyLease;
        let long_ago = [fault(Kind::RestartEmpty, 2 * S, 3 * S, empty.clone())];
        assert_eq!(class_of(0, &instances, &long_ago), Class::Unexplained);
        let under = [fault(Kind::RestartEmpty, 9 * S, 9 * S + 1, empty)];
        assert_eq!(class_of(0, &instances, &under), Class::DataLoss);
    }
}
