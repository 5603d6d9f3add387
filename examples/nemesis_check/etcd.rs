//! A 3-member etcd cluster as the lock service, and the faults that apply
//! to it.

use std::time::Duration;

use lock_testkit::EtcdCluster;

use crate::body::LEASE;
use crate::clock::Rng;
use crate::fault::Kind;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long the members may take to agree on a leader again.
const LEADER_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct Etcd {
    cluster: EtcdCluster,
}

impl Etcd {
    pub fn start() -> Result<Etcd, Error> {
        Ok(Etcd {
            cluster: EtcdCluster::try_start()?,
        })
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.cluster.endpoints()
    }

    pub const KINDS: [Kind; 2] = [Kind::LeaderKill, Kind::MemberPause];

    /// Injects `kind` and heals it; what was done.
    pub fn inject(&mut self, kind: Kind, rng: &mut Rng) -> Result<String, Error> {
        match kind {
            Kind::LeaderKill => {
                let leader = self.cluster.try_leader(LEADER_LIMIT)?;
                let down = rng.leases(LEASE, 0.1, 3.0);
                self.cluster.stop(leader);
                std::thread::sleep(down);
                self.cluster.try_restart_many(&[leader])?;
                self.cluster.try_leader(LEADER_LIMIT)?;
                Ok(format!("member {leader} down {down:.1?}"))
            }
            Kind::MemberPause => {
                let leader = self.cluster.try_leader(LEADER_LIMIT)?;
                let member = rng.below(3) as usize;
                let pause = rng.leases(LEASE, 0.1, 3.0);
                self.cluster.pause(member);
                std::thread::sleep(pause);
                self.cluster.resume(member);
                self.cluster.try_leader(LEADER_LIMIT)?;
                let role = if member == leader {
                    " (the leader)"
                } else {
                    ""
                };
                Ok(format!("member {member}{role} paused {pause:.1?}"))
            }
            other => Err(format!("{} does not apply to etcd", other.name()).into()),
        }
    }

    /// The lease keys of the workers' locks still in the cluster.
    pub fn lock_keys(&self) -> Result<Vec<String>, Error> {
        let endpoints = self.endpoints();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut client = etcd_client::Client::connect(&endpoints, None).await?;
            let found = client
                .get(
                    "distlock:",
                    Some(etcd_client::GetOptions::new().with_prefix()),
                )
                .await?;
            Ok(found
                .kvs()
                .iter()
                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                .filter(|key| key.contains(":lock:nemesis:"))
                .collect())
        })
    }
}
