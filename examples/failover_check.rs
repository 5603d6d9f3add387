//! How often a failover grants a lock twice: a lock is granted, the primary
//! holding it is killed at once (SIGKILL), a replica is promoted, and a
//! second manager asks for the same lock on the promoted replica while the
//! first holder's validity has most of its lease left.
//!
//! ```text
//! cargo run --release --example failover_check -- --topology sentinel --acks none --lag off --rounds 20
//! cargo run --release --example failover_check -- --topology cluster --acks 1 --lag on
//! ```
//!
//! Options: `--topology sentinel|cluster` (sentinel), `--acks none|1`
//! (none), `--lag off|on|stalled` (off), `--rounds N` (20), `--ttl SECONDS` (20,
//! the first holder's lease), `--ack-timeout-ms N` (200, the `WAIT` of
//! `--acks 1`).
//!
//! The topology is throwaway, started once per run on loopback: for
//! `sentinel`, one primary, two replicas and three sentinels
//! (`lock_testkit::RedisSentinel`, down-after 1 s); for `cluster`, three
//! masters with one replica each (`lock_testkit::RedisCluster`, node
//! timeout 1 s). Each round:
//!
//! 1. manager A acquires a fresh key with a long lease (`try_acquire`);
//!    with `--acks 1` it is built with
//!    `replica_acks(1, ack timeout, Unacknowledged::Release)`, so the grant
//!    waits for one replica or is refused with `LockError::NotReplicated`;
//! 2. the primary holding the key is killed as soon as A's acquire
//!    returns: SIGKILL to its pid, with no pause (then the kit reaps it);
//! 3. the run waits for the promotion (Sentinel: the kit's
//!    `wait_for_failover`; cluster: the replica answers `ROLE` as a master
//!    and the cluster is `ok` again);
//! 4. manager B, a separate manager (another "process", without
//!    `replica_acks`: it only asks whether the promoted replica still knows
//!    A's lease), calls `try_acquire` on the same key, again every 100 ms
//!    while it gets errors, for up to 10 s;
//! 5. a **double grant** is B getting the lock while `Instant::now() <
//!    A.valid_until()`;
//! 6. both guards are released, the killed node is restarted empty on its
//!    port and rejoins as a replica (Sentinel turns it into one; in the
//!    cluster the run makes it `CLUSTER MEET` the others and `CLUSTER
//!    REPLICATE` the promoted replica, and the others `CLUSTER FORGET` its
//!    old identity), and the next round starts once every master has all its
//!    replicas connected and acknowledging a write (`WAIT`).
//!
//! With `--lag on`, the replicas of the doomed primary are behind when
//! the lock is granted: just before step 1 they are frozen (SIGSTOP) while
//! 1 MiB values are written to the primary from another connection, until
//! at least 4 MiB wait for each of them in the primary's output buffer
//! (`omem` of `CLIENT LIST TYPE replica`; the first 3 MiB or so go into the
//! kernel's socket buffers, which outlive the primary, the output buffer
//! does not). They are resumed (SIGCONT) 50 ms after A asks, or right after
//! the kill if it comes first: replicas 50 ms and some megabytes behind.
//! A grant that does not wait for them is killed with its lease behind the
//! backlog; one that waits for an acknowledgement (`--acks 1`, 200 ms) gets
//! it once a replica has caught up. With `--lag stalled` the replicas stay
//! frozen until right after the kill, so no replica can acknowledge a
//! grant. A replica is stopped for well under the 1 s after which Sentinel
//! or the cluster would think it down (unless A's acquire itself takes
//! longer, as a command timeout does), and the backlog stays far below the
//! replica output buffer limits.
//!
//! The servers are `REDIS_SERVER_BIN`, or `redis-server` on `PATH` (and
//! the cluster is formed with `REDIS_CLI_BIN`, or `redis-cli`), as in the
//! test kit.
//!
//! Prints one line per round and a summary: rounds, double grants,
//! `NotReplicated` refusals, other errors, failover times (kill to
//! promotion) and the total time. Exits non-zero only when the program
//! itself fails (a topology that does not start or heal); double grants
//! are what it counts, not failures.
// The modules' `pub` items reach the other modules of this example.
#![allow(unreachable_pub)]

