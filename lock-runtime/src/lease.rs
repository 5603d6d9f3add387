//! Lease arithmetic: limits and the validity a holder may rely on.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::LockError;

/// Longest lease accepted. Longer "leases" are locks that never expire in
/// practice, which defeats the point of a lease.
pub const MAX_LEASE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Checks a lease given by the caller.
pub(crate) fn validate(lease: Duration) -> Result<Duration, LockError> {
    if lease < Duration::from_millis(1) {
        return Err(LockError::invalid_config(format!(
            "a lease (ttl) must be at least 1ms, got {lease:?}"
        )));
    }
    if lease > MAX_LEASE {
        return Err(LockError::invalid_config(format!(
            "a lease (ttl) may be at most {MAX_LEASE:?} (30 days), got {lease:?}"
        )));
    }
    Ok(lease)
}

/// The instant until which a lease granted for an attempt started at `start`
/// is certainly still ours: the lease minus an allowance for clock drift
/// between this process and Redis (1% of the lease plus 2 ms).
pub(crate) fn valid_until(start: Instant, lease: Duration) -> Instant {
    let drift = lease / 100 + Duration::from_millis(2);
    start + lease.saturating_sub(drift)
}

/// The instant until which a held lock is certainly ours, shared by its
/// guard, the nested guards that joined it, and its process's line.
#[derive(Debug, Clone)]
pub(crate) struct Validity(Arc<Mutex<Instant>>);

impl Validity {
    pub(crate) fn new(until: Instant) -> Self {
        Validity(Arc::new(Mutex::new(until)))
    }

    pub(crate) fn until(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, until: Instant) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = until;
    }

    pub(crate) fn is_over(&self) -> bool {
        self.until() <= Instant::now()
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
}
