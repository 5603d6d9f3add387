//! Locks on etcd: mutual exclusion and fencing tokens from etcd's Raft log.
//!
//! A lock is one etcd key (the lock's lease key, as on Redis) whose value is
//! the owner token, attached to an etcd lease of the lock's ttl (in whole
//! seconds, rounded up: etcd's leases count seconds, and the server may
//! raise a short one to its minimum; a lease longer than asked only holds
//! the lock longer after a holder died, never less than its validity).
//!
//! - **acquire**: grant a lease, then one transaction: if the key's create
//!   revision is 0 (it does not exist), put it with that lease. The
//!   transaction's revision is the key's create revision, the fencing token:
//!   every later write of the cluster, a later holder's creation among them,
//!   has a higher revision. A lease left unused is revoked in the
//!   background (and ends by itself otherwise).
//! - **release**: if the key's value is the owner, delete it; then revoke
//!   its lease in the background.
//! - **extend** (a renewal too): grant a lease of the ttl, and if the key's
//!   value is still the owner, put the owner again with it (which keeps the
//!   create revision, so the token); then revoke the old lease in the
//!   background. Not a keep-alive of the first lease: a deposed leader
//!   could still revoke a lease the new leader kept alive (etcd-io/etcd
//!   #15247, fixed by #16822 in later 3.4 and 3.5 releases), deleting a
//!   held lock inside its validity; a lease granted at each renewal ends,
//!   as any leader sees it, only after the validity it gave.
//! - **waiting**: a watch on the key wakes the waiters of this process when
//!   it is deleted (released, or its lease ended). No FIFO across
//!   processes: a freed lock goes to whichever attempt comes first.
//!
//! Validity, renewal and lost locks follow the rules of every backend: the
//! validity counts from the instant before the lease was granted, so it
//! ends before the lease can end on the server.

use std::io;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetResponse, KeyValue, PutOptions, Txn,
    TxnOp, TxnOpResponse, TxnResponse, WatchStream,
};
use redis::RedisResult;

use super::client::{Settings, redact};
use super::outcome::{Attempt, ForcedRelease, LockInfo, Ownership};
use super::waiters::{self, Link, Waiters};
use crate::LockError;
use crate::background;
use crate::keyspace::LockKeys;

/// A manager's connection to an etcd cluster, and its wake-ups.
pub(crate) struct Etcd {
    client: Client,
    /// How long one step may take, its lease grant and transaction alike.
    timeout: Duration,
    waiters: Arc<Waiters<Watches>>,
}

/// A waiter's interest in the releases of one lock.
pub(crate) type Subscription = waiters::Subscription<Watches>;

/// Where the locks live, as the builder was told: etcd's client endpoints,
/// `http://host:port` (or all `https://`, with the `tls` feature),
/// credentials in the first one's user info.
#[derive(Clone)]
pub(crate) struct EtcdTopology {
    pub(crate) endpoints: Vec<String>,
}

impl EtcdTopology {
    /// The endpoints, for `Debug` and logs, without passwords.
    pub(crate) fn describe(&self) -> String {
        let endpoints: Vec<String> = self.endpoints.iter().map(|url| redact(url)).collect();
        format!("etcd [{}]", endpoints.join(", "))
    }
}

