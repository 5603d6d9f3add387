//! Building blocks of the benchmark harness, one concept per module.
// Each benchmark uses some of these; `pub` reaches the one using them.
#![allow(unreachable_pub)]

pub mod charts;
pub mod contend;
pub mod figures;
pub mod handoff;
pub mod locking;
pub mod procs;
pub mod redis_time;
pub mod relay;
pub mod report;
pub mod settings;
pub mod stats;
pub mod turns;
