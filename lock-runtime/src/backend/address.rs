//! Where a connection to one Redis server goes: a fixed address, or the
//! primary that Redis Sentinel names at the moment of connecting.
//!
//! A manager on Sentinel is a manager on one server (protocol v2, see
//! `single.rs`) whose every connect, and every reconnect of its wake-up
//! connection, asks the sentinels for the primary first. A failover kills
//! the connections to the old primary (it died, or Sentinel's
//! reconfiguration closes the clients of a demoted one), the next step
//! reconnects, and finds the new primary; its new `master_replid` starts
//! new fencing counters above every earlier token (see `reconnect.rs`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use redis::RedisResult;
use redis::sentinel::SentinelClient;

/// How long to wait between two askings of the sentinels while no primary
/// answers as one (a failover under way).
const RETRY: Duration = Duration::from_millis(100);

/// Where a server connection goes.
pub(crate) enum Address {
    /// One server, at a fixed address.
    Fixed(redis::Client),
    /// The primary of a group that Sentinel watches.
    Sentinel(Sentinels),
}

/// The sentinels of one primary, and its name among them.
pub(crate) struct Sentinels {
    /// Asked under a lock: redis-rs's client keeps a connection per
    /// sentinel, and asks through `&mut`.
    client: tokio::sync::Mutex<SentinelClient>,
    master_name: String,
}

impl Sentinels {
    pub(crate) fn new(client: SentinelClient, master_name: &str) -> Self {
        Sentinels {
            client: tokio::sync::Mutex::new(client),
            master_name: master_name.to_owned(),
        }
    }

    /// A client for the server the sentinels name the primary now, once it
    /// answers `ROLE` as one (redis-rs asks it before it answers). While a failover is under way (the sentinels
    /// still name the dead primary, or the new one is not promoted yet) it
    /// asks again every [`RETRY`]: the caller bounds the wait (the connect
    /// timeout).
    ///
    /// Type-erased: every step's future embeds the connect, and redis-rs's
    /// Sentinel futures are deep enough to take it past the compiler's
    /// query depth limit.
    fn primary(&self) -> Pin<Box<dyn Future<Output = RedisResult<redis::Client>> + Send + '_>> {
        Box::pin(async move {
            loop {
                let asked = self.client.lock().await.async_get_client().await;
                match asked {
                    Ok(client) => return Ok(client),
                    Err(error) if is_permanent(&error) => return Err(error),
                    Err(error) => {
                        tracing::debug!(%error, master = %self.master_name, "no primary from the sentinels yet; asking again");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        })
    }
}

/// Whether asking the sentinels again cannot mend `error`: a wrong password
/// or setting, or a certificate (a sentinel's or the primary's) that the
/// client does not trust, which a failover does not change either. Retried,
/// it would end in the connect timeout, saying nothing of the cause.
fn is_permanent(error: &redis::RedisError) -> bool {
    matches!(
        error.kind(),
        redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::InvalidClientConfig
    ) || is_untrusted_certificate(error)
}

/// Whether `error` is rustls's `InvalidCertificate` from a TLS handshake.
/// redis-rs keeps the I/O error behind an `Arc<dyn Error>`, out of reach of
/// `downcast_ref`, so rustls's message tells it (pinned by a test below).
#[cfg(feature = "tls")]
fn is_untrusted_certificate(error: &redis::RedisError) -> bool {
    error.is_io_error() && error.to_string().contains("invalid peer certificate")
}

/// Without the `tls` feature there is no certificate to distrust.
#[cfg(not(feature = "tls"))]
fn is_untrusted_certificate(_: &redis::RedisError) -> bool {
    false
}

impl Address {
    /// The client to connect with now.
    pub(crate) async fn client(&self) -> RedisResult<redis::Client> {
        match self {
            Address::Fixed(client) => Ok(client.clone()),
            Address::Sentinel(sentinels) => sentinels.primary().await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "tls")]
    #[test]
    fn an_untrusted_certificate_is_permanent_a_refused_connection_is_not() {
        use super::is_permanent;
        use std::io;

        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let handshake = io::Error::new(io::ErrorKind::InvalidData, untrusted);
        assert!(is_permanent(&redis::RedisError::from(handshake)));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(!is_permanent(&redis::RedisError::from(refused)));
    }
}
