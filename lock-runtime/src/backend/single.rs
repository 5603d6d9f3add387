//! One Redis server: protocol v2 (see `protocol.rs`) on its one multiplexed
//! connection, and one pub/sub connection for wake-ups and grants. Also the
//! primary of a Sentinel-watched group, found anew at every connect (see
//! `address.rs`).

use std::sync::Arc;

use super::address::{Address, Sentinels};
use super::client::{self, Settings};
use super::protocol::{Connection, Protocol, Publish};
use super::reconnect::Server;
use super::sentinel::SentinelTopology;
use super::subscriber::Subscriber;
use crate::LockError;

/// A manager's connection to its one Redis server, and its wake-ups.
pub(crate) struct Single {
    pub(crate) connection: Connection<Server>,
    pub(crate) subscriber: Subscriber,
}

impl Single {
    pub(crate) async fn connect(url: &str, settings: &Settings) -> Result<Self, LockError> {
        let address = Arc::new(Address::Fixed(client::client(url, settings)?));
        Self::on(address, url, settings).await
    }

    /// The primary the sentinels of `topology` name, at every connect.
    pub(crate) async fn sentinel(
        topology: &SentinelTopology,
        settings: &Settings,
    ) -> Result<Self, LockError> {
        let sentinels = Sentinels::new(topology.client(settings)?, &topology.master_name);
        let address = Arc::new(Address::Sentinel(sentinels));
        Self::on(address, &topology.describe(), settings).await
    }

    /// Connects to `address` (described as `described` in errors), and
    /// checks the connection.
    async fn on(
        address: Arc<Address>,
        described: &str,
        settings: &Settings,
    ) -> Result<Self, LockError> {
        let redis = client::connect(&address, described, settings).await?;
        Ok(Single {
            connection: Connection {
                redis,
                timeout: settings.command_timeout,
                publish: Publish::Plain,
                protocol: Protocol::V2,
            },
            subscriber: Subscriber::new(address),
        })
    }
}
