//! The kinds of fault the nemesis injects, and the record of one injected.

use std::collections::BTreeSet;

/// One kind of fault. Which apply depends on the backend
/// ([`Service::kinds`](crate::service::Service::kinds)); the worker kinds
/// apply to every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// SIGSTOP the lock server for 0.1 to 3 leases, then SIGCONT.
    ServerPause,
    /// Stop the lock server and start it again with all its data
    /// (`SHUTDOWN SAVE`, then a start from that snapshot), down 0.05 to 1 lease.
    RestartWithData,
    /// SIGKILL the lock server and start it empty one lease later, when
    /// every lease it held has run out.
    RestartEmptyLate,
    /// SIGKILL the lock server and start it empty at once: leases still
    /// valid are lost. **Data loss**: the server can grant a held lock again.
    RestartEmpty,
    /// `CLIENT KILL TYPE normal`: every client connection of the lock
    /// server closed at once.
    ClientKill,
    /// Every byte between the workers and the lock server 5 to 300 ms late
    /// (the test kit's `FaultProxy`), for 0.5 to 2 leases.
    Delay,
    /// Nothing between the workers and the lock server gets through, for
    /// 0.1 to 3 leases (`FaultProxy::blackhole`).
    Blackhole,
    /// SIGKILL the master of a replicated Redis (a cluster's, or the one
    /// Sentinel watches) and wait until a replica is promoted; it comes back
    /// as a replica. **May lose data**: replication is asynchronous, so the
    /// last grants may not have reached the replica promoted.
    MasterKill,
    /// SIGSTOP the master of a replicated Redis: a cluster master for 0.1
    /// to 3 leases (failed over once past the 1 s node timeout), Sentinel's
    /// until a replica is promoted. Resumed, it is demoted to a replica.
    /// **May lose data**, as a kill does; and a frozen Sentinel master
    /// answers its old clients as a master until the sentinels demote it.
    MasterPause,
    /// SIGKILL the etcd leader; it restarts with its data after 0.1 to 3 leases.
    LeaderKill,
    /// SIGSTOP one etcd member (maybe the leader) for 0.1 to 3 leases.
    MemberPause,
    /// SIGKILL a worker process (its open bodies end then); a new one takes
    /// its place.
    WorkerKill,
    /// SIGSTOP a worker for 1 to 2 leases (a GC pause past its lease), then
    /// SIGCONT.
    WorkerPause,
}

impl Kind {
    /// What the fault is, for the log and the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ServerPause => "lock server paused (SIGSTOP)",
            Kind::RestartWithData => "lock server restarted with its data",
            Kind::RestartEmptyLate => "lock server killed, restarted empty after a lease",
            Kind::RestartEmpty => "lock server killed, restarted empty at once (data loss)",
            Kind::ClientKill => "client connections killed (CLIENT KILL)",
            Kind::Delay => "network delayed (FaultProxy)",
            Kind::Blackhole => "network black-holed (FaultProxy)",
            Kind::MasterKill => "master killed, replica promoted (data loss possible)",
            Kind::MasterPause => "master paused, failed over if long (data loss possible)",
            Kind::LeaderKill => "etcd leader killed, restarted with its data",
            Kind::MemberPause => "etcd member paused (SIGSTOP)",
            Kind::WorkerKill => "worker killed (SIGKILL), restarted",
            Kind::WorkerPause => "worker paused past its lease (SIGSTOP)",
        }
    }

    /// A few words for the timeline's fault shades.
    pub fn label(self) -> &'static str {
        match self {
            Kind::ServerPause => "pause",
            Kind::RestartWithData => "restart",
            Kind::RestartEmptyLate => "empty, late",
            Kind::RestartEmpty => "empty",
            Kind::ClientKill => "conns killed",
            Kind::Delay => "delay",
            Kind::Blackhole => "black hole",
            Kind::MasterKill => "master kill",
            Kind::MasterPause => "master pause",
            Kind::LeaderKill => "leader kill",
            Kind::MemberPause => "member pause",
            Kind::WorkerKill => "worker kill",
            Kind::WorkerPause => "worker pause",
        }
    }

    /// Whether the lock service may forget a lease still valid: then it can
    /// grant a held lock a second time, and only fencing protects the store.
    /// An empty restart, and a failover of asynchronous replication.
    /// (`--no-data-loss` leaves these kinds out; what one injected fault
    /// did forget is its [`Forgotten`].)
    pub fn may_lose_data(self) -> bool {
        matches!(
            self,
            Kind::RestartEmpty | Kind::MasterKill | Kind::MasterPause
        )
    }
}

/// Which valid leases a fault may have made the lock service forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgotten {
    /// None: the service holds every lease it held (a pause, a restart with
    /// its data, a cluster master paused but not failed over).
    Nothing,
    /// Any of them: a server emptied, a Sentinel master failed over.
    AnyLease,
    /// Those of these hot keys: a cluster master failed over loses only
    /// the slots it served.
    LeasesOf(BTreeSet<usize>),
}

impl Forgotten {
    /// What a fault of `kind` forgets when nothing finer is known.
    pub fn by_kind(kind: Kind) -> Forgotten {
        if kind.may_lose_data() {
            Forgotten::AnyLease
        } else {
            Forgotten::Nothing
        }
    }

    /// Whether the lease of hot key `key` may have been forgotten.
    pub fn covers(&self, key: usize) -> bool {
        match self {
            Forgotten::Nothing => false,
            Forgotten::AnyLease => true,
            Forgotten::LeasesOf(keys) => keys.contains(&key),
        }
    }
}

/// What injecting a fault did: its words for the log, and what the lock
/// service may have forgotten.
#[derive(Debug, Clone)]
pub struct Injected {
    pub detail: String,
    pub forgotten: Forgotten,
}

impl Injected {
    /// `detail` of a fault of `kind` that forgets what such faults may.
    pub fn by_kind(kind: Kind, detail: String) -> Injected {
        Injected {
            detail,
            forgotten: Forgotten::by_kind(kind),
        }
    }
}

/// One fault injected: when it began and when it was healed
/// (`CLOCK_MONOTONIC` µs), what exactly was done and what it may have
/// made the lock service forget.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    pub from: u64,
    pub to: u64,
    pub detail: String,
    pub forgotten: Forgotten,
}
