//! Support for the code that `#[distributed_lock]` generates.
//!
//! Re-exported by the facade as `distlock::__private`; not a public API and
//! exempt from semver. Every step of an annotated call is one function here so
//! the generated code stays small and its type errors stay readable:
//!
//! ```text
//! let call = lock(&OPTIONS, key).await?;          // span, acquire
//! let finished = run(&call, async move { body }).await;
//! release(call, finished).await?                   // release, resume a panic
//! ```

use std::any::Any;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tracing::{Instrument, Span, field};

use crate::clock::millis;
use crate::{LockError, LockGuard, ReleaseOutcome, registry};

/// What an annotated fn asks for, fixed at compile time.
#[derive(Debug, Clone, Copy)]
pub struct LockOptions {
    /// Registered manager name; `None` is the default manager.
    pub manager: Option<&'static str>,
    /// Lease of the lock.
    pub ttl: Duration,
    /// How long to wait for a held lock; zero makes one attempt.
    pub wait: Duration,
    /// Whether the lease is renewed while the body runs.
    pub renew: bool,
    /// What happens to the body when the lock is lost.
    pub on_lost: OnLost,
    /// How long after its acquisition the lock stays held, however soon the
    /// body ends ([`LockRequest::hold_at_least`](crate::LockRequest::hold_at_least)).
    pub hold_at_least: Duration,
}

/// `on_lost = "..."`: what happens to the body of a call whose lock is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLost {
    /// The body is dropped when the lock is lost; the call returns
    /// [`LockError::Lost`].
    Cancel,
    /// The body runs to its end; the loss is logged.
    Continue,
}

/// A locked call in progress: its guard, and the span its steps run in.
#[derive(Debug)]
pub struct LockedCall {
    guard: LockGuard,
    span: Span,
    acquired: Instant,
    on_lost: OnLost,
}

impl LockedCall {
    /// The guard, for `guard = name`.
    #[inline]
    pub fn guard(&self) -> &LockGuard {
        &self.guard
    }
}

/// How the body ended.
#[derive(Debug)]
pub enum Finished<T> {
    /// It returned this value.
    Returned(T),
    /// It panicked; the panic continues once the lock is released.
    Panicked(Box<dyn Any + Send>),
    /// The lock was lost and the body dropped (`on_lost = "cancel"`).
    Lost,
}

/// Acquires the lock `key` from the manager named in `options`, inside a
/// `distributed_lock` span that the body and the release run in too.
pub async fn lock(options: &LockOptions, key: String) -> Result<LockedCall, LockError> {
    let manager_name = options.manager.unwrap_or(registry::DEFAULT_MANAGER);
    let span = tracing::info_span!(
        "distributed_lock",
        key = %key,
        manager = manager_name,
        fencing_token = field::Empty,
        wait_ms = field::Empty,
        hold_ms = field::Empty,
        outcome = field::Empty,
    );
    let started = Instant::now();
    let acquired = async {
        let manager = registry::manager(manager_name)?;
        let request = manager
            .lock(key)
            .ttl(options.ttl)
            .wait(options.wait)
            .hold_at_least(options.hold_at_least);
        let request = if options.renew {
            request.renew()
        } else {
            request
        };
        request.acquire().await
    }
    .instrument(span.clone())
    .await;
    span.record("wait_ms", millis(started.elapsed()));
    match acquired {
        Ok(guard) => {
            span.record("fencing_token", guard.fencing_token());
            Ok(LockedCall {
                guard,
                span,
                acquired: Instant::now(),
                on_lost: options.on_lost,
            })
        }
        Err(error) => {
            let outcome = match error {
                LockError::Timeout { .. } => "timed out",
                LockError::ShutDown { .. } => "shut down",
                _ => "failed",
            };
            span.record("outcome", outcome);
            span.in_scope(|| tracing::debug!(%error, "lock not acquired"));
            Err(error)
        }
    }
}

/// Passes a placeholder's value through unchanged; the bound makes a
/// non-`Display` value an error at the placeholder's parameter.
#[inline]
pub fn key_part<T: ?Sized + Display>(value: &T) -> &T {
    value
}

/// Runs the body with the lock marked as held by the current task, so a
/// nested locked call on the same key joins it instead of waiting for itself
/// and [`crate::current`] finds it. Holds a panic until the lock is released;
/// with `on_lost = "cancel"`, drops the body the moment the lock is lost.
pub async fn run<F: Future>(call: &LockedCall, body: F) -> Finished<F::Output> {
    let body = AssertUnwindSafe(crate::reentrancy::scope(call.guard.held_lock(), body))
        .catch_unwind()
        .instrument(call.span.clone());
    let ended = match call.on_lost {
        OnLost::Continue => body.await,
        OnLost::Cancel => {
            tokio::select! {
                // Checked before every poll of the body: a body is never
                // resumed once the lock is known lost.
                biased;
                () = call.guard.lost() => return Finished::Lost,
                ended = body => ended,
            }
        }
    };
    match ended {
        Ok(value) => Finished::Returned(value),
        Err(panic) => Finished::Panicked(panic),
    }
}

/// Releases the lock after the body, awaited, and returns what the body
/// returned: the lock error if it was lost and the body cancelled, or the
/// body's panic, continued.
pub async fn release<T>(call: LockedCall, finished: Finished<T>) -> Result<T, LockError> {
    let LockedCall {
        guard,
        span,
        acquired,
        ..
    } = call;
    span.record("hold_ms", millis(acquired.elapsed()));
    let returned = match finished {
        Finished::Returned(value) => Ok(value),
        Finished::Panicked(panic) => Err(panic),
        Finished::Lost => {
            span.record("outcome", "lost");
            let key = guard.key().to_owned();
            span.in_scope(|| {
                tracing::warn!("lock lost while the body ran; the body was cancelled");
            });
            // Dropping releases in the background: the call returns now, even
            // if Redis is unreachable.
            drop(guard);
            return Err(LockError::Lost { key });
        }
    };
    let outcome = match guard.release().instrument(span.clone()).await {
        Ok(ReleaseOutcome::Released) => "released",
        Ok(ReleaseOutcome::Nested) => "nested",
        Err(LockError::ShutDown { .. }) => {
            span.in_scope(|| {
                tracing::warn!(
                    "the lock manager shut down while the body ran and released the lock under it"
                );
            });
            "released by shutdown"
        }
        Ok(outcome) => {
            span.in_scope(|| tracing::warn!(
                ?outcome,
                "lock lease ended before the locked call returned; another holder may have run concurrently"
            ));
            "expired before release"
        }
        Err(error) => {
            span.in_scope(|| {
                tracing::warn!(%error, "releasing the lock failed; it is freed when its lease ends at the latest");
            });
            "release failed"
        }
    };
    span.record("outcome", outcome);
    Ok(returned.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}
