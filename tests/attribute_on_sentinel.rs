//! The tests of `attribute.rs`, on the primary of a Redis Sentinel topology (1
//! master, 2 replicas, 3 sentinels; see `common/backend.rs`).

#[path = "attribute.rs"]
mod attribute;
