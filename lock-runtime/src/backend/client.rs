//! Reaching Redis: the client for a URL (with its TLS settings), the first
//! connection, and URLs made fit for messages.

use std::sync::Arc;
use std::time::Duration;

use super::address::Address;
use super::eviction::EvictingServer;
use super::reconnect::{Reconnecting, Server};
use super::replicas::ReplicaAcks;
use super::timeout::{Awaited, bounded};
use crate::LockError;

/// Settings every backend that talks to Redis shares.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// What to do about a server that may evict lock keys (`eviction.rs`).
    pub(crate) on_evicting_server: EvictingServer,
    /// How many replicas acknowledge each grant, if any (`replicas.rs`).
    pub(crate) replica_acks: Option<ReplicaAcks>,
    /// The prefix of the manager's keys (the etcd connect check reads one).
    #[cfg(feature = "etcd")]
    pub(crate) key_prefix: String,
    /// PEM certificates that replace the default trust roots (`rediss://`,
    /// and `https://` etcd endpoints).
    #[cfg(feature = "tls")]
    pub(crate) tls_root_certificate: Option<Vec<u8>>,
}

/// The Redis client for `url`, with the TLS settings.
pub(crate) fn client(url: &str, settings: &Settings) -> Result<redis::Client, LockError> {
    let redacted = redact(url);
    #[cfg(feature = "tls")]
    {
        if url.starts_with("rediss:") {
            install_crypto_provider();
        }
        if let Some(pem) = &settings.tls_root_certificate {
            return tls_client(url, &redacted, pem);
        }
    }
    #[cfg(not(feature = "tls"))]
    let _ = settings;
    redis::Client::open(url).map_err(|source| unusable_url(&redacted, &source))
}

/// Opens the shared connection of `client` and checks it with a PING, so
/// that a missing password is a [`LockError::Connect`] now, not a failure at
/// the first lock.
pub(crate) async fn connect(
    address: &Arc<Address>,
    url: &str,
    settings: &Settings,
) -> Result<Arc<Reconnecting<Server>>, LockError> {
    let connection = open(address, settings);
    check(&connection, url, settings).await?;
    Ok(connection)
}

/// The shared connection of `client`, not connected yet: it connects at its
/// first step, and again at the first step after it died (see
/// `reconnect.rs`).
pub(crate) fn open(address: &Arc<Address>, settings: &Settings) -> Arc<Reconnecting<Server>> {
    // No timeouts of redis-rs's own: every use is bounded by ours (a step
    // by the command timeout, a connect and its PING by the connect
    // timeout), and its defaults (1 s to connect, 500 ms to answer) would
    // cut in before the user's settings. It also leaves one timer per step.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    Arc::new(Reconnecting::new(Server {
        address: address.clone(),
        config,
        connect_timeout: settings.connect_timeout,
    }))
}

/// Connects `connection` if needed and sends one PING, within the connect
/// timeout.
pub(crate) async fn check(
    connection: &Reconnecting<Server>,
    url: &str,
    settings: &Settings,
) -> Result<(), LockError> {
    let ping = async {
        let mut built = connection.connection().await?;
        redis::cmd("PING").query_async::<()>(&mut built.redis).await
    };
    within_connect_timeout(&redact(url), settings, ping).await
}

/// Runs `connect` within the connect timeout, reporting its failure as a
/// [`LockError::Connect`] naming `redacted`, the URL(s) without passwords.
pub(crate) async fn within_connect_timeout<T>(
    redacted: &str,
    settings: &Settings,
    connect: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, LockError> {
    let timeout = settings.connect_timeout;
    let connected = tokio::time::timeout(timeout, connect).await;
    bounded(connected, timeout, Awaited::Connection).map_err(|source| LockError::Connect {
        url: redacted.to_owned(),
        source,
    })
}

/// The address and credentials `url` names.
pub(crate) fn connection_info(url: &str) -> Result<redis::ConnectionInfo, LockError> {
    redis::IntoConnectionInfo::into_connection_info(url)
        .map_err(|source| unusable_url(&redact(url), &source))
}

fn unusable_url(redacted: &str, source: &redis::RedisError) -> LockError {
    LockError::invalid_config(format!("`{redacted}` is not a usable redis URL: {source}"))
}

/// Refuses a root certificate for a node reached without TLS, where it
/// would silently mean nothing.
#[cfg(feature = "tls")]
pub(crate) fn require_tls(info: &redis::ConnectionInfo, url: &str) -> Result<(), LockError> {
    if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
        return Ok(());
    }
    Err(LockError::invalid_config(format!(
        "a TLS root certificate needs a `rediss://` URL, not `{}`",
        redact(url)
    )))
}

/// A client for `url` trusting the CAs in `pem` instead of the default roots.
#[cfg(feature = "tls")]
fn tls_client(url: &str, redacted: &str, pem: &[u8]) -> Result<redis::Client, LockError> {
    let certificates = root_certificates(pem)?;
    let info = connection_info(url)?;
    require_tls(&info, url)?;
    redis::Client::build_with_tls(info, certificates).map_err(|source| {
        LockError::invalid_config(format!(
            "cannot use the TLS root certificate for `{redacted}`: {source}"
        ))
    })
}

/// The CA certificates in `pem` as redis-rs takes them, checked first.
#[cfg(feature = "tls")]
pub(crate) fn root_certificates(pem: &[u8]) -> Result<redis::TlsCertificates, LockError> {
    check_root_certificate(pem)?;
    Ok(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    })
}

/// Checks that `pem` holds at least one certificate and nothing unreadable.
#[cfg(feature = "tls")]
pub(crate) fn check_root_certificate(pem: &[u8]) -> Result<(), LockError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    // redis-rs and etcd's client (tonic) skip what is not a certificate,
    // which would leave no trust root at all and fail every connection with
    // a misleading error.
    match CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>() {
        Ok(certificates) if !certificates.is_empty() => Ok(()),
        Ok(_) => Err(LockError::invalid_config(
            "the TLS root certificate holds no PEM `CERTIFICATE` block",
        )),
        Err(error) => Err(LockError::invalid_config(format!(
            "the TLS root certificate is not valid PEM: {error}"
        ))),
    }
}

/// redis-rs builds its rustls configuration with the process-wide crypto
/// provider, and rustls panics when none was installed and it cannot choose
/// one itself (no provider compiled in, or both ring and aws-lc-rs). Install
/// ring, which the `tls` feature compiles, unless the application chose one.
#[cfg(feature = "tls")]
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is set.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The URL with its password, if any, replaced by `***`, for messages and
/// logs: the password of the user-info part, and the whole query string
/// (where `redis+unix://` URLs carry theirs).
pub(crate) fn redact(url: &str) -> String {
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
}
