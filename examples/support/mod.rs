//! What the examples share: where Redis is.

// Each example uses some of these.
#![allow(dead_code)]

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
    match std::env::var("REDLOCK_URLS") {
        Ok(urls) => Ok((
            urls.split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect(),
            Vec::new(),
        )),
        Err(_) => {
            let servers = lock_testkit::try_start_many(n)?;
            Ok((servers.iter().map(|server| server.url()).collect(), servers))
        }
    }
}
