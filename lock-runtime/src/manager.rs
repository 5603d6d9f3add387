//! The lock manager: one Redis connection and the settings shared by its locks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::local_queue::LocalQueues;
use crate::wakeup::Wakeups;
use crate::{LockError, LockRequest, keyspace, lease};

/// Default prefix of every Redis key distlock writes.
pub const DEFAULT_KEY_PREFIX: &str = "distlock:";
/// Default lease of a lock.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Default time Redis has to answer one command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands out locks on one Redis server.
///
/// A manager holds one multiplexed, reconnecting connection
/// ([`redis::aio::ConnectionManager`]) shared by every lock it hands out, and
/// one pub/sub connection, opened at the first wait, on which releases wake
/// waiters. Cloning a manager is cheap and shares both.
///
/// ```no_run
/// # async fn demo() -> Result<(), distlock::LockError> {
/// use std::time::Duration;
/// use distlock::LockManager;
///
/// let manager = LockManager::builder("redis://127.0.0.1:6379/0")
///     .key_prefix("shop:")
///     .default_ttl(Duration::from_secs(10))
///     .build()
///     .await?;
/// let guard = manager.lock("order:42").acquire().await?;
/// assert_eq!(guard.release().await?, distlock::ReleaseOutcome::Released);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LockManager {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    wakeups: Wakeups,
    queues: LocalQueues,
    url: String,
    key_prefix: String,
    default_ttl: Duration,
}

impl LockManager {
    /// Starts building a manager for the Redis server at `url`:
    /// `redis://[user][:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (with the `tls` feature).
    pub fn builder(url: impl Into<String>) -> LockManagerBuilder {
        LockManagerBuilder {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            default_ttl: DEFAULT_TTL,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Connects a manager with the default settings.
    pub async fn connect(url: impl Into<String>) -> Result<Self, LockError> {
        Self::builder(url).build().await
    }

    /// Starts a request for the lock `key`; see [`LockRequest`].
    pub fn lock(&self, key: impl Into<String>) -> LockRequest {
        LockRequest::new(self.clone(), key.into())
    }

    /// The prefix of every Redis key this manager writes.
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }

    /// The lease of locks whose request sets none.
    pub fn default_ttl(&self) -> Duration {
        self.inner.default_ttl
    }

    /// A handle on the shared connection (cheap: it is multiplexed).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.inner.connection.clone()
    }

    pub(crate) fn wakeups(&self) -> &Wakeups {
        &self.inner.wakeups
    }

    pub(crate) fn queues(&self) -> &LocalQueues {
        &self.inner.queues
    }

    /// Identifies this manager (and its clones) within the process.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
}

impl fmt::Debug for LockManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockManager")
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.key_prefix)
            .field("default_ttl", &self.inner.default_ttl)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`LockManager`]; made by [`LockManager::builder`].
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct LockManagerBuilder {
    url: String,
    key_prefix: String,
    default_ttl: Duration,
    command_timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for LockManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockManagerBuilder")
            .field("url", &redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl LockManagerBuilder {
    /// Prefix of every Redis key the manager writes (default `distlock:`).
    /// It may not contain `{` or `}`: distlock picks the hash tag itself.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Lease of locks whose request sets none (default 30 s).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// How long Redis has to answer one command before the operation fails
    /// with [`LockError::Backend`] (default 2 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long establishing the connection may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Checks the settings and connects.
    pub async fn build(self) -> Result<LockManager, LockError> {
        keyspace::validate_prefix(&self.key_prefix)?;
        lease::validate(self.default_ttl)?;
        for (name, value) in [
            ("command timeout", self.command_timeout),
            ("connect timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(LockError::invalid_config(format!(
                    "the {name} must be above zero"
                )));
            }
        }
        let url = redact(&self.url);
        let client = redis::Client::open(self.url.as_str()).map_err(|source| {
            LockError::invalid_config(format!("`{url}` is not a usable redis URL: {source}"))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = match tokio::time::timeout(
            self.connect_timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(connection)) => connection,
            Ok(Err(source)) => return Err(LockError::Connect { url, source }),
            Err(_) => {
                let source = redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.connect_timeout),
                ));
                return Err(LockError::Connect { url, source });
            }
        };
        Ok(LockManager {
            inner: Arc::new(Inner {
                connection,
                wakeups: Wakeups::new(client),
                queues: LocalQueues::default(),
                url,
                key_prefix: self.key_prefix,
                default_ttl: self.default_ttl,
            }),
        })
    }
}

/// The URL with its password, if any, replaced by `***`, for messages and
/// logs: the password of the user-info part, and the whole query string
/// (where `redis+unix://` URLs carry theirs).
fn redact(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, _)) => (url, "?***"),
        None => (url, ""),
    };
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return format!("{url}{query}");
    };
    // The user info ends at the last `@`: an unencoded `@` or `/` in a
    // password must not leave part of it visible.
    let Some(at) = url[scheme_end..].rfind('@').map(|i| scheme_end + i) else {
        return format!("{url}{query}");
    };
    match url[scheme_end..at].find(':').map(|i| scheme_end + i) {
        Some(colon) => format!("{}:***{}{query}", &url[..colon], &url[at..]),
        None => format!("{url}{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact("redis://user@h"), "redis://user@h");
        assert_eq!(redact("redis://h:6379/2"), "redis://h:6379/2");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(redact("redis://u:p/a@ss@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(
            redact("redis+unix:///tmp/r.sock?db=1&pass=secret"),
            "redis+unix:///tmp/r.sock?***"
        );
    }

    #[test]
    fn builder_debug_hides_the_password() {
        let debug = format!("{:?}", super::LockManager::builder("redis://u:hunter2@h:1"));
        assert!(
            !debug.contains("hunter2") && debug.contains("***"),
            "{debug}"
        );
    }
}
