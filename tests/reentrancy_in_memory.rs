//! The tests of `reentrancy.rs`, run in this process's memory (an in-memory manager): the same
//! test bodies, with the backend chosen by this target's name (see
//! `common/backend.rs`).

#[path = "reentrancy.rs"]
mod reentrancy;
