//! The one clock every process of a run reads, and the seeded generator the
//! nemesis draws its faults from.

use std::time::Duration;

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

/// A small, fast generator (`SplitMix64`): the same seed gives the same
/// faults in the same order.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the bias is negligible for small `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = u64::try_from(high.saturating_sub(low).as_micros()).unwrap_or(u64::MAX);
        low + Duration::from_micros(self.below(span.saturating_add(1)))
    }

    /// `lease` times a factor uniform in `low..=high`.
    pub fn leases(&mut self, lease: Duration, low: f64, high: f64) -> Duration {
        self.between(lease.mul_f64(low), lease.mul_f64(high))
    }
}

/// A seed from the wall clock, for runs not given `--seed`.
pub fn fresh_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos() % u128::from(u64::MAX)).unwrap_or(0)
        })
        ^ u64::from(std::process::id())
}
