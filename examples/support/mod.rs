//! What the examples share: where Redis (or etcd) is.

// Each example uses some of these; `pub` reaches the example using them.
#![allow(dead_code, unreachable_pub)]

pub mod rng;

/// The Redis to use: `REDIS_URL` when set, otherwise a throwaway
/// `redis-server` that lives as long as the returned handle.
pub fn redis() -> std::io::Result<(String, Option<lock_testkit::RedisServer>)> {
    match std::env::var("REDIS_URL") {
        Ok(url) => Ok((url, None)),
        Err(_) => {
            let server = lock_testkit::RedisServer::try_start()?;
            Ok((server.url(), Some(server)))
        }
    }
}

/// Independent Redis masters for Redlock: the comma-separated URLs of
/// `REDLOCK_URLS` when set, otherwise `n` throwaway `redis-server`s that
/// live as long as the returned handles.
pub fn redlock_nodes(n: usize) -> std::io::Result<(Vec<String>, Vec<lock_testkit::RedisServer>)> {
    match urls_from("REDLOCK_URLS") {
        Some(urls) => Ok((urls, Vec::new())),
        None => {
            let servers = lock_testkit::try_start_many(n)?;
            Ok((
                servers.iter().map(lock_testkit::RedisServer::url).collect(),
                servers,
            ))
        }
    }
}

/// The Redis Cluster to use: the comma-separated seed URLs in
/// `REDIS_CLUSTER_URLS` when set, otherwise a throwaway cluster of three
/// masters that lives as long as the returned handle.
pub fn cluster() -> std::io::Result<(Vec<String>, Option<lock_testkit::RedisCluster>)> {
    match urls_from("REDIS_CLUSTER_URLS") {
        Some(seeds) => Ok((seeds, None)),
        None => {
            let cluster = lock_testkit::RedisCluster::try_start(3, 0)?;
            Ok((cluster.seed_urls(), Some(cluster)))
        }
    }
}

/// The comma-separated URLs in the environment variable `name`, if set.
/// An etcd cluster for the locks: the comma-separated client URLs of
/// `ETCD_ENDPOINTS` when set, otherwise a throwaway 3-member cluster that
/// lives as long as the returned handle.
pub fn etcd() -> std::io::Result<(Vec<String>, Option<lock_testkit::EtcdCluster>)> {
    match urls_from("ETCD_ENDPOINTS") {
        Some(endpoints) => Ok((endpoints, None)),
        None => {
            let cluster = lock_testkit::EtcdCluster::try_start()?;
            Ok((cluster.endpoints(), Some(cluster)))
        }
    }
}

fn urls_from(name: &str) -> Option<Vec<String>> {
    let urls = std::env::var(name).ok()?;
    Some(
        urls.split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The Sentinel topology to use: the comma-separated sentinel URLs in
/// `REDIS_SENTINEL_URLS` and the master name in `REDIS_SENTINEL_MASTER`
/// (default `mymaster`) when set, otherwise a throwaway topology of one
/// master, two replicas and three sentinels that lives as long as the
/// returned handle.
pub fn sentinel() -> std::io::Result<(Vec<String>, String, Option<lock_testkit::RedisSentinel>)> {
    match urls_from("REDIS_SENTINEL_URLS") {
        Some(urls) => {
            let master =
                std::env::var("REDIS_SENTINEL_MASTER").unwrap_or_else(|_| "mymaster".into());
            Ok((urls, master, None))
        }
        None => {
            let topology = lock_testkit::RedisSentinel::try_start(2, 3)?;
            let master = topology.master_name().to_owned();
            Ok((topology.sentinel_urls(), master, Some(topology)))
        }
    }
}
