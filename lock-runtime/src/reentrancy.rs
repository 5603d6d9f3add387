//! Reentrancy: the locks the current task holds through a locked body.
//!
//! `#[distributed_lock]` runs its body inside a task-local scope that lists
//! the locks held around it. A nested acquisition of one of those keys (same
//! manager, same task) joins the held lock instead of waiting for itself; only
//! the outermost holder releases it. A spawned task starts with an empty list:
//! it is a different holder.

use std::future::Future;
use std::sync::Arc;

use crate::kind::{Family, LockKind};
use crate::lease::Validity;

tokio::task_local! {
    static HELD: Arc<Vec<HeldLock>>;
}

/// What a nested acquisition needs to know about a lock held further out.
#[derive(Clone)]
pub(crate) struct HeldLock {
    pub(crate) manager: usize,
    pub(crate) key: String,
    pub(crate) kind: LockKind,
    pub(crate) owner: String,
    pub(crate) fencing_token: u64,
    pub(crate) validity: Validity,
}

/// The lock on `key` of `manager`, of the `family` of kinds, that the
/// current task already holds.
pub(crate) fn find(manager: usize, key: &str, family: Family) -> Option<HeldLock> {
    HELD.try_with(|held| {
        held.iter()
            .rev()
            .find(|lock| lock.manager == manager && lock.key == key && lock.kind.family() == family)
            .cloned()
    })
    .ok()
    .flatten()
}

/// Runs `body` with `locks` added to the current task's held locks.
pub(crate) fn scope<F: Future>(
    locks: impl IntoIterator<Item = HeldLock>,
    body: F,
) -> impl Future<Output = F::Output> {
    let mut held: Vec<HeldLock> = HELD
        .try_with(|held| held.as_ref().clone())
        .unwrap_or_default();
    held.extend(locks);
    HELD.scope(Arc::new(held), body)
}

/// The lock the current task acquired last among those it still holds.
pub(crate) fn innermost() -> Option<HeldLock> {
    HELD.try_with(|held| held.last().cloned()).ok().flatten()
}
