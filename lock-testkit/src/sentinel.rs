//! A throwaway Sentinel topology: a master, its replicas and the sentinels
//! watching them, every process a [`RedisServer`].

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use crate::builder::RedisServerBuilder;
use crate::port::free_port;
use crate::resp::{self, Reply};
use crate::server::RedisServer;
use crate::tls::TlsFiles;

/// The name the sentinels monitor the master under.
const MASTER_NAME: &str = "distlock-test";
/// How long the master may not answer before a sentinel thinks it down.
///
/// It must be well above the ping period: a sentinel that switches to a
/// new master starts its down clock at once, but may wait up to a ping
/// period before it even reconnects (the old master's reconnection
/// schedule), and the others' "down" votes for the old master still count
/// for a few seconds; with `down-after-milliseconds` 1000 and the default
/// 1 s period, some switches ended in a second, spurious failover.
const DOWN_AFTER_MS: u32 = 1000;
/// [`DOWN_AFTER_MS`] on a server without `SENTINEL DEBUG`, whose sentinels
/// keep the 1 s ping period.
const SLOW_DOWN_AFTER_MS: &str = "2000";
/// Sentinel's `failover-timeout`: how long a failover may take, and how long
/// a sentinel that voted in one waits before it may try one itself.
const FAILOVER_TIMEOUT_MS: u32 = 3000;
/// How long the topology may take to settle at start.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node brought back may take to become a replica: about 3.5 s
/// on Redis 7, 20 s (up to about 30) with Sentinel's default periods.
const RETURN_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the topology is polled while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Faster internal periods than Sentinel's defaults (`INFO` every 10 s,
/// hello messages every 2 s, pings every second): the sentinels find each
/// other within a second, turn a returning old master into a replica after
/// 2 s instead of 8 to 18, and reach a new master well within
/// [`DOWN_AFTER_MS`]. `SENTINEL DEBUG` is Redis 7.0's; an older server
/// answers an error, and keeps its defaults.
const FAST_PERIODS: [&str; 8] = [
    "SENTINEL",
    "DEBUG",
    "info-period",
    "1000",
    "publish-period",
    "500",
    "ping-period",
    "500",
];
/// The key the kit writes to check on the nodes; it never outlives a check.
const PROBE_KEY: &str = "lock-testkit:sentinel:probe";
/// A write that changes nothing: a master answers `0`, a replica `READONLY`.
const WRITE_PROBE: [&str; 2] = ["DEL", PROBE_KEY];
/// How many free ports are tried for a process's TLS listener.
const TLS_PORT_ATTEMPTS: u32 = 5;

