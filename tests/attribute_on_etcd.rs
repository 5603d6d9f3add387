//! The tests of `attribute.rs`, on a throwaway 3-member etcd cluster (see
//! `common/backend.rs`).

#[path = "attribute.rs"]
mod attribute;
