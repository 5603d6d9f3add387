//! A Redis Cluster: every step is one script on the master serving the
//! lock's hash slot, and waiters are woken by sharded pub/sub on that node.
//!
//! All keys of a lock share a hash tag, and its wake-up channel is named
//! like its lease key, so the scripts and the channel of one lock live on
//! one node. redis-rs's cluster connection routes each script by its first
//! key, follows MOVED and ASK, and reloads the slot map when a node fails
//! or a replica takes over.
//!
//! A manager has two cluster connections (one socket per node each): one
//! for the scripts (one per runtime in use, see `reconnect.rs`), one (RESP3)
//! for the subscriptions, whose pushes arrive
//! in [`Pushes::route`] and wake the waiters of their channel. They are kept apart
//! because a node that gives up a slot pushes an unrequested SUNSUBSCRIBE
//! to its subscribers, and redis-rs 1.8 takes that push for the reply of
//! whatever request is in flight on the connection: on a connection that
//! carries scripts, the replies of lock steps would shift by one. On the
//! subscriber connection the worst it does is confuse a subscription,
//! which the waiters' fallback timer covers.
//!
//! A node connection that breaks may have lost messages: when its channels
//! are confirmed again (on the node itself after a reconnect, or on the
//! replica that replaced it), their waiters try again at once. A push does
//! not say which node broke, so that is every channel's waiters, one early
//! attempt each. redis-rs
//! re-subscribes a reconnected node by itself, but moves subscriptions to
//! a promoted replica only when a failing request makes it reload the slot
//! map, and nothing else is sent on the subscriber connection: so after a
//! break, [`resubscribe`] sends SSUBSCRIBE for every interrupted channel
//! until each is confirmed, which also does that.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, RedisResult, Value};

use super::client::{self, Settings, redact};
use super::eviction;
use super::outcome;
use super::protocol::{Connection, Protocol, Publish};
use super::reconnect::Reconnecting;
use super::waiters::{Link, SUBSCRIBE_TIMEOUT, Waiters};
use crate::LockError;
use crate::background;
use crate::clock::millis;
use crate::keyspace::LockKeys;

/// How often one step may be re-sent after a redirection or a failure. The
/// command timeout bounds a step, retries included, so during a failover a
/// step keeps trying until a replica took over or its time is up; the count
/// only stops failures that come back at once from going round in circles.
const RETRIES: u32 = 32;
/// Shortest and longest pause before re-sending after a failure (a node
/// down, CLUSTERDOWN, TRYAGAIN). redis-rs waits over a second by default,
/// most of a command timeout, while a failover is over within a few hundred
/// milliseconds of a replica's election.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(50);
const MAX_RETRY_WAIT: Duration = Duration::from_millis(500);

/// A manager's connection to a Redis Cluster, and its wake-ups.
pub(crate) struct Cluster {
    pub(crate) connection: Connection<ClusterClient>,
    /// Connections of their own for the `WAIT` of grants that replicas must
    /// acknowledge (see `replicas.rs`): `WAIT` holds up every command behind
    /// it on its connection. Opened with the manager.
    pub(crate) confirming: Connection<ClusterClient>,
    waiters: Arc<Waiters<ShardSubscriber>>,
}

/// A waiter's interest in the releases of one lock.
pub(crate) type Subscription = super::waiters::Subscription<ShardSubscriber>;

/// The RESP3 cluster connection that carries the subscriptions, rebuilt on
/// the caller's runtime when its driver task is gone (it died with the
/// runtime that built it; see `reconnect.rs`). The subscriptions of a
/// dead connection are gone with it: a rebuild counts every channel as
/// interrupted, so [`resubscribe`] subscribes them again.
pub(crate) struct ShardSubscriber {
    client: ClusterClient,
    connection: ClusterConnection,
    pushes: Arc<Pushes>,
}

impl Cluster {
    /// Connects through `seeds` (any nodes of the cluster; the others are
    /// discovered), checks that every master answers a PING with these
    /// credentials, and reads every master's eviction policy (see
    /// `eviction.rs`).
    pub(crate) async fn connect(seeds: &[String], settings: &Settings) -> Result<Self, LockError> {
        let seeds = Seeds::parse(seeds)?;
        let pushes = Arc::new(Pushes::default());
        let commands = seeds.client(ClusterClientBuilder::new(seeds.nodes.clone()), settings)?;
        let confirming = Arc::new(Reconnecting::new(commands.clone()));
        let subscriber_client = seeds.client(pushes.subscriber(seeds.nodes.clone()), settings)?;
        let redis = Arc::new(Reconnecting::new(commands));
        let described = seeds.described();
        let subscriber = Self::check(
            &redis,
            &confirming,
            &subscriber_client,
            &described,
            settings,
        )
        .await?;
        // INFO goes to every master redis-rs knows, not just the seeds.
        let masters = eviction::read(&redis, &described, settings.command_timeout).await;
        eviction::act(&masters, settings.on_evicting_server)?;
        let waiters = Waiters::new(ShardSubscriber {
            client: subscriber_client,
            connection: subscriber,
            pushes: pushes.clone(),
        });
        let _ = pushes.waiters.set(Arc::downgrade(&waiters));
        let connection = Connection {
            redis,
            timeout: settings.command_timeout,
            publish: Publish::Sharded,
            protocol: Protocol::V1,
        };
        Ok(Cluster {
            confirming: Connection {
                redis: confirming,
                ..connection.clone()
            },
            connection,
            waiters,
        })
    }

