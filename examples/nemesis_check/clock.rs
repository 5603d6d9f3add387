//! The one clock every process of a run reads, and the seeded generator the
//! nemesis draws its faults from.

/// `CLOCK_MONOTONIC` in microseconds: the same clock in every process of the
/// machine, so the parent's fault and kill times and the workers' body
/// times fall on one timeline (std's `Instant` is opaque across processes).
pub fn now_micros() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `now`, a valid timespec.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    assert_eq!(status, 0, "CLOCK_MONOTONIC is always available on Linux");
    let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    seconds * 1_000_000 + nanos / 1_000
}

pub use crate::support::rng::Rng;

/// A seed from the wall clock, for runs not given `--seed`.
pub fn fresh_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos() % u128::from(u64::MAX)).unwrap_or(0)
        })
        ^ u64::from(std::process::id())
}
