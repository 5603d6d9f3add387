//! The test kit's throwaway Sentinel topology.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli;
use lock_testkit::RedisSentinel;

/// How long a failover may take here; they take about 3 s.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `commands`, one a line, in one `redis-cli` session: one
/// connection, as `WAIT` needs (it waits for this connection's writes).
fn session(port: u16, commands: &str) -> String {
    let mut child = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(commands.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Writes `key` on the master and waits until both replicas have it.
fn write_replicated(topology: &RedisSentinel, key: &str) {
    let master = port_of(&topology.master_url());
    let replies = session(master, &format!("set {key} v\nwait 2 1000\n"));
    assert_eq!(replies, "OK\n2");
}

/// Kills the master and waits for the sentinels to replace it, returning
/// the new master's port.
fn fail_over(topology: &mut RedisSentinel) -> u16 {
    let old = topology.master_url();
    let killed = topology.kill_master();
    assert!(!topology.nodes()[killed].is_running());
    let started = Instant::now();
    let new = topology
        .wait_for_failover(FAILOVER_TIMEOUT)
        .expect("a replica is promoted");
    eprintln!("failover took {:?}", started.elapsed());
    assert_ne!(new, old);
    assert_eq!(topology.master_url(), new);
    assert_eq!(topology.nodes()[topology.master_index()].url(), new);
    port_of(&new)
}

#[test]
fn a_killed_master_is_replaced_twice_without_losing_replicated_keys() {
    let test_started = Instant::now();
    let mut topology = RedisSentinel::start(2, 3);
    eprintln!("the topology started in {:?}", test_started.elapsed());
    assert_eq!(topology.nodes().len(), 3);
    assert_eq!(topology.sentinels().len(), 3);
    assert_eq!(topology.sentinel_urls().len(), 3);
    assert_eq!(topology.master_name(), "distlock-test");
    assert_eq!(topology.master_url(), topology.nodes()[0].url());
    let sentinel = topology.sentinels()[0].port();
    let quorum = cli(sentinel, &["sentinel", "ckquorum", "distlock-test"]);
    assert!(quorum.starts_with("OK 3 usable Sentinels"), "{quorum}");

    write_replicated(&topology, "first");
    let master = fail_over(&mut topology);
    assert_eq!(cli(master, &["get", "first"]), "v");

    let started = Instant::now();
    topology.restart_killed();
    eprintln!(
        "the killed master was a replica again after {:?}",
        started.elapsed()
    );
    let role = cli(topology.nodes()[0].port(), &["role"]);
    assert!(
        role.starts_with(&format!("slave\n127.0.0.1\n{master}\nconnected")),
        "{role}"
    );
    // It came back empty and synchronised from the new master.
    assert_eq!(cli(topology.nodes()[0].port(), &["get", "first"]), "v");

    write_replicated(&topology, "second");
    let master = fail_over(&mut topology);
    assert_eq!(cli(master, &["get", "first"]), "v");
    assert_eq!(cli(master, &["get", "second"]), "v");
    eprintln!("the whole test took {:?}", test_started.elapsed());
}

#[test]
fn a_paused_master_comes_back_as_a_replica() {
    let mut topology = RedisSentinel::start(1, 1);
    let paused = topology.pause_master();
    assert_eq!(paused, 0);
    let new = topology
        .wait_for_failover(FAILOVER_TIMEOUT)
        .expect("the replica is promoted");
    assert_eq!(new, topology.nodes()[1].url());
    topology.resume_paused();
    let role = cli(topology.nodes()[0].port(), &["role"]);
    assert!(role.starts_with("slave"), "{role}");
}

#[test]
fn misuse_is_an_error() {
    let error = RedisSentinel::try_start(1, 0).expect_err("no sentinel");
    assert!(
        error.to_string().contains("at least one sentinel"),
        "{error}"
    );

    let mut topology = RedisSentinel::start(0, 1);
    let error = topology
        .wait_for_failover(Duration::from_millis(10))
        .expect_err("nothing was killed");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    let error = topology
        .try_restart_killed()
        .expect_err("nothing was killed");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    // With no replica, nothing can replace a killed master.
    topology.kill_master();
    let error = topology
        .wait_for_failover(Duration::from_secs(2))
        .expect_err("no replica to promote");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
    assert!(error.to_string().contains("old master"), "{error}");
    let error = topology.try_restart_killed().expect_err("still the master");
    assert!(
        error.to_string().contains("wait_for_failover first"),
        "{error}"
    );
}
