//! Shutting down cleanly: release what the process holds, so that other
//! processes get the locks now instead of one lease later.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::backend::{Backend, Ownership};
use crate::holdings::Holding;
use crate::{LockManager, registry};

/// What a shutdown did with the locks the process held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Locks released, each still ours until then.
    pub released: usize,
    /// Locks whose lease had run out already (some maybe taken over by
    /// another owner): nothing was left to release.
    pub expired: usize,
    /// Locks Redis did not confirm releasing within the bound (unreachable,
    /// an error, too few Redlock nodes), and releases by dropped guards and
    /// acquire attempts still under way then. Each is freed when its lease
    /// ends, at the latest.
    pub unconfirmed: usize,
}

/// Shuts down every registered manager at once (see
/// [`LockManager::shutdown`]) and adds up what they did. Returns within the
/// longest command timeout among them plus 100 ms, even when Redis is
/// unreachable.
///
/// The managers stay registered, so `#[distributed_lock]` fns called
/// afterwards fail with [`LockError::ShutDown`](crate::LockError::ShutDown),
/// not [`NotInitialized`](crate::LockError::NotInitialized). For the same
/// reason [`init`](crate::init) (or [`init_named`](crate::init_named) with a
/// name already used) cannot be called again in this process: it fails
/// with [`LockError::AlreadyInitialized`](crate::LockError::AlreadyInitialized). A shutdown is for the end
/// of the process; a program that needs locking again afterwards builds a
/// new manager with [`LockManager::builder`] and passes it around.
///
/// The order for a service: stop taking work (stop accepting connections,
/// stop pulling jobs); let the work in flight finish, bounded by a timeout
/// of your own; then call this, which releases whatever is still held.
///
/// ```no_run
/// # async fn serve() {}
/// # async fn demo() -> Result<(), distlock::LockError> {
/// distlock::init("redis://127.0.0.1:6379").await?;
/// tokio::select! {
///     () = serve() => {}
///     _ = tokio::signal::ctrl_c() => {} // SIGINT; add SIGTERM on Unix
/// }
/// let report = distlock::shutdown().await;
/// eprintln!("released {} locks", report.released);
/// # Ok(()) }
/// ```
pub async fn shutdown() -> ShutdownReport {
    registry::registered()
        .iter()
        .map(LockManager::shutdown)
        .collect::<FuturesUnordered<_>>()
        .fold(ShutdownReport::default(), |total, report| async move {
            ShutdownReport {
                released: total.released + report.released,
                expired: total.expired + report.expired,
                unconfirmed: total.unconfirmed + report.unconfirmed,
            }
        })
        .await
}

impl LockManager {
    /// Shuts this manager (and its clones) down, for a clean exit:
    ///
    /// - new acquisitions, and those waiting for a lock or for their turn
    ///   in this process, fail with [`LockError::ShutDown`](crate::LockError::ShutDown);
    /// - every lock held through it is first marked lost, then released,
    ///   owner-checked, all at once; the release wakes their waiters, so
    ///   other processes get the locks right away;
    /// - renewals stop;
    /// - it waits for releases of guards dropped just before, and for
    ///   acquire attempts whose answer is still on the way: one that was
    ///   granted is given back, owner-checked, before this returns, and
    ///   fails with [`LockError::ShutDown`](crate::LockError::ShutDown).
    ///
    /// Returns within the command timeout plus 100 ms, even when Redis is
    /// unreachable; locks it could not release are freed when their leases
    /// end. Calling it again does nothing more.
    ///
    /// **Bodies still running.** Releasing a lock under a body that still
    /// runs would silently end its exclusion, so the lock is marked lost
    /// first: its guard's [`lost`](crate::LockGuard::lost) completes and
    /// [`is_held`](crate::LockGuard::is_held) turns `false`; a
    /// `#[distributed_lock]` body with `on_lost = "cancel"` is dropped at
    /// its next poll and the call returns [`LockError::Lost`](crate::LockError::Lost);
    /// the guard's [`release`](crate::LockGuard::release) reports
    /// [`LockError::ShutDown`](crate::LockError::ShutDown). So let work in
    /// flight finish before shutting down (see [`crate::shutdown`]).
    pub async fn shutdown(&self) -> ShutdownReport {
        let inner = self.inner();
        let deadline = Instant::now() + inner.release_bound();
        let taken = inner.holdings().close();
        for lock in &taken {
            lock.validity.mark_lost();
        }
        inner.renewals().stop_all();
        let mut report = release_all(inner.backend(), taken, deadline).await;
        let holdings = inner.holdings();
        if tokio::time::timeout_at(deadline.into(), holdings.settled())
            .await
            .is_err()
        {
            report.unconfirmed += holdings.count_under_way();
        }
        tracing::info!(
            manager = self.name(),
            released = report.released,
            expired = report.expired,
            unconfirmed = report.unconfirmed,
            "lock manager shut down"
        );
        report
    }
}

/// Releases every lock in `taken` at once, waiting for answers until
/// `deadline`.
async fn release_all(
    backend: &Arc<Backend>,
    taken: Vec<Arc<Holding>>,
    deadline: Instant,
) -> ShutdownReport {
    let mut releases: FuturesUnordered<_> = taken
        .iter()
        .map(|lock| async move {
            let found = backend.release(&lock.keys, &lock.owner).await;
            if let Err(fault) = &found {
                tracing::warn!(key = %lock.key, %fault, "releasing a lock at shutdown failed; it is freed when its lease ends");
            }
            found
        })
        .collect();
    let mut report = ShutdownReport::default();
    loop {
        match tokio::time::timeout_at(deadline.into(), releases.next()).await {
            Ok(Some(Ok(Ownership::Owned))) => report.released += 1,
            Ok(Some(Ok(Ownership::Expired | Ownership::TakenOver))) => report.expired += 1,
            Ok(Some(Err(_))) => report.unconfirmed += 1,
            Ok(None) => return report,
            Err(_) => {
                report.unconfirmed += releases.len();
                return report;
            }
        }
    }
}
