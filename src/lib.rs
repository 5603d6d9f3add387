#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub use lock_macros::distributed_lock;
pub use lock_runtime::*;

pub mod guide;

/// Support for the code `#[distributed_lock]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use lock_runtime::__attribute::*;
    pub use lock_runtime::{LockGuard, MultiLockGuard};
}
