//! The tests of `reentrancy.rs`, on a throwaway 3-member etcd cluster (see
//! `common/backend.rs`).

#[path = "reentrancy.rs"]
mod reentrancy;
