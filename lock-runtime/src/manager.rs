//! The lock manager: one Redis connection and the settings shared by its locks.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::local_queue::LocalQueues;
use crate::protocol::Connection;
use crate::renewal::Renewals;
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
    connection: Connection,
    wakeups: Wakeups,
    queues: LocalQueues,
    renewals: Renewals,
    /// The name it is registered under, for logs and metrics.
    name: OnceLock<String>,
    url: String,
    key_prefix: String,
    default_ttl: Duration,
}

impl LockManager {
    /// Starts building a manager for the Redis server at `url`:
    /// `redis://[user][:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (with the `tls` feature, which also adds `tls_root_certificate` to
    /// trust a private CA). For `rediss://`, distlock makes ring rustls's
    /// process-wide crypto provider, unless the application installed one
    /// before.
    pub fn builder(url: impl Into<String>) -> LockManagerBuilder {
        LockManagerBuilder {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            default_ttl: DEFAULT_TTL,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            #[cfg(feature = "tls")]
            tls_root_certificate: None,
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
    pub(crate) fn connection(&self) -> Connection {
        self.inner.connection.clone()
    }

    pub(crate) fn wakeups(&self) -> &Wakeups {
        &self.inner.wakeups
    }

    pub(crate) fn queues(&self) -> &LocalQueues {
        &self.inner.queues
    }

    pub(crate) fn renewals(&self) -> &Renewals {
        &self.inner.renewals
    }

    /// The name this manager is registered under (the first one, if
    /// registered twice), or `unregistered`.
    pub fn name(&self) -> &str {
        self.inner.name.get().map_or("unregistered", String::as_str)
    }

    /// Records the name the registry knows this manager by.
    pub(crate) fn set_name(&self, name: &str) {
        let _ = self.inner.name.set(name.to_owned());
    }

    /// Identifies this manager (and its clones) within the process.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }
}

impl fmt::Debug for LockManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockManager")
            .field("name", &self.name())
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
    /// PEM certificates that replace the default trust roots (`rediss://`).
    #[cfg(feature = "tls")]
    tls_root_certificate: Option<Vec<u8>>,
}

impl fmt::Debug for LockManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockManagerBuilder")
            .field("url", &redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
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

    /// Trusts the CA certificate(s) in `pem` — for a `rediss://` server whose
    /// certificate your own CA issued — instead of the default trust roots
    /// (Mozilla's, from `webpki-roots`). The server's certificate must name
    /// the host of the URL. Pass several certificates in one PEM to trust
    /// several CAs. With the `tls` feature only.
    ///
    /// [`build`](Self::build) fails with [`LockError::InvalidConfig`] when
    /// `pem` holds no certificate or the URL is not `rediss://`, and with
    /// [`LockError::Connect`] when the server's certificate is not issued by
    /// one of these CAs.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), distlock::LockError> {
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt").expect("CA certificate");
    /// let manager = distlock::LockManager::builder("rediss://redis.internal:6380")
    ///     .tls_root_certificate(ca)
    ///     .build()
    ///     .await?;
    /// # drop(manager); Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificate = Some(pem.into());
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
        let client = self.client(&url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connect = async {
            let mut connection = ConnectionManager::new_with_config(client.clone(), config).await?;
            // Credentials are checked by the first command: a server that
            // needs a password the URL lacks says so here, not at the first lock.
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
            Ok(connection)
        };
        let connection = match tokio::time::timeout(self.connect_timeout, connect).await {
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
                connection: Connection {
                    redis: connection,
                    timeout: self.command_timeout,
                },
                wakeups: Wakeups::new(client),
                queues: LocalQueues::default(),
                renewals: Renewals::default(),
                name: OnceLock::new(),
                url,
                key_prefix: self.key_prefix,
                default_ttl: self.default_ttl,
            }),
        })
    }
}

impl LockManagerBuilder {
    /// The Redis client for the URL, with the TLS settings; `url` is redacted.
    fn client(&self, url: &str) -> Result<redis::Client, LockError> {
        #[cfg(feature = "tls")]
        {
            if self.url.starts_with("rediss:") {
                install_crypto_provider();
            }
            if let Some(pem) = &self.tls_root_certificate {
                return tls_client(&self.url, url, pem);
            }
        }
        redis::Client::open(self.url.as_str()).map_err(|source| unusable_url(url, &source))
    }
}

fn unusable_url(redacted: &str, source: &redis::RedisError) -> LockError {
    LockError::invalid_config(format!("`{redacted}` is not a usable redis URL: {source}"))
}

/// A client for `url` trusting the CAs in `pem` instead of the default roots.
#[cfg(feature = "tls")]
fn tls_client(url: &str, redacted: &str, pem: &[u8]) -> Result<redis::Client, LockError> {
    use redis::IntoConnectionInfo;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    // redis-rs skips what is not a certificate, which would leave no trust
    // root at all and fail every connection with a misleading error.
    match CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>() {
        Ok(certificates) if !certificates.is_empty() => {}
        Ok(_) => {
            return Err(LockError::invalid_config(
                "the TLS root certificate holds no PEM `CERTIFICATE` block",
            ));
        }
        Err(error) => {
            return Err(LockError::invalid_config(format!(
                "the TLS root certificate is not valid PEM: {error}"
            )));
        }
    }
    let info = url
        .into_connection_info()
        .map_err(|source| unusable_url(redacted, &source))?;
    if !matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
        return Err(LockError::invalid_config(format!(
            "a TLS root certificate needs a `rediss://` URL, not `{redacted}`"
        )));
    }
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    };
    redis::Client::build_with_tls(info, certificates).map_err(|source| {
        LockError::invalid_config(format!(
            "cannot use the TLS root certificate for `{redacted}`: {source}"
        ))
    })
}

/// redis-rs builds its rustls configuration with the process-wide crypto
/// provider, and rustls panics when none was installed and it cannot choose
/// one itself (no provider compiled in, or both ring and aws-lc-rs). Install
/// ring, which the `tls` feature compiles, unless the application chose one.
#[cfg(feature = "tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is set.
        let _ = rustls::crypto::ring::default_provider().install_default();
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
