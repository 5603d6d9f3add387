// The guide: one module per chapter, each holding a chapter of
// `docs/guide/` as its documentation.
//
// The modules are empty. They exist so that docs.rs shows the guide next to
// the API, and so that `cargo test --doc` compiles (and runs) every example
// in it, as it does the README's. The chapters' relative links point at the
// Markdown files, for readers of the repository.
//
// The index links the chapters by reference; the definitions below come
// before its own, so on docs.rs its links go to the modules (see lib.rs).
#![doc = concat!(
    "[attribute]: self::attribute\n",
    "[lock-kinds]: self::lock_kinds\n",
    "[runtime-api]: self::runtime_api\n",
    "[reentrancy]: self::reentrancy\n",
    "[keeping-a-lock]: self::keeping_a_lock\n",
    "[waiting]: self::waiting\n",
    "[lost-lock]: self::lost_lock\n",
    "[fencing]: self::fencing\n",
    "[backends]: self::backends\n",
    "[redis]: self::redis\n",
    "[sentinel]: self::sentinel\n",
    "[cluster]: self::cluster\n",
    "[redlock]: self::redlock\n",
    "[etcd]: self::etcd\n",
    "[in-memory]: self::in_memory\n",
    "[servers]: self::servers\n",
    "[inspecting]: self::inspecting\n",
    "[shutting-down]: self::shutting_down\n",
    "[observability]: self::observability\n",
    "[security]: self::security\n",
    "[reliability]: self::reliability\n",
    "[performance]: self::performance\n",
    "[status]: self::status\n",
    "[demo-and-tests]: self::demo_and_tests\n",
    "[front-page]: crate\n",
)]
#![doc = include_str!("../docs/guide/README.md")]

// The chapters link each other by reference (`[text][fencing.md]`), and each
// defines its labels as the Markdown files. This block, put before every
// chapter, defines them first as the chapters' modules, so on docs.rs the
// links stay in the guide (the first definition of a label wins). Labels no
// chapter uses are allowed; tests/doc_links.rs checks that every label a
// chapter uses is defined here.
macro_rules! chapter_links {
    () => {
        concat!(
            "[../../README.md#the-attribute]: crate#the-attribute\n",
            "[backends.md]: crate::guide::backends\n",
            "[cluster.md]: crate::guide::cluster\n",
            "[etcd.md]: crate::guide::etcd\n",
            "[fencing.md]: crate::guide::fencing\n",
            "[fencing.md#how-tokens-are-made]: crate::guide::fencing#how-tokens-are-made\n",
            "[in-memory.md]: crate::guide::in_memory\n",
            "[keeping-a-lock.md]: crate::guide::keeping_a_lock\n",
            "[keeping-a-lock.md#protocol-v1]: crate::guide::keeping_a_lock#protocol-v1\n",
            "[lock-kinds.md#locks-over-several-keys]: crate::guide::lock_kinds#locks-over-several-keys\n",
            "[lost-lock.md]: crate::guide::lost_lock\n",
            "[performance.md]: crate::guide::performance\n",
            "[performance.md#where-distlock-stands-protocol-v2]: crate::guide::performance#where-distlock-stands-protocol-v2\n",
            "[redis.md]: crate::guide::redis\n",
            "[redis.md#a-redis-that-evicts-keys]: crate::guide::redis#a-redis-that-evicts-keys\n",
            "[redlock.md]: crate::guide::redlock\n",
            "[reliability.md]: crate::guide::reliability\n",
            "[runtime-api.md]: crate::guide::runtime_api\n",
            "[security.md]: crate::guide::security\n",
            "[sentinel.md]: crate::guide::sentinel\n",
            "[sentinel.md#grants-acknowledged-by-replicas]: crate::guide::sentinel#grants-acknowledged-by-replicas\n",
            "[servers.md]: crate::guide::servers\n",
            "[shutting-down.md]: crate::guide::shutting_down\n",
            "[waiting.md]: crate::guide::waiting\n",
        )
    };
}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/attribute.md")]
pub mod attribute {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/lock-kinds.md")]
pub mod lock_kinds {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/runtime-api.md")]
pub mod runtime_api {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/reentrancy.md")]
pub mod reentrancy {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/keeping-a-lock.md")]
pub mod keeping_a_lock {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/waiting.md")]
pub mod waiting {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/lost-lock.md")]
pub mod lost_lock {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/fencing.md")]
pub mod fencing {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/backends.md")]
pub mod backends {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/redis.md")]
pub mod redis {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/sentinel.md")]
pub mod sentinel {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/cluster.md")]
pub mod cluster {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/redlock.md")]
pub mod redlock {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/etcd.md")]
pub mod etcd {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/in-memory.md")]
pub mod in_memory {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/servers.md")]
pub mod servers {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/inspecting.md")]
pub mod inspecting {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/shutting-down.md")]
pub mod shutting_down {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/observability.md")]
pub mod observability {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/security.md")]
pub mod security {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/reliability.md")]
pub mod reliability {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/performance.md")]
pub mod performance {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/status.md")]
pub mod status {}

#[doc = chapter_links!()]
#[doc = include_str!("../docs/guide/demo-and-tests.md")]
pub mod demo_and_tests {}
