//! Support for the code that `#[distributed_lock]` generates.
//!
//! Re-exported by the facade as `distlock::__private`; not a public API and
//! exempt from semver. Every step of an annotated call is one function here so
//! the generated code stays small and its type errors stay readable.

use std::any::Any;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::CatchUnwind;

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
}

/// Acquires the lock `key` from the manager named in `options`.
pub async fn lock(options: &LockOptions, key: String) -> Result<LockGuard, LockError> {
    let manager = match options.manager {
        Some(name) => registry::manager(name)?,
        None => registry::default_manager()?,
    };
    manager
        .lock(key)
        .ttl(options.ttl)
        .wait(options.wait)
        .acquire()
        .await
}

/// Passes a placeholder's value through unchanged; the bound makes a
/// non-`Display` value an error at the placeholder's parameter.
#[inline]
pub fn key_part<T: ?Sized + Display>(value: &T) -> &T {
    value
}

/// Runs the body with the lock marked as held by the current task, so a
/// nested locked call on the same key joins it instead of waiting for itself,
/// and holds a panic until the lock is released.
#[inline]
pub fn run<F: Future>(
    guard: &LockGuard,
    body: F,
) -> CatchUnwind<AssertUnwindSafe<impl Future<Output = F::Output>>> {
    AssertUnwindSafe(crate::reentrancy::scope(guard.held_lock(), body)).catch_unwind()
}

/// Releases the lock after the body, awaited, and reports a lease that ran out
/// under the body.
pub async fn release(guard: LockGuard) {
    let (key, outcome) = guard.release_keyed().await;
    match outcome {
        Ok(ReleaseOutcome::Released | ReleaseOutcome::Nested) => {}
        Ok(outcome) => tracing::warn!(
            key = %key,
            ?outcome,
            "lock lease ended before the locked call returned; another holder may have run concurrently"
        ),
        Err(error) => tracing::warn!(
            key = %key,
            %error,
            "releasing the lock failed; it will be freed when its lease ends"
        ),
    }
}

/// Returns the body's output, or continues its panic now that the lock is released.
#[inline]
pub fn finish<T>(output: Result<T, Box<dyn Any + Send>>) -> T {
    match output {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