/// A local Redis Sentinel deployment: one master, `replicas` replicas and
/// `sentinels` sentinels monitoring the master as
/// [`master_name`](Self::master_name), every process a throwaway
/// [`RedisServer`] on its own free loopback port with its own temp dir.
///
/// The sentinels are `redis-server <config> --sentinel`, from the same
/// binary as the data nodes (`REDIS_SERVER_BIN` or `redis-server` on
/// `PATH`, see [`RedisServerBuilder::binary`](crate::RedisServerBuilder::binary)),
/// each with its own writable config file. Their quorum is a majority of
/// the sentinels, their timings are short for tests (`down-after-milliseconds
/// 1000`, `failover-timeout 3000`, `parallel-syncs 1`, and faster `SENTINEL
/// DEBUG` periods; a server without `SENTINEL DEBUG`, such as Redis 6.2,
/// gets `down-after-milliseconds 2000` instead), and every address they
/// report is `127.0.0.1:<port>`.
///
/// Replicas are made replicas with `REPLICAOF` once started, so every data
/// node starts (and [restarts](RedisServer::restart)) as an empty master:
/// one that comes back after a crash is turned into a replica by the
/// sentinels, as in production.
///
/// ```no_run
/// use std::time::Duration;
/// use lock_testkit::RedisSentinel;
///
/// let mut topology = RedisSentinel::start(2, 3);
/// let sentinels = topology.sentinel_urls(); // for a Sentinel client
/// let before = topology.master_url();
/// topology.kill_master();
/// let after = topology.wait_for_failover(Duration::from_secs(15)).unwrap();
/// assert_ne!(before, after);
/// topology.restart_killed(); // back, as a replica of `after`
/// # let _ = sentinels;
/// ```
///
/// Starting takes about 1 to 2 s. A failover takes about 3 s from the kill
/// to [`wait_for_failover`](Self::wait_for_failover)'s return (2.3 to
/// 3.3 s measured on Redis 7.0 and Valkey 8.1; 5.3 s on Redis 6.2): a
/// second of silence before a sentinel suspects the master, up to one more
/// for the others to agree, a random delay of up to a second before the
/// election, then the promotion and the other replicas' reconfiguration.
///
/// # TLS
///
/// [`start_tls`](Self::start_tls) starts the same topology with TLS: every
/// process also listens for TLS on a port of its own (`--tls-port`), with a
/// certificate for `127.0.0.1` issued by a fresh test CA
/// ([`ca_pem`](Self::ca_pem)), and `--tls-replication yes`, so that replicas
/// reach the master, and sentinels reach the data nodes and each other,
/// over TLS. Everything the topology reports is then a TLS port: replicas
/// announce theirs, the sentinels monitor the master's and announce their
/// own, and [`sentinel_urls`](Self::sentinel_urls) and
/// [`master_url`](Self::master_url) are `rediss://` URLs of TLS ports. The
/// plain ports stay open on loopback for the kit's own probes (they are
/// what [`RedisServer::port`] of [`nodes`](Self::nodes) and
/// [`sentinels`](Self::sentinels) says), but no process names them to a
/// client.
///
/// Dropping the topology kills every process, sentinels first. The thread
/// caveat of [`RedisServer`] applies: start it, and call the methods that
/// start processes again, in the thread that drops it, or share it with
/// [`for_process`](crate::for_process).
#[derive(Debug)]
pub struct RedisSentinel {
    /// Dropped (killed) first, so they do not react to the nodes dying.
    sentinels: Vec<RedisServer>,
    /// The master as started, then the replicas.
    nodes: Vec<RedisServer>,
    /// Masters taken down by `kill_master` or `pause_master`, oldest first,
    /// until brought back.
    down: Vec<Down>,
    /// The port clients reach each sentinel on: its TLS port with TLS.
    sentinel_ports: Vec<u16>,
    /// The port clients reach each data node on, the one the sentinels and
    /// replicas report: its TLS port with TLS.
    node_ports: Vec<u16>,
    /// The certificate files; dropped after the processes reading them.
    tls: Option<TlsFiles>,
}

/// A master taken down by the kit.
#[derive(Debug, Clone, Copy)]
struct Down {
    /// Its index in `nodes`.
    index: usize,
    /// Paused (`SIGSTOP`) rather than killed.
    paused: bool,
}

impl RedisSentinel {
    /// Starts a master, `replicas` replicas and `sentinels` sentinels, and
    /// waits until the sentinels know them all.
    ///
    /// # Panics
    ///
    /// Panics with the reason if the topology cannot be started; see
    /// [`try_start`](Self::try_start).
    #[track_caller]
    #[must_use = "dropping a RedisSentinel kills its processes"]
    pub fn start(replicas: usize, sentinels: usize) -> RedisSentinel {
        Self::try_start(replicas, sentinels)
            .unwrap_or_else(|e| panic!("failed to start a redis sentinel topology: {e}"))
    }

    /// Starts a master, `replicas` replicas and `sentinels` sentinels.
    ///
    /// Returns once every replica has synchronised with the master and
    /// acknowledges its writes (`WAIT`), and every sentinel knows the
    /// master, every replica and every other sentinel, and says the quorum
    /// is reachable (`SENTINEL ckquorum`).
    ///
    /// # Errors
    ///
    /// Fails when no sentinel is asked for, when a process cannot start
    /// (see [`RedisServerBuilder::start`](crate::RedisServerBuilder::start)),
    /// or with [`io::ErrorKind::TimedOut`], saying what was missing, when
    /// the topology has not settled within 30 s.
    pub fn try_start(replicas: usize, sentinels: usize) -> io::Result<RedisSentinel> {
        Self::launch(replicas, sentinels, None)
    }

