//! The tests of `operations.rs`, on a throwaway 3-member etcd cluster (see
//! `common/backend.rs`).

#[path = "operations.rs"]
mod operations;
