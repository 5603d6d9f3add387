//! A locked body that records when it ran, for tests of losing a lock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a body recorded about itself, read after the call.
#[derive(Debug, Default)]
pub struct Trace {
    pub started: Option<Instant>,
    /// The last time the body ran, and the lock's validity then.
    pub last_tick: Option<(Instant, Instant)>,
    /// When the body was dropped (cancelled), if it was.
    pub dropped: Option<Instant>,
    /// Whether the body ran to its end.
    pub finished: bool,
}

pub type Shared = Arc<Mutex<Trace>>;

/// Sets `dropped` when the body holding it is dropped before it finished.
pub struct DropWatch(pub Shared);

impl Drop for DropWatch {
    fn drop(&mut self) {
        let mut trace = self.0.lock().unwrap();
        if !trace.finished {
            trace.dropped = Some(Instant::now());
        }
    }
}

/// A body that ticks every 5 ms for `run_for`, recording when it last ran.
pub async fn ticking_body(trace: Shared, run_for: Duration) {
    let watch = DropWatch(trace.clone());
    let started = Instant::now();
    trace.lock().unwrap().started = Some(started);
    while started.elapsed() < run_for {
        let valid_until = distlock::current()
            .expect("inside a locked call")
            .valid_until();
        trace.lock().unwrap().last_tick = Some((Instant::now(), valid_until));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    trace.lock().unwrap().finished = true;
    drop(watch);
}

/// Waits until the body has started.
pub async fn wait_until_started(trace: &Shared) {
    while trace.lock().unwrap().started.is_none() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether a body that last ran at `tick` stopped before Redis could give
/// its lock to anyone else. The loss is checked before every poll of the
/// body, and the body reads the clock a little after that check; Redis's
/// lease outlasts the validity by the drift allowance.
pub fn stopped_in_time(tick: Instant, valid_until: Instant, ttl: Duration) -> bool {
    tick <= valid_until + distlock::drift_allowance(ttl)
}

/// Asserts that a body cancelled by the loss of its lock (a lease of `ttl`)
/// never ran past its validity and was dropped within 100 ms of it, and
/// that the validity outlasted `cut_at`, when the lock service stopped
/// answering; returns when the body was dropped.
pub fn assert_cancelled_at_its_validity(trace: &Shared, ttl: Duration, cut_at: Instant) -> Instant {
    let (last_tick, valid_until, dropped) = {
        let trace = trace.lock().unwrap();
        let (last_tick, valid_until) = trace.last_tick.expect("the body ran");
        let dropped = trace.dropped.expect("the body was cancelled");
        (last_tick, valid_until, dropped)
    };
    assert!(
        stopped_in_time(last_tick, valid_until, ttl),
        "the body ran after its validity"
    );
    assert!(
        dropped <= valid_until + Duration::from_millis(100),
        "dropped {:?} after the validity",
        dropped - valid_until
    );
    assert!(
        valid_until > cut_at,
        "lost before the lock service stopped answering"
    );
    dropped
}