impl Etcd {
    /// Connects to the cluster through `topology`'s endpoints, and checks
    /// that it answers (a read that needs a quorum), within the connect
    /// timeout.
    pub(crate) async fn connect(
        topology: &EtcdTopology,
        settings: &Settings,
    ) -> Result<Self, LockError> {
        let endpoints = endpoints_of(&topology.endpoints)?;
        // HTTP/2 pings find a member that stopped answering (paused, or
        // cut off) within a third of the command timeout: its connection is
        // dropped and requests go to the others while it is rebuilt.
        let ping = settings.command_timeout / 3;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(settings.connect_timeout)
            .with_timeout(settings.command_timeout)
            .with_keep_alive(ping, ping)
            .with_keep_alive_while_idle(true)
            .with_require_leader(true);
        if let Some((name, password)) = endpoints.user {
            options = options.with_user(name, password);
        }
        let options = with_tls(options, endpoints.tls, settings)?;
        let described = topology.describe();
        let connect = async {
            let mut client = Client::connect(&endpoints.urls, Some(options)).await?;
            // Under the key prefix, which a user granted only it may read.
            let probe = format!("{}ping", settings.key_prefix);
            client.get(probe, None).await?;
            Ok::<_, etcd_client::Error>(client)
        };
        let client = match tokio::time::timeout(settings.connect_timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                let source = fault(&error);
                return Err(LockError::Connect {
                    url: described,
                    source,
                });
            }
            Err(_) => {
                let source = timed_out("no connection", settings.connect_timeout);
                return Err(LockError::Connect {
                    url: described,
                    source,
                });
            }
        };
        let watches = Watches {
            client: client.clone(),
            timeout: settings.command_timeout,
            waiters: Arc::new(OnceLock::new()),
            running: std::collections::HashMap::new(),
        };
        let handle = watches.waiters.clone();
        let waiters = Waiters::new(watches);
        let _ = handle.set(Arc::downgrade(&waiters));
        Ok(Etcd {
            client,
            timeout: settings.command_timeout,
            waiters,
        })
    }

    /// Grants a lease and creates the lock's key with it if the key is
    /// absent: `Acquired` with the key's create revision as the token, or
    /// `Held`.
    pub(crate) async fn acquire(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Attempt> {
        let key = keys.lease.as_str();
        let step = |mut client: Client| async move {
            let granted = client.lease_grant(seconds(lease), None).await?.id();
            let put = TxnOp::put(key, owner, Some(PutOptions::new().with_lease(granted)));
            let create = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([put]);
            Ok((granted, client.txn(create).await?))
        };
        let (granted, answer) = self.within(Resend::IfNeverSent, step).await?;
        if !answer.succeeded() {
            self.revoke_later(granted);
            return Ok(Attempt::Held { remaining: None });
        }
        Ok(Attempt::Acquired {
            fencing_token: token_of(&answer)?,
            spare_tokens: 0,
        })
    }

    /// Deletes the key if `owner` holds it, and wakes this process's waiters.
    pub(crate) async fn release(&self, keys: &LockKeys, owner: &str) -> RedisResult<Ownership> {
        let key = keys.lease.as_str();
        let step = |mut client: Client| async move {
            let delete = Txn::new()
                .when([Compare::value(key, CompareOp::Equal, owner)])
                .and_then([TxnOp::get(key, None), TxnOp::delete(key, None)])
                .or_else([TxnOp::get(key, None)]);
            client.txn(delete).await
        };
        let answer = self.within(Resend::WhileTimeLeft, step).await?;
        let found = self.ownership(&answer);
        if found == Ownership::Owned {
            self.waiters.wake(key);
        }
        Ok(found)
    }

    /// Re-arms `owner`'s lock with a new lease of `lease`, if it still
    /// holds it.
    pub(crate) async fn extend(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Ownership> {
        let key = keys.lease.as_str();
        let step = |mut client: Client| async move {
            let granted = client.lease_grant(seconds(lease), None).await?.id();
            let put = TxnOp::put(key, owner, Some(PutOptions::new().with_lease(granted)));
            let rearm = Txn::new()
                .when([Compare::value(key, CompareOp::Equal, owner)])
                .and_then([TxnOp::get(key, None), put])
                .or_else([TxnOp::get(key, None)]);
            Ok((granted, client.txn(rearm).await?))
        };
        let (granted, answer) = self.within(Resend::WhileTimeLeft, step).await?;
        let found = self.ownership(&answer);
        if found != Ownership::Owned {
            self.revoke_later(granted);
        }
        Ok(found)
    }

    /// Whether the lock was held, and its lease's time left.
    pub(crate) async fn inspect(&self, keys: &LockKeys) -> RedisResult<LockInfo> {
        let key = keys.lease.as_str();
        let step = |mut client: Client| async move {
            let found = client.get(key, None).await?;
            let remaining = match held(&found) {
                Some(kv) => time_left(&mut client, kv.lease()).await?,
                None => None,
            };
            Ok((found, remaining))
        };
        let (found, remaining) = self.within(Resend::WhileTimeLeft, step).await?;
        let revision = found.header().map(etcd_client::ResponseHeader::revision);
        Ok(LockInfo {
            key: keys.key().to_owned(),
            holders: u32::from(held(&found).is_some()),
            remaining,
            fencing_counter: revision.and_then(|revision| u64::try_from(revision).ok()),
            waiters: None,
        })
    }

    /// Deletes the key whoever holds it: the holding it read, and no
    /// later one (a release and a new grant meanwhile, or this step sent
    /// again after its first delete, find another create revision).
    pub(crate) async fn force_release(&self, keys: &LockKeys) -> RedisResult<ForcedRelease> {
        let key = keys.lease.as_str();
        let step = |mut client: Client| async move {
            let found = client.get(key, None).await?;
            let Some(kv) = held(&found) else {
                return Ok(None);
            };
            let remaining = time_left(&mut client, kv.lease()).await?;
            let holding = kv.create_revision();
            let delete = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, holding)])
                .and_then([TxnOp::delete(key, None)]);
            let deleted = client.txn(delete).await?.succeeded();
            Ok(deleted.then_some(remaining))
        };
        let freed = self.within(Resend::WhileTimeLeft, step).await?;
        self.waiters.wake(key);
        Ok(match freed {
            Some(remaining) => ForcedRelease::Freed { remaining },
            None => ForcedRelease::NotHeld,
        })
    }

    /// Watches the lock's key for its release.
    pub(crate) async fn subscribe(&self, keys: &LockKeys) -> Subscription {
        self.waiters.subscribe(&keys.lease).await
    }

    /// What an owner-checked transaction found, and the lease it replaced
    /// or deleted revoked in the background.
    fn ownership(&self, answer: &TxnResponse) -> Ownership {
        let found = answer
            .op_responses()
            .into_iter()
            .find_map(|response| match response {
                TxnOpResponse::Get(found) => Some(found),
                _ => None,
            });
        let holder = found.as_ref().and_then(held);
        if answer.succeeded() {
            if let Some(kv) = holder {
                self.revoke_later(kv.lease());
            }
            return Ownership::Owned;
        }
        match holder {
            Some(_) => Ownership::TakenOver,
            None => Ownership::Expired,
        }
    }

    /// Revokes a lease nobody needs any more, in the background: it would
    /// end by itself within its ttl.
    fn revoke_later(&self, lease: i64) {
        if lease == 0 {
            return;
        }
        let (mut client, timeout) = (self.client.clone(), self.timeout);
        background::spawn(async move {
            let _ = tokio::time::timeout(timeout, client.lease_revoke(lease)).await;
        });
    }

    /// Runs one step within the command timeout, sent again while its
    /// requests could not be sent: the client spreads them over the
    /// members, and goes on choosing one that is down (connection refused)
    /// until it learns otherwise. A step that `resend` allows is also sent
    /// again when its connection broke under it (a member died or stopped
    /// answering its pings), answered or not.
    async fn within<T, F, Fut>(&self, resend: Resend, mut step: F) -> RedisResult<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut unsent = None;
        let attempts = async {
            let mut pause = FIRST_RESEND_PAUSE;
            loop {
                match step(self.client.clone()).await {
                    Err(error) if never_sent(&error) || resend.after(&error) => {
                        unsent = Some(error);
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(LAST_RESEND_PAUSE);
                    }
                    answered => return answered,
                }
            }
        };
        let answered = tokio::time::timeout(self.timeout, attempts).await;
        match answered {
            Ok(answer) => answer.map_err(|error| fault(&error)),
            // What the last attempt met says more than the timeout.
            Err(_) => Err(match &unsent {
                Some(error) => fault(error),
                None => timed_out("timed out: etcd did not answer", self.timeout),
            }),
        }
    }
}

