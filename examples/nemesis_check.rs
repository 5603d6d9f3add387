//! The nemesis check (issue 18, "Jepsen-style checking on every backend"):
//! worker processes call a `#[distributed_lock]` fn on a few hot keys while
//! a nemesis injects faults into the lock service and the workers, and a
//! checker then reads the history of every body for overlaps, and the
//! store for lost updates.
//!
//! ```text
//! cargo run --release --example nemesis_check                                  # one Redis server, 60 s of faults
//! cargo run --release --example nemesis_check -- --backend etcd --duration 600 # etcd, 10 minutes
//! cargo run --release --example nemesis_check -- --backend single --seed 42    # replay the faults of seed 42
//! ```
//!
//! Options: `--backend single|cluster|redlock|sentinel|etcd` (single),
//! `--duration SECONDS` of faults (60),
//! `--quiet SECONDS` after them (6), `--seed N` (from the clock; printed at
//! the start), `--processes N` (3), `--tasks N` per process (4), `--keys N`
//! (3), `--no-data-loss` (leave out the fault that restarts a Redis server
//! empty at once, and the failovers), `--no-worker-pause` (leave out the
//! worker frozen past its lease; with `--no-data-loss`, or on etcd, lost
//! updates of the plain counter become a must), `--unlocked` (the body
//! without its lock attribute: the checker must then fail the run, which
//! `tests/examples.rs` checks), `--timeline FILE` (draw the run as an SVG:
//! one lane per key, bodies as bars coloured by worker process, fault
//! windows shaded, overlapping bodies in red; see [`timeline`]).
//! Everything runs on throwaway servers on
//! loopback. Exits non-zero when a must fails.
//!
//! **Workers.** The parent re-executes this binary for each worker
//! process; its tasks call [`locked_body`](body::locked_body) (lease 2 s,
//! renewed; `on_lost = "cancel"`) on random keys. The body does two
//! read-modify-writes on the **store**, a redis-server no fault touches: a
//! plain counter and a fenced one (see [`store`]). Each body logs its start
//! (with its fencing token) and its end in `CLOCK_MONOTONIC` µs, also when a
//! cancellation drops it; the lines stream to the parent on stdout, one
//! flushed write each (see [`line`]). A body of a killed worker ends at the
//! kill, which the parent knows.
//!
//! **The nemesis** (see [`nemesis`] and [`fault::Kind`]) draws a fault every
//! 1 to 3 s from a seeded generator and heals it before the next. On one
//! Redis server: SIGSTOP 0.1 to 3 leases; a restart with its data; a kill
//! and an empty restart one lease later; a kill and an empty restart at
//! once (data loss); `CLIENT KILL TYPE normal`; delays and black holes
//! through the test kit's `FaultProxy`. On etcd: the leader killed and
//! restarted with its data; a member paused. On Redlock (three nodes),
//! always one node, a minority: SIGSTOP 0.1 to 3 leases, a restart with
//! its data, its client connections killed, a kill and an empty restart
//! one lease later, or at once (data loss: the node may vote for a second
//! holder while the first is valid). On a cluster (3 masters
//! with a replica each) and on Sentinel (a master, 2 replicas, 3
//! sentinels): a master killed until a replica is promoted (a failover:
//! replication is asynchronous, so it may lose the last grants), or
//! frozen, on Sentinel until a replica is promoted (it answers its old
//! clients until demoted), on a cluster for 0.1 to 3 leases (failed over
//! when longer than the 1 s node timeout);
//! every client connection killed. On every backend: a worker
//! killed with SIGKILL (and a new one started), a worker stopped with SIGSTOP for 1
//! to 2 leases (a GC pause past its lease).
//!
//! **The checker** (see [`check`]) prints the faults by kind, the calls and
//! bodies by outcome, and its checks. The rules depend on the faults:
//!
//! - overlapping bodies with no paused worker involved and no data loss
//!   under them must be 0;
//! - overlaps where the earlier body's worker was paused past its lease
//!   before the later body began are reported: no lock service can stop a
//!   frozen process from carrying on;
//! - overlaps **after data loss** are reported on a line of their own: a
//!   Redis server restarted empty while leases were valid forgets them and
//!   grants those locks again. That is a real safety gap of Redis without
//!   persistence, not a distlock bug, and it is what fencing tokens are
//!   for: the fenced counter must stay exact through it. A failover of
//!   asynchronous replication counts as a loss too, on a cluster for the
//!   keys of the failed-over master only ([`fault::Forgotten`]). Such a run still
//!   passes; a run without data-loss faults (`--no-data-loss`, or the
//!   etcd backend) holds every overlap without a paused worker to 0. A
//!   loss counts for the bodies that ran within a lease after it (see
//!   [`check`]: batons carry a lease the server forgot to other tasks);
//! - the fenced counter must equal its accepted writes, always;
//! - plain-counter lost updates must be 0 when no worker was paused and no
//!   data-loss fault was injected, and are reported otherwise;
//! - no duplicate fencing tokens per key, no hung tasks or workers, no
//!   panics, bodies completed in the quiet period after the faults, and no
//!   lock keys left one lease after the workers stopped.
#![allow(
    clippy::cast_possible_truncation,
    reason = "counts and indexes drawn below small bounds fit in usize"
)]
// The modules' `pub` items reach the other modules of this example.
#![allow(unreachable_pub)]

