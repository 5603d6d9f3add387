//! Helpers for tests against a throwaway Redis Cluster: managers, and where
//! a lock's keys live.

use std::time::Duration;

use distlock::LockManager;
use lock_testkit::{RedisCluster, RedisServer};

/// A manager on `seeds` with short timeouts and its own key prefix.
pub async fn manager(seeds: &[String], prefix: &str) -> LockManager {
    LockManager::cluster(seeds.iter().cloned())
        .key_prefix(prefix)
        .command_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(3))
        .build()
        .await
        .expect("connect to the test cluster")
}

/// Sends one command to `node` alone (no redirection followed).
pub async fn node_cmd<T: redis::FromRedisValue>(
    node: &RedisServer,
    cmd: &mut redis::Cmd,
) -> redis::RedisResult<T> {
    let mut conn = super::raw(node).await;
    cmd.query_async(&mut conn).await
}

/// Whether `node` is a master now (a failover swaps roles).
pub async fn is_master(node: &RedisServer) -> bool {
    let role: redis::RedisResult<Vec<redis::Value>> = node_cmd(node, &mut redis::cmd("ROLE")).await;
    matches!(role.as_deref(), Ok([redis::Value::BulkString(role), ..]) if role == b"master")
}

/// The master holding the lease key of lock `key` under `prefix`, and that
/// key, found by asking every running master for its keys.
pub async fn lease_holder(
    cluster: &RedisCluster,
    prefix: &str,
    key: &str,
) -> Option<(usize, String)> {
    for (index, node) in cluster.nodes().iter().enumerate() {
        if !node.is_running() || !is_master(node).await {
            continue;
        }
        if let Some(lease) = keys(node, &format!("{prefix}*:lock:{key}"))
            .await
            .into_iter()
            .next()
        {
            return Some((index, lease));
        }
    }
    None
}

/// The fencing counter that shares the lease key's hash tag.
pub fn fence_key(lease: &str) -> String {
    let (tagged, _) = lease.split_once(":lock:").expect("a lease key");
    format!("{tagged}:fence")
}

/// The replica of the master `master` (by index), if one is running.
pub async fn replica_of(cluster: &RedisCluster, master: usize) -> Option<usize> {
    let port = cluster.nodes()[master].port();
    for (index, node) in cluster.nodes().iter().enumerate() {
        if !node.is_running() {
            continue;
        }
        let role: Vec<redis::Value> = node_cmd(node, &mut redis::cmd("ROLE"))
            .await
            .unwrap_or_default();
        if let [redis::Value::BulkString(role), _, redis::Value::Int(of), ..] = role.as_slice()
            && role == b"slave"
            && u16::try_from(*of).ok() == Some(port)
        {
            return Some(index);
        }
    }
    None
}

/// The running masters that serve `key`'s slot themselves (answer without
/// MOVED): exactly one in a healthy cluster.
pub async fn serving(cluster: &RedisCluster, key: &str) -> Vec<usize> {
    let mut serving = Vec::new();
    for (index, node) in cluster.nodes().iter().enumerate() {
        if !node.is_running() || !is_master(node).await {
            continue;
        }
        if node_cmd::<i64>(node, redis::cmd("PTTL").arg(key))
            .await
            .is_ok()
        {
            serving.push(index);
        }
    }
    serving
}

/// `CLUSTER KEYSLOT key`, asked of `node`.
pub async fn keyslot(node: &RedisServer, key: &str) -> u16 {
    node_cmd(node, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
        .await
        .expect("CLUSTER KEYSLOT")
}

/// How many times `node` ran `command` (INFO commandstats), scripts' own
/// calls included.
pub async fn command_calls(node: &RedisServer, command: &str) -> u64 {
    command_stat(node, command, "calls").await
}

/// One figure of `command`'s line in `node`'s INFO commandstats: `calls`,
/// or `rejected_calls` (refused before running, e.g. answered MOVED).
pub async fn command_stat(node: &RedisServer, command: &str, figure: &str) -> u64 {
    let info: String = node_cmd(node, redis::cmd("INFO").arg("commandstats"))
        .await
        .expect("INFO commandstats");
    let prefix = format!("cmdstat_{command}:");
    let field = format!("{figure}=");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|figures| {
            figures
                .split(',')
                .find_map(|f| f.strip_prefix(field.as_str()))
        })
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// The keys of `node` matching `pattern` (KEYS, which a replica answers
/// without redirecting).
pub async fn keys(node: &RedisServer, pattern: &str) -> Vec<String> {
    node_cmd(node, redis::cmd("KEYS").arg(pattern))
        .await
        .unwrap_or_default()
}

/// How many clients of `node` subscribe the sharded channel `channel`.
pub async fn shard_subscribers(node: &RedisServer, channel: &str) -> i64 {
    let counts: (String, i64) =
        node_cmd(node, redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel))
            .await
            .expect("PUBSUB SHARDNUMSUB");
    counts.1
}
