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
use crate::reentrancy::HeldLock;
use crate::request::Terms;
use crate::{
    LockError, LockGuard, LockKind, LockManager, MultiLockGuard, ReleaseOutcome, registry,
};

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
    /// `permits = N` or `mode = "read" | "write"`; exclusive otherwise.
    pub kind: LockKind,
}

impl LockOptions {
    /// What the request asks for besides its key.
    fn terms(&self) -> Terms {
        Terms {
            ttl: self.ttl,
            wait: Some(self.wait),
            renew: self.renew,
            hold_at_least: self.hold_at_least,
        }
    }
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
pub struct LockedCall<G = LockGuard> {
    guard: G,
    span: Span,
    acquired: Instant,
    on_lost: OnLost,
}

impl<G> LockedCall<G> {
    /// The guard, for `guard = name`.
    #[inline]
    pub fn guard(&self) -> &G {
        &self.guard
    }
}

/// The guard of a locked call: a [`LockGuard`] for `key`, a
/// [`MultiLockGuard`] for `keys`.
pub trait CallGuard: Send + Sync + 'static {
    /// The fencing token the call's span records.
    fn call_token(&self) -> u64;
    /// The key a lost lock is reported with: one that is no longer held.
    fn lost_key(&self) -> String;
    /// What a nested locked call of the same task joins.
    fn held_locks(&self) -> HeldLocks;
    /// Completes when the lock (any of its keys) is lost.
    fn lost(&self) -> impl Future<Output = ()> + Send + '_;
    /// Releases the lock.
    fn release(self) -> impl Future<Output = Result<ReleaseOutcome, LockError>> + Send;
}

/// The locks a locked call holds, for the task's nested calls to join: one
/// key's without an allocation, or several.
#[derive(Default)]
pub struct HeldLocks {
    one: Option<HeldLock>,
    several: Vec<HeldLock>,
}

impl HeldLocks {
    fn into_locks(self) -> impl Iterator<Item = HeldLock> {
        self.one.into_iter().chain(self.several)
    }
}

impl std::fmt::Debug for HeldLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = usize::from(self.one.is_some()) + self.several.len();
        f.debug_struct("HeldLocks").field("count", &count).finish()
    }
}

impl CallGuard for LockGuard {
    fn call_token(&self) -> u64 {
        self.fencing_token()
    }

    fn lost_key(&self) -> String {
        self.key().to_owned()
    }

    fn held_locks(&self) -> HeldLocks {
        HeldLocks {
            one: self.held_lock(),
            several: Vec::new(),
        }
    }

    fn lost(&self) -> impl Future<Output = ()> + Send + '_ {
        LockGuard::lost(self)
    }

    fn release(self) -> impl Future<Output = Result<ReleaseOutcome, LockError>> + Send {
        LockGuard::release(self)
    }
}

impl CallGuard for MultiLockGuard {
    fn call_token(&self) -> u64 {
        self.fencing_token()
    }

    fn lost_key(&self) -> String {
        let guards = self.guards();
        let lost = guards
            .iter()
            .find(|guard| !guard.is_held())
            .or(guards.first());
        lost.map_or_else(String::new, |guard| guard.key().to_owned())
    }

    /// Each key, with the lock's one fencing token: a nested call joining a
    /// key reports the token the call reports.
    fn held_locks(&self) -> HeldLocks {
        let token = self.fencing_token();
        let held = self.guards().iter().filter_map(LockGuard::held_lock);
        HeldLocks {
            one: None,
            several: held
                .map(|lock| HeldLock {
                    fencing_token: token,
                    ..lock
                })
                .collect(),
        }
    }

    fn lost(&self) -> impl Future<Output = ()> + Send + '_ {
        MultiLockGuard::lost(self)
    }

    fn release(self) -> impl Future<Output = Result<ReleaseOutcome, LockError>> + Send {
        // Boxed: see `lock_all`.
        Box::pin(MultiLockGuard::release(self))
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
    let span = call_span(options, &key);
    let started = Instant::now();
    let acquired = async {
        let manager = registry::manager(manager_name(options))?;
        let request = manager.lock(key).with_terms(options.terms());
        request.kind(options.kind).acquire().await
    }
    .instrument(span.clone())
    .await;
    entered(options, span, started, acquired)
}

/// Acquires the locks of every one of `keys` at once
/// ([`LockManager::lock_all`]), as [`lock`] does one.
pub async fn lock_all(
    options: &LockOptions,
    keys: Vec<String>,
) -> Result<LockedCall<MultiLockGuard>, LockError> {
    let span = call_span(options, &keys.join(", "));
    let started = Instant::now();
    let acquired = async {
        let manager: LockManager = registry::manager(manager_name(options))?;
        let request = manager.lock_all(keys).with_terms(options.terms());
        // Boxed, as every deep step of a lock over several keys: the future
        // of each annotated fn embeds this one, and the compiler's queries
        // over such futures have a depth limit.
        Box::pin(request.acquire()).await
    }
    .instrument(span.clone())
    .await;
    entered(options, span, started, acquired)
}

fn manager_name(options: &LockOptions) -> &'static str {
    options.manager.unwrap_or(registry::DEFAULT_MANAGER)
}

/// The span a locked call's steps run in.
fn call_span(options: &LockOptions, key: &str) -> Span {
    tracing::info_span!(
        "distributed_lock",
        key = %key,
        manager = manager_name(options),
        fencing_token = field::Empty,
        wait_ms = field::Empty,
        hold_ms = field::Empty,
        outcome = field::Empty,
    )
}

/// The call once its acquisition ended: its guard and span, or the error,
/// recorded on the span.
fn entered<G: CallGuard>(
    options: &LockOptions,
    span: Span,
    started: Instant,
    acquired: Result<G, LockError>,
) -> Result<LockedCall<G>, LockError> {
    span.record("wait_ms", millis(started.elapsed()));
    match acquired {
        Ok(guard) => {
            span.record("fencing_token", guard.call_token());
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
pub async fn run<G: CallGuard, F: Future>(call: &LockedCall<G>, body: F) -> Finished<F::Output> {
    let held = call.guard.held_locks().into_locks();
    let body = AssertUnwindSafe(crate::reentrancy::scope(held, body))
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
pub async fn release<G: CallGuard, T>(
    call: LockedCall<G>,
    finished: Finished<T>,
) -> Result<T, LockError> {
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
            let key = guard.lost_key();
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
