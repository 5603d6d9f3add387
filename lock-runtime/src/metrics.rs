//! Lock metrics through the [`metrics`](https://docs.rs/metrics) facade,
//! with the `metrics` feature; without it every function here is empty.
//!
//! Every series is labelled by `manager` (the name the manager is registered
//! under), never by lock key: keys are unbounded, and a label per key would
//! grow the metrics store without limit.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `distlock_acquisitions_total` | counter | locks acquired |
//! | `distlock_contended_total` | counter | of those, how many found the lock held first |
//! | `distlock_timeouts_total` | counter | waits that ran out |
//! | `distlock_lost_total` | counter | locks whose validity ended before their release |
//! | `distlock_wait_seconds` | histogram | time from request to acquisition |
//! | `distlock_hold_seconds` | histogram | time from acquisition to release |

use std::time::Duration;

/// A lock was acquired after `waited`; `contended` when it was held at first.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn acquired(manager: &str, waited: Duration, contended: bool) {
    #[cfg(feature = "metrics")]
    {
        let manager = manager.to_owned();
        metrics::counter!("distlock_acquisitions_total", "manager" => manager.clone()).increment(1);
        if contended {
            metrics::counter!("distlock_contended_total", "manager" => manager.clone())
                .increment(1);
        }
        metrics::histogram!("distlock_wait_seconds", "manager" => manager)
            .record(waited.as_secs_f64());
    }
}

/// A wait for a held lock ran out.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn timed_out(manager: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("distlock_timeouts_total", "manager" => manager.to_owned()).increment(1);
}

/// A lock held for `held` was released (or dropped); `lost` when its
/// validity had ended before.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn released(manager: &str, held: Duration, lost: bool) {
    #[cfg(feature = "metrics")]
    {
        let manager = manager.to_owned();
        if lost {
            metrics::counter!("distlock_lost_total", "manager" => manager.clone()).increment(1);
        }
        metrics::histogram!("distlock_hold_seconds", "manager" => manager)
            .record(held.as_secs_f64());
    }
}
