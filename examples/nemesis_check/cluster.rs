//! A Redis Cluster as the lock service (3 masters, one replica each,
//! node timeout 1 s), and the faults that apply to it: a master killed or
//! paused past the node timeout, which its replica replaces (a failover),
//! and every client connection killed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lock_testkit::RedisCluster;

use crate::admin::{self, Link, Role};
use crate::body::LEASE;
use crate::clock::Rng;
use crate::fault::{Forgotten, Injected, Kind};

type Error = Box<dyn std::error::Error + Send + Sync>;

const MASTERS: usize = 3;
/// How long a failover, or a node's return as a replica, may take.
const HEAL_LIMIT: Duration = Duration::from_secs(60);
/// The file through which a restarted node keeps its identity.
const NODES_CONF: &str = "nodes.conf";

/// The cluster, and the names of the hot keys' leases seen on it.
#[derive(Debug)]
pub struct Cluster {
    topology: RedisCluster,
    /// How many hot keys the workers lock.
    keys: usize,
    /// Each hot key's lease name, once seen on a master (distlock picks
    /// its hash tag): which master serves it.
    lease_names: BTreeMap<usize, String>,
}

impl Cluster {
    /// Starts 3 masters with a replica each, for `keys` hot keys.
    pub fn start(keys: usize) -> Result<Cluster, Error> {
        Ok(Cluster {
            topology: RedisCluster::try_start(MASTERS, 1)?,
            keys,
            lease_names: BTreeMap::new(),
        })
    }

    /// The nodes' URLs, for the workers' cluster managers.
    pub fn seed_urls(&self) -> Vec<String> {
        self.topology.seed_urls()
    }

    /// The faults of a cluster.
    pub const KINDS: [Kind; 3] = [Kind::MasterKill, Kind::MasterPause, Kind::ClientKill];

    /// Injects `kind` on one master at random and waits until the cluster
    /// is whole again: every slot served, every master with a connected
    /// replica. What was done, and the hot keys whose leases a failover
    /// of that master may have lost.
    pub fn inject(&mut self, kind: Kind, rng: &mut Rng) -> Result<Injected, Error> {
        let masters = self.nodes_with(|role| role == &Role::Master)?;
        if masters.is_empty() {
            return Err("no node answers as a master".into());
        }
        let node = masters[rng.below(masters.len() as u64) as usize];
        let served = self.keys_served_by(node)?;
        let detail = match kind {
            Kind::MasterKill => {
                self.topology.node_mut(node).stop();
                let promoted = self.wait(Cluster::masters_up)?;
                self.topology
                    .node_mut(node)
                    .try_restart_keeping(&[NODES_CONF])?;
                format!("node {node} killed, its replica promoted after {promoted:.1?}")
            }
            Kind::MasterPause => {
                let pause = rng.leases(LEASE, 0.1, 3.0);
                let paused = &self.topology.nodes()[node];
                paused.try_pause()?;
                std::thread::sleep(pause);
                paused.try_resume()?;
                format!("node {node} paused {pause:.1?}")
            }
            Kind::ClientKill => {
                let mut killed = 0;
                for &master in &masters {
                    killed += admin::kill_clients(&self.topology.nodes()[master].url())?;
                }
                format!("{killed} connections on {} masters", masters.len())
            }
            other => return Err(format!("{} does not apply to a cluster", other.name()).into()),
        };
        let healed = self.wait(Cluster::whole)?;
        let (role, forgotten) = match admin::role(&self.topology.nodes()[node].url())? {
            Role::Master => ("still a master", Forgotten::Nothing),
            _ => ("now a replica", Forgotten::LeasesOf(served)),
        };
        let detail = format!("{detail}; whole again after {healed:.1?}, {role}");
        Ok(Injected { detail, forgotten })
    }

    /// The hot keys whose leases master `node` serves. A key whose lease
    /// name was never seen counts as served by it: it may be.
    fn keys_served_by(&mut self, node: usize) -> Result<BTreeSet<usize>, Error> {
        // A lease's name never changes: once every key's is known, no more
        // `KEYS` on every master before each fault.
        let names = if self.lease_names.len() < self.keys {
            self.lock_keys()?
        } else {
            Vec::new()
        };
        for name in names {
            let key = name.rsplit(':').next().and_then(|key| key.parse().ok());
            if let Some(key) = key {
                self.lease_names.insert(key, name);
            }
        }
        let url = self.topology.nodes()[node].url();
        let mut served = BTreeSet::new();
        for key in 0..self.keys {
            let seen = self.lease_names.get(&key);
            if seen.map_or(Ok(true), |name| admin::serves(&url, name))? {
                served.insert(key);
            }
        }
        Ok(served)
    }

    /// The lease keys of the workers' locks still on any master.
    pub fn lock_keys(&self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        for master in self.nodes_with(|role| role == &Role::Master)? {
            keys.extend(admin::lock_keys(&self.topology.nodes()[master].url())?);
        }
        Ok(keys)
    }

    /// The running nodes whose `ROLE` passes `wanted`.
    fn nodes_with(&self, wanted: impl Fn(&Role) -> bool) -> Result<Vec<usize>, Error> {
        let mut found = Vec::new();
        for (index, node) in self.topology.nodes().iter().enumerate() {
            if node.is_running() && wanted(&admin::role(&node.url())?) {
                found.push(index);
            }
        }
        Ok(found)
    }

    /// Whether every running node is up and `MASTERS` of them are masters
    /// (so a killed master's replica took its place).
    fn masters_up(&self) -> Result<(), Error> {
        let masters = self.nodes_with(|role| role == &Role::Master)?.len();
        if masters == MASTERS {
            Ok(())
        } else {
            Err(format!("{masters} masters running").into())
        }
    }

    /// Whether the cluster is whole: `MASTERS` masters, as many connected
    /// replicas, and every node says `cluster_state:ok`.
    fn whole(&self) -> Result<(), Error> {
        self.masters_up()?;
        let replicas = self
            .nodes_with(|role| role == &Role::Replica(Link::Connected))?
            .len();
        if replicas != MASTERS {
            return Err(format!("{replicas} connected replicas").into());
        }
        for node in self.topology.nodes() {
            let info: String = admin::query(&node.url(), redis::cmd("CLUSTER").arg("INFO"))?;
            if !info.contains("cluster_state:ok") {
                return Err(format!("{} says the cluster is not ok", node.url()).into());
            }
        }
        Ok(())
    }

    /// Polls `done` until it holds, within [`HEAL_LIMIT`]; how long it took.
    fn wait(&self, done: impl Fn(&Cluster) -> Result<(), Error>) -> Result<Duration, Error> {
        let started = Instant::now();
        loop {
            let last = match done(self) {
                Ok(()) => return Ok(started.elapsed()),
                Err(error) => error,
            };
            if started.elapsed() > HEAL_LIMIT {
                return Err(
                    format!("the cluster is not whole after {HEAL_LIMIT:?}: {last}").into(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
