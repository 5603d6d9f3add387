// The guide: one module per chapter, each holding a chapter of
// `docs/guide/` as its documentation.
//
// The modules are empty. They exist so that docs.rs shows the guide next to
// the API, and so that `cargo test --doc` compiles (and runs) every example
// in it, as it does the README's. The chapters' relative links point at the
// Markdown files, for readers of the repository.
#![doc = include_str!("../docs/guide/README.md")]

#[doc = include_str!("../docs/guide/attribute.md")]
pub mod attribute {}

#[doc = include_str!("../docs/guide/lock-kinds.md")]
pub mod lock_kinds {}

#[doc = include_str!("../docs/guide/runtime-api.md")]
pub mod runtime_api {}

#[doc = include_str!("../docs/guide/reentrancy.md")]
pub mod reentrancy {}

#[doc = include_str!("../docs/guide/keeping-a-lock.md")]
pub mod keeping_a_lock {}

#[doc = include_str!("../docs/guide/waiting.md")]
pub mod waiting {}

#[doc = include_str!("../docs/guide/lost-lock.md")]
pub mod lost_lock {}

#[doc = include_str!("../docs/guide/fencing.md")]
pub mod fencing {}

#[doc = include_str!("../docs/guide/backends.md")]
pub mod backends {}

#[doc = include_str!("../docs/guide/redis.md")]
pub mod redis {}

#[doc = include_str!("../docs/guide/sentinel.md")]
pub mod sentinel {}

#[doc = include_str!("../docs/guide/cluster.md")]
pub mod cluster {}

#[doc = include_str!("../docs/guide/redlock.md")]
pub mod redlock {}

#[doc = include_str!("../docs/guide/etcd.md")]
pub mod etcd {}

#[doc = include_str!("../docs/guide/in-memory.md")]
pub mod in_memory {}

#[doc = include_str!("../docs/guide/servers.md")]
pub mod servers {}

#[doc = include_str!("../docs/guide/inspecting.md")]
pub mod inspecting {}

#[doc = include_str!("../docs/guide/shutting-down.md")]
pub mod shutting_down {}

#[doc = include_str!("../docs/guide/observability.md")]
pub mod observability {}

#[doc = include_str!("../docs/guide/security.md")]
pub mod security {}

#[doc = include_str!("../docs/guide/reliability.md")]
pub mod reliability {}

#[doc = include_str!("../docs/guide/performance.md")]
pub mod performance {}

#[doc = include_str!("../docs/guide/status.md")]
pub mod status {}

#[doc = include_str!("../docs/guide/demo-and-tests.md")]
pub mod demo_and_tests {}
