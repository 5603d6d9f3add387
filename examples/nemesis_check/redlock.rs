//! Redlock over three Redis servers as the lock service, and the faults
//! that apply to it: each strikes a minority, one node.

use std::time::Duration;

use lock_testkit::RedisServer;

use crate::admin;
use crate::body::LEASE;
use crate::clock::Rng;
use crate::fault::Kind;

type Error = Box<dyn std::error::Error + Send + Sync>;

const NODES: usize = 3;

#[derive(Debug)]
pub struct Redlock {
    nodes: Vec<RedisServer>,
}

impl Redlock {
    pub fn start() -> Result<Redlock, Error> {
        Ok(Redlock {
            nodes: lock_testkit::try_start_many(NODES)?,
        })
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The faults of Redlock, each on one node of three.
    pub const KINDS: [Kind; 5] = [
        Kind::ServerPause,
        Kind::RestartWithData,
        Kind::RestartEmptyLate,
        Kind::RestartEmpty,
        Kind::ClientKill,
    ];

    /// Injects `kind` on one node at random and heals it; what was done.
    pub fn inject(&mut self, kind: Kind, rng: &mut Rng) -> Result<String, Error> {
        let i = rng.below(NODES as u64) as usize;
        let node = &mut self.nodes[i];
        match kind {
            Kind::ServerPause => {
                let pause = rng.leases(LEASE, 0.1, 3.0);
                node.try_pause()?;
                std::thread::sleep(pause);
                node.try_resume()?;
                Ok(format!("node {i} of {NODES} paused {pause:.1?}"))
            }
            Kind::RestartWithData => {
                let done = admin::restart_with_data(node, rng.leases(LEASE, 0.05, 1.0))?;
                Ok(format!("node {i} of {NODES} {done}"))
            }
            Kind::ClientKill => {
                let killed = admin::kill_clients(&node.url())?;
                Ok(format!("node {i} of {NODES}: {killed} connections"))
            }
            Kind::RestartEmptyLate => {
                node.stop();
                std::thread::sleep(LEASE + Duration::from_millis(100));
                node.try_restart()?;
                Ok(format!("node {i} of {NODES} down one lease"))
            }
            Kind::RestartEmpty => {
                node.stop();
                node.try_restart()?;
                Ok(format!("node {i} of {NODES} restarted at once"))
            }
            other => Err(format!("{} does not apply to Redlock", other.name()).into()),
        }
    }

    /// The lease keys of the workers' locks still on any node.
    pub fn lock_keys(&self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        for node in &self.nodes {
            keys.extend(admin::lock_keys(&node.url())?);
        }
        Ok(keys)
    }
}
