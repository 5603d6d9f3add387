//! The tests of `multi_key.rs`, on a Redis Cluster of 3 masters, where the
//! keys of one lock live in different slots (see `common/backend.rs`).

#[path = "multi_key.rs"]
mod multi_key;
