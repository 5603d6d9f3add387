//! The Sentinel topology: one primary, two replicas, three sentinels.

use std::time::{Duration, Instant};

use distlock::{LockManager, LockManagerBuilder};
use lock_testkit::{RedisSentinel, RedisServer};
use tokio::task::block_in_place;

use crate::node::{self, Error};
use crate::round::Target;

/// Replicas of the primary.
const REPLICAS: usize = 2;
/// The key written to check replication and to make lag.
const OWN_KEY: &str = "failover-check:lag";
/// How long a failover or a return may take before the run gives up.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
const HEAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The running topology.
#[derive(Debug)]
pub struct Rig {
    topology: RedisSentinel,
}

impl Rig {
    /// Starts the topology; in the thread that will drop it.
    pub fn start() -> Result<Rig, Error> {
        Ok(Rig {
            topology: RedisSentinel::try_start(REPLICAS, 3)?,
        })
    }

    /// What the run prints about the topology.
    pub fn describe(&self) -> String {
        format!(
            "1 primary + {REPLICAS} replicas + {} sentinels (master `{}`)",
            self.topology.sentinels().len(),
            self.topology.master_name()
        )
    }

    /// A manager builder on the sentinels.
    pub fn builder(&self) -> LockManagerBuilder {
        LockManager::sentinel(self.topology.sentinel_urls(), self.topology.master_name())
    }

    pub fn nodes(&self) -> &[RedisServer] {
        self.topology.nodes()
    }

    /// The primary (every key is on it) and its replicas.
    pub fn target(&self) -> Result<Target, Error> {
        let primary = block_in_place(|| self.topology.try_master_index())?;
        let replicas = (0..self.nodes().len())
            .filter(|&index| index != primary && self.nodes()[index].is_running())
            .collect();
        Ok(Target {
            primary,
            replicas,
            own_key: OWN_KEY.to_owned(),
            ids: None,
        })
    }

    /// Kills the primary with SIGKILL: at once, to its pid (the kit's
    /// `kill_master` asks the sentinels which node is the primary first,
    /// which takes a few milliseconds), then through the kit, which reaps
    /// it and records it for `wait_for_failover` and `restart_killed`.
    pub fn kill(&mut self, target: &Target) -> Result<Instant, Error> {
        let sent = node::sigkill(&self.nodes()[target.primary])?;
        let killed = block_in_place(|| self.topology.try_kill_master())?;
        if killed == target.primary {
            Ok(sent)
        } else {
            Err(format!(
                "the primary moved from node {} to node {killed} before the kill",
                target.primary
            )
            .into())
        }
    }

    /// Waits until Sentinel has promoted a replica, returning its URL.
    pub fn wait_for_failover(&self) -> Result<String, Error> {
        Ok(block_in_place(|| {
            self.topology.wait_for_failover(FAILOVER_TIMEOUT)
        })?)
    }

    /// Restarts the killed node (Sentinel turns it into a replica) and
    /// waits until the primary has both replicas acknowledging writes.
    pub async fn restore(&mut self) -> Result<(), Error> {
        block_in_place(|| self.topology.try_restart_killed())?;
        self.wait_healthy().await
    }

    /// Waits until the primary has every replica connected and
    /// acknowledging a write.
    pub async fn wait_healthy(&self) -> Result<(), Error> {
        let deadline = Instant::now() + HEAL_TIMEOUT;
        loop {
            let last = match block_in_place(|| self.topology.try_master_url()) {
                Ok(url) => match node::replicas_acknowledge(&url, REPLICAS, OWN_KEY).await {
                    Ok(()) => return Ok(()),
                    Err(error) => error,
                },
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "replication not healthy {HEAL_TIMEOUT:?} after the restart: {last}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
