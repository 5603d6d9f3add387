//! What the examples share: where Redis is.

/// The Redis to use: `REDIS_URL` when set, otherwise a throwaway
/// `redis-server` that lives as long as the returned handle.
#[allow(dead_code)] // Each example compiles this module; the cluster one does not use it.
pub fn redis() -> std::io::Result<(String, Option<lock_testkit::RedisServer>)> {
    match std::env::var("REDIS_URL") {
        Ok(url) => Ok((url, None)),
        Err(_) => {
            let server = lock_testkit::RedisServer::try_start()?;
            Ok((server.url(), Some(server)))
        }
    }
}

/// The Redis Cluster to use: the comma-separated seed URLs in
/// `REDIS_CLUSTER_URLS` when set, otherwise a throwaway cluster of three
/// masters that lives as long as the returned handle.
#[allow(dead_code)] // Each example compiles this module; few of them use a cluster.
pub fn cluster() -> std::io::Result<(Vec<String>, Option<lock_testkit::RedisCluster>)> {
    match std::env::var("REDIS_CLUSTER_URLS") {
        Ok(urls) => {
            let seeds = urls
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect();
            Ok((seeds, None))
        }
        Err(_) => {
            let cluster = lock_testkit::RedisCluster::try_start(3, 0)?;
            Ok((cluster.seed_urls(), Some(cluster)))
        }
    }
}
