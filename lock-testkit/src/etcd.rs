//! A throwaway etcd cluster on loopback: [`EtcdCluster`] and its
//! [`EtcdMember`]s.
//!
//! The kit talks to the members through etcd's v3 JSON gateway on each
//! client port (see the `http` submodule), so it needs no gRPC client. A
//! cluster serving clients over TLS ([`EtcdCluster::start_tls`]) keeps one
//! more, plain client port per member for the kit's own requests.

mod http;

use std::collections::HashSet;
use std::env;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tempfile::TempDir;

use crate::launch::{kill_and_reap, kill_when_parent_exits};
use crate::port::free_port;
use crate::probe;
use crate::scratch::scratch_dir;
use crate::server::send_signal;
use crate::tls::TlsFiles;
use crate::unpoisoned;

/// How many members a cluster has.
const MEMBERS: usize = 3;
/// `--heartbeat-interval`, in milliseconds: 50 ms rather than etcd's 100,
/// so that a lost leader is noticed quickly.
const HEARTBEAT_MS: u32 = 50;
/// `--election-timeout`, in milliseconds: 500 rather than etcd's 1000, so a
/// new leader is elected within about a second of losing the old one.
const ELECTION_MS: u32 = 500;
/// How many times a cluster start is attempted, each on new ports, when a
/// member exits during startup (usually because another process took a
/// port).
const START_ATTEMPTS: u32 = 3;
/// How long a started member may take to serve clients. A member serves
/// only once a quorum of the cluster is up, so this covers the election.
const SERVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`EtcdCluster::leader`] waits for the members to agree.
const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one status probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Timeout of [`EtcdMember::put`] and [`EtcdMember::get`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often readiness and leadership are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The member's log (its stderr: `--logger zap --log-outputs stderr`), in
/// its directory; a restart appends to it.
const LOG_FILE: &str = "etcd.log";
/// The member's `--data-dir`, inside its directory.
const DATA_DIR: &str = "data";
/// Tells the clusters of one process apart in their `--initial-cluster-token`.
static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

/// A throwaway 3-member etcd cluster on loopback, for tests.
///
/// Every member is a real `etcd` child process with its own free client and
/// peer ports on 127.0.0.1 and its own temporary directory (its data and its
/// log), bootstrapped statically (`--initial-cluster`) with short election
/// timers (50 ms heartbeat, 500 ms election timeout). Dropping the cluster
/// kills every member (`SIGKILL`, even while paused) and removes the
/// directories.
///
/// ```no_run
/// use lock_testkit::EtcdCluster;
///
/// let mut cluster = EtcdCluster::start(); // returns once a leader is elected
/// let endpoints = cluster.endpoints(); // ["http://127.0.0.1:<port>", …]
/// let leader = cluster.leader();
/// cluster.stop(leader); // SIGKILL
/// let next = cluster.leader(); // waits for the election
/// assert_ne!(next, leader);
/// cluster.restart(leader); // same ports, same data
/// cluster.pause(next); // SIGSTOP
/// cluster.resume(next); // SIGCONT
/// # let _ = endpoints;
/// ```
///
/// The binary is taken from the `ETCD_BIN` environment variable, or `etcd`
/// on `PATH` (Debian's `etcd-server` package; `scripts/ensure-etcd.sh`
/// installs it). Members are given no `ETCD_*` variable of the test's
/// environment, which etcd would read as flags.
///
/// Methods taking a member index panic if it is out of range.
///
/// # TLS
///
/// [`start_tls`](Self::start_tls) starts members that serve clients over
/// TLS only, with a certificate for `127.0.0.1` and `localhost` that a fresh
/// throwaway CA issued ([`ca_pem`](Self::ca_pem)); their
/// [`endpoints`](Self::endpoints) are `https://127.0.0.1:<port>`. Peers still
/// talk plain HTTP on loopback, and each member also listens for plain
/// clients on a second port that only the kit's own requests use
/// ([`EtcdMember::status`], [`put`](EtcdMember::put),
/// [`get`](EtcdMember::get)); it is advertised to nobody.
///
/// # Thread caveat (Linux)
///
/// As with [`RedisServer`](crate::RedisServer), members are killed when the
/// *thread* that started them exits: start, restart and drop a cluster in
/// the same test thread. A cluster shared by the tests of a binary is kept
/// with [`for_process`](crate::for_process), which also removes its
/// members' directories (125 MB each) when the process exits.
#[derive(Debug)]
pub struct EtcdCluster {
    /// Dropped (killed) before `tls`, whose files they read.
    members: Vec<EtcdMember>,
    /// The certificates of a TLS cluster, and their files.
    tls: Option<TlsFiles>,
    binary: PathBuf,
    /// The `--initial-cluster` value naming every member's peer URL.
    initial_cluster: String,
    /// The `--initial-cluster-token`, unique per cluster.
    token: String,
}

/// One member of an [`EtcdCluster`]: its ports, directory and process.
pub struct EtcdMember {
    name: String,
    /// The port of [`endpoint`](Self::endpoint).
    client_port: u16,
    /// The plain client port the kit's own requests use: `client_port`,
    /// or another one when clients speak TLS.
    kit_port: u16,
    /// Whether clients speak TLS on `client_port`.
    tls: bool,
    peer_port: u16,
    /// The member ID etcd derived at bootstrap; kept across restarts.
    id: u64,
    /// The running process; `None` once stopped. Behind a mutex so `&self`
    /// methods can reap a process that died on its own.
    child: Mutex<Option<Child>>,
    paused: AtomicBool,
    /// Dropped after the process is killed in `Drop::drop`.
    dir: TempDir,
}

/// What a member says about itself (`/v3/maintenance/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdStatus {
    /// The ID of the member that answered.
    pub member_id: u64,
    /// The ID of the member it takes for the leader, `None` if it knows of
    /// none (during an election, or without a quorum).
    pub leader: Option<u64>,
    /// The Raft term it is in.
    pub raft_term: u64,
}

