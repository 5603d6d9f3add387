//! Work handed to the tokio runtime the caller runs on, without waiting for
//! it: drop-time releases, give-backs, unsubscribes, and the tasks a manager
//! keeps running (the wake-up reader, the renewal watchdog).
//!
//! Such a task dies with the runtime it was spawned on. Whoever spawns one
//! that must keep running therefore also notices its end and spawns it
//! again on the runtime then in use (see `backend/reconnect.rs`,
//! `backend/wakeup.rs`, `renewal.rs`).

use std::future::Future;

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