    /// Opens the connections within the connect timeout, and checks that
    /// every master answers a PING; returns the subscriber connection.
    ///
    /// The connection for replicas' acknowledgements is opened now too
    /// when the manager asks for them: a cluster connection is opened to
    /// every node, replicas included, and waits up to the connect timeout
    /// for one that does not answer, which is what a grant would otherwise
    /// wait for, beyond its command timeout, when a replica is stalled.
    ///
    /// Not an `async fn`: that would nest one more future in the one an
    /// application awaits, whose depth is close to rustc's recursion limit
    /// under clippy (see `timeout::bounded`).
    fn check<'a>(
        redis: &'a Reconnecting<ClusterClient>,
        confirming: &'a Reconnecting<ClusterClient>,
        subscriber_client: &'a ClusterClient,
        described: &'a str,
        settings: &'a Settings,
    ) -> impl Future<Output = Result<ClusterConnection, LockError>> + 'a {
        let connect = async move {
            let confirm = async {
                match settings.replica_acks {
                    Some(_) => confirming.connection().await.map(drop),
                    None => Ok(()),
                }
            };
            let (mut built, subscriber, ()) = tokio::try_join!(
                redis.connection(),
                subscriber_client.get_async_connection(),
                confirm
            )?;
            // Routed to every master: each of them is reachable with these
            // credentials, or building the manager fails now.
            redis::cmd("PING")
                .query_async::<()>(&mut built.redis)
                .await?;
            Ok(subscriber)
        };
        client::within_connect_timeout(described, settings, connect)
    }

    /// Subscribes to the lock's sharded channel on the node serving its slot.
    pub(crate) async fn subscribe(&self, keys: &LockKeys) -> Subscription {
        self.waiters.subscribe(&keys.lease).await
    }
}

/// The seed URLs of a cluster, parsed.
struct Seeds<'a> {
    urls: &'a [String],
    nodes: Vec<redis::ConnectionInfo>,
}

impl<'a> Seeds<'a> {
    fn parse(urls: &'a [String]) -> Result<Self, LockError> {
        let nodes = urls
            .iter()
            .map(|seed| client::connection_info(seed))
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(LockError::invalid_config(
                "a cluster needs at least one seed URL",
            ));
        }
        Ok(Seeds { urls, nodes })
    }

    /// The seeds for messages, without passwords.
    fn described(&self) -> String {
        self.urls
            .iter()
            .map(|seed| redact(seed))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A client of the cluster built by `builder`, with the manager's
    /// timeouts, retries and TLS settings.
    fn client(
        &self,
        builder: ClusterClientBuilder,
        settings: &Settings,
    ) -> Result<ClusterClient, LockError> {
        #[cfg(feature = "tls")]
        let builder = with_tls(builder, self.urls, &self.nodes, settings)?;
        let builder = builder
            .connection_timeout(node_connect_timeout(settings))
            // Also the bound of a whole request, retries included.
            .response_timeout(settings.command_timeout)
            .retries(RETRIES)
            .min_retry_wait(millis(MIN_RETRY_WAIT))
            .max_retry_wait(millis(MAX_RETRY_WAIT));
        builder.build().map_err(|source| {
            LockError::invalid_config(format!(
                "cannot use the cluster seeds {}: {source}",
                self.described()
            ))
        })
    }
}

/// How long redis-rs waits for one node's connection. It connects to every
/// node of the slot map, replicas included, whenever it refreshes the map
/// (after a failover, a MOVED), and holds up every command meanwhile: a
/// node that accepts connections but never answers (frozen, overloaded)
/// would stall each step past its command timeout. A quarter of the
/// command timeout leaves the step the rest; the build as a whole still
/// has the connect timeout.
fn node_connect_timeout(settings: &Settings) -> Duration {
    settings.connect_timeout.min(settings.command_timeout / 4)
}

impl Link for ShardSubscriber {
    async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self.connection.ssubscribe(channel).await {
            Err(error) if outcome::connection_died(&error) => {
                self.connection = self.client.get_async_connection().await?;
                self.pushes.broke();
                self.connection.ssubscribe(channel).await
            }
            result => result,
        }
    }

    /// A dead connection has no subscriptions left to end: the next
    /// subscribe rebuilds it.
    async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        self.connection.sunsubscribe(channel).await
    }
}

/// Where the subscriber connection's pushes go. It exists before that
/// connection, and the waiters it wakes only after: they (un)subscribe
/// through it.
#[derive(Default)]
struct Pushes {
    waiters: OnceLock<Weak<Waiters<ShardSubscriber>>>,
    /// Whether a [`resubscribe`] task runs.
    resubscribing: AtomicBool,
}

