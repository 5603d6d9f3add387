//! The cluster topology: three masters with one replica each.

use std::time::{Duration, Instant};

use distlock::{LockManager, LockManagerBuilder};
use lock_testkit::{RedisCluster, RedisServer};
use redis::Value;
use tokio::task::block_in_place;

use crate::node::{self, Error};
use crate::round::Target;

const MASTERS: usize = 3;
/// How long a failover or a return may take before the run gives up.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
const HEAL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the nodes are asked while waiting.
const POLL: Duration = Duration::from_millis(20);

/// The running cluster.
#[derive(Debug)]
pub struct Rig {
    cluster: RedisCluster,
}

/// A node's `ROLE`.
#[derive(Debug, PartialEq, Eq)]
enum Role {
    Master,
    Replica { of_port: u16, connected: bool },
    Other,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct Known {
    id: String,
    port: u16,
    bus_port: u16,
    flags: String,
}

impl Rig {
    /// Starts and forms the cluster; in the thread that will drop it.
    pub async fn start() -> Result<Rig, Error> {
        let rig = Rig {
            cluster: block_in_place(|| RedisCluster::try_start(MASTERS, 1))?,
        };
        for node in rig.nodes() {
            no_sync_delay(&node.url()).await?;
        }
        Ok(rig)
    }

    /// What the run prints about the topology.
    pub fn describe(&self) -> String {
        format!(
            "{MASTERS} masters + 1 replica each ({} nodes, node timeout 1 s)",
            self.nodes().len()
        )
    }

    /// A manager builder on every node as a seed.
    pub fn builder(&self) -> LockManagerBuilder {
        LockManager::cluster(self.cluster.seed_urls())
    }

    pub fn nodes(&self) -> &[RedisServer] {
        self.cluster.nodes()
    }

    /// The master serving `key` and its replica, found by holding the lock
    /// a moment with `probe` and asking every master for its lease key.
    pub async fn target(
        &self,
        key: &str,
        prefix: &str,
        probe: &LockManager,
    ) -> Result<Target, Error> {
        let held = tokio::time::timeout(
            Duration::from_secs(10),
            probe.lock(key).ttl(Duration::from_secs(5)).try_acquire(),
        )
        .await
        .map_err(|_| "the probe's acquire did not return within 10 s")??
        .ok_or("the probe found the fresh key held")?;
        let pattern = format!("{prefix}*:lock:{key}");
        let mut found = None;
        for (index, server) in self.nodes().iter().enumerate() {
            if !server.is_running() || role(&server.url()).await? != Role::Master {
                continue;
            }
            let keys: Vec<String> =
                node::query(&server.url(), redis::cmd("KEYS").arg(&pattern)).await?;
            if let Some(lease) = keys.into_iter().next() {
                found = Some((index, lease));
            }
        }
        let _ = held.release().await?;
        let (primary, lease) = found.ok_or("no master holds the probe's lease")?;
        let tag = lease
            .find('{')
            .zip(lease.find('}'))
            .map(|(open, close)| &lease[open..=close])
            .ok_or("the lease key has no hash tag")?;
        let primary_port = self.nodes()[primary].port();
        let mut replica = None;
        for (index, server) in self.nodes().iter().enumerate() {
            if server.is_running()
                && let Role::Replica { of_port, .. } = role(&server.url()).await?
                && of_port == primary_port
            {
                replica = Some(index);
            }
        }
        let replica = replica.ok_or("the key's master has no replica")?;
        let primary_id = my_id(&self.nodes()[primary].url()).await?;
        let replica_id = my_id(&self.nodes()[replica].url()).await?;
        Ok(Target {
            primary,
            replicas: vec![replica],
            // The lease's hash tag: a key of the same slot.
            own_key: format!("{tag}failover-check:lag"),
            ids: Some((primary_id, replica_id)),
        })
    }

    /// Kills the key's master with SIGKILL (and reaps it).
    pub fn kill(&mut self, target: &Target) -> Result<Instant, Error> {
        let sent = node::sigkill(&self.nodes()[target.primary])?;
        self.cluster.node_mut(target.primary).stop();
        Ok(sent)
    }

