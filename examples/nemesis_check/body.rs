//! The locked body: the annotated fn, and the span that logs its start and
//! its end (also when a cancellation drops it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use distlock::{LockError, distributed_lock};
use redis::aio::MultiplexedConnection;

use crate::clock::now_micros;
use crate::line::Event;
use crate::store::{self, Keys};

/// The lease of every body, renewed while it runs.
pub const LEASE: Duration = Duration::from_secs(2);
/// The longest pause between a read and its write.
const LONGEST_PAUSE_MICROS: u64 = 2_000;

/// Numbers the bodies of this process.
static BODIES: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("store: {0}")]
    Store(#[from] redis::RedisError),
}

/// One body's start and end in the log: the start when made, the end when
/// [`finish`](Self::finish)ed or dropped with the body's future.
struct Span {
    body: u64,
    ended: bool,
}

impl Span {
    fn open(key: usize, token: u64) -> Span {
        let body = BODIES.fetch_add(1, Ordering::Relaxed);
        Event::Start {
            body,
            key,
            token,
            at: now_micros(),
        }
        .emit();
        Span { body, ended: false }
    }

    fn end(&mut self, dropped: bool) {
        if !self.ended {
            self.ended = true;
            Event::End {
                body: self.body,
                at: now_micros(),
                dropped,
            }
            .emit();
        }
    }

    fn finish(mut self) {
        self.end(false);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.end(true);
    }
}

/// Whether a worker's bodies run under their lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// [`locked_body`]: the attribute's lock around the body.
    Locked,
    /// [`unlocked_body`] (`--unlocked`): the same body with the attribute
    /// left out, to show the checker fails a run that has no lock.
    Unlocked,
}

impl Locking {
    pub fn name(self) -> &'static str {
        match self {
            Locking::Locked => "locked",
            Locking::Unlocked => "unlocked",
        }
    }

    pub fn parse(name: &str) -> Option<Locking> {
        [Locking::Locked, Locking::Unlocked]
            .into_iter()
            .find(|locking| locking.name() == name)
    }
}

/// The two read-modify-writes on hot key `key`, under its lock.
#[distributed_lock(key = "nemesis:<key>", ttl = "2s", wait = "4s", renew, guard = lock)]
pub async fn locked_body(
    key: usize,
    store: &MultiplexedConnection,
    pauses: [u64; 2],
) -> Result<(), BodyError> {
    read_modify_writes(key, store, pauses, lock.fencing_token()).await
}

/// The same body with no lock. Its token is the clock in µs: it rises, but
/// two processes can read the same one, so besides the overlaps the
/// checker may also find duplicate tokens and a fenced counter off.
pub async fn unlocked_body(
    key: usize,
    store: &MultiplexedConnection,
    pauses: [u64; 2],
) -> Result<(), BodyError> {
    read_modify_writes(key, store, pauses, now_micros()).await
}

async fn read_modify_writes(
    key: usize,
    store: &MultiplexedConnection,
    pauses: [u64; 2],
    token: u64,
) -> Result<(), BodyError> {
    let span = Span::open(key, token);
    let keys = Keys::of(key);
    let mut conn = store.clone();

    let plain = store::plain_read(&mut conn, &keys).await?;
    pause(pauses[0]).await;
    store::plain_write(&mut conn, &keys, plain + 1).await?;

    if let Some(fenced) = store::fenced_read(&mut conn, &keys, token).await? {
        pause(pauses[1]).await;
        store::fenced_write(&mut conn, &keys, token, fenced + 1).await?;
    }
    span.finish();
    Ok(())
}

/// Two random pauses of 0 to 2 ms, in µs, drawn from `next`.
pub fn pauses(mut next: impl FnMut() -> u64) -> [u64; 2] {
    [
        next() % (LONGEST_PAUSE_MICROS + 1),
        next() % (LONGEST_PAUSE_MICROS + 1),
    ]
}

async fn pause(micros: u64) {
    tokio::task::yield_now().await;
    if micros > 0 {
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }
}
