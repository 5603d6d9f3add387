//! A request for one lock: its lease, how long to wait, and the waiting itself.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::keyspace::LockKeys;
use crate::protocol::{self, Attempt};
use crate::{LockError, LockGuard, LockManager, lease};

/// A lock about to be acquired, made by [`LockManager::lock`].
///
/// ```no_run
/// # async fn demo(manager: distlock::LockManager) -> Result<(), distlock::LockError> {
/// use std::time::Duration;
///
/// let guard = manager
///     .lock("order:42")
///     .ttl(Duration::from_secs(10))
///     .wait(Duration::from_millis(500))
///     .acquire()
///     .await?;
/// println!("fencing token {}", guard.fencing_token());
/// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a lock request does nothing until `acquire` or `try_acquire` is awaited"]
pub struct LockRequest {
    manager: LockManager,
    key: String,
    ttl: Duration,
    wait: Option<Duration>,
}

impl LockRequest {
    pub(crate) fn new(manager: LockManager, key: String) -> Self {
        let ttl = manager.default_ttl();
        LockRequest {
            manager,
            key,
            ttl,
            wait: None,
        }
    }

    /// The lease: how long the lock stays held if its holder vanishes.
    /// Defaults to the manager's default lease.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long [`acquire`](Self::acquire) waits for a held lock before
    /// returning [`LockError::Timeout`]. Defaults to the lease; zero makes a
    /// single attempt.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Acquires the lock, waiting up to the `wait` duration while another
    /// owner holds it.
    pub async fn acquire(self) -> Result<LockGuard, LockError> {
        let wait = self.wait.unwrap_or(self.ttl);
        self.acquire_within(wait).await
    }

    /// Makes one attempt: `Ok(None)` when another owner holds the lock.
    pub async fn try_acquire(self) -> Result<Option<LockGuard>, LockError> {
        match self.acquire_within(Duration::ZERO).await {
            Ok(guard) => Ok(Some(guard)),
            Err(LockError::Timeout { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn acquire_within(self, wait: Duration) -> Result<LockGuard, LockError> {
        let ttl = lease::validate(self.ttl)?;
        let keys = LockKeys::new(self.manager.key_prefix(), &self.key)?;
        let owner = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let deadline = started.checked_add(wait);
        let mut backoff = Backoff::new();
        let mut conn = self.manager.connection();
        loop {
            let attempt_start = Instant::now();
            let attempt = protocol::acquire(&mut conn, &keys, &owner, ttl)
                .await
                .map_err(|source| LockError::backend(&self.key, source))?;
            let remaining = match attempt {
                Attempt::Acquired { fencing_token } => {
                    return Ok(LockGuard::new(
                        self.manager,
                        self.key,
                        keys,
                        owner,
                        fencing_token,
                        lease::valid_until(attempt_start, ttl),
                    ));
                }
                Attempt::Held { remaining } => remaining,
            };
            let now = Instant::now();
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                return Err(LockError::Timeout {
                    key: self.key,
                    waited: now - started,
                });
            }
            // Never sleep past the holder's lease: a crashed holder's lock is
            // free the moment its lease ends.
            let mut delay = backoff.next_delay().min(left);
            if let Some(remaining) = remaining {
                delay = delay.min(remaining);
            }
            tokio::time::sleep(delay).await;
        }
    }
}