/// Why one cluster start attempt failed.
enum Failure {
    /// Retrying cannot help (binary missing, no temp dir, timeout).
    Fatal(io::Error),
    /// A member exited during startup, typically because a port was taken.
    Retry(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Fatal(error)
    }
}

impl EtcdCluster {
    /// Starts a 3-member cluster and returns once every member serves
    /// clients and all agree on a leader.
    ///
    /// # Panics
    ///
    /// Panics if the cluster cannot be started; see
    /// [`try_start`](Self::try_start).
    #[track_caller]
    #[must_use = "dropping an EtcdCluster kills its members"]
    pub fn start() -> EtcdCluster {
        Self::try_start().unwrap_or_else(|e| panic!("failed to start an etcd cluster: {e}"))
    }

    /// Like [`start`](Self::start), but returns an error instead of
    /// panicking.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no etcd binary, `TimedOut` if the members do
    /// not serve or elect a leader in time (the error quotes their logs),
    /// or the error of the last attempt when members kept exiting during
    /// startup.
    pub fn try_start() -> io::Result<EtcdCluster> {
        Self::try_start_with(None)
    }

    /// Starts a 3-member cluster whose members serve clients over TLS only
    /// (see [TLS](#tls)), and returns once every member serves clients and
    /// all agree on a leader.
    ///
    /// # Panics
    ///
    /// Panics if the cluster cannot be started; see
    /// [`try_start_tls`](Self::try_start_tls).
    #[track_caller]
    #[must_use = "dropping an EtcdCluster kills its members"]
    pub fn start_tls() -> EtcdCluster {
        Self::try_start_tls()
            .unwrap_or_else(|e| panic!("failed to start an etcd cluster over TLS: {e}"))
    }

    /// Like [`start_tls`](Self::start_tls), but returns an error instead of
    /// panicking.
    ///
    /// # Errors
    ///
    /// Those of [`try_start`](Self::try_start), and errors writing the
    /// certificate files.
    pub fn try_start_tls() -> io::Result<EtcdCluster> {
        Self::try_start_with(Some(TlsFiles::write()?))
    }

