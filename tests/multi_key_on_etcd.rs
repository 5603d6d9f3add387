//! The tests of `multi_key.rs`, on a throwaway 3-member etcd cluster (see
//! `common/backend.rs`).

#[path = "multi_key.rs"]
mod multi_key;
