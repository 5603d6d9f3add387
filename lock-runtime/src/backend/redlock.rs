//! Redlock: one lock over several independent Redis masters, held by
//! whoever a majority of them granted it to.
//!
//! Every step is the one-node script of `protocol.rs`, sent to all nodes at
//! once, each bounded by the per-node timeout; `quorum.rs` counts the
//! answers. One parallel round trip per step:
//!
//! - **acquire**: won as soon as a majority granted it, with the highest of
//!   their fencing tokens. The requester's validity runs from the start of
//!   the attempt (`request.rs`), so a slow round only shortens it. A lost
//!   attempt gives its votes back (a second round, owner-checked, waking
//!   nobody) before it reports `Held`, `Split` or `NoQuorum`; the nodes
//!   that did not answer get theirs in the background, on the same
//!   connection as the vote, so a late vote is given back after it landed.
//!   Each attempt has its own owner token (`request.rs`), so a give-back
//!   that lands late never removes a later attempt's vote; a late vote that
//!   outlives its give-back (a reconnect in between) blocks its node until
//!   its lease ends. A won attempt lets its remaining votes finish in the
//!   background, so the lock stands on every node that answers.
//! - **release**: done as soon as a majority released; the remaining
//!   releases finish in the background.
//! - **extend**: kept as soon as a majority extended. An extension that
//!   finds the lock lost on a majority gives back the nodes it did extend:
//!   the lock is over for its holder anyway, and those leases would only
//!   keep contenders from a majority for one more lease. One that cannot
//!   tell (the silent nodes decide) gives nothing back and fails, so the
//!   renewal retries while the validity lasts.
//!
//! Wake-ups: a waiter subscribes on every node (each release publishes on
//! the nodes where it held the lock) and wakes at the first message.

mod quorum;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;

use self::quorum::{Ballot, Findings, quorum};
use super::address::Address;
use super::client::{self, Settings};
use super::eviction;
use super::outcome::{Attempt, Fault, Ownership};
use super::protocol::{Connection, Protocol, Publish};
use super::reconnect::{Reconnecting, Server};
use super::subscriber::{self, Subscriber};
use crate::keyspace::LockKeys;
use crate::{LockError, background};

/// The shortest spread of the random pause after split votes: below it,
/// contenders' retries would still collide on tokio's 1 ms timer ticks.
const MIN_SPLIT_SPREAD: Duration = Duration::from_millis(1);

/// A manager's connections to its Redlock nodes, and their wake-ups.
pub(crate) struct Redlock {
    nodes: Vec<Node>,
    /// How long each node has to answer one step.
    timeout: Duration,
}

/// One independent Redis master.
struct Node {
    connection: Connection<Server>,
    subscriber: Subscriber,
}

/// A lock and its owner token, owned by the node requests of a step, which
/// may outlive the step's call (they finish in the background).
struct OwnedLock {
    keys: LockKeys,
    owner: String,
}

impl OwnedLock {
    fn new(keys: &LockKeys, owner: &str) -> Self {
        OwnedLock {
            keys: keys.clone(),
            owner: owner.to_owned(),
        }
    }
}

impl Redlock {
    /// Connects to every node at once.
    ///
    /// A majority of reachable nodes is enough: a node that is down or does
    /// not answer within the connect timeout is logged and kept, and its
    /// connection is tried again at every step, so it joins once it is back.
    /// A node that answers with an error (a wrong password, a missing
    /// permission) fails the build: that will not heal by itself. Every node
    /// reached has its eviction policy read (see `eviction.rs`).
    pub(crate) async fn connect(urls: &[String], settings: &Settings) -> Result<Self, LockError> {
        if urls.is_empty() {
            return Err(LockError::invalid_config(
                "a Redlock manager needs at least one Redis node (3 or 5 independent masters are usual)",
            ));
        }
        let clients = urls
            .iter()
            .map(|url| client::client(url, settings))
            .collect::<Result<Vec<_>, _>>()?;
        reject_repeated_servers(urls, &clients)?;
        // One connection attempt per step: a node that is down fails its
        // step at once, and the next step tries again.
        let addresses: Vec<_> = clients
            .into_iter()
            .map(|client| Arc::new(Address::Fixed(client)))
            .collect();
        let connections: Vec<_> = addresses
            .iter()
            .map(|address| client::open(address, settings))
            .collect();
        let checks = join_all(
            connections
                .iter()
                .zip(urls)
                .map(|(connection, url)| client::check(connection, url, settings)),
        )
        .await;
        let reached: Vec<usize> = (0..urls.len()).filter(|&i| checks[i].is_ok()).collect();
        let unreachable = unreachable_nodes(checks)?;
        require_quorum(urls.len(), &unreachable)?;
        check_eviction(&connections, urls, &reached, settings).await?;
        for node in &unreachable {
            tracing::warn!(node = %node.url, source = %node.source, "Redlock node unreachable at start-up; locking goes on with the others, and every step tries it again");
        }
        let nodes = connections
            .into_iter()
            .zip(addresses)
            .map(|(redis, address)| Node {
                connection: Connection {
                    redis,
                    timeout: settings.command_timeout,
                    publish: Publish::Plain,
                    protocol: Protocol::V1,
                },
                subscriber: Subscriber::new(address),
            })
            .collect();
        Ok(Redlock {
            nodes,
            timeout: settings.command_timeout,
        })
    }