    /// Starts a cluster, over TLS with `tls`'s certificates if given,
    /// retrying on new ports when members exit during startup.
    fn try_start_with(mut tls: Option<TlsFiles>) -> io::Result<EtcdCluster> {
        let binary = binary();
        let mut attempt = 1;
        loop {
            match Self::attempt(&binary, &mut tls) {
                Ok(cluster) => return Ok(cluster),
                Err(Failure::Retry(_)) if attempt < START_ATTEMPTS => attempt += 1,
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retry(error)) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!(
                            "etcd did not start in {START_ATTEMPTS} attempts; last error: {error}"
                        ),
                    ));
                }
            }
        }
    }

    /// One start on new ports and directories; the members started are
    /// killed (by dropping) on failure, and `tls` is taken only on success.
    fn attempt(binary: &Path, tls: &mut Option<TlsFiles>) -> Result<EtcdCluster, Failure> {
        // Client and peer ports, and a plain port for the kit with TLS.
        let per_member = if tls.is_some() { 3 } else { 2 };
        let ports = distinct_free_ports(per_member * MEMBERS)?;
        let members = ports
            .chunks(per_member)
            .enumerate()
            .map(|(i, ports)| EtcdMember::new(format!("member{i}"), ports))
            .collect::<io::Result<Vec<_>>>()?;
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!(
            "lock-testkit-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        );
        let mut cluster = EtcdCluster {
            members,
            tls: None,
            binary: binary.to_owned(),
            initial_cluster,
            token,
        };
        // Given back on failure, for the next attempt.
        cluster.tls = tls.take();
        match cluster.serve() {
            Ok(()) => Ok(cluster),
            Err(failure) => {
                *tls = cluster.tls.take();
                Err(failure)
            }
        }
    }

    /// Starts every member and waits until they serve and agree on a
    /// leader.
    fn serve(&mut self) -> Result<(), Failure> {
        for i in 0..MEMBERS {
            self.spawn(i)?;
        }
        let deadline = Instant::now() + SERVE_TIMEOUT;
        for member in &mut self.members {
            let status = member.wait_serving(deadline)?;
            member.id = status.member_id;
        }
        self.try_leader(LEADER_TIMEOUT)?;
        Ok(())
    }

    /// Starts member `i`'s process (with its current ports and data) and
    /// returns without waiting.
    fn spawn(&mut self, i: usize) -> io::Result<()> {
        let member = &self.members[i];
        let mut command = member.command(self)?;
        let child = command.spawn().map_err(|e| spawn_error(&self.binary, &e))?;
        member.paused.store(false, Ordering::Relaxed);
        *unpoisoned::get_mut(&mut self.members[i].child) = Some(child);
        Ok(())
    }

    /// The members, in bootstrap order; indexes into this slice are the
    /// member indexes the other methods take.
    pub fn members(&self) -> &[EtcdMember] {
        &self.members
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> &EtcdMember {
        &self.members[i]
    }

    /// Every member's client URL, `http://127.0.0.1:<port>` (or
    /// `https://` for a cluster started with
    /// [`start_tls`](Self::start_tls)), stopped ones too: what an etcd
    /// client is configured with. Never the kit's own plain ports.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::endpoint).collect()
    }

    /// The PEM certificate of the throwaway CA that issued the members'
    /// certificate, for a cluster started with
    /// [`start_tls`](Self::start_tls); `None` for a plain one. A client
    /// trusts it to connect.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|tls| tls.certificates().ca_pem())
    }

    /// Kills member `i` with `SIGKILL` and waits for it, simulating a crash.
    /// Its data stays for [`restart`](Self::restart).
    ///
    /// Does nothing if it is not running.
    pub fn stop(&mut self, i: usize) {
        self.members[i].stop();
    }

    /// Stops member `i` if needed and starts it again on the same ports
    /// with the same data directory, returning once it serves clients.
    ///
    /// A member serves only once it is part of a quorum: to bring back
    /// several stopped members, restart them together with
    /// [`restart_many`](Self::restart_many).
    ///
    /// # Panics
    ///
    /// Panics if the member cannot be started again or does not serve in
    /// time; see [`try_restart_many`](Self::try_restart_many).
    #[track_caller]
    pub fn restart(&mut self, i: usize) {
        self.restart_many(&[i]);
    }

    /// Stops each member of `indexes` if needed, starts them all again (same
    /// ports, same data) and returns once each serves clients.
    ///
    /// # Panics
    ///
    /// Panics if a member cannot be started again or does not serve in time;
    /// see [`try_restart_many`](Self::try_restart_many).
    #[track_caller]
    pub fn restart_many(&mut self, indexes: &[usize]) {
        if let Err(e) = self.try_restart_many(indexes) {
            panic!("failed to restart etcd members {indexes:?}: {e}");
        }
    }

    /// Like [`restart_many`](Self::restart_many), but returns an error
    /// instead of panicking.
    ///
    /// # Errors
    ///
    /// The spawn error, or an error quoting the member's log when it exits
    /// (e.g. because another process took one of its ports) or does not
    /// serve within 20 s.
    pub fn try_restart_many(&mut self, indexes: &[usize]) -> io::Result<()> {
        for &i in indexes {
            self.members[i].stop();
            self.spawn(i)?;
        }
        let deadline = Instant::now() + SERVE_TIMEOUT;
        for &i in indexes {
            match self.members[i].wait_serving(deadline) {
                Ok(_) => {}
                Err(Failure::Fatal(error) | Failure::Retry(error)) => return Err(error),
            }
        }
        Ok(())
    }

    /// Freezes member `i` with `SIGSTOP`: its ports still accept
    /// connections, but it answers nothing (neither clients nor peers) until
    /// [`resume`](Self::resume). [`leader`](Self::leader) leaves it out.
    ///
    /// Returns once the member has stopped, not merely once the signal is
    /// sent. Does nothing if it is not running.
    ///
    /// # Panics
    ///
    /// Panics if the signal cannot be sent, or the member has not stopped
    /// 5 s after it.
    #[track_caller]
    pub fn pause(&self, i: usize) {
        self.members[i].signal(libc::SIGSTOP, "SIGSTOP", true);
    }

    /// Continues a [`pause`](Self::pause)d member `i` with `SIGCONT`.
    ///
    /// Does nothing if it is not running.
    ///
    /// # Panics
    ///
    /// Panics if the signal cannot be sent.
    #[track_caller]
    pub fn resume(&self, i: usize) {
        self.members[i].signal(libc::SIGCONT, "SIGCONT", false);
    }

    /// The index of the current leader, waiting (up to 10 s) until every
    /// running, unpaused member answers and all name the same leader, itself
    /// one of them.
    ///
    /// # Panics
    ///
    /// Panics if they do not agree in time, e.g. without a quorum; see
    /// [`try_leader`](Self::try_leader).
    #[track_caller]
    pub fn leader(&self) -> usize {
        self.try_leader(LEADER_TIMEOUT)
            .unwrap_or_else(|e| panic!("no etcd leader: {e}"))
    }

    /// Waits until every running, unpaused member serves and all agree on a
    /// leader: after [`resume`](Self::resume), or to be sure a restarted
    /// member has caught up with who leads.
    ///
    /// # Panics
    ///
    /// Panics if they do not agree within 10 s, as [`leader`](Self::leader).
    #[track_caller]
    pub fn wait_ready(&self) {
        self.leader();
    }

    /// Like [`leader`](Self::leader), waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// `TimedOut` if the members do not agree in time; the error says what
    /// the last round of status queries found.
    pub fn try_leader(&self, timeout: Duration) -> io::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let why_not = match self.agreed_leader() {
                Ok(i) => return Ok(i),
                Err(why_not) => why_not,
            };
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the members agreed on no leader within {timeout:?}: {why_not}"),
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The leader's index if every running, unpaused member names it and it
    /// is one of them; otherwise why not.
    fn agreed_leader(&self) -> Result<usize, String> {
        let mut agreed = None;
        for member in self.members.iter().filter(|m| m.is_serving_candidate()) {
            let status = member
                .status()
                .map_err(|e| format!("{} did not answer: {e}", member.name))?;
            let leader = status
                .leader
                .ok_or_else(|| format!("{} knows no leader", member.name))?;
            if agreed.is_some_and(|agreed| agreed != leader) {
                return Err(format!(
                    "the members name different leaders ({agreed:?} and {leader})"
                ));
            }
            agreed = Some(leader);
        }
        let leader = agreed.ok_or("no member is running and unpaused")?;
        self.members
            .iter()
            .position(|m| m.id == leader && m.is_serving_candidate())
            .ok_or_else(|| format!("the leader they name ({leader}) is stopped or paused"))
    }
}

