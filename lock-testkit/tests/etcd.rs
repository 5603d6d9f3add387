//! Integration tests of [`EtcdCluster`] against real `etcd` members (Debian's
//! `etcd-server`; `scripts/ensure-etcd.sh` installs it).
//!
//! The tests run one at a time: three clusters of three members each with
//! 50 ms heartbeats, on a 2-core machine shared with other tests, would
//! starve each other into spurious elections.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lock_testkit::EtcdCluster;

#[path = "common/process.rs"]
mod process;
use process::process_exists;

/// Held by each test for its whole run.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A member other than `except`.
fn other_than(except: usize) -> usize {
    (except + 1) % 3
}

#[test]
fn etcd_cluster_starts_with_one_leader_and_replicates() {
    let _serial = one_at_a_time();
    let started = Instant::now();
    let cluster = EtcdCluster::start();
    eprintln!("cluster started in {:?}", started.elapsed());

    let members = cluster.members();
    assert_eq!(members.len(), 3);
    let ports: HashSet<u16> = members
        .iter()
        .flat_map(|m| [m.client_port(), m.peer_port()])
        .collect();
    assert_eq!(ports.len(), 6, "every port differs: {members:?}");
    assert!(!ports.contains(&2379) && !ports.contains(&2380));
    let endpoints = cluster.endpoints();
    for (member, endpoint) in members.iter().zip(&endpoints) {
        assert_eq!(
            *endpoint,
            format!("http://127.0.0.1:{}", member.client_port())
        );
        assert!(member.is_running() && !member.is_paused());
        assert!(member.data_dir().starts_with(member.dir()));
        assert!(member.data_dir().is_dir(), "{member:?}");
        assert!(member.log_path().is_file(), "{member:?}");
    }
    assert_eq!(cluster.ca_pem(), None);

    // All three name the same leader, one of them.
    let leader = cluster.leader();
    let statuses: Vec<_> = members.iter().map(|m| m.status().unwrap()).collect();
    let ids: HashSet<u64> = statuses.iter().map(|s| s.member_id).collect();
    assert_eq!(ids.len(), 3, "{statuses:?}");
    for (member, status) in members.iter().zip(&statuses) {
        assert_eq!(status.member_id, member.id());
        assert_eq!(
            status.leader,
            Some(cluster.member(leader).id()),
            "{statuses:?}"
        );
    }

    // Written through one member, read through the others.
    let writer = other_than(leader);
    cluster.member(writer).put("greeting", "hello").unwrap();
    cluster.member(writer).put("empty", "").unwrap();
    for reader in members {
        assert_eq!(
            reader.get("greeting").unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(reader.get("empty").unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(reader.get("missing").unwrap(), None);
    }

    // Dropping kills every member and removes its directory.
    let pids: Vec<u32> = members.iter().map(|m| m.pid().unwrap()).collect();
    let dirs: Vec<PathBuf> = members.iter().map(|m| m.dir().to_owned()).collect();
    drop(cluster);
    for (pid, dir) in pids.into_iter().zip(dirs) {
        assert!(!process_exists(pid), "etcd {pid} outlived its cluster");
        assert!(!dir.exists(), "{} outlived its cluster", dir.display());
    }
}

/// The first line a plain HTTP request to `port` gets back, or the error.
fn plain_http_answer(port: u16) -> String {
    use std::io::{Read, Write};
    let attempt = || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream
            .write_all(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    attempt().unwrap_or_else(|e| format!("error: {e}"))
}

#[test]
fn etcd_cluster_over_tls_serves_clients_tls_only_and_the_kit_on_its_own_ports() {
    let _serial = one_at_a_time();
    let mut cluster = EtcdCluster::start_tls();
    let ca = cluster.ca_pem().expect("a TLS cluster's CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let members = cluster.members();
    for (member, endpoint) in members.iter().zip(cluster.endpoints()) {
        assert_eq!(
            endpoint,
            format!("https://127.0.0.1:{}", member.client_port())
        );
        // The client port speaks TLS only: plain HTTP gets no etcd answer.
        let answer = plain_http_answer(member.client_port());
        assert!(!answer.contains("etcdserver"), "{answer}");
    }
    let ports: HashSet<u16> = members
        .iter()
        .flat_map(|m| [m.client_port(), m.peer_port()])
        .collect();
    assert_eq!(ports.len(), 6, "every port differs: {members:?}");

    // The kit's own requests go through its plain ports, restarts included.
    let leader = cluster.leader();
    let writer = other_than(leader);
    cluster.member(writer).put("greeting", "hello").unwrap();
    cluster.restart(writer);
    assert!(cluster.endpoints()[writer].starts_with("https://"));
    for reader in cluster.members() {
        assert_eq!(
            reader.get("greeting").unwrap().as_deref(),
            Some(&b"hello"[..])
        );
    }
}

#[test]
fn etcd_killing_the_leader_elects_another() {
    let _serial = one_at_a_time();
    let mut cluster = EtcdCluster::start();
    let old = cluster.leader();
    let old_id = cluster.member(old).id();
    let old_port = cluster.member(old).client_port();

    cluster.stop(old);
    assert!(!cluster.member(old).is_running());
    assert_eq!(cluster.member(old).pid(), None);
    let stopped = Instant::now();
    let new = cluster.leader();
    let election = stopped.elapsed();
    eprintln!("new leader elected in {election:?}");
    assert_ne!(new, old);
    assert!(election < Duration::from_secs(5), "took {election:?}");
    cluster
        .member(new)
        .put("written-while-down", "yes")
        .unwrap();

    // Back on the same port with the same data, and it catches up.
    cluster.restart(old);
    cluster.wait_ready();
    let member = cluster.member(old);
    assert!(member.is_running());
    assert_eq!(member.client_port(), old_port);
    assert_eq!(member.status().unwrap().member_id, old_id);
    assert_eq!(
        member.get("written-while-down").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
}

#[test]
fn etcd_without_quorum_puts_fail_until_members_return() {
    let _serial = one_at_a_time();
    let mut cluster = EtcdCluster::start();
    cluster.member(0).put("before", "1").unwrap();

    cluster.stop(1);
    cluster.stop(2);
    let asked = Instant::now();
    let refused = cluster.member(0).put("during", "2");
    eprintln!(
        "put without quorum: {refused:?} after {:?}",
        asked.elapsed()
    );
    assert!(refused.is_err());
    assert!(cluster.try_leader(Duration::from_secs(1)).is_err());

    cluster.restart_many(&[1, 2]);
    let leader = cluster.leader();
    cluster.member(1).put("after", "3").unwrap();
    for member in cluster.members() {
        assert_eq!(member.get("before").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(member.get("after").unwrap().as_deref(), Some(&b"3"[..]));
    }
    eprintln!("leader after the restart: {leader}");
}

#[test]
fn etcd_paused_member_answers_nothing_until_resumed() {
    let _serial = one_at_a_time();
    let cluster = EtcdCluster::start();
    let leader = cluster.leader();

    // A paused follower: the other two keep a quorum.
    let follower = other_than(leader);
    cluster.pause(follower);
    assert!(cluster.member(follower).is_paused());
    assert!(cluster.member(follower).is_running());
    assert!(cluster.member(follower).status().is_err());
    cluster.member(leader).put("while-paused", "x").unwrap();
    cluster.resume(follower);
    assert!(!cluster.member(follower).is_paused());
    cluster.wait_ready();
    assert_eq!(
        cluster
            .member(follower)
            .get("while-paused")
            .unwrap()
            .as_deref(),
        Some(&b"x"[..])
    );

    // A paused leader is replaced, and steps down once resumed.
    cluster.pause(leader);
    let paused = Instant::now();
    let next = cluster.leader();
    eprintln!("leader replaced in {:?}", paused.elapsed());
    assert_ne!(next, leader);
    cluster.resume(leader);
    let agreed = cluster.leader();
    let status = cluster.member(leader).status().unwrap();
    assert_eq!(status.leader, Some(cluster.member(agreed).id()));
}