    /// One attempt: the acquire script on every node at once.
    pub(crate) async fn acquire(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<Attempt, Fault> {
        let started = Instant::now();
        let mut ballot = Ballot::new(self.nodes.len());
        // Owned by the votes, which may outlive this call.
        let lock = Arc::new(OwnedLock::new(keys, owner));
        let mut answers = self.ask(|node, connection| {
            let (connection, lock) = (connection.clone(), lock.clone());
            async move { (node, connection.vote(&lock.keys, &lock.owner, lease).await) }
        });
        while let Some((node, answer)) = answers.next().await {
            ballot.record(node, answer);
            if let Some(fencing_token) = ballot.won() {
                // The votes still due finish in the background: one may not
                // be on the wire yet (a script loaded on first use, a
                // reconnect), and a lock on more than a bare majority
                // survives more nodes failing. Each lease they set holds
                // our token, so the release and the renewal find it.
                background::spawn(async move { while answers.next().await.is_some() {} });
                return Ok(Attempt::Acquired {
                    fencing_token,
                    spare_tokens: 0,
                });
            }
        }
        let round = started.elapsed();
        self.give_back(keys, owner, &ballot).await;
        ballot.verdict(self.split_pause(round))
    }

    /// Releases on every node at once.
    pub(crate) async fn release(&self, keys: &LockKeys, owner: &str) -> Result<Ownership, Fault> {
        // Owned by the requests, which may outlive this call.
        let lock = Arc::new(OwnedLock::new(keys, owner));
        let mut answers = self.ask(|node, connection| {
            let (connection, lock) = (connection.clone(), lock.clone());
            async move { (node, connection.release(&lock.keys, &lock.owner).await) }
        });
        let mut findings = Findings::new(self.nodes.len());
        while let Some((node, answer)) = answers.next().await {
            findings.record(node, answer);
            if findings.owned_by_quorum() {
                // The other nodes are freed now rather than at the end of
                // the lease, without the caller waiting for them.
                background::spawn(async move { while answers.next().await.is_some() {} });
                return Ok(Ownership::Owned);
            }
        }
        findings.verdict()
    }

    /// Re-arms the lease on every node at once.
    pub(crate) async fn extend(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> Result<Ownership, Fault> {
        let mut answers = self.ask(|node, connection| async move {
            (node, connection.extend(keys, owner, lease).await)
        });
        let mut findings = Findings::new(self.nodes.len());
        while let Some((node, answer)) = answers.next().await {
            findings.record(node, answer);
            if findings.owned_by_quorum() {
                return Ok(Ownership::Owned);
            }
        }
        let extended = findings.owned().to_vec();
        let verdict = findings.verdict();
        if let Ok(Ownership::Expired | Ownership::TakenOver) = verdict {
            join_all(
                extended
                    .iter()
                    .map(|&node| self.nodes[node].connection.release(keys, owner)),
            )
            .await;
        }
        verdict
    }

    /// Lifts the fencing counter of `keys`' group on every node, each within
    /// its timeout; a node that fails is left as it is, Redlock's tokens
    /// being best-effort (see the module docs).
    pub(crate) async fn raise_fence(&self, keys: &LockKeys, token: u64) {
        let raising = self
            .nodes
            .iter()
            .map(|node| node.connection.raise_fence(keys, token));
        for failed in join_all(raising).await.into_iter().filter_map(Result::err) {
            tracing::debug!(error = %failed, "a Redlock node's fencing counter was not raised");
        }
    }

    /// Subscribes to the releases of the lock on every node, each within
    /// the per-node timeout; a node that does not confirm in time wakes
    /// nobody, and the waiter's fallback timer covers it.
    pub(crate) async fn subscribe(&self, keys: &LockKeys) -> Subscription {
        let subscribing = self
            .nodes
            .iter()
            .map(|node| tokio::time::timeout(self.timeout, node.subscriber.subscribe(&keys.lease)));
        Subscription {
            nodes: join_all(subscribing).await.into_iter().flatten().collect(),
        }
    }

    /// Starts `step` on every node; the answers come in as they arrive.
    fn ask<'a, F: Future>(
        &'a self,
        step: impl Fn(usize, &'a Connection<Server>) -> F,
    ) -> FuturesUnordered<F> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(index, node)| step(index, &node.connection))
            .collect()
    }

