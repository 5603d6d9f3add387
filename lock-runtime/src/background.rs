//! Work handed to the tokio runtime the caller runs on, without waiting for
//! it: drop-time releases, give-backs, unsubscribes, and the tasks a manager
//! keeps running (the wake-up reader, the renewal watchdog); and work that
//! must be done even if that runtime is shutting down (a dropped guard's
//! release).
//!
//! Such a task dies with the runtime it was spawned on. Whoever spawns one
//! that must keep running therefore also notices its end and spawns it
//! again on the runtime then in use (see `backend/reconnect.rs`,
//! `backend/subscriber.rs`, `renewal.rs`).
//!
//! What tokio does while a runtime shuts down (measured on tokio 1.x, both
//! flavors): tasks are dropped on a thread that is still inside the
//! runtime, so `Handle::try_current` succeeds there, but `spawn` refuses
//! new tasks: it drops the future before returning, on the calling thread,
//! and returns a handle that is already finished. A task in flight is
//! dropped where it stands.

use std::future::Future;
use std::pin::Pin;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// Spawns `work` on the current tokio runtime; `None`, and `work` dropped
/// unstarted, outside of one.
pub(crate) fn spawn<F>(work: F) -> Option<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().map(|runtime| runtime.spawn(work))
}

/// The tokio runtime the caller runs on, if any.
pub(crate) fn runtime() -> Option<Handle> {
    Handle::try_current().ok()
}

/// Runs `work` on `runtime` without waiting for it, and makes sure `redo`
/// runs if `work` cannot finish its part: `work` gets an [`Unfinished`]
/// and calls [`done`](Unfinished::done) once the part that must not be lost
/// is over; if it is dropped before (the runtime refused the task or
/// dropped it half-way, or `work` panicked), `redo` runs instead.
///
/// Where `redo` runs, and when the dropping thread blocks for it:
///
/// - on `runtime`, as a task of its own, when `runtime` still takes tasks
///   (`work` panicked): nothing blocks;
/// - on a short-lived thread of its own, on a current-thread runtime, when
///   that task too is refused or dropped unfinished: that happens while
///   the runtime is being torn down (or if `redo` itself panics). The
///   thread dropping it waits, so `redo` must bound itself. While the
///   runtime is torn down no other task of it can run anyway, and not
///   waiting would let the process exit first.
///
/// `redo` may run more than once, and after `work` did part of its job: it
/// must be safe to repeat (an owner-checked release is).
pub(crate) fn spawn_finishing<W, R, F>(
    runtime: &Handle,
    work: impl FnOnce(Unfinished) -> W,
    redo: R,
) where
    W: Future<Output = ()> + Send + 'static,
    R: Fn() -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let unfinished = Unfinished {
        redo: Some(Box::new(move || {
            Box::pin(redo()) as Pin<Box<dyn Future<Output = ()> + Send>>
        })),
        then: Then::Respawn,
    };
    // Captured by the task, so it is dropped with it: finished or not, run
    // or never polled.
    runtime.spawn(work(unfinished));
}

/// Work to redo elsewhere.
type Redo = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Work a task has not finished yet; redone elsewhere if the task drops it
/// before [`done`](Self::done).
pub(crate) struct Unfinished {
    redo: Option<Redo>,
    then: Then,
}

/// Where an unfinished piece of work is redone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// As a task of the runtime in use, if it takes one: a panic in the
    /// work is no reason to block a worker.
    Respawn,
    /// On a thread of its own, waited for: the runtime refused or dropped
    /// the redo's task, so it is being torn down.
    OwnThread,
}

impl Unfinished {
    /// The part that must not be lost is over: nothing is to be redone.
    pub(crate) fn done(mut self) {
        self.redo = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(redo) = self.redo.take() else {
            return;
        };
        match (self.then, runtime()) {
            (Then::Respawn, Some(runtime)) => {
                let again = Unfinished {
                    redo: Some(redo),
                    then: Then::OwnThread,
                };
                // Refused while the runtime shuts down: `again` is dropped
                // here, unpolled, and blocks.
                runtime.spawn(async move {
                    if let Some(redo) = &again.redo {
                        redo().await;
                    }
                    again.done();
                });
            }
            _ => run_on_own_thread(redo),
        }
    }
}

/// Runs `redo` to its end on a new thread with its own runtime, and waits
/// for that thread.
fn run_on_own_thread(redo: Redo) {
    let thread = std::thread::Builder::new()
        .name("distlock-release".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(redo()),
                Err(error) => tracing::warn!(%error, "cannot start a runtime to finish a release"),
            }
        });
    match thread {
        Ok(thread) => {
            if thread.join().is_err() {
                tracing::warn!("finishing a release on its own thread panicked");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot start a thread to finish a release"),
    }
}
