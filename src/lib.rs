// The README links the guide's chapters by reference (`[text][label]`), and
// defines each label as the chapter's Markdown file. These definitions come
// first, so they win (the first definition of a label is the one used): on
// docs.rs the same links go to the chapters' modules.
#![doc = concat!(
    "[attribute]: guide::attribute\n",
    "[runtime-api]: guide::runtime_api\n",
    "[backends]: guide::backends\n",
    "[performance]: guide::performance\n",
    "[reliability]: guide::reliability\n",
    "[demo-and-tests]: guide::demo_and_tests\n",
    "[guide]: guide\n",
    "[lock-kinds]: guide::lock_kinds\n",
    "[reentrancy]: guide::reentrancy\n",
    "[keeping-a-lock]: guide::keeping_a_lock\n",
    "[waiting]: guide::waiting\n",
    "[lost-lock]: guide::lost_lock\n",
    "[fencing]: guide::fencing\n",
    "[redis]: guide::redis\n",
    "[sentinel]: guide::sentinel\n",
    "[cluster]: guide::cluster\n",
    "[redlock]: guide::redlock\n",
    "[etcd]: guide::etcd\n",
    "[in-memory]: guide::in_memory\n",
    "[servers]: guide::servers\n",
    "[inspecting]: guide::inspecting\n",
    "[shutting-down]: guide::shutting_down\n",
    "[observability]: guide::observability\n",
    "[security]: guide::security\n",
    "[status]: guide::status\n",
)]
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
