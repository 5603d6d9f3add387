//! Lease renewal: while a renewed lock is held, its lease is re-armed every
//! third of the lease (a little earlier, jittered, so locks taken together
//! spread out), so a body may outlive the lease it asked for.
//!
//! One watchdog task per manager does every renewal. It sends the extensions
//! that fall due together at once, which the multiplexed connection writes
//! in one batch, and it runs only while some renewed lock is held.
//!
//! A renewal never outlives its lock: releasing stops it and waits for an
//! extension in flight before the release is sent. An extension that finds
//! the lock gone or taken marks it lost; one that cannot reach Redis is
//! retried until the lock's validity runs out, which is also a loss.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::backend::{Backend, Ownership};
use crate::background;
use crate::clock::sleep_until;
use crate::holdings::Holding;
use crate::lease;
use crate::unpoisoned;

/// Longest pause between retries of an extension that failed to reach Redis.
const MAX_RETRY: Duration = Duration::from_millis(100);

/// The renewed locks of one manager and the watchdog that renews them.
#[derive(Default)]
pub(crate) struct Renewals {
    shared: Arc<Watchlist>,
}

#[derive(Default)]
struct Watchlist {
    schedule: Mutex<Schedule>,
    /// Signalled when a lock is added, so the watchdog looks at its due time.
    added: Notify,
}

#[derive(Default)]
struct Schedule {
    next_id: u64,
    leases: HashMap<u64, RenewedLock>,
    watchdog: Option<JoinHandle<()>>,
    /// Which watchdog is the current one: one that ends, or dies with its
    /// runtime, after another replaced it leaves the schedule alone.
    watchdog_generation: u64,
}

/// One renewed lock.
struct RenewedLock {
    target: Arc<Target>,
    /// When to send the next extension; `None` while one is in flight.
    due: Option<Instant>,
    /// The runtime the lock was taken on, where its holder most likely
    /// still runs: where the watchdog moves if its own runtime shuts down.
    runtime: Option<Handle>,
}

/// What an extension of one lock needs; shared with its extensions in flight.
struct Target {
    /// Shared with the guard and the manager's holdings.
    lock: Arc<Holding>,
    ttl: Duration,
    stop: Stop,
}

/// Held by an extension in flight; `true` inside once the renewal stopped,
/// so an extension taken from the schedule just before is not sent.
type Stop = Arc<tokio::sync::Mutex<bool>>;

/// What one extension found.
enum Verdict {
    Renewed,
    Retry,
    Done,
}

impl Renewals {
    /// Renews `lock`, whose lease of `ttl` was granted to an attempt
    /// started at `started`, until the returned renewal is stopped or
    /// dropped. Starts the watchdog, on the current runtime, if it is not
    /// running.
    pub(crate) fn start(
        &self,
        backend: &Arc<Backend>,
        lock: &Arc<Holding>,
        started: Instant,
        ttl: Duration,
    ) -> Renewal {
        let stop = Stop::default();
        let target = Arc::new(Target {
            lock: lock.clone(),
            ttl,
            stop: stop.clone(),
        });
        let mut schedule = self.shared.schedule();
        let id = schedule.next_id;
        schedule.next_id += 1;
        schedule.leases.insert(
            id,
            RenewedLock {
                due: Some(next_due(started, ttl)),
                target,
                runtime: background::runtime(),
            },
        );
        // A runtime that shut down took its watchdog with it.
        if schedule
            .watchdog
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
            && let Some(runtime) = background::runtime()
        {
            spawn_watchdog(&mut schedule, &self.shared, backend, &runtime);
        }
        drop(schedule);
        self.shared.added.notify_one();
        Renewal {
            shared: Some(self.shared.clone()),
            id,
            stop,
        }
    }
}

impl Renewals {
    /// Stops renewing every lock: the manager shuts down and releases them.
    /// An extension in flight may still land before its release; being
    /// owner-checked, it cannot bring a released lock back.
    pub(crate) fn stop_all(&self) {
        self.shared.schedule().leases.clear();
        // The watchdog wakes, finds nothing to renew, and ends.
        self.shared.added.notify_one();
    }
}

/// The renewal of one held lock.
pub(crate) struct Renewal {
    shared: Option<Arc<Watchlist>>,
    id: u64,
    stop: Stop,
}

impl Renewal {
    /// Stops renewing; once this returns no extension of the lock is in
    /// flight or will be sent, so the release can go out.
    pub(crate) async fn stop(mut self) {
        if let Some(shared) = self.shared.take() {
            shared.schedule().leases.remove(&self.id);
        }
        *self.stop.lock().await = true;
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        // Without waiting: an extension in flight may still land, and the
        // lease it re-arms is left to run out.
        if let Some(shared) = self.shared.take() {
            shared.schedule().leases.remove(&self.id);
        }
    }
}

impl Watchlist {
    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        unpoisoned::lock(&self.schedule)
    }
}

type Extension = Pin<Box<dyn Future<Output = (u64, Verdict)> + Send>>;

/// The watchdog: sends the extensions that are due, applies what they
/// found, and sleeps until the next one is due. Ends when no lock is left.
async fn watch(shared: Arc<Watchlist>, backend: Arc<Backend>, moves: Moves) {
    let mut in_flight: FuturesUnordered<Extension> = FuturesUnordered::new();
    loop {
        let mut added = pin!(shared.added.notified());
        added.as_mut().enable();
        let next_due = {
            let mut schedule = shared.schedule();
            if schedule.leases.is_empty() && in_flight.is_empty() {
                if schedule.watchdog_generation == moves.generation {
                    schedule.watchdog = None;
                }
                moves.armed.store(false, Ordering::SeqCst);
                return;
            }
            let now = Instant::now();
            let mut next_due: Option<Instant> = None;
            for (&id, lease) in &mut schedule.leases {
                let Some(due) = lease.due else { continue };
                // Those due soon go out with those due now.
                if due <= now + interval(lease.target.ttl) / 10 {
                    lease.due = None;
                    in_flight.push(Box::pin(extend(id, lease.target.clone(), backend.clone())));
                } else {
                    next_due = Some(next_due.map_or(due, |next| next.min(due)));
                }
            }
            next_due
        };
        tokio::select! {
            Some((id, verdict)) = in_flight.next(), if !in_flight.is_empty() => {
                reschedule(&shared, id, &verdict);
            }
            () = added => {}
            () = sleep_until(next_due) => {}
        }
    }
}

