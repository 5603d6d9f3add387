//! The tests of `context.rs`, on a throwaway 3-member etcd cluster (see
//! `common/backend.rs`).

#[path = "context.rs"]
mod context;
