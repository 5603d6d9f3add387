//! Lease arithmetic: limits and the validity a holder may rely on.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::LockError;
use crate::unpoisoned;

/// Shortest lease accepted: 2 ms of every lease are set aside for clock
/// drift between this process and Redis, so a shorter one could be granted
/// by Redis but never relied upon.
pub const MIN_LEASE: Duration = Duration::from_millis(3);

/// Longest lease accepted. Longer "leases" are locks that never expire in
/// practice, which defeats the point of a lease.
pub const MAX_LEASE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Checks a lease given by the caller.
pub(crate) fn validate(lease: Duration) -> Result<Duration, LockError> {
    // Shorter leases are used up by the drift allowance of `valid_until`
    // (1% + 2 ms): Redis would grant them, but never as a usable lock, and
    // the caller would get a `Timeout` for a lock nobody holds.
    if lease < MIN_LEASE {
        return Err(LockError::invalid_config(format!(
            "a lease (ttl) must be at least 3ms, since 2ms of it are set aside for clock drift; got {lease:?}"
        )));
    }
    if lease > MAX_LEASE {
        return Err(LockError::invalid_config(format!(
            "a lease (ttl) may be at most {MAX_LEASE:?} (30 days), got {lease:?}"
        )));
    }
    Ok(lease)
}

/// Checks a `hold_at_least`: a lock cannot stay held past its lease.
pub(crate) fn validate_hold(hold_at_least: Duration, lease: Duration) -> Result<(), LockError> {
    if hold_at_least > lease {
        return Err(LockError::invalid_config(format!(
            "hold_at_least ({hold_at_least:?}) is longer than the lease ({lease:?}): a lock cannot stay held past its lease; lower hold_at_least or raise the ttl"
        )));
    }
    Ok(())
}

/// The instant until which a lease granted for an attempt started at `start`
/// is certainly still ours: the lease minus an allowance for clock drift
/// between this process and Redis (1% of the lease plus 2 ms).
pub(crate) fn valid_until(start: Instant, lease: Duration) -> Instant {
    start + usable(lease)
}

/// The start for which [`valid_until`] is `until`: where a lock passed on
/// within a process counts its lease from (`None` before the process's
/// clock began, which cannot happen for a lease taken in it).
pub(crate) fn start_for(until: Instant, lease: Duration) -> Option<Instant> {
    until.checked_sub(usable(lease))
}

/// What of a lease may be used: the lease minus the drift allowance.
fn usable(lease: Duration) -> Duration {
    lease.saturating_sub(drift_allowance(lease))
}

/// How much of a lease distlock sets aside for the clocks of this process
/// and of the server running at different rates: 1% of the lease plus
/// 2 ms. A lock's validity ends this much before its lease, counted from
/// the instant its acquire was sent; the lease on the server outlasts the
/// validity by at least this much.
pub fn drift_allowance(lease: Duration) -> Duration {
    lease / 100 + Duration::from_millis(2)
}

/// Whether a held lock is still certainly ours, shared by its guard, the
/// nested guards that joined it, its process's line, the renewal watchdog
/// and [`crate::current`] contexts.
///
/// Once over, a validity stays over: a lock whose validity ran out may have
/// been taken by someone else, so a late successful extension does not make
/// it safe to use again.
#[derive(Debug, Clone)]
pub(crate) struct Validity(Arc<ValidityCell>);

#[derive(Debug)]
struct ValidityCell {
    state: Mutex<ValidityState>,
    /// Signalled when the validity moves or ends early.
    changed: Notify,
}

#[derive(Debug, Clone, Copy)]
struct ValidityState {
    until: Instant,
    /// An extension found the lock gone or taken over.
    lost: bool,
}

impl Validity {
    pub(crate) fn new(until: Instant) -> Self {
        Validity(Arc::new(ValidityCell {
            state: Mutex::new(ValidityState { until, lost: false }),
            changed: Notify::new(),
        }))
    }

