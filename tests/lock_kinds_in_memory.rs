//! The tests of `lock_kinds.rs`, in this process's memory (see `common/backend.rs`).

#[path = "lock_kinds.rs"]
mod lock_kinds;
