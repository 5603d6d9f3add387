//! Handoff latency: from the moment a holder starts releasing to the moment a
//! waiting task holds the lock, measured on one process's monotonic clock.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::watch;

use super::contend::Window;
use super::locking::{BenchError, Contender, Locker};
use super::stats::Waits;

/// Handoff samples of one run.
#[derive(Debug, Default)]
pub struct Handoffs {
    pub samples: Waits,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Handoffs {
    fn merge(&mut self, other: Handoffs) {
        self.samples.merge(other.samples);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }

    fn failed(&mut self, error: &BenchError) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| error.to_string());
    }
}

/// State the tasks pass around with the lock.
struct Baton {
    /// Who released last, and when the release started.
    last_release: Mutex<Option<(usize, Instant)>>,
    /// Acquisitions so far; a releaser waits for it to move before queueing again.
    acquisitions: watch::Sender<u64>,
}

/// `tasks` tasks share the lock `key`: each holds it for `hold`, releases
/// it, and queues again only once another task has taken it, so every
/// release is a handoff to a task already waiting.
pub async fn run(
    locker: &Locker,
    key: &str,
    tasks: usize,
    hold: Duration,
    window: Window,
) -> Handoffs {
    let baton = Arc::new(Baton {
        last_release: Mutex::new(None),
        acquisitions: watch::Sender::new(0),
    });
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let contender = locker.contender(task);
            let baton = Arc::clone(&baton);
            tokio::spawn(pass(contender, task, key.to_owned(), baton, hold, window))
        })
        .collect();
    let mut merged = Handoffs::default();
    for handle in handles {
        merged.merge(handle.await.expect("a handoff task panicked"));
    }
    merged
}

async fn pass(
    mut contender: Contender,
    me: usize,
    key: String,
    baton: Arc<Baton>,
    hold: Duration,
    window: Window,
) -> Handoffs {
    let mut run = Handoffs::default();
    while Instant::now() < window.end {
        let held =
            match tokio::time::timeout_at(window.drain_deadline(), contender.acquire(&key)).await {
                Err(_) => break,
                Ok(Err(error)) => {
                    run.failed(&error);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Ok(Ok(held)) => held,
            };
        let holding = Instant::now();
        let previous = lock(&baton.last_release).take();
        if let Some((releaser, released_at)) = previous
            && releaser != me
            && window.contains(released_at)
        {
            run.samples.record(holding - released_at);
        }
        let mut mine = 0;
        baton.acquisitions.send_modify(|count| {
            *count += 1;
            mine = *count;
        });
        tokio::time::sleep(hold).await;
        *lock(&baton.last_release) = Some((me, Instant::now()));
        if let Err(error) = contender.release(held).await {
            run.failed(&error);
        }
        let mut taken = baton.acquisitions.subscribe();
        let _ =
            tokio::time::timeout_at(window.end.into(), taken.wait_for(|count| *count > mine)).await;
    }
    run
}

/// Round trips of `PING` on an otherwise idle multiplexed connection.
pub async fn ping_round_trips(
    conn: &mut ConnectionManager,
    window: Window,
) -> Result<Waits, BenchError> {
    let mut samples = Waits::default();
    while Instant::now() < window.end {
        let sent = Instant::now();
        let _: String = redis::cmd("PING").query_async(conn).await?;
        if window.contains(sent) {
            samples.record(sent.elapsed());
        }
    }
    Ok(samples)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