impl Pushes {
    /// The builder of the subscriber connection: RESP3, with its pushes
    /// routed here.
    fn subscriber(self: &Arc<Self>, nodes: Vec<redis::ConnectionInfo>) -> ClusterClientBuilder {
        let pushes = self.clone();
        ClusterClientBuilder::new(nodes)
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(move |push: PushInfo| {
                pushes.route(&push);
                Ok::<(), Infallible>(())
            })
    }

    /// Hands what a node pushed to the waiters. Called by redis-rs, in
    /// order, for every push of every node; it must not block.
    fn route(self: &Arc<Self>, push: &PushInfo) {
        let Some(waiters) = self.waiters.get().and_then(Weak::upgrade) else {
            return;
        };
        let channel = match push.data.first() {
            Some(Value::BulkString(name)) => std::str::from_utf8(name).ok(),
            _ => None,
        };
        match (&push.kind, channel) {
            // A grant to a waiter of a semaphore or read-write lock wakes
            // that waiter alone; a release's empty message wakes them all.
            (PushKind::SMessage, Some(channel)) => match push.data.get(1) {
                Some(Value::BulkString(message)) => waiters.deliver(channel, message),
                _ => waiters.wake(channel),
            },
            (PushKind::SSubscribe, Some(channel)) => waiters.confirmed(channel),
            // Our own unsubscribes come after the channel's last waiter
            // left; one for a channel with waiters is the node giving up its
            // slot (or, rarely, ours arriving after a new waiter came: it
            // costs one early attempt and one more SSUBSCRIBE).
            (PushKind::SUnsubscribe, Some(channel)) => {
                waiters.ended(channel);
                self.resubscribe();
            }
            (PushKind::Disconnection, _) => self.broke(),
            _ => {}
        }
    }

    /// A connection carrying subscriptions broke: which channels it carried
    /// is not known, so every channel is subscribed again.
    fn broke(self: &Arc<Self>) {
        if let Some(waiters) = self.waiters.get().and_then(Weak::upgrade) {
            waiters.interrupted();
        }
        self.resubscribe();
    }

    /// Starts a [`resubscribe`] task unless one runs.
    fn resubscribe(self: &Arc<Self>) {
        if self.resubscribing.swap(true, Ordering::SeqCst) {
            return;
        }
        if background::spawn(resubscribe(Arc::downgrade(self))).is_none() {
            self.resubscribing.store(false, Ordering::SeqCst);
        }
    }
}

/// Sends SSUBSCRIBE for every interrupted channel, with growing pauses,
/// until Redis confirmed each or nobody waits on it any more. A channel
/// whose node is down fails (within the subscribe timeout) until a replica
/// took over, and the failure makes redis-rs reload the slot map.
async fn resubscribe(pushes: Weak<Pushes>) {
    let mut running = Resubscribing(pushes.clone());
    let mut pause = Duration::from_millis(50);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
        let Some(pushes) = pushes.upgrade() else {
            return running.disarm();
        };
        let Some(waiters) = pushes.waiters.get().and_then(Weak::upgrade) else {
            pushes.resubscribing.store(false, Ordering::SeqCst);
            return running.disarm();
        };
        let mut channels = waiters.interrupted_channels();
        if channels.is_empty() {
            pushes.resubscribing.store(false, Ordering::SeqCst);
            // An interruption that came in meanwhile found this task running.
            channels = waiters.interrupted_channels();
            if channels.is_empty() || pushes.resubscribing.swap(true, Ordering::SeqCst) {
                return running.disarm();
            }
        }
        for channel in channels {
            // Through the link, which rebuilds a dead connection.
            let subscribe = async {
                let mut link = waiters.link().lock().await;
                Link::subscribe(&mut *link, &channel).await
            };
            let _ = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe).await;
        }
    }
}

/// Clears [`Pushes::resubscribing`] when a [`resubscribe`] task is dropped
/// before it finished, with the runtime it ran on: left set, it would keep
/// every later break from starting a new task.
struct Resubscribing(Weak<Pushes>);

impl Resubscribing {
    /// The task ended by itself, having settled the flag.
    fn disarm(&mut self) {
        self.0 = Weak::new();
    }
}

impl Drop for Resubscribing {
    fn drop(&mut self) {
        if let Some(pushes) = self.0.upgrade() {
            pushes.resubscribing.store(false, Ordering::SeqCst);
        }
    }
}

/// Trusts the configured root certificate on every node; all seeds must be
/// `rediss://` for it.
#[cfg(feature = "tls")]
fn with_tls(
    builder: ClusterClientBuilder,
    seeds: &[String],
    nodes: &[redis::ConnectionInfo],
    settings: &Settings,
) -> Result<ClusterClientBuilder, LockError> {
    if seeds.iter().any(|seed| seed.starts_with("rediss:")) {
        client::install_crypto_provider();
    }
    let Some(pem) = &settings.tls_root_certificate else {
        return Ok(builder);
    };
    let certificates = client::root_certificates(pem)?;
    for (seed, node) in seeds.iter().zip(nodes) {
        client::require_tls(node, seed)?;
    }
    Ok(builder.certs(certificates))
}
