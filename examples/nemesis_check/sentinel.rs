//! A master with two replicas, failed over by three sentinels, as the lock
//! service, and the faults that apply to it: the master killed (it comes
//! back empty, as a replica) or frozen (it comes back with its data and
//! its clients' connections, an old master until the sentinels demote
//! it), each replaced by a promoted replica; and every client connection
//! of the master killed.

use std::time::Duration;

use lock_testkit::RedisSentinel;

use crate::admin;
use crate::clock::Rng;
use crate::fault::Kind;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long the sentinels may take to promote a replica.
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Sentinel {
    topology: RedisSentinel,
}

impl Sentinel {
    /// Starts a master, 2 replicas and 3 sentinels on loopback.
    pub fn start() -> Result<Sentinel, Error> {
        Ok(Sentinel {
            topology: RedisSentinel::try_start(2, 3)?,
        })
    }

    /// The master's name, then the sentinels' URLs: the worker plan's form.
    pub fn worker_locks(&self) -> Vec<String> {
        let mut locks = vec![self.topology.master_name().to_owned()];
        locks.extend(self.topology.sentinel_urls());
        locks
    }

    /// The faults of a Sentinel topology.
    pub const KINDS: [Kind; 3] = [Kind::MasterKill, Kind::MasterPause, Kind::ClientKill];

    /// Injects `kind` and waits until the topology is whole again (the old
    /// master a replica of the new one); what was done.
    pub fn inject(&mut self, kind: Kind, _rng: &mut Rng) -> Result<String, Error> {
        match kind {
            Kind::MasterKill => {
                let old = self.topology.try_kill_master()?;
                let new = self.topology.wait_for_failover(FAILOVER_LIMIT)?;
                self.topology.try_restart_killed()?;
                Ok(format!(
                    "node {old} killed; {new} promoted; node {old} back as a replica"
                ))
            }
            Kind::MasterPause => {
                let old = self.topology.try_pause_master()?;
                let new = self.topology.wait_for_failover(FAILOVER_LIMIT)?;
                self.topology.try_resume_paused()?;
                Ok(format!(
                    "node {old} frozen; {new} promoted; node {old} resumed, demoted"
                ))
            }
            Kind::ClientKill => {
                let killed = admin::kill_clients(&self.topology.try_master_url()?)?;
                Ok(format!("{killed} connections on the master"))
            }
            other => Err(format!("{} does not apply to Sentinel", other.name()).into()),
        }
    }

    /// The lease keys of the workers' locks still on the master.
    pub fn lock_keys(&self) -> Result<Vec<String>, Error> {
        admin::lock_keys(&self.topology.try_master_url()?)
    }
}
