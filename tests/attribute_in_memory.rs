//! The tests of `attribute.rs`, run in this process's memory (an in-memory manager): the same
//! test bodies, with the backend chosen by this target's name (see
//! `common/backend.rs`).

#[path = "attribute.rs"]
mod attribute;
