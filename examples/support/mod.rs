//! What the examples share: where Redis is.

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