impl EtcdMember {
    /// A member on the given ports with a new, empty directory; not started.
    /// `ports` are its client and peer ports, then, for a member serving
    /// clients over TLS, the kit's plain client port.
    fn new(name: String, ports: &[u16]) -> io::Result<EtcdMember> {
        let dir = scratch_dir("etcd")?;
        Ok(EtcdMember {
            name,
            client_port: ports[0],
            kit_port: ports.get(2).copied().unwrap_or(ports[0]),
            tls: ports.len() > 2,
            peer_port: ports[1],
            id: 0,
            child: Mutex::new(None),
            paused: AtomicBool::new(false),
            dir,
        })
    }

    /// The member's name in the cluster (`member0`, `member1`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client URL, `http://127.0.0.1:<client port>`, or `https://` in a
    /// cluster started with [`EtcdCluster::start_tls`].
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The loopback port clients use (TLS only in a cluster started with
    /// [`EtcdCluster::start_tls`]); it stays the same across restarts.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The loopback port the other members talk Raft to; it stays the same
    /// across restarts.
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// The member ID etcd gave it, as in [`EtcdStatus`] and in the headers
    /// of etcd's responses.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its own temporary directory, holding its data directory and its
    /// log; removed when the cluster is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its `--data-dir`, inside [`dir`](Self::dir), kept across restarts.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join(DATA_DIR)
    }

