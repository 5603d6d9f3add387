//! Jittered exponential backoff between acquire attempts on a held lock.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(4);
const CAP: Duration = Duration::from_millis(250);

/// Delays of 4 ms doubling up to 250 ms, each drawn uniformly from the upper
/// half of its step so that waiters started together spread out.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { step: FIRST }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(CAP);
        let half = step / 2;
        half + half.mul_f64(rand::random_range(0.0..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_under_the_cap() {
        let mut backoff = Backoff::new();
        let delays: Vec<_> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] <= FIRST && delays[0] >= FIRST / 2);
        assert!(delays.iter().all(|d| *d <= CAP));
        assert!(delays[19] >= CAP / 2);
    }
}
