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
                    // Asking again cannot mend a wrong password or setting.
                    Err(error)
                        if matches!(
                            error.kind(),
                            redis::ErrorKind::AuthenticationFailed
                                | redis::ErrorKind::InvalidClientConfig
                        ) =>
                    {
                        return Err(error);
                    }
                    Err(error) => {
                        tracing::debug!(%error, master = %self.master_name, "no primary from the sentinels yet; asking again");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        })
    }
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