    /// Waits until the replica answers `ROLE` as a master and every running
    /// node says the cluster is `ok`, returning the new master's URL.
    pub async fn wait_for_failover(&self, target: &Target) -> Result<String, Error> {
        let url = self.nodes()[target.replicas[0]].url();
        let deadline = Instant::now() + FAILOVER_TIMEOUT;
        loop {
            let last = match self.promoted(&url).await {
                Ok(()) => return Ok(url),
                Err(error) => error,
            };
            if Instant::now() > deadline {
                return Err(format!("no failover within {FAILOVER_TIMEOUT:?}: {last}").into());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether the node at `url` is a master, and the cluster `ok`
    /// everywhere.
    async fn promoted(&self, url: &str) -> Result<(), Error> {
        if role(url).await? != Role::Master {
            return Err(format!("{url} is not a master yet").into());
        }
        for server in self.nodes().iter().filter(|server| server.is_running()) {
            let info: String =
                node::query(&server.url(), redis::cmd("CLUSTER").arg("INFO")).await?;
            if node::info_field(&info, "cluster_state") != Some("ok") {
                return Err(format!("{} says the cluster is not ok", server.url()).into());
            }
        }
        Ok(())
    }

    /// Restarts the killed master empty on its port and makes it a replica
    /// of the promoted one: the others forget its old identity, it meets
    /// them, and replicates. Done when it is connected and acknowledges a
    /// write, and every node knows it and says the cluster is `ok`.
    pub async fn restore(&mut self, target: &Target) -> Result<(), Error> {
        let (old_id, master_id) = target.ids.clone().ok_or("a cluster target has ids")?;
        block_in_place(|| self.cluster.node_mut(target.primary).try_restart())?;
        let url = self.nodes()[target.primary].url();
        let master = &self.nodes()[target.replicas[0]];
        let master_url = master.url();
        no_sync_delay(&url).await?;
        self.forget_everywhere(target.primary, &old_id).await?;
        let nodes: String = node::query(&master_url, redis::cmd("CLUSTER").arg("NODES")).await?;
        let me = parse_nodes(&nodes)
            .into_iter()
            .find(|known| known.flags.split(',').any(|flag| flag == "myself"))
            .ok_or("the new master does not list itself")?;
        let () = node::query(
            &url,
            redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(me.port)
                .arg(me.bus_port),
        )
        .await?;
        let new_id = my_id(&url).await?;
        let deadline = Instant::now() + HEAL_TIMEOUT;
        let mut replicating = false;
        loop {
            let step = async {
                let knew = self.forget_everywhere(target.primary, &old_id).await?;
                if knew > 0 {
                    return Err(format!("{knew} nodes still knew the old identity {old_id}").into());
                }
                if !replicating {
                    let () =
                        node::query(&url, redis::cmd("CLUSTER").arg("REPLICATE").arg(&master_id))
                            .await?;
                    replicating = true;
                }
                if role(&url).await?
                    != (Role::Replica {
                        of_port: master.port(),
                        connected: true,
                    })
                {
                    return Err(Error::from("the restarted node is not a connected replica"));
                }
                self.all_know(&new_id).await?;
                node::replicas_acknowledge(&master_url, 1, &target.own_key).await?;
                Ok(())
            };
            let last = match step.await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "the restarted node did not rejoin as a replica within {HEAL_TIMEOUT:?}: {last}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes every running node but `except` forget `id`, returning how
    /// many still knew it.
    async fn forget_everywhere(&self, except: usize, id: &str) -> Result<usize, Error> {
        let mut knew = 0;
        for (index, server) in self.nodes().iter().enumerate() {
            if index == except || !server.is_running() {
                continue;
            }
            let nodes: String =
                node::query(&server.url(), redis::cmd("CLUSTER").arg("NODES")).await?;
            if parse_nodes(&nodes).iter().any(|known| known.id == id) {
                knew += 1;
                // An error (it forgot meanwhile) changes nothing.
                let _: Result<(), Error> =
                    node::query(&server.url(), redis::cmd("CLUSTER").arg("FORGET").arg(id)).await;
            }
        }
        Ok(knew)
    }

    /// Whether every running node knows `id` as a healthy node and says the
    /// cluster is `ok`.
    async fn all_know(&self, id: &str) -> Result<(), Error> {
        for server in self.nodes().iter().filter(|server| server.is_running()) {
            let url = server.url();
            let nodes: String = node::query(&url, redis::cmd("CLUSTER").arg("NODES")).await?;
            let healthy = parse_nodes(&nodes).iter().any(|known| {
                known.id == id
                    && !known
                        .flags
                        .split(',')
                        .any(|flag| matches!(flag, "handshake" | "noaddr" | "fail" | "fail?"))
            });
            if !healthy {
                return Err(format!("{url} does not know {id} as a healthy node").into());
            }
            let info: String = node::query(&url, redis::cmd("CLUSTER").arg("INFO")).await?;
            if node::info_field(&info, "cluster_state") != Some("ok") {
                return Err(format!("{url} says the cluster is not ok").into());
            }
        }
        Ok(())
    }
}

/// Full syncs (a restarted node's) start at once, not after 5 s waiting
/// for more replicas.
async fn no_sync_delay(url: &str) -> Result<(), Error> {
    node::query(
        url,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("repl-diskless-sync-delay")
            .arg(0),
    )
    .await
}

/// The node's `ROLE`.
async fn role(url: &str) -> Result<Role, Error> {
    let role: Vec<Value> = node::query(url, &redis::cmd("ROLE")).await?;
    Ok(match role.as_slice() {
        [Value::BulkString(name), ..] if name == b"master" => Role::Master,
        [
            Value::BulkString(name),
            _,
            Value::Int(port),
            Value::BulkString(state),
            ..,
        ] if name == b"slave" => Role::Replica {
            of_port: u16::try_from(*port).unwrap_or(0),
            connected: state == b"connected",
        },
        _ => Role::Other,
    })
}

/// The node's cluster identity.
async fn my_id(url: &str) -> Result<String, Error> {
    node::query(url, redis::cmd("CLUSTER").arg("MYID")).await
}

/// The lines of `CLUSTER NODES`: `<id> <ip:port@bus-port[,host]> <flags> …`.
fn parse_nodes(text: &str) -> Vec<Known> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.to_owned();
            let address = fields.next()?;
            let flags = fields.next()?.to_owned();
            let (host_port, bus) = address.split_once('@')?;
            let port = host_port.rsplit_once(':')?.1.parse().ok()?;
            let bus_port = bus.split(',').next()?.parse().ok()?;
            Some(Known {
                id,
                port,
                bus_port,
                flags,
            })
        })
        .collect()
}
