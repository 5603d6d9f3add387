//! One Redis server: protocol v2 (see `protocol.rs`) on its one multiplexed
//! connection, and one pub/sub connection for wake-ups and grants. Also the
//! primary of a Sentinel-watched group, found anew at every connect (see
//! `address.rs`).

use std::sync::Arc;

use super::address::{Address, Sentinels};
use super::client::{self, Settings, redact};
use super::eviction;
use super::protocol::{Connection, Protocol, Publish};
use super::reconnect::Server;
use super::sentinel::SentinelTopology;
use super::subscriber::Subscriber;
use crate::LockError;

/// A manager's connection to its one Redis server, and its wake-ups.
pub(crate) struct Single {
    pub(crate) connection: Connection<Server>,
    /// A connection of its own for the `WAIT` of grants that replicas must
    /// acknowledge (see `replicas.rs`): `WAIT` holds up every command behind
    /// it on its connection. Opened at the first such grant.
    pub(crate) confirming: Connection<Server>,
    pub(crate) subscriber: Subscriber,
    address: Arc<Address>,
}

impl Single {
    /// Whether the server is the primary Sentinel names, which a failover
    /// replaces.
    pub(crate) fn follows_failovers(&self) -> bool {
        matches!(*self.address, Address::Sentinel(_))
    }

    /// Connects, checks the connection with a PING, and reads the server's
    /// eviction policy (see `eviction.rs`).
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

    /// Connects to `address` (described as `described` in errors and logs),
    /// checks the connection, and reads the eviction policy of the server
    /// it reached (a Sentinel primary promoted later is not read again).
    async fn on(
        address: Arc<Address>,
        described: &str,
        settings: &Settings,
    ) -> Result<Self, LockError> {
        let redis = client::connect(&address, described, settings).await?;
        let servers = eviction::read(&redis, &redact(described), settings.command_timeout).await;
        eviction::act(&servers, settings.on_evicting_server)?;
        let connection = Connection {
            redis,
            timeout: settings.command_timeout,
            publish: Publish::Plain,
            protocol: Protocol::V2,
        };
        Ok(Single {
            confirming: Connection {
                redis: client::open(&address, settings),
                ..connection.clone()
            },
            connection,
            subscriber: Subscriber::new(address.clone()),
            address,
        })
    }
}
