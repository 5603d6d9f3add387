//! The tests of `operations.rs`, on a Redis Cluster (see `common/backend.rs`).

#[path = "operations.rs"]
mod operations;
