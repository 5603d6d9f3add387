//! The tests of `multi_key.rs`, in this process's memory (see `common/backend.rs`).

#[path = "multi_key.rs"]
mod multi_key;
