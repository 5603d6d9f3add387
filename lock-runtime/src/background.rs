//! Work handed to the tokio runtime the caller runs on, without waiting for
//! it: drop-time releases, give-backs, unsubscribes, and the tasks a manager
//! keeps running (the wake-up reader, the renewal watchdog); and work that
//! must be done even if that runtime is shutting down (a dropped guard's
//! release).
//!
//! Such a task dies with the runtime it was spawned on. Whoever spawns one
//! that must keep running therefore also notices its end and spawns it
//! again on the runtime then in use (see `backend/reconnect.rs`,
//! `backend/wakeup.rs`, `renewal.rs`).
//!
//! What tokio does while a runtime shuts down (measured on tokio 1.x, both
//! flavors): tasks are dropped on a thread that is still inside the
//! runtime, so `Handle::try_current` succeeds there, but `spawn` refuses
//! new tasks: it drops the future before returning, on the calling thread,
//! and returns a handle that is already finished. A task in flight is
//! dropped where it stands.

use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinHandle;

/// Spawns `work` on the current tokio runtime; `None`, and `work` dropped
/// unstarted, outside of one.
pub(crate) fn spawn<F>(work: F) -> Option<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::runtime::Handle::try_current()
        .ok()
        .map(|runtime| runtime.spawn(work))
}

/// Runs `work` on the current tokio runtime without waiting for it, and
/// makes sure `redo` runs if `work` cannot finish there: when the runtime
/// refuses the task or drops it half-way because it is shutting down.
///
/// `redo` then runs on a short-lived thread of its own, on a
/// current-thread runtime, and the dropping thread waits for it, so `redo`
/// must bound itself. Blocking is the exception here: it only happens while the
/// runtime is being torn down, when no other task of that runtime can run
/// anyway, and not waiting would let the process exit first. `redo` must be
/// safe to run after `work` did part of its job (an owner-checked release
/// is). Outside any runtime, neither runs.
pub(crate) fn spawn_finishing<W, R, F>(work: W, redo: R) -> Option<JoinHandle<()>>
where
    W: Future<Output = ()> + Send + 'static,
    R: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    // Outside any runtime there is no teardown to make up for, and
    // blocking a thread that might belong to another executor is no fix.
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    // Captured by the task, so it is dropped with it: finished or not, run
    // or never polled.
    let mut unfinished = Unfinished {
        redo: Some(Box::new(move || {
            Box::pin(redo()) as Pin<Box<dyn Future<Output = ()>>>
        })),
    };
    Some(runtime.spawn(async move {
        work.await;
        unfinished.done();
    }))
}

/// Work to redo on a runtime of its own.
type Redo = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Work a task has not finished yet; redone elsewhere if the task is dropped.
struct Unfinished {
    redo: Option<Redo>,
}

impl Unfinished {
    fn done(&mut self) {
        self.redo = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(redo) = self.redo.take() {
            run_on_own_thread(redo);
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
