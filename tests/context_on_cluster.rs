//! The tests of `context.rs`, run on a Redis Cluster of 3 masters: the same
//! test bodies, with the backend chosen by this target's name (see
//! `common/backend.rs`).

#[path = "context.rs"]
mod context;