/// The wake-ups of one process's waiters: a watch per lock waited for.
pub(crate) struct Watches {
    client: Client,
    timeout: Duration,
    /// The waiters the watches wake, set once they exist.
    waiters: Arc<OnceLock<Weak<Waiters<Watches>>>>,
    /// The task reading each watched key's events, by key.
    running: std::collections::HashMap<String, tokio::task::AbortHandle>,
}

impl Drop for Watches {
    fn drop(&mut self) {
        for task in self.running.values() {
            task.abort();
        }
    }
}

impl Link for Watches {
    async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        let stream = watch(&self.client, channel, self.timeout).await?;
        let (client, timeout) = (self.client.clone(), self.timeout);
        let (key, waiters) = (channel.to_owned(), self.waiters.clone());
        let task = background::spawn(follow(client, key, stream, waiters, timeout));
        if let Some(task) = task {
            self.running.insert(channel.to_owned(), task.abort_handle());
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        if let Some(task) = self.running.remove(channel) {
            task.abort();
        }
        Ok(())
    }
}

/// A watch on `key`, once etcd said it is in place.
async fn watch(client: &Client, key: &str, timeout: Duration) -> RedisResult<WatchStream> {
    let mut client = client.clone();
    let watch = async {
        let mut stream = client.watch(key, None).await?;
        // The first answer says whether the watch is in place.
        match stream.message().await? {
            Some(first) if first.created() && !first.canceled() => Ok(stream),
            first => Err(etcd_client::Error::WatchError(format!(
                "etcd did not set up the watch: {}",
                first
                    .as_ref()
                    .map_or("no answer", |first| first.cancel_reason())
            ))),
        }
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(fault(&error)),
        Err(_) => Err(timed_out("no watch", timeout)),
    }
}

