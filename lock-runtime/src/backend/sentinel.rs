//! Redis Sentinel: the sentinels' client, built from the manager's
//! settings. The backend is one server's (`single.rs`) whose address is
//! the primary the sentinels name (`address.rs`).

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsMode};

use super::client::{Settings, connection_info, redact};
use crate::LockError;

/// Where a Sentinel-watched primary is, as the builder was told: the
/// sentinels, the primary's name among them, and its credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SentinelTopology {
    pub(crate) sentinels: Vec<String>,
    pub(crate) master_name: String,
    /// The primary's user and password (the sentinels' are in their URLs).
    pub(crate) master_username: Option<String>,
    pub(crate) master_password: Option<String>,
}

/// Without passwords: the sentinels' URLs redacted, the primary's left out.
impl std::fmt::Debug for SentinelTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SentinelTopology {
    /// The sentinels and the primary's name, for `Debug` and logs, without
    /// passwords.
    pub(crate) fn describe(&self) -> String {
        let urls: Vec<String> = self.sentinels.iter().map(|url| redact(url)).collect();
        format!("sentinel `{}` [{}]", self.master_name, urls.join(", "))
    }

    /// The client that asks the sentinels. Every sentinel is reached with
    /// the credentials and TLS of its URL, which must be the same for all;
    /// the primary with TLS when the sentinels are (`rediss://`), with the
    /// root certificate setting for both.
    pub(crate) fn client(&self, settings: &Settings) -> Result<SentinelClient, LockError> {
        let (addrs, first) = self.sentinel_addrs()?;
        let tls = matches!(addrs.first(), Some(ConnectionAddr::TcpTls { .. }));
        let described = self.describe();
        let unusable = |source: redis::RedisError| {
            LockError::invalid_config(format!("cannot use {described}: {source}"))
        };
        let mut builder =
            SentinelClientBuilder::new(addrs, &self.master_name, SentinelServerType::Master)
                .map_err(unusable)?;
        let sentinel_auth = first.redis_settings();
        if let Some(username) = sentinel_auth.username() {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = sentinel_auth.password() {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if let Some(username) = &self.master_username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.master_password {
            builder = builder.set_client_to_redis_password(password);
        }
        if tls {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        }
        #[cfg(feature = "tls")]
        let builder = self.with_tls(builder, &first, settings)?;
        #[cfg(not(feature = "tls"))]
        let _ = settings;
        builder.build().map_err(unusable)
    }

    /// The root certificate setting, for the sentinels and the primary
    /// alike; refused, as for one server, when the sentinels (and so the
    /// primary) are reached without TLS, where it would mean nothing.
    #[cfg(feature = "tls")]
    fn with_tls(
        &self,
        builder: SentinelClientBuilder,
        first: &redis::ConnectionInfo,
        settings: &Settings,
    ) -> Result<SentinelClientBuilder, LockError> {
        if matches!(first.addr(), ConnectionAddr::TcpTls { .. }) {
            super::client::install_crypto_provider();
        }
        let Some(pem) = &settings.tls_root_certificate else {
            return Ok(builder);
        };
        super::client::require_tls(first, &self.sentinels[0])?;
        let certificates = super::client::root_certificates(pem)?;
        Ok(builder
            .set_client_to_sentinel_certificates(certificates.clone())
            .set_client_to_redis_certificates(certificates))
    }

    /// Each sentinel's address, and the first one's connection info, whose
    /// credentials every sentinel shares.
    fn sentinel_addrs(&self) -> Result<(Vec<ConnectionAddr>, redis::ConnectionInfo), LockError> {
        let infos = self
            .sentinels
            .iter()
            .map(|url| connection_info(url))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = infos.first().cloned() else {
            return Err(LockError::invalid_config(
                "Sentinel needs at least one sentinel URL",
            ));
        };
        let same = |info: &redis::ConnectionInfo| {
            info.redis_settings().username() == first.redis_settings().username()
                && info.redis_settings().password() == first.redis_settings().password()
                && matches!(info.addr(), ConnectionAddr::TcpTls { .. })
                    == matches!(first.addr(), ConnectionAddr::TcpTls { .. })
        };
        if !infos.iter().all(same) {
            return Err(LockError::invalid_config(format!(
                "the sentinel URLs of {} differ in user, password or TLS: distlock reaches every sentinel alike",
                self.describe()
            )));
        }
        if self.master_name.is_empty() {
            return Err(LockError::invalid_config(
                "the Sentinel master name must not be empty",
            ));
        }
        let addrs = infos.iter().map(|info| info.addr().clone()).collect();
        Ok((addrs, first))
    }
}