    /// Its log file, inside [`dir`](Self::dir), which every restart appends
    /// to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// The process id, or `None` while the member is not running.
    pub fn pid(&self) -> Option<u32> {
        self.live_child().as_ref().map(Child::id)
    }

    /// Whether the process is running (a paused member counts as running).
    pub fn is_running(&self) -> bool {
        self.live_child().is_some()
    }

    /// Whether the member is paused (see [`EtcdCluster::pause`]).
    pub fn is_paused(&self) -> bool {
        self.is_running() && self.paused.load(Ordering::Relaxed)
    }

    /// Asks the member for its status, waiting at most 500 ms.
    ///
    /// # Errors
    ///
    /// The connection's error, `TimedOut` (a paused member, or one not yet
    /// serving), or `InvalidData` if the answer has no member ID.
    pub fn status(&self) -> io::Result<EtcdStatus> {
        let json = http::post_json(self.kit_port, "/v3/maintenance/status", "{}", PROBE_TIMEOUT)?;
        let member_id = http::number_field(&json, "member_id").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("status without member_id: {json}"),
            )
        })?;
        Ok(EtcdStatus {
            member_id,
            leader: http::number_field(&json, "leader").filter(|&id| id != 0),
            raft_term: http::number_field(&json, "raftTerm").unwrap_or(0),
        })
    }

    /// Writes `key` = `value` through this member (`/v3/kv/put`), waiting
    /// at most 2 s: a check for tests, not a client.
    ///
    /// # Errors
    ///
    /// What etcd answered (e.g. no leader), or `TimedOut`, as when the
    /// cluster has no quorum.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> io::Result<()> {
        let body = format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            BASE64.encode(key),
            BASE64.encode(value)
        );
        http::post_json(self.kit_port, "/v3/kv/put", &body, REQUEST_TIMEOUT).map(drop)
    }

    /// Reads `key` through this member (`/v3/kv/range`, a linearizable read,
    /// so it needs a quorum), waiting at most 2 s; `None` if there is no
    /// such key.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put), or `InvalidData` for an answer that cannot be
    /// read.
    pub fn get(&self, key: impl AsRef<[u8]>) -> io::Result<Option<Vec<u8>>> {
        let body = format!(r#"{{"key":"{}"}}"#, BASE64.encode(key));
        let json = http::post_json(self.kit_port, "/v3/kv/range", &body, REQUEST_TIMEOUT)?;
        if !json.contains("\"kvs\":") {
            return Ok(None);
        }
        // etcd leaves an empty value out of its JSON.
        let value = http::string_field(&json, "value").unwrap_or("");
        BASE64
            .decode(value)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}: {json}")))
    }

    /// The command that runs this member of `cluster`, its output appended
    /// to its log.
    fn command(&self, cluster: &EtcdCluster) -> io::Result<Command> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open etcd's log: {e}")))?;
        let client_url = self.endpoint();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&cluster.binary);
        command
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &self.listen_client_urls()])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &cluster.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &cluster.token])
            .args(["--heartbeat-interval", &HEARTBEAT_MS.to_string()])
            .args(["--election-timeout", &ELECTION_MS.to_string()])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(tls) = &cluster.tls {
            command
                .args(["--cert-file", tls.cert_file()])
                .args(["--key-file", tls.key_file()]);
        }
        // etcd reads every `ETCD_<FLAG>` variable as a flag (and refuses
        // one that a command-line flag shadows): ETCD_BIN, or a developer's
        // own settings, are not for it.
        for (name, _) in env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        kill_when_parent_exits(&mut command);
        Ok(command)
    }

    /// The client URLs the member listens on: its endpoint, and with TLS
    /// the kit's plain one too.
    fn listen_client_urls(&self) -> String {
        if self.tls {
            format!("{},http://127.0.0.1:{}", self.endpoint(), self.kit_port)
        } else {
            self.endpoint()
        }
    }

    /// Polls until the member answers a status query; fails fast (to be
    /// retried on new ports) if it exits.
    fn wait_serving(&self, deadline: Instant) -> Result<EtcdStatus, Failure> {
        loop {
            if !self.is_running() {
                return Err(Failure::Retry(io::Error::other(format!(
                    "etcd {} exited during startup (client port {}, peer port {}){}",
                    self.name,
                    self.client_port,
                    self.peer_port,
                    self.log_tail()
                ))));
            }
            if let Ok(status) = self.status() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(Failure::Fatal(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "etcd {} on port {} did not serve in time{}",
                        self.name,
                        self.client_port,
                        self.log_tail()
                    ),
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn log_tail(&self) -> String {
        probe::tail_of(self.dir.path(), &[LOG_FILE], "etcd")
    }

    /// Whether the member counts for [`EtcdCluster::leader`]: running and
    /// not paused.
    fn is_serving_candidate(&self) -> bool {
        self.is_running() && !self.paused.load(Ordering::Relaxed)
    }

    fn stop(&mut self) {
        if let Some(mut child) = unpoisoned::get_mut(&mut self.child).take() {
            // SIGKILL ends a stopped process too; SIGCONT is belt and braces.
            let _ = send_signal(&child, libc::SIGCONT);
            kill_and_reap(&mut child);
        }
        self.paused.store(false, Ordering::Relaxed);
    }

    #[track_caller]
    fn signal(&self, signal: libc::c_int, name: &str, paused: bool) {
        if let Some(child) = self.live_child().as_ref() {
            if let Err(e) = send_signal(child, signal) {
                panic!(
                    "{name} of etcd {} (pid {}) failed: {e}",
                    self.name,
                    child.id()
                );
            }
            self.paused.store(paused, Ordering::Relaxed);
        }
    }

    /// Locks the child slot, first clearing it if the process has exited.
    fn live_child(&self) -> MutexGuard<'_, Option<Child>> {
        let mut guard = unpoisoned::lock(&self.child);
        if let Some(child) = guard.as_mut()
            && !matches!(child.try_wait(), Ok(None))
        {
            *guard = None;
        }
        guard
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        self.stop();
        // `self.dir` is removed after this, once the process is gone.
    }
}

impl fmt::Debug for EtcdMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdMember")
            .field("name", &self.name)
            .field("client_port", &self.client_port)
            .field("kit_port", &self.kit_port)
            .field("tls", &self.tls)
            .field("peer_port", &self.peer_port)
            .field("id", &self.id)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// The etcd binary: `ETCD_BIN`, or `etcd` on `PATH`.
fn binary() -> PathBuf {
    env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}

/// `n` different ports on 127.0.0.1 that were free a moment ago.
fn distinct_free_ports(n: usize) -> io::Result<Vec<u16>> {
    let mut seen = HashSet::new();
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let port = free_port()?;
        if seen.insert(port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

fn spawn_error(binary: &Path, error: &io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "etcd not found (looked for `{}`): run scripts/ensure-etcd.sh, which installs \
                 Debian's etcd-server package, or set ETCD_BIN to an etcd binary",
                binary.display()
            ),
        )
    } else {
        io::Error::new(
            error.kind(),
            format!("cannot spawn `{}`: {error}", binary.display()),
        )
    }
}