#[path = "failover_check/cluster.rs"]
mod cluster;
#[path = "failover_check/node.rs"]
mod node;
#[path = "failover_check/report.rs"]
mod report;
#[path = "failover_check/round.rs"]
mod round;
#[path = "failover_check/sentinel.rs"]
mod sentinel;

use std::process::ExitCode;
use std::time::Duration;

/// How far behind the replicas are when the lock is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// As replication goes on an idle loopback: caught up within the
    /// grant's round trip.
    Off,
    /// Megabytes behind and frozen: resumed 50 ms after the grant was
    /// asked for (or at the kill, if it comes first).
    On,
    /// Megabytes behind and stalled: resumed only after the kill.
    Stalled,
}

/// Where the locks live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// One primary, two replicas, three sentinels.
    Sentinel,
    /// Three masters with one replica each.
    Cluster,
}

/// What to run; see the module docs for the options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Sentinel or cluster.
    pub topology: Topology,
    /// `--acks 1`: A's grants wait for one replica.
    pub acks: bool,
    /// How far behind the replicas are at the grant.
    pub lag: Lag,
    /// Rounds, each with its own failover.
    pub rounds: u32,
    /// A's lease.
    pub ttl: Duration,
    /// The `WAIT` timeout of `--acks 1`.
    pub ack_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            topology: Topology::Sentinel,
            acks: false,
            lag: Lag::Off,
            rounds: 20,
            ttl: Duration::from_secs(20),
            ack_timeout: Duration::from_millis(200),
        }
    }
}

impl Settings {
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Settings, String> {
        let mut settings = Settings::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
            let number = || {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{arg} {value}: expected a whole number above 0"))
            };
            match (arg.as_str(), value.as_str()) {
                ("--topology", "sentinel") => settings.topology = Topology::Sentinel,
                ("--topology", "cluster") => settings.topology = Topology::Cluster,
                ("--acks", "none") => settings.acks = false,
                ("--acks", "1") => settings.acks = true,
                ("--lag", "off") => settings.lag = Lag::Off,
                ("--lag", "on") => settings.lag = Lag::On,
                ("--lag", "stalled") => settings.lag = Lag::Stalled,
                ("--rounds", _) => settings.rounds = number()?,
                ("--ttl", _) => settings.ttl = Duration::from_secs(number()?.into()),
                ("--ack-timeout-ms", _) => {
                    settings.ack_timeout = Duration::from_millis(number()?.into());
                }
                ("--topology" | "--acks" | "--lag", _) => {
                    return Err(format!("{arg} {value}: not one of the choices"));
                }
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(settings)
    }

    /// The settings as the command line spells them.
    pub fn describe(&self) -> String {
        format!(
            "--topology {} --acks {} --lag {} --rounds {} --ttl {} --ack-timeout-ms {}",
            match self.topology {
                Topology::Sentinel => "sentinel",
                Topology::Cluster => "cluster",
            },
            if self.acks { "1" } else { "none" },
            match self.lag {
                Lag::Off => "off",
                Lag::On => "on",
                Lag::Stalled => "stalled",
            },
            self.rounds,
            self.ttl.as_secs(),
            self.ack_timeout.as_millis(),
        )
    }
}

fn main() -> ExitCode {
    let settings = match Settings::from_args(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!(
                "{error}\nusage: failover_check [--topology sentinel|cluster] [--acks none|1] [--lag off|on|stalled] [--rounds N] [--ttl SECONDS] [--ack-timeout-ms N]"
            );
            return ExitCode::from(2);
        }
    };
    // Multi-thread: the kit's blocking waits run in `block_in_place` on
    // this thread, which started (and so must restart) the servers.
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
    match runtime.block_on(round::run(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("failover check failed to run: {error}");
            ExitCode::FAILURE
        }
    }
}