    /// Gives back the votes of a lost attempt: awaited on the nodes that
    /// granted it, so they are free when the requester retries; sent in
    /// the background to those that did not answer, which may be down.
    async fn give_back(&self, keys: &LockKeys, owner: &str, ballot: &Ballot) {
        if !ballot.silent().is_empty() {
            let lock = Arc::new(OwnedLock::new(keys, owner));
            let late = ballot.silent().iter().map(|&node| {
                let (connection, lock) = (self.nodes[node].connection.clone(), lock.clone());
                async move {
                    let _ = connection.give_back(&lock.keys, &lock.owner).await;
                }
            });
            background::spawn(join_all(late));
        }
        join_all(
            ballot
                .granted()
                .iter()
                .map(|&node| self.nodes[node].connection.give_back(keys, owner)),
        )
        .await;
    }

    /// A random pause after split votes, spread over about two rounds like
    /// the last one (at least 1 ms, at most the per-node timeout), so the
    /// contenders' retries spread out instead of splitting again.
    fn split_pause(&self, round: Duration) -> Duration {
        let spread = (round * 2).min(self.timeout).max(MIN_SPLIT_SPREAD);
        let micros = u64::try_from(spread.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::random_range(0..=micros))
    }
}

/// A waiter's interest in the releases of one lock, on every node.
pub(crate) struct Subscription {
    nodes: Vec<subscriber::Subscription>,
}

impl Subscription {
    /// Marks every wake-up so far, on every node, as seen.
    pub(crate) fn mark_seen(&mut self) {
        self.nodes
            .iter_mut()
            .for_each(subscriber::Subscription::mark_seen);
    }

    /// Completes at the first wake-up not yet marked seen, on any node.
    pub(crate) async fn woken(&mut self) {
        let mut any: FuturesUnordered<_> = self
            .nodes
            .iter_mut()
            .map(subscriber::Subscription::woken)
            .collect();
        if any.next().await.is_none() {
            // Subscribed nowhere: the waiter's timer decides.
            std::future::pending::<()>().await;
        }
    }
}

/// Reads the eviction policy of every node `reached` at start-up, all at
/// once, and acts on it (see `eviction.rs`); a node down at start-up joins
/// later unchecked.
async fn check_eviction(
    connections: &[Arc<Reconnecting<Server>>],
    urls: &[String],
    reached: &[usize],
    settings: &Settings,
) -> Result<(), LockError> {
    let reading = reached.iter().map(|&node| {
        let name = client::redact(&urls[node]);
        async move { eviction::read(&connections[node], &name, settings.command_timeout).await }
    });
    let nodes: Vec<_> = join_all(reading).await.into_iter().flatten().collect();
    eviction::act(&nodes, settings.on_evicting_server)
}

/// A node that did not answer at start-up.
struct Unreachable {
    /// Its URL, without a password.
    url: String,
    source: redis::RedisError,
}

/// The nodes whose start-up check found them down or out of reach; an
/// error if one refused us (a wrong password, a missing permission).
fn unreachable_nodes(checks: Vec<Result<(), LockError>>) -> Result<Vec<Unreachable>, LockError> {
    let mut unreachable = Vec::new();
    for check in checks {
        match check {
            Ok(()) => {}
            Err(LockError::Connect { url, source }) if is_unreachable(&source) => {
                unreachable.push(Unreachable { url, source });
            }
            Err(error) => return Err(error),
        }
    }
    Ok(unreachable)
}

/// Fails the build unless a majority of the `nodes` is reachable: no lock
/// could be taken otherwise.
fn require_quorum(nodes: usize, unreachable: &[Unreachable]) -> Result<(), LockError> {
    let reachable = nodes - unreachable.len();
    let quorum = quorum(nodes);
    match unreachable.first() {
        Some(first) if reachable < quorum => Err(LockError::Connect {
            url: first.url.clone(),
            source: redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!(
                    "only {reachable} of {nodes} Redlock nodes are reachable, a majority needs {quorum}; this one: {}",
                    first.source
                ),
            )),
        }),
        _ => Ok(()),
    }
}

/// Whether a failed first connection means the node is down or out of
/// reach (worth waiting for) rather than refusing us (worth failing for).
fn is_unreachable(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.is_timeout() || error.is_connection_dropped()
}

/// Two URLs for one server would give it two votes.
fn reject_repeated_servers(urls: &[String], clients: &[redis::Client]) -> Result<(), LockError> {
    let servers: Vec<String> = clients
        .iter()
        .map(|client| client.get_connection_info().addr().to_string())
        .collect();
    for (index, server) in servers.iter().enumerate() {
        if let Some(first) = servers[..index].iter().position(|other| other == server) {
            return Err(LockError::invalid_config(format!(
                "Redlock nodes must be separate Redis servers, but `{}` and `{}` are both {server}",
                client::redact(&urls[first]),
                client::redact(&urls[index]),
            )));
        }
    }
    Ok(())
}
