//! The mutual-exclusion check: several processes, each with many tasks, run
//! locked read-modify-write sections on a few hot keys, deliberately
//! non-atomically (GET a counter, yield, SET it + 1), and the parent then
//! verifies in Redis that no two sections ever ran at once.
//!
//! ```text
//! cargo run --release --example exclusion_check               # 4 processes × 16 tasks, 20,000 sections, 4 keys
//! cargo run --release --example exclusion_check -- --soak 300 # 5 minutes with cancellations and panics
//! cargo run --release --example exclusion_check -- --pairs    # each section locks two of the keys
//! cargo run --release --example exclusion_check -- --etcd     # the locks on a 3-member etcd cluster
//! ```
//!
//! Options: `--processes N` (4), `--tasks N` per process (16), `--sections N`
//! in total (20000), `--keys N` (4), `--soak SECONDS` (off), `--pairs` (off),
//! `--etcd` (off: the locks live in the Redis server).
//! Uses `REDIS_URL` when set, otherwise starts a throwaway `redis-server`;
//! with `--etcd`, the locks live in the etcd cluster of `ETCD_ENDPOINTS`
//! (comma-separated) or a throwaway 3-member one, and the counters, markers
//! and tokens the check reads stay in Redis.
//! Exits non-zero on any violation.
//!
//! Each section is an `#[distributed_lock]` fn
//! ([`critical_section`](section::critical_section)); the parent re-executes
//! this binary for the worker processes. The check verifies, per key, that the
//! final counter equals the number of sections run, that the fencing tokens
//! recorded by the sections strictly increase in the order they ran, and that
//! no section saw another inside (an `inside` marker raised at the start of
//! each section and lowered at its end).
//!
//! With `--pairs`, each section locks two distinct keys picked at random,
//! named in random order, through the attribute's `keys = [...]` form
//! ([`pair_section`](section::pair_section)), and does the read-modify-write
//! on both. The same checks then hold per key over the sections that
//! included it: its counter equals their number, and the lock's fencing
//! token, recorded on both keys, strictly increases in the order they ran on
//! that key. The soak does not run pairs.
//!
//! The soak runs the same load for a given time, and also cancels calls
//! (random short timeouts, and drops a little after the body started) and
//! panics in bodies. Its sections write through fenced scripts (see
//! [`Mode::Soak`](section::Mode::Soak)). It then checks that nothing leaked:
//! lock keys, wake-up subscriptions and Redis connections (with every worker
//! idle but still connected), tokio tasks (back to the count before the
//! load), memory (resident and heap in use, flat after warm-up). The
//! connection figures assume nobody else uses the Redis server.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "measurement code: counts, microseconds and percentiles turned back into integers are far inside u64 and usize"
)]
// The modules' `pub` items reach the other modules of this example.
#![allow(unreachable_pub)]

mod support;

#[path = "exclusion_check/heap.rs"]
mod heap;
#[path = "exclusion_check/parent.rs"]
mod parent;
#[path = "exclusion_check/refusals.rs"]
mod refusals;
#[path = "exclusion_check/report.rs"]
mod report;
#[path = "exclusion_check/section.rs"]
mod section;
#[path = "exclusion_check/verify.rs"]
mod verify;
#[path = "exclusion_check/worker.rs"]
mod worker;

use std::process::ExitCode;
use std::time::Duration;

/// Counts heap in use, so the soak can tell a leak from fragmentation.
#[global_allocator]
static ALLOCATOR: heap::CountingAllocator = heap::CountingAllocator;

/// What to run; see the module docs for the options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Worker processes.
    pub processes: usize,
    /// Tasks per process.
    pub tasks: usize,
    /// Locked sections in all (a fixed run).
    pub sections: u64,
    /// Hot keys the sections share.
    pub keys: usize,
    /// How long a soak runs, instead of a fixed number of sections.
    pub soak: Option<Duration>,
    /// Each section locks two of the keys instead of one.
    pub pairs: bool,
    /// Where the locks live.
    pub locks: LockService,
}

/// Where the sections' locks live; the state they check is in Redis either
/// way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockService {
    /// The Redis server that holds the state.
    Redis,
    /// An etcd cluster.
    Etcd,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            processes: 4,
            tasks: 16,
            sections: 20_000,
            keys: 4,
            soak: None,
            pairs: false,
            locks: LockService::Redis,
        }
    }
}

impl Settings {
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Settings, String> {
        let mut settings = Settings::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| format!("{arg} needs a value"))
                    .and_then(|value| {
                        value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                            format!("{arg} {value}: expected a whole number above 0")
                        })
                    })
            };
            match arg.as_str() {
                "--processes" => settings.processes = value()? as usize,
                "--tasks" => settings.tasks = value()? as usize,
                "--sections" => settings.sections = value()?,
                "--keys" => settings.keys = value()? as usize,
                "--soak" => settings.soak = Some(Duration::from_secs(value()?)),
                "--pairs" => settings.pairs = true,
                "--etcd" => settings.locks = LockService::Etcd,
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        if settings.pairs && settings.soak.is_some() {
            return Err(
                "--pairs and --soak cannot be combined: the soak runs sections on one key".into(),
            );
        }
        if settings.locks == LockService::Etcd && settings.soak.is_some() {
            return Err(
                "--etcd and --soak cannot be combined: the soak counts Redis connections and subscriptions".into(),
            );
        }
        if settings.pairs && settings.keys < 2 {
            return Err(format!(
                "--pairs needs at least 2 keys, got --keys {}",
                settings.keys
            ));
        }
        Ok(settings)
    }

    /// How many keys one section locks.
    pub fn keys_per_section(&self) -> u64 {
        if self.pairs { 2 } else { 1 }
    }
}

fn main() -> ExitCode {
    if worker::is_worker() {
        return worker::main();
    }
    let settings = match Settings::from_args(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!(
                "{error}\nusage: exclusion_check [--processes N] [--tasks N] [--sections N] [--keys N] [--soak SECONDS | --pairs]"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(parent::run(&settings)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("exclusion check failed to run: {error}");
            ExitCode::FAILURE
        }
    }
}
