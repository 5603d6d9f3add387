//! The tests of `reentrancy.rs`, run on a Redis Cluster of 3 masters: the same
//! test bodies, with the backend chosen by this target's name (see
//! `common/backend.rs`).

#[path = "reentrancy.rs"]
mod reentrancy;