/// Wakes the waiters of `key` at each deletion `stream` reports, until
/// unsubscribed (the task is aborted). A watch that ends (its connection
/// or member was lost) wakes them too, and is set up again: meanwhile they
/// fall back to their naps, and once it is back they try again, since a
/// release may have gone unheard.
async fn follow(
    client: Client,
    key: String,
    mut stream: WatchStream,
    waiters: Arc<OnceLock<Weak<Waiters<Watches>>>>,
    timeout: Duration,
) {
    let waiters = || waiters.get().and_then(Weak::upgrade);
    loop {
        while let Ok(Some(answer)) = stream.message().await {
            if answer.canceled() {
                break;
            }
            let deleted = answer
                .events()
                .iter()
                .any(|event| event.event_type() == EventType::Delete);
            if deleted && let Some(waiters) = waiters() {
                waiters.wake(&key);
            }
        }
        let Some(ended) = waiters() else { return };
        ended.ended(&key);
        drop(ended);
        stream = loop {
            tokio::time::sleep(RE_WATCH_PAUSE).await;
            if let Ok(stream) = watch(&client, &key, timeout).await {
                break stream;
            }
        };
        if let Some(waiters) = waiters() {
            waiters.confirmed(&key);
        }
    }
}

/// Which steps are sent again after their connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Owner-checked steps and reads, which do the same when sent twice
    /// (a second re-arm grants one more lease, revoked or left to end).
    WhileTimeLeft,
    /// An acquire: sent twice it could leave a grant nobody knows of; the
    /// request gives the attempt back and tries again under a new owner
    /// token instead.
    IfNeverSent,
}

impl Resend {
    /// Whether a step that met `error` is sent again.
    fn after(self, error: &etcd_client::Error) -> bool {
        self == Resend::WhileTimeLeft && fault(error).is_connection_dropped()
    }
}

/// The pause before a step is sent again the first time; it doubles at
/// each re-send, up to the last.
const FIRST_RESEND_PAUSE: Duration = Duration::from_millis(5);
const LAST_RESEND_PAUSE: Duration = Duration::from_millis(100);

/// Whether `error` says the request was never sent: its connection was
/// refused (the member it went to is down).
fn never_sent(error: &etcd_client::Error) -> bool {
    // etcd-client's error names no source: start from what it wraps.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match error {
        etcd_client::Error::GRpcStatus(status) => Some(status),
        etcd_client::Error::TransportError(error) => Some(error),
        etcd_client::Error::IoError(error) => Some(error),
        _ => None,
    };
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// How long a watch that ended waits before it is set up again.
const RE_WATCH_PAUSE: Duration = Duration::from_millis(100);

/// The endpoints as the client takes them.
#[derive(Debug, PartialEq, Eq)]
struct Endpoints {
    /// Without user info: `http://host:port`, or `https://host:port`.
    urls: Vec<String>,
    /// The user and password of the first endpoint that has them.
    user: Option<(String, String)>,
    /// Whether they are `https://` (all or none of them).
    tls: bool,
}