/// Spawns a watchdog on `runtime` and makes it the current one; `false`
/// when that runtime has shut down (it drops the task, unstarted, at once).
fn spawn_watchdog(
    schedule: &mut Schedule,
    shared: &Arc<Watchlist>,
    backend: &Arc<Backend>,
    runtime: &Handle,
) -> bool {
    let generation = schedule.watchdog_generation + 1;
    // Unarmed until it is known to run: a task dropped at once must not
    // look for another runtime while `schedule` is locked here.
    let armed = Arc::new(AtomicBool::new(false));
    let moves = Moves {
        shared: shared.clone(),
        backend: backend.clone(),
        generation,
        armed: armed.clone(),
    };
    let spawned = runtime.spawn(watch(shared.clone(), backend.clone(), moves));
    if spawned.is_finished() {
        return false;
    }
    schedule.watchdog_generation = generation;
    schedule.watchdog = Some(spawned);
    armed.store(true, Ordering::SeqCst);
    true
}

/// Moves the watchdog to another runtime when its own shuts down while
/// renewed locks are held, say by `#[tokio::test]` fns on other runtimes:
/// their leases would otherwise run out unrenewed. Dropped with the
/// watchdog's future, even one never polled; disarmed when the watchdog
/// ends by itself.
struct Moves {
    shared: Arc<Watchlist>,
    backend: Arc<Backend>,
    generation: u64,
    armed: Arc<AtomicBool>,
}

impl Drop for Moves {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let mut schedule = self.shared.schedule();
        if schedule.watchdog_generation != self.generation {
            return;
        }
        schedule.watchdog = None;
        // Their extensions in flight died with this watchdog: send again.
        let now = Instant::now();
        let mut runtimes = Vec::new();
        for lease in schedule.leases.values_mut() {
            lease.due.get_or_insert(now);
            runtimes.extend(lease.runtime.clone());
        }
        for runtime in runtimes {
            if spawn_watchdog(&mut schedule, &self.shared, &self.backend, &runtime) {
                return;
            }
        }
    }
}

/// Sends one extension of `target` and applies what it found to its validity.
async fn extend(id: u64, target: Arc<Target>, backend: Arc<Backend>) -> (u64, Verdict) {
    let Target { lock, ttl, stop } = &*target;
    let Holding {
        key,
        keys,
        owner,
        validity,
    } = &**lock;
    let ttl = *ttl;
    let stopped = stop.lock().await;
    if *stopped || validity.is_over() {
        return (id, Verdict::Done);
    }
    let start = Instant::now();
    let verdict = match backend.extend(keys, owner, ttl).await {
        Ok(Ownership::Owned) if validity.renew(lease::valid_until(start, ttl)) => Verdict::Renewed,
        Ok(Ownership::Owned) => {
            tracing::warn!(key = %key, "lock lost: its validity ran out before an extension succeeded");
            Verdict::Done
        }
        Ok(found) => {
            validity.mark_lost();
            tracing::warn!(key = %key, ?found, "lock lost: renewing its lease found it gone or held by another owner");
            Verdict::Done
        }
        Err(error) if validity.is_over() => {
            validity.mark_lost();
            tracing::warn!(key = %key, %error, "lock lost: its validity ran out while Redis could not be reached to renew it");
            Verdict::Done
        }
        Err(error) => {
            tracing::debug!(key = %key, %error, "renewing a lease failed; retrying");
            Verdict::Retry
        }
    };
    // Held until here: a stopping renewal waits for this extension.
    drop(stopped);
    (id, verdict)
}

fn reschedule(shared: &Watchlist, id: u64, verdict: &Verdict) {
    let mut schedule = shared.schedule();
    let Some(lease) = schedule.leases.get_mut(&id) else {
        return; // stopped meanwhile
    };
    let now = Instant::now();
    match verdict {
        Verdict::Renewed => lease.due = Some(next_due(now, lease.target.ttl)),
        Verdict::Retry => {
            let pause = (interval(lease.target.ttl) / 4).min(MAX_RETRY);
            lease.due = Some(now + pause);
        }
        Verdict::Done => {
            schedule.leases.remove(&id);
        }
    }
}

/// A third of the lease: two extensions may fail before the lease runs out.
fn interval(ttl: Duration) -> Duration {
    ttl / 3
}

/// When to renew a lease re-armed at `armed`: a third of the lease later,
/// less up to a tenth of that at random.
fn next_due(armed: Instant, ttl: Duration) -> Instant {
    let interval = interval(ttl);
    let jitter_micros = u64::try_from((interval / 10).as_micros()).unwrap_or(u64::MAX);
    let jitter = Duration::from_micros(rand::random_range(0..=jitter_micros));
    armed + interval.saturating_sub(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_fall_due_within_the_first_third_of_the_lease() {
        let armed = Instant::now();
        let ttl = Duration::from_millis(900);
        for _ in 0..100 {
            let due = next_due(armed, ttl) - armed;
            assert!(due <= Duration::from_millis(300), "{due:?}");
            assert!(due >= Duration::from_millis(270), "{due:?}");
        }
    }
}