    /// Starts the topology of [`start`](Self::start) with TLS (see the
    /// type's docs): clients reach it through the `rediss://`
    /// [`sentinel_urls`](Self::sentinel_urls), trusting
    /// [`ca_pem`](Self::ca_pem).
    ///
    /// # Panics
    ///
    /// Panics with the reason if the topology cannot be started; see
    /// [`try_start_tls`](Self::try_start_tls).
    #[track_caller]
    #[must_use = "dropping a RedisSentinel kills its processes"]
    pub fn start_tls(replicas: usize, sentinels: usize) -> RedisSentinel {
        Self::try_start_tls(replicas, sentinels)
            .unwrap_or_else(|e| panic!("failed to start a TLS redis sentinel topology: {e}"))
    }

    /// Starts the topology of [`try_start`](Self::try_start) with TLS.
    ///
    /// # Errors
    ///
    /// Those of [`try_start`](Self::try_start), and errors writing the
    /// certificate files. A `redis-server` built without TLS support exits
    /// at start-up on the `--tls-*` options: the error quotes its log.
    pub fn try_start_tls(replicas: usize, sentinels: usize) -> io::Result<RedisSentinel> {
        Self::launch(replicas, sentinels, Some(TlsFiles::write()?))
    }

    /// Starts the processes, with TLS when `tls` is given, and waits until
    /// the sentinels know them all.
    fn launch(replicas: usize, sentinels: usize, tls: Option<TlsFiles>) -> io::Result<Self> {
        if sentinels == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a sentinel topology needs at least one sentinel",
            ));
        }
        let (nodes, node_ports) = start_data_nodes(replicas, tls.as_ref())?;
        let config = sentinel_config(node_ports[0], sentinels / 2 + 1);
        let (sentinels, sentinel_ports) = (0..sentinels)
            .map(|_| start_sentinel(&config, tls.as_ref()))
            .collect::<io::Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        let topology = RedisSentinel {
            sentinels,
            nodes,
            down: Vec::new(),
            sentinel_ports,
            node_ports,
            tls,
        };
        wait_for(
            SETTLE_TIMEOUT,
            "the sentinels to know every process",
            || {
                topology
                    .sentinels
                    .iter()
                    .try_for_each(|s| topology.knows_all(s))
            },
        )?;
        Ok(topology)
    }

    /// The name the sentinels monitor the master under, for a Sentinel
    /// client: `"distlock-test"`.
    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// `redis://127.0.0.1:<port>` of every sentinel; with TLS,
    /// `rediss://127.0.0.1:<TLS port>`.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinel_ports
            .iter()
            .map(|&port| self.url_on(port))
            .collect()
    }

    /// The test CA's certificate (PEM), which clients of a topology started
    /// with [`start_tls`](Self::start_tls) must trust; `None` without TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|tls| tls.certificates().ca_pem())
    }

    /// The sentinels, to read their ports or pause one (with TLS, the
    /// plain ports the kit uses, not the ones clients are given).
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// One sentinel, to stop or restart it. A restarted sentinel starts
    /// from its first configuration (watching the master as started), with
    /// a new identity and default `SENTINEL DEBUG` periods.
    ///
    /// # Panics
    ///
    /// Panics if `index` is out of range.
    pub fn sentinel_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.sentinels[index]
    }

    /// The data nodes: the master as started, then the replicas (a
    /// failover swaps roles; see [`master_index`](Self::master_index)).
    /// With TLS, their [`port`](RedisServer::port) is the plain one the kit
    /// uses, not the one the sentinels report.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One data node, to stop, pause or restart it behind the kit's back
    /// ([`kill_master`](Self::kill_master) and the methods after it keep
    /// track of what they did).
    ///
    /// # Panics
    ///
    /// Panics if `index` is out of range.
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// `redis://127.0.0.1:<port>` of the master the sentinels report
    /// (`SENTINEL get-master-addr-by-name`); with TLS, `rediss://` and the
    /// TLS port.
    ///
    /// # Panics
    ///
    /// Panics if the sentinels do not agree; see
    /// [`try_master_url`](Self::try_master_url).
    #[track_caller]
    pub fn master_url(&self) -> String {
        self.try_master_url()
            .unwrap_or_else(|e| panic!("cannot tell the current master: {e}"))
    }

    /// `redis://127.0.0.1:<port>` of the master the sentinels report.
    ///
    /// # Errors
    ///
    /// Fails unless a majority of the sentinels answer and all that answer
    /// report the same address (they may not, in the middle of a failover).
    pub fn try_master_url(&self) -> io::Result<String> {
        let port = self.reported_master().map_err(io::Error::other)?;
        Ok(self.url_on(port))
    }

    /// The index in [`nodes`](Self::nodes) of the master the sentinels
    /// report.
    ///
    /// # Panics
    ///
    /// Panics if the sentinels do not agree; see
    /// [`try_master_index`](Self::try_master_index).
    #[track_caller]
    pub fn master_index(&self) -> usize {
        self.try_master_index()
            .unwrap_or_else(|e| panic!("cannot tell the current master: {e}"))
    }

    /// The index in [`nodes`](Self::nodes) of the master the sentinels
    /// report.
    ///
    /// # Errors
    ///
    /// As [`try_master_url`](Self::try_master_url).
    pub fn try_master_index(&self) -> io::Result<usize> {
        self.reported_master()
            .and_then(|port| self.node_on(port))
            .map_err(io::Error::other)
    }

    /// Kills the current master with `SIGKILL`, returning its index in
    /// [`nodes`](Self::nodes); follow with
    /// [`wait_for_failover`](Self::wait_for_failover).
    ///
    /// # Panics
    ///
    /// Panics if the sentinels do not agree on the master; see
    /// [`try_kill_master`](Self::try_kill_master).
    #[track_caller]
    pub fn kill_master(&mut self) -> usize {
        self.try_kill_master()
            .unwrap_or_else(|e| panic!("cannot kill the master: {e}"))
    }

    /// Kills the current master with `SIGKILL`, returning its index.
    ///
    /// # Errors
    ///
    /// As [`try_master_index`](Self::try_master_index).
    pub fn try_kill_master(&mut self) -> io::Result<usize> {
        let index = self.try_master_index()?;
        self.nodes[index].stop();
        self.down.push(Down {
            index,
            paused: false,
        });
        Ok(index)
    }

    /// Freezes the current master with `SIGSTOP`, returning its index: to
    /// the sentinels it is as dead as a killed one, but it keeps its data
    /// and its clients' connections, and answers them once
    /// [resumed](Self::resume_paused) (as an old master, until the
    /// sentinels turn it into a replica).
    ///
    /// # Panics
    ///
    /// Panics if the sentinels do not agree on the master, or if the
    /// signal cannot be sent; [`try_pause_master`](Self::try_pause_master)
    /// returns the error instead.
    #[track_caller]
    pub fn pause_master(&mut self) -> usize {
        self.try_pause_master()
            .unwrap_or_else(|e| panic!("cannot pause the master: {e}"))
    }

    /// [`pause_master`](Self::pause_master), returning an error instead of
    /// panicking.
    ///
    /// # Errors
    ///
    /// As [`try_master_url`](Self::try_master_url), or the signal's error.
    pub fn try_pause_master(&mut self) -> io::Result<usize> {
        let index = self.try_master_index()?;
        self.nodes[index].try_pause()?;
        self.down.push(Down {
            index,
            paused: true,
        });
        Ok(index)
    }

    /// Waits until the sentinels have replaced the master last killed or
    /// paused, returning the new master's URL.
    ///
    /// Done when a majority of the sentinels answer, all that answer report
    /// the same new address and have finished the failover (`SENTINEL
    /// master` flags are just `master`), and the node there says it is a
    /// master (`ROLE`) and accepts a write. See the type's docs for how
    /// long this takes.
    ///
    /// # Errors
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if no master was killed or
    /// paused, and with [`io::ErrorKind::TimedOut`], saying what the
    /// sentinels last reported, if there is no new master within `timeout`.
    pub fn wait_for_failover(&self, timeout: Duration) -> io::Result<String> {
        let Some(old) = self.down.last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no master is down: call kill_master or pause_master first",
            ));
        };
        let old_port = self.node_ports[old.index];
        wait_for(timeout, "a failover", || {
            let port = self.reported_master()?;
            if port == old_port {
                return Err(format!(
                    "the sentinels still report the old master, port {port}"
                ));
            }
            let admin = self.admin_port(port)?;
            self.failover_over()?;
            let role = ask(admin, &["ROLE"])?;
            if role.items().first().and_then(Reply::text) != Some("master") {
                return Err(format!(
                    "the new master on port {port} answers ROLE with {role:?}"
                ));
            }
            match ask(admin, &WRITE_PROBE)? {
                Reply::Integer(_) => Ok(self.url_on(port)),
                reply => Err(format!(
                    "the new master on port {port} answers {reply:?} to a write"
                )),
            }
        })
    }

    /// Restarts every master [killed](Self::kill_master) since the last call
    /// (on its port, with empty data), and waits until each is a replica of
    /// the current master again.
    ///
    /// # Panics
    ///
    /// Panics with the reason if a node cannot be restarted or does not
    /// become a replica; see [`try_restart_killed`](Self::try_restart_killed).
    #[track_caller]
    pub fn restart_killed(&mut self) {
        if let Err(e) = self.try_restart_killed() {
            panic!("cannot bring back the killed masters: {e}");
        }
    }

    /// Restarts every killed master, and waits until each is a replica of
    /// the current master again.
    ///
    /// Each comes back as an empty master; the sentinels, which still know
    /// it as a replica of the new master, turn it into one (about 3.5 s on
    /// Redis 7.0 and Valkey 8.1; 20 s on Redis 6.2, which has no `SENTINEL
    /// DEBUG`). Done when it is connected to the master, acknowledges its
    /// writes, and every sentinel that answers lists it as a healthy
    /// replica, fit to be promoted in a next failover.
    ///
    /// # Errors
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if no master was killed,
    /// or if the sentinels still report a killed one as the master (call
    /// [`wait_for_failover`](Self::wait_for_failover) first); as
    /// [`RedisServer::try_restart`] if a node cannot restart; with
    /// [`io::ErrorKind::TimedOut`] if they are not replicas within 60 s.
    pub fn try_restart_killed(&mut self) -> io::Result<()> {
        let killed: Vec<usize> = self
            .down
            .iter()
            .filter(|down| !down.paused)
            .map(|down| down.index)
            .collect();
        self.check_can_return(&killed, "killed")?;
        for &index in &killed {
            self.nodes[index].try_restart()?;
            self.down.retain(|down| down.index != index);
        }
        self.wait_until_replicas(&killed)
    }

    /// Resumes every master [paused](Self::pause_master) since the last
    /// call, and waits until each is a replica of the current master.
    ///
    /// # Panics
    ///
    /// Panics with the reason if a node does not become a replica; see
    /// [`try_resume_paused`](Self::try_resume_paused).
    #[track_caller]
    pub fn resume_paused(&mut self) {
        if let Err(e) = self.try_resume_paused() {
            panic!("cannot bring back the paused masters: {e}");
        }
    }

    /// Resumes every paused master with `SIGCONT`, and waits until each is
    /// a replica of the current master, as
    /// [`try_restart_killed`](Self::try_restart_killed) does. Until the
    /// sentinels turn it into one, it is an old master with its data,
    /// answering whoever is still connected to it.
    ///
    /// # Errors
    ///
    /// As [`try_restart_killed`](Self::try_restart_killed), for paused
    /// masters.
    ///
    /// # Panics
    ///
    /// Panics if `SIGCONT` cannot be sent.
    pub fn try_resume_paused(&mut self) -> io::Result<()> {
        let paused: Vec<usize> = self
            .down
            .iter()
            .filter(|down| down.paused)
            .map(|down| down.index)
            .collect();
        self.check_can_return(&paused, "paused")?;
        for &index in &paused {
            self.nodes[index].resume();
        }
        self.down.retain(|down| !down.paused);
        self.wait_until_replicas(&paused)
    }

    /// Refuses to bring back `indices` when there are none or when one is
    /// still the master the sentinels report (no failover happened).
    fn check_can_return(&self, indices: &[usize], how: &str) -> io::Result<()> {
        if indices.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no master was {how} by the kit"),
            ));
        }
        // In the middle of a failover the sentinels may disagree: go on.
        if let Ok(port) = self.reported_master()
            && let Ok(index) = self.node_on(port)
            && indices.contains(&index)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the sentinels still report the {how} node on port {port} as the master: \
                     call wait_for_failover first"
                ),
            ));
        }
        Ok(())
    }

    /// Waits until the nodes at `indices` are connected replicas of the
    /// master the sentinels report, and every sentinel that answers knows
    /// them as healthy replicas of it.
    fn wait_until_replicas(&self, indices: &[usize]) -> io::Result<()> {
        wait_for(RETURN_TIMEOUT, "the nodes to be replicas again", || {
            let master = self.reported_master()?;
            for &index in indices {
                replicates(self.nodes[index].port(), master)?;
                let port = self.node_ports[index];
                for sentinel in &self.sentinels {
                    let Ok(replicas) = resp::call(sentinel.port(), &sentinel_cmd("replicas"))
                    else {
                        continue; // a stopped or paused sentinel
                    };
                    let port = port.to_string();
                    let known = replicas.items().iter().any(|entry| {
                        entry.field("port") == Some(&port)
                            && healthy_replica(entry)
                            && entry.field("master-port") == Some(&master.to_string())
                    });
                    if !known {
                        return Err(format!(
                            "the sentinel on port {} does not list port {port} as a healthy \
                             replica of port {master}: {replicas:?}",
                            sentinel.port()
                        ));
                    }
                }
            }
            replicas_acknowledge(self.admin_port(master)?)
        })
    }

    /// Whether `sentinel` knows the master, every replica and every other
    /// sentinel, and can reach its quorum; `Err` says what it lacks.
    fn knows_all(&self, sentinel: &RedisServer) -> Result<(), String> {
        let port = sentinel.port();
        let master = master_addr(port)?;
        if master != self.node_ports[0] {
            return Err(format!(
                "the sentinel on port {port} reports port {master} as master"
            ));
        }
        let replicas = ask(port, &sentinel_cmd("replicas"))?;
        let healthy = replicas
            .items()
            .iter()
            .filter(|r| healthy_replica(r))
            .count();
        let peers = ask(port, &sentinel_cmd("sentinels"))?;
        let live_peers = peers
            .items()
            .iter()
            .filter(|peer| peer.field("flags") == Some("sentinel"))
            .count();
        if healthy < self.nodes.len() - 1 || live_peers < self.sentinels.len() - 1 {
            return Err(format!(
                "the sentinel on port {port} knows {healthy} of {} replicas and {live_peers} of \
                 {} other sentinels",
                self.nodes.len() - 1,
                self.sentinels.len() - 1
            ));
        }
        ask(port, &sentinel_cmd("ckquorum")).map(drop)
    }

    /// Whether every sentinel that answers has finished failing over: its
    /// master's flags are just `master` (not `o_down`,
    /// `failover_in_progress`, …).
    fn failover_over(&self) -> Result<(), String> {
        for sentinel in &self.sentinels {
            let Ok(master) = resp::call(sentinel.port(), &sentinel_cmd("master")) else {
                continue; // a stopped or paused sentinel
            };
            match master.field("flags") {
                Some("master") => {}
                flags => {
                    return Err(format!(
                        "the sentinel on port {} sees the master with flags {flags:?}",
                        sentinel.port()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The master port the sentinels report: a majority must answer, and
    /// all that answer must agree.
    fn reported_master(&self) -> Result<u16, String> {
        let mut ports = Vec::new();
        let mut errors = Vec::new();
        for sentinel in &self.sentinels {
            match master_addr(sentinel.port()) {
                Ok(port) => ports.push(port),
                Err(error) => errors.push(error),
            }
        }
        if ports.len() <= self.sentinels.len() / 2 {
            return Err(format!(
                "only {} of {} sentinels answered: {}",
                ports.len(),
                self.sentinels.len(),
                errors.join("; ")
            ));
        }
        if ports.iter().any(|port| *port != ports[0]) {
            return Err(format!(
                "the sentinels disagree on the master's port: {ports:?}"
            ));
        }
        Ok(ports[0])
    }

    /// The index of the node clients reach on `port` (the port the
    /// sentinels report).
    fn node_on(&self, port: u16) -> Result<usize, String> {
        self.node_ports
            .iter()
            .position(|&node| node == port)
            .ok_or_else(|| format!("the sentinels report port {port}, which is none of the nodes"))
    }

    /// The plain port the kit asks the node that clients reach on `port`.
    fn admin_port(&self, port: u16) -> Result<u16, String> {
        self.node_on(port).map(|index| self.nodes[index].port())
    }

    /// The URL of a process clients reach on `port`.
    fn url_on(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{port}")
    }
}

/// Starts the master and `replicas` replicas of it, and waits until they
/// have synchronised; returns them with the ports clients reach them on.
fn start_data_nodes(
    replicas: usize,
    tls: Option<&TlsFiles>,
) -> io::Result<(Vec<RedisServer>, Vec<u16>)> {
    let (nodes, ports): (Vec<_>, Vec<_>) = (0..=replicas)
        .map(|_| {
            let builder = RedisServer::builder()
                // Full syncs start at once, not after 5 s waiting for more replicas.
                .arg("--repl-diskless-sync-delay")
                .arg("0")
                .arg("--replica-announce-ip")
                .arg("127.0.0.1");
            start_process(&builder, tls)
        })
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let master = nodes[0].port();
    // With TLS, replicas reach the master on its TLS port, and announce theirs.
    for replica in &nodes[1..] {
        resp::call(
            replica.port(),
            &["REPLICAOF", "127.0.0.1", &ports[0].to_string()],
        )?;
    }
    wait_for(SETTLE_TIMEOUT, "the replicas to synchronise", || {
        let info = ask(master, &["INFO", "replication"])?;
        let expected = format!("connected_slaves:{replicas}\r\n");
        if !info.text().is_some_and(|info| info.contains(&expected)) {
            return Err(format!("the master says {info:?}"));
        }
        nodes[1..]
            .iter()
            .try_for_each(|replica| replicates(replica.port(), ports[0]))?;
        replicas_acknowledge(master)
    })?;
    Ok((nodes, ports))
}

/// Starts the process `builder` describes and returns it with the port
/// clients reach it on: its only port, or with `tls` a TLS port of its own
/// (`--tls-port`, tried again on another free port if that one was taken
/// meanwhile), which it also uses to replicate and to announce itself
/// (`--tls-replication yes`).
fn start_process(
    builder: &RedisServerBuilder,
    tls: Option<&TlsFiles>,
) -> io::Result<(RedisServer, u16)> {
    let Some(tls) = tls else {
        let server = builder.clone().start()?;
        let port = server.port();
        return Ok((server, port));
    };
    let mut last_error = None;
    for _ in 0..TLS_PORT_ATTEMPTS {
        let port = free_port()?;
        let tls_args =
            ["--tls-port", &port.to_string(), "--tls-replication", "yes"].map(str::to_owned);
        let started = tls
            .args()
            .iter()
            .cloned()
            .chain(tls_args)
            .fold(builder.clone(), RedisServerBuilder::arg)
            .start();
        match started {
            Ok(server) => return Ok((server, port)),
            // Redis logs "Failed listening on port <port> (tls), aborting.";
            // anything else (no TLS support, no binary) fails again.
            Err(error) if error.to_string().to_lowercase().contains("(tls)") => {
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.expect("at least one attempt was made"))
}

/// The first configuration of every sentinel.
fn sentinel_config(master_port: u16, quorum: usize) -> String {
    format!(
        "sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n\
         sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
         sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n\
         sentinel announce-ip 127.0.0.1\n"
    )
}

/// Starts one sentinel and speeds up its periods where the server can;
/// returns it with the port clients reach it on.
fn start_sentinel(config: &str, tls: Option<&TlsFiles>) -> io::Result<(RedisServer, u16)> {
    let builder = RedisServer::builder().sentinel(config.to_owned());
    let (sentinel, client_port) = start_process(&builder, tls)?;
    // An error reply means no `SENTINEL DEBUG` (before Redis 7.0): the
    // default periods work too, only slower, with a longer down-after.
    if let Reply::Error(_) = resp::command(sentinel.port(), &FAST_PERIODS)? {
        resp::call(
            sentinel.port(),
            &[
                "SENTINEL",
                "SET",
                MASTER_NAME,
                "down-after-milliseconds",
                SLOW_DOWN_AFTER_MS,
            ],
        )?;
    }
    Ok((sentinel, client_port))
}

/// `SENTINEL <subcommand> <master name>`.
fn sentinel_cmd(subcommand: &str) -> [&str; 3] {
    ["SENTINEL", subcommand, MASTER_NAME]
}

/// The master port the sentinel on `port` reports; its host must be
/// 127.0.0.1.
fn master_addr(port: u16) -> Result<u16, String> {
    let reply = ask(port, &sentinel_cmd("get-master-addr-by-name"))?;
    match reply.items() {
        [host, master] if host.text() == Some("127.0.0.1") => master
            .text()
            .and_then(|master| master.parse().ok())
            .ok_or_else(|| format!("the sentinel on port {port} answered {reply:?}")),
        _ => Err(format!(
            "the sentinel on port {port} answered {reply:?} for the master's address"
        )),
    }
}

/// Whether the node on `port` is a connected replica of the one on `master`.
fn replicates(port: u16, master: u16) -> Result<(), String> {
    let role = ask(port, &["ROLE"])?;
    let text = |i: usize| role.items().get(i).and_then(Reply::text);
    let master_port = role.items().get(2).and_then(|port| match port {
        Reply::Integer(port) => Some(*port),
        _ => None,
    });
    if text(0) == Some("slave")
        && text(1) == Some("127.0.0.1")
        && master_port == Some(i64::from(master))
        && text(3) == Some("connected")
    {
        Ok(())
    } else {
        Err(format!(
            "the node on port {port} is not a connected replica of port {master}: ROLE says \
             {role:?}"
        ))
    }
}

/// Whether every replica connected to the master on `port` acknowledges a
/// write (`WAIT`): it is streaming, not only synchronised. After a diskless
/// full sync a master may hold the stream back until the replica's next
/// once-a-second `REPLCONF ACK`, and a master killed meanwhile takes its
/// writes with it, whatever `ROLE` said.
fn replicas_acknowledge(port: u16) -> Result<(), String> {
    let info = ask(port, &["INFO", "replication"])?;
    let connected: i64 = info
        .text()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("connected_slaves:"))
        })
        .and_then(|count| count.parse().ok())
        .ok_or_else(|| format!("port {port} answers INFO replication with {info:?}"))?;
    let replies = resp::pipeline(
        port,
        &[
            &["SET", PROBE_KEY, "1"],
            &["DEL", PROBE_KEY],
            &["WAIT", &connected.to_string(), "200"],
        ],
    )
    .map_err(|e| format!("port {port}: {e}"))?;
    match replies.last() {
        Some(Reply::Integer(acked)) if *acked >= connected => Ok(()),
        reply => Err(format!(
            "{reply:?} of the {connected} replicas of port {port} acknowledged a write"
        )),
    }
}

/// Whether an entry of `SENTINEL replicas` is a replica fit for promotion:
/// up, and with its link to the master up.
fn healthy_replica(entry: &Reply) -> bool {
    entry.field("flags") == Some("slave") && entry.field("master-link-status") == Some("ok")
}

/// [`resp::call`], with errors as text for [`wait_for`].
fn ask(port: u16, args: &[&str]) -> Result<Reply, String> {
    resp::call(port, args).map_err(|e| format!("port {port}: {e}"))
}

/// Polls `check` until it succeeds, or fails with
/// [`io::ErrorKind::TimedOut`] and the reason it last gave.
fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> io::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(done) => return Ok(done),
            Err(reason) if Instant::now() >= deadline => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out after {timeout:?} waiting for {what}; last: {reason}"),
                ));
            }
            Err(_) => thread::sleep(POLL_INTERVAL),
        }
    }
}