fn endpoints_of(urls: &[String]) -> Result<Endpoints, LockError> {
    if urls.is_empty() {
        return Err(LockError::invalid_config(
            "etcd needs at least one endpoint, such as http://127.0.0.1:2379",
        ));
    }
    let mut user = None;
    let mut endpoints = Vec::with_capacity(urls.len());
    let mut schemes = Vec::with_capacity(urls.len());
    for url in urls {
        let (scheme, rest) = scheme_of(url)?;
        let (userinfo, address) = match rest.rsplit_once('@') {
            Some((userinfo, address)) => (Some(userinfo), address),
            None => (None, rest),
        };
        if let Some((name, password)) = userinfo.and_then(|info| info.split_once(':')) {
            user.get_or_insert((name.to_owned(), password.to_owned()));
        }
        endpoints.push(format!("{scheme}://{}", address.trim_end_matches('/')));
        schemes.push(scheme);
    }
    let tls = schemes[0] == "https";
    if schemes.iter().any(|scheme| *scheme != schemes[0]) {
        return Err(LockError::invalid_config(format!(
            "etcd endpoints are all http:// or all https://, not a mix: {}",
            urls.iter()
                .map(|url| redact(url))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Endpoints {
        urls: endpoints,
        user,
        tls,
    })
}

/// The scheme of an etcd endpoint (`http`, or `https` with the `tls`
/// feature) and the rest of it.
fn scheme_of(url: &str) -> Result<(&'static str, &str), LockError> {
    if let Some(rest) = url.strip_prefix("http://") {
        return Ok(("http", rest));
    }
    if let Some(rest) = url.strip_prefix("https://") {
        if cfg!(feature = "tls") {
            return Ok(("https", rest));
        }
        return Err(LockError::invalid_config(format!(
            "`{}`: TLS to etcd (https://) needs distlock's `tls` feature, with `etcd`",
            redact(url)
        )));
    }
    Err(LockError::invalid_config(format!(
        "an etcd endpoint is http://[user:password@]host:port, or https:// with the `tls` feature, not `{}`",
        redact(url)
    )))
}

/// `options` with TLS for `https://` endpoints: trusting the builder's
/// `tls_root_certificate` if it was given, else Mozilla's roots (as for
/// `rediss://`). A root certificate for `http://` endpoints is an error, as
/// for `redis://` URLs: it would silently mean nothing.
#[cfg(feature = "tls")]
fn with_tls(
    options: ConnectOptions,
    tls: bool,
    settings: &Settings,
) -> Result<ConnectOptions, LockError> {
    use etcd_client::{Certificate, TlsOptions};
    match (&settings.tls_root_certificate, tls) {
        (None, false) => Ok(options),
        (Some(_), false) => Err(LockError::invalid_config(
            "a TLS root certificate needs https:// etcd endpoints",
        )),
        (None, true) => Ok(options.with_tls(TlsOptions::new().with_webpki_roots())),
        (Some(pem), true) => {
            super::client::check_root_certificate(pem)?;
            let ca = Certificate::from_pem(pem);
            Ok(options.with_tls(TlsOptions::new().ca_certificate(ca)))
        }
    }
}

/// Without the `tls` feature, `endpoints_of` refuses `https://` endpoints.
#[cfg(not(feature = "tls"))]
#[allow(clippy::unnecessary_wraps)]
fn with_tls(
    options: ConnectOptions,
    _tls: bool,
    _settings: &Settings,
) -> Result<ConnectOptions, LockError> {
    Ok(options)
}

/// A lease of at least `lease`, in etcd's whole seconds.
fn seconds(lease: Duration) -> i64 {
    let millis = lease.as_millis().div_ceil(1000).max(1);
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// The revision of a transaction that created the lock's key: its create
/// revision. An answer without one (etcd always sends it) is an error, not
/// a token of 0.
fn token_of(answer: &TxnResponse) -> RedisResult<u64> {
    answer
        .header()
        .map(etcd_client::ResponseHeader::revision)
        .and_then(|revision| u64::try_from(revision).ok())
        .filter(|revision| *revision > 0)
        .ok_or_else(|| {
            redis::RedisError::from(io::Error::other(
                "etcd answered a grant without its revision",
            ))
        })
}

/// The key a read found, if it exists.
fn held(found: &GetResponse) -> Option<&KeyValue> {
    found.kvs().first()
}

/// What is left of lease `lease` (`None`: no lease, or it ended).
async fn time_left(
    client: &mut Client,
    lease: i64,
) -> Result<Option<Duration>, etcd_client::Error> {
    if lease == 0 {
        return Ok(None);
    }
    let ttl = client.lease_time_to_live(lease, None).await?.ttl();
    Ok(u64::try_from(ttl).ok().map(Duration::from_secs))
}

/// An etcd failure as the Redis error every step reports (`LockError`'s
/// `source`): an I/O error whose kind says whether another attempt may
/// succeed (the connection or the leader was lost: a request that waits
/// rides it out) or not (refused: bad credentials, no permission).
fn fault(error: &etcd_client::Error) -> redis::RedisError {
    use etcd_client::Error;
    use tonic::Code;
    let kind = match error {
        Error::GRpcStatus(status) => match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => io::ErrorKind::PermissionDenied,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                io::ErrorKind::InvalidInput
            }
            // Out of space (etcd's NOSPACE alarm), too many requests, or a
            // server that cannot do what was asked: asking again at once
            // does not help.
            Code::ResourceExhausted
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss
            | Code::NotFound
            | Code::AlreadyExists => io::ErrorKind::Other,
            _ => io::ErrorKind::ConnectionAborted,
        },
        Error::InvalidArgs(_) | Error::InvalidUri(_) | Error::InvalidMetadataValue(_) => {
            io::ErrorKind::InvalidInput
        }
        _ => io::ErrorKind::ConnectionAborted,
    };
    redis::RedisError::from(io::Error::new(kind, format!("etcd: {error}")))
}

/// The error of a wait on etcd that ran out of time.
fn timed_out(what: &str, timeout: Duration) -> redis::RedisError {
    redis::RedisError::from(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} within {timeout:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_whole_seconds_rounded_up() {
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_secs(1)), 1);
        assert_eq!(seconds(Duration::from_millis(1001)), 2);
        assert_eq!(seconds(Duration::from_secs(30)), 30);
    }

    #[test]
    fn endpoints_lose_their_user_info() {
        let endpoints = endpoints_of(&[
            "http://root:pw@127.0.0.1:2379".to_owned(),
            "http://127.0.0.1:2380/".to_owned(),
        ])
        .unwrap();
        assert_eq!(
            endpoints.urls,
            ["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
        );
        assert_eq!(endpoints.user, Some(("root".to_owned(), "pw".to_owned())));
        assert!(!endpoints.tls);
        for bad in ["127.0.0.1:2379", "redis://h:1"] {
            let error = endpoints_of(&[bad.to_owned()]).unwrap_err();
            assert!(
                matches!(error, LockError::InvalidConfig { .. }),
                "{bad}: {error}"
            );
        }
        assert!(endpoints_of(&[]).is_err());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_endpoints_are_tls_and_a_mix_is_refused() {
        let endpoints = endpoints_of(&[
            "https://root:pw@127.0.0.1:2379/".to_owned(),
            "https://127.0.0.1:2380".to_owned(),
        ])
        .unwrap();
        assert_eq!(
            endpoints.urls,
            ["https://127.0.0.1:2379", "https://127.0.0.1:2380"]
        );
        assert!(endpoints.tls);
        let mixed = endpoints_of(&[
            "https://127.0.0.1:2379".to_owned(),
            "http://u:secret@127.0.0.1:2380".to_owned(),
        ])
        .unwrap_err();
        let message = mixed.to_string();
        assert!(matches!(mixed, LockError::InvalidConfig { .. }), "{mixed}");
        assert!(message.contains("not a mix"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_endpoints_need_the_tls_feature() {
        let error = endpoints_of(&["https://127.0.0.1:2379".to_owned()]).unwrap_err();
        assert!(matches!(error, LockError::InvalidConfig { .. }), "{error}");
        assert!(error.to_string().contains("`tls` feature"), "{error}");
    }
}
