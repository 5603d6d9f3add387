//! The test kit's throwaway Redis Cluster.

mod common;

use std::time::{Duration, Instant};

use common::cli;
use lock_testkit::RedisCluster;

#[test]
fn three_masters_serve_every_slot_and_redirect_keys_to_their_owner() {
    let cluster = RedisCluster::start(3, 0);
    assert_eq!(cluster.nodes().len(), 3);
    assert_eq!(cluster.seed_urls().len(), 3);
    let info = cluster.info(0).unwrap();
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_known_nodes:3"), "{info}");
    assert!(info.contains("cluster_size:3"), "{info}");
    // A key lives on one node; the others answer MOVED.
    let moved = cluster
        .nodes()
        .iter()
        .filter(|node| cli(node.port(), &["set", "k", "v"]).starts_with("MOVED"))
        .count();
    assert_eq!(moved, 2);
}

#[test]
fn a_killed_master_is_replaced_by_its_replica() {
    let mut cluster = RedisCluster::start(3, 1);
    assert_eq!(cluster.nodes().len(), 6);
    let info = cluster.info(0).unwrap();
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    // Node 0 is a master (redis-cli puts masters first); kill it.
    assert!(cli(cluster.nodes()[0].port(), &["role"]).starts_with("master"));
    cluster.node_mut(0).stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Replicas come after the masters; one of them is promoted.
    while !cluster.nodes()[3..]
        .iter()
        .any(|node| cli(node.port(), &["role"]).starts_with("master"))
    {
        assert!(Instant::now() < deadline, "no replica promoted within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    loop {
        let info = cluster.info(1).unwrap();
        if info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384") {
            break;
        }
        assert!(Instant::now() < deadline, "slots not served again: {info}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn fewer_than_three_masters_is_an_error() {
    let error = RedisCluster::try_start(2, 0).expect_err("refused");
    assert!(error.to_string().contains("at least 3 masters"), "{error}");
}