    /// Until when the lock is certainly ours (in the past once over).
    pub(crate) fn until(&self) -> Instant {
        self.state().until
    }

    /// Whether the lock is no longer certainly ours: its validity ran out,
    /// it was found lost, or it was released.
    pub(crate) fn is_over(&self) -> bool {
        let state = self.state();
        state.lost || state.until <= Instant::now()
    }

    /// Moves the validity to `until` after a successful extension; `false`
    /// (and the lock counts as lost) when it was already over.
    pub(crate) fn renew(&self, until: Instant) -> bool {
        let mut state = self.lock();
        if state.lost || state.until <= Instant::now() {
            state.lost = true;
            return false;
        }
        state.until = until;
        drop(state);
        self.0.changed.notify_waiters();
        true
    }

    /// An extension found the lock gone or held by another owner.
    pub(crate) fn mark_lost(&self) {
        self.end_with(true);
    }

    /// The lock was released: nothing may rely on it any more.
    pub(crate) fn end(&self) {
        self.end_with(false);
    }

    /// Completes once the validity is over, however that happens.
    ///
    /// The clock is read on every poll, not only when the timer fires: tokio
    /// fires timers on millisecond ticks, and a task woken by anything else
    /// in between must already see the validity as over.
    pub(crate) async fn over(&self) {
        let mut woken = pin!(self.woken_when_over());
        std::future::poll_fn(|cx| {
            if self.is_over() {
                Poll::Ready(())
            } else {
                woken.as_mut().poll(cx)
            }
        })
        .await;
    }

    /// Wakes the task when the validity may have ended.
    async fn woken_when_over(&self) {
        loop {
            let mut changed = pin!(self.0.changed.notified());
            changed.as_mut().enable();
            let state = self.state();
            if state.lost || state.until <= Instant::now() {
                return;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(state.until.into()) => {}
            }
        }
    }

    fn end_with(&self, lost: bool) {
        let mut state = self.lock();
        state.until = state.until.min(Instant::now());
        state.lost |= lost;
        drop(state);
        self.0.changed.notify_waiters();
    }

    fn state(&self) -> ValidityState {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, ValidityState> {
        unpoisoned::lock(&self.0.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_subtracts_drift() {
        let start = Instant::now();
        assert_eq!(
            valid_until(start, Duration::from_secs(10)) - start,
            Duration::from_millis(9898)
        );
        assert_eq!(valid_until(start, Duration::from_millis(1)), start);
    }

    #[test]
    fn rejects_zero_and_huge_leases() {
        assert!(validate(Duration::ZERO).is_err());
        assert!(validate(Duration::from_micros(999)).is_err());
        assert!(validate(MAX_LEASE + Duration::from_secs(1)).is_err());
        assert!(validate(Duration::from_secs(10)).is_ok());
    }

    #[tokio::test]
    async fn validity_once_over_stays_over() {
        let validity = Validity::new(Instant::now() + Duration::from_secs(1));
        assert!(!validity.is_over());
        assert!(validity.renew(Instant::now() + Duration::from_secs(2)));
        validity.mark_lost();
        assert!(validity.is_over());
        assert!(!validity.renew(Instant::now() + Duration::from_secs(5)));
        assert!(validity.until() <= Instant::now());
    }

    #[tokio::test]
    async fn over_completes_at_the_end_of_the_validity_and_follows_renewals() {
        let start = Instant::now();
        let validity = Validity::new(start + Duration::from_millis(40));
        let renewer = validity.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            renewer.renew(Instant::now() + Duration::from_millis(60));
        });
        validity.over().await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(80), "{took:?}");
        assert!(took < Duration::from_millis(200), "{took:?}");
    }

    #[tokio::test]
    async fn over_completes_when_the_lock_is_found_lost() {
        let validity = Validity::new(Instant::now() + Duration::from_secs(10));
        let finder = validity.clone();
        tokio::spawn(async move { finder.mark_lost() });
        tokio::time::timeout(Duration::from_secs(1), validity.over())
            .await
            .expect("over() completes when the lock is lost");
    }
}