mod support;

#[path = "nemesis_check/admin.rs"]
mod admin;
#[path = "nemesis_check/backend.rs"]
mod backend;
#[path = "nemesis_check/body.rs"]
mod body;
#[path = "nemesis_check/check.rs"]
mod check;
#[path = "nemesis_check/clock.rs"]
mod clock;
#[path = "nemesis_check/cluster.rs"]
mod cluster;
#[path = "nemesis_check/etcd.rs"]
mod etcd;
#[path = "nemesis_check/fault.rs"]
mod fault;
#[path = "nemesis_check/fleet.rs"]
mod fleet;
#[path = "nemesis_check/history.rs"]
mod history;
#[path = "nemesis_check/line.rs"]
mod line;
#[path = "nemesis_check/nemesis.rs"]
mod nemesis;
#[path = "nemesis_check/parent.rs"]
mod parent;
#[path = "nemesis_check/redlock.rs"]
mod redlock;
#[path = "nemesis_check/report.rs"]
mod report;
#[path = "nemesis_check/sentinel.rs"]
mod sentinel;
#[path = "nemesis_check/service.rs"]
mod service;
#[path = "nemesis_check/single.rs"]
mod single;
#[path = "nemesis_check/store.rs"]
mod store;
#[path = "nemesis_check/timeline.rs"]
mod timeline;
#[path = "nemesis_check/worker.rs"]
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use backend::Backend;
use body::Locking;
use fault::Kind;

/// What to run; see the module docs for the options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--backend`: where the locks live.
    pub backend: Backend,
    /// `--unlocked`: whether the bodies run under their lock.
    pub locking: Locking,
    /// `--duration`: how long the nemesis injects faults.
    pub duration: Duration,
    /// `--quiet`: how long the load runs on after the faults.
    pub quiet: Duration,
    /// `--seed`: the seed of the nemesis's generator.
    pub seed: u64,
    /// `--processes`: worker processes.
    pub processes: usize,
    /// `--tasks`: tasks per worker process.
    pub tasks: usize,
    /// `--keys`: hot keys.
    pub keys: usize,
    /// `--no-data-loss` clears it: whether the nemesis may inject the faults
    /// that can make the lock service forget a valid lease (an empty
    /// restart at once, a master's failover).
    pub data_loss: bool,
    /// `--no-worker-pause` clears it: whether the nemesis may freeze a
    /// worker past its lease. Without worker pauses and data-loss faults,
    /// plain-counter lost updates must be 0.
    pub worker_pauses: bool,
    /// `--timeline FILE`: where to write the run's timeline (SVG), if anywhere.
    pub timeline: Option<PathBuf>,
}

impl Settings {
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Settings, String> {
        let mut settings = Settings {
            backend: Backend::Single,
            locking: Locking::Locked,
            duration: Duration::from_secs(60),
            quiet: Duration::from_secs(6),
            seed: clock::fresh_seed(),
            processes: 3,
            tasks: 4,
            keys: 3,
            data_loss: true,
            worker_pauses: true,
            timeline: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut text = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            let mut number = || {
                let value = text()?;
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{arg} {value}: expected a whole number"))
            };
            match arg.as_str() {
                "--backend" => settings.backend = Backend::parse(&text()?)?,
                "--duration" => settings.duration = Duration::from_secs(number()?),
                "--quiet" => settings.quiet = Duration::from_secs(number()?.max(1)),
                "--seed" => settings.seed = number()?,
                "--processes" => settings.processes = number()?.max(1) as usize,
                "--tasks" => settings.tasks = number()?.max(1) as usize,
                "--keys" => settings.keys = number()?.max(1) as usize,
                "--no-data-loss" => settings.data_loss = false,
                "--no-worker-pause" => settings.worker_pauses = false,
                "--unlocked" => settings.locking = Locking::Unlocked,
                "--timeline" => settings.timeline = Some(PathBuf::from(text()?)),
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(settings)
    }

    /// Whether the nemesis may inject faults of `kind` in this run.
    pub fn allows(&self, kind: Kind) -> bool {
        (self.data_loss || !kind.may_lose_data())
            && (self.worker_pauses || kind != Kind::WorkerPause)
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
                "{error}\nusage: nemesis_check [--backend single|cluster|redlock|sentinel|etcd] [--duration S] [--quiet S] [--seed N] [--processes N] [--tasks N] [--keys N] [--no-data-loss] [--no-worker-pause] [--unlocked] [--timeline FILE]"
            );
            return ExitCode::from(2);
        }
    };
    match parent::run(&settings) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("nemesis check failed to run: {error}");
            ExitCode::FAILURE
        }
    }
}
