//! The tests of `reentrancy.rs`, on the primary of a Redis Sentinel topology (1
//! master, 2 replicas, 3 sentinels; see `common/backend.rs`).

#[path = "reentrancy.rs"]
mod reentrancy;
