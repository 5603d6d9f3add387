//! One Redis server: protocol v2 (see `protocol.rs`) on its one multiplexed
//! connection, and one pub/sub connection for wake-ups and grants.

use super::client::{self, Settings};
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
    pub(crate) async fn connect(url: &str, settings: &Settings) -> Result<Self, LockError> {
        let client = client::client(url, settings)?;
        let redis = client::connect(&client, url, settings).await?;
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
