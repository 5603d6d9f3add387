//! The tests of `lock_kinds.rs`, on a Redis Cluster of 3 masters (see
//! `common/backend.rs`).

#[path = "lock_kinds.rs"]
mod lock_kinds;
