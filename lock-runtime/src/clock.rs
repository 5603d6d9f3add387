//! Durations and instants as distlock hands them on: whole milliseconds for
//! Redis and logs, and sleeping until a deadline that may not exist.

use std::time::{Duration, Instant};

/// Whole milliseconds, saturating (leases lie between 3 ms and
/// [`MAX_LEASE`](crate::MAX_LEASE); waits and holds are far below `u64::MAX`).
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What is left until `deadline` (zero once it passed); all the time there
/// is when there is none.
pub(crate) fn left_until(deadline: Option<Instant>) -> Duration {
    deadline.map_or(Duration::MAX, |deadline| {
        deadline.saturating_duration_since(Instant::now())
    })
}

/// Sleeps until `deadline`; forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
