//! The steps of the shared kinds (semaphores, read-write locks), as every
//! backend that holds them names them: `scripts/shared.lua` in Redis, and
//! the store in memory.

/// A step of a lock of a shared kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SharedStep {
    /// Take a place among the holders if one is free and nobody waits.
    Acquire,
    /// The same, or take (or keep) a place in the queue; its round.
    Wait {
        round: u64,
    },
    Release,
    /// Release, and leave the queue.
    Leave,
    Extend,
}

impl SharedStep {
    /// The step's name, as `shared.lua` takes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SharedStep::Acquire => "acquire",
            SharedStep::Wait { .. } => "wait",
            SharedStep::Release => "release",
            SharedStep::Leave => "leave",
            SharedStep::Extend => "extend",
        }
    }
}
