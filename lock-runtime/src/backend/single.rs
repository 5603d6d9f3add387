//! One Redis server: protocol v2 (see `protocol.rs`) on its one multiplexed
//! connection, and one pub/sub connection for wake-ups and grants.

use super::client::{self, Settings, redact};
use super::eviction;
use super::protocol::{Connection, Protocol, Publish};
use super::reconnect::Server;
use super::subscriber::Subscriber;
use crate::LockError;

/// A manager's connection to its one Redis server, and its wake-ups.
pub(crate) struct Single {
    pub(crate) connection: Connection<Server>,
    pub(crate) subscriber: Subscriber,
}

impl Single {
    /// Connects, checks the connection with a PING, and reads the server's
    /// eviction policy (see `eviction.rs`).
    pub(crate) async fn connect(url: &str, settings: &Settings) -> Result<Self, LockError> {
        let client = client::client(url, settings)?;
        let redis = client::connect(&client, url, settings).await?;
        let servers = eviction::read(&redis, &redact(url), settings.command_timeout).await;
        eviction::act(&servers, settings.on_evicting_server)?;
        Ok(Single {
            connection: Connection {
                redis,
                timeout: settings.command_timeout,
                publish: Publish::Plain,
                protocol: Protocol::V2,
            },
            subscriber: Subscriber::new(client),
        })
    }
}
