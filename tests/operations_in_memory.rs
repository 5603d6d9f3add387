//! The tests of `operations.rs`, in this process's memory (see `common/backend.rs`).

#[path = "operations.rs"]
mod operations;
