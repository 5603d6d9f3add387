//! A throwaway Redis Cluster made of [`RedisServer`]s.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::port::free_port;
use crate::server::RedisServer;

const CLI_ENV: &str = "REDIS_CLI_BIN";
const DEFAULT_CLI: &str = "redis-cli";
/// How long the nodes may take to agree that every slot is served.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// A local Redis Cluster: `masters` masters sharing the 16,384 slots, each
/// with `replicas` replicas, every node a throwaway [`RedisServer`] with
/// cluster mode on and a one-second node timeout (so a killed master's
/// replica is promoted within a few seconds).
///
/// The cluster is formed with `redis-cli --cluster create` (from the
/// `REDIS_CLI_BIN` environment variable, or `redis-cli` on `PATH`; Debian's
/// `redis-tools`, which `redis-server` depends on). Each node's cluster bus
/// listens on a free port of its own (`cluster-port`, Redis 7.0 or later).
/// The nodes run the binary [`RedisServer::builder`] picks, so
/// `REDIS_SERVER_BIN` makes a cluster of, say, Valkey nodes; `scripts/test.sh`
/// then forms it with Valkey's `valkey-cli` (Debian's `redis-cli` 7.0 works
/// too).
/// Dropping the cluster kills every node. The thread caveat of
/// [`RedisServer`] applies: a cluster shared by the tests of a binary is
/// kept with [`for_process`](crate::for_process).
///
/// ```no_run
/// use lock_testkit::RedisCluster;
///
/// let cluster = RedisCluster::start(3, 0);
/// let seeds = cluster.seed_urls(); // one "redis://127.0.0.1:<port>" per node
/// # let _ = seeds;
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts and forms a cluster.
    ///
    /// # Panics
    ///
    /// Panics with the reason if the cluster cannot be formed; see
    /// [`try_start`](Self::try_start).
    #[track_caller]
    #[must_use = "dropping a RedisCluster kills its nodes"]
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        Self::try_start(masters, replicas)
            .unwrap_or_else(|e| panic!("failed to start a redis cluster: {e}"))
    }

    /// Starts `masters × (1 + replicas)` nodes and forms a cluster of them.
    ///
    /// # Errors
    ///
    /// Fails when fewer than 3 masters are asked for (Redis needs 3), when a
    /// node cannot start, when `redis-cli` is missing or fails, or when the
    /// nodes do not agree on the slots within 30 s.
    pub fn try_start(masters: usize, replicas: usize) -> io::Result<RedisCluster> {
        if masters < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a redis cluster needs at least 3 masters, not {masters}"),
            ));
        }
        let nodes = (0..masters * (1 + replicas))
            .map(|_| start_node())
            .collect::<io::Result<Vec<_>>>()?;
        let cluster = RedisCluster { nodes };
        cluster.create(replicas)?;
        cluster.wait_until_formed()?;
        Ok(cluster)
    }

    /// Every node, masters first as created (a failover may swap roles).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One node, to stop, pause or restart it.
    ///
    /// # Panics
    ///
    /// Panics if `index` is out of range.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// `redis://127.0.0.1:<port>` of every node, for a cluster client's seeds.
    pub fn seed_urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `CLUSTER INFO` as one node sees it.
    ///
    /// # Errors
    ///
    /// Fails when `redis-cli` cannot reach the node.
    pub fn info(&self, index: usize) -> io::Result<String> {
        cli(&[
            "-p",
            &self.nodes[index].port().to_string(),
            "cluster",
            "info",
        ])
    }

    fn create(&self, replicas: usize) -> io::Result<()> {
        let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
        args.extend(
            self.nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.port())),
        );
        args.extend([
            "--cluster-replicas".to_owned(),
            replicas.to_string(),
            "--cluster-yes".to_owned(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args).map(drop)
    }

    /// Waits until every node reports every slot served and every replica
    /// has synchronised with its master (a replica that never did cannot be
    /// promoted when its master fails).
    fn wait_until_formed(&self) -> io::Result<()> {
        let deadline = Instant::now() + FORM_TIMEOUT;
        let mut last = String::new();
        loop {
            let formed = (0..self.nodes.len()).try_fold(true, |formed, index| {
                last = self.info(index)?;
                let role = cli(&["-p", &self.nodes[index].port().to_string(), "role"])?;
                let synced = !role.starts_with("slave") || role.contains("connected");
                Ok::<_, io::Error>(
                    formed
                        && synced
                        && last.contains("cluster_state:ok")
                        && last.contains("cluster_slots_ok:16384"),
                )
            })?;
            if formed {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the cluster did not form within {FORM_TIMEOUT:?}; last CLUSTER INFO:\n{last}"
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn start_node() -> io::Result<RedisServer> {
    RedisServer::builder()
        .arg("--cluster-enabled")
        .arg("yes")
        .arg("--cluster-config-file")
        .arg("nodes.conf")
        .arg("--cluster-node-timeout")
        .arg("1000")
        .arg("--cluster-port")
        .arg(free_port()?.to_string())
        .start()
}

/// Runs `redis-cli` with `args`, returning its standard output.
fn cli(args: &[&str]) -> io::Result<String> {
    let binary = std::env::var_os(CLI_ENV)
        .filter(|bin| !bin.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CLI), PathBuf::from);
    let output = Command::new(&binary).args(args).output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot run {} ({e}); install Debian's redis-tools or set {CLI_ENV}",
                binary.display()
            ),
        )
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() || stdout.contains("[ERR]") {
        return Err(io::Error::other(format!(
            "redis-cli {} failed ({}): {stdout}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(stdout)
}
