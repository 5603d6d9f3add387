//! The tests of `context.rs`, run in this process's memory (an in-memory manager): the same
//! test bodies, with the backend chosen by this target's name (see
//! `common/backend.rs`).

#[path = "context.rs"]
mod context;
