//! The lock protocol on one Redis node: one Lua script, one round trip, per
//! step. Every Redis backend speaks it; they differ in how many nodes they
//! send it to and how they reach them.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::{RedisError, RedisResult, Script, ScriptInvocation};

use super::client::{self, Awaited};
use super::reconnect::{Connect, Reconnecting};
use super::{Attempt, Ownership};
use crate::keyspace::LockKeys;

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/acquire.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release.lua")));
static EXTEND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/extend.lua")));

/// A shared connection to one node (or, for a cluster, to every node), with
/// the time Redis has to answer.
///
/// The bound covers the whole step: building a connection when this
/// runtime has none or its connection died (see `reconnect.rs`), the two
/// extra round
/// trips of the first use of a script on a server (EVALSHA answered
/// NOSCRIPT, SCRIPT LOAD, EVALSHA again), and the one re-send of a step
/// whose connection had died (see [`Resend`]).
pub(crate) struct Connection<K: Connect> {
    pub(crate) redis: Arc<Reconnecting<K>>,
    pub(crate) timeout: Duration,
    /// How a release wakes waiters: `PUBLISH`, or `SPUBLISH` on a cluster,
    /// where a sharded channel stays on the node serving the lock's slot.
    pub(crate) publish: &'static str,
}

impl<K: Connect> Clone for Connection<K> {
    fn clone(&self) -> Self {
        Connection {
            redis: self.redis.clone(),
            timeout: self.timeout,
            publish: self.publish,
        }
    }
}

/// Whether a step whose connection died may be sent once more.
///
/// redis-rs reports a connection that died while idle, or whose driver task
/// ended with its runtime, at the next request, before writing it; but the
/// same errors also come for a request that was written and whose answer
/// was lost with the connection. So a step is re-sent only where running it
/// twice is harmless:
///
/// - release and extend are owner-checked and idempotent: a second run
///   finds the lock as the first left it. (A release whose first run did
///   land reports [`Ownership::Expired`], the key being gone; that can
///   only happen when the connection died with the request in flight.)
/// - acquire is never re-sent here with the same owner token: a first run
///   that landed would make the second find the lock held, by us, for a
///   whole lease. `request.rs` retries it instead, as a new attempt with a
///   fresh owner token, after an owner-checked give-back of the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Re-send once on a fresh connection, within the same command timeout.
    IfConnectionDied,
    /// Report the dead connection to the caller.
    Never,
}

/// Whether `error` says the connection is dead (reset, closed, refused,
/// never written to because its driver is gone), as opposed to Redis
/// answering with an error or not answering in time.
pub(crate) fn connection_died(error: &RedisError) -> bool {
    // Broken pipe, reset, aborted, refused, unexpected EOF, not connected:
    // what redis-rs returns for a closed socket and for a dead driver task.
    error.is_connection_dropped()
}

impl<K: Connect> Connection<K> {
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
        resend: Resend,
    ) -> RedisResult<T> {
        // One timer bounds the step, a reconnect and a re-send alike.
        let answered = tokio::time::timeout(self.timeout, self.send(invocation, resend)).await;
        client::bounded(answered, self.timeout, Awaited::Answer)
    }

    /// Sends the step; if its connection turns out dead, replaces the
    /// connection (so the next step finds a live one) and, where `resend`
    /// allows, sends the step once more on the new one.
    async fn send<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
        resend: Resend,
    ) -> RedisResult<T> {
        let mut built = self.redis.connection().await?;
        let error = match invocation.invoke_async(&mut built.redis).await {
            Err(error) if connection_died(&error) => error,
            answered => return answered,
        };
        tracing::debug!(%error, "distlock connection died; replacing it");
        let mut revived = self.redis.revive(Some(built.generation)).await?;
        match resend {
            Resend::IfConnectionDied => invocation.invoke_async(&mut revived.redis).await,
            Resend::Never => Err(error),
        }
    }

    pub(crate) async fn acquire(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Attempt> {
        Ok(self.vote(keys, owner, lease).await?.attempt)
    }

    /// An acquire that also tells who holds the lock when it is held: what
    /// one Redlock node answers, since a majority counts holders.
    pub(crate) async fn vote(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Vote> {
        let (acquired, value, holder): (i64, i64, String) = self
            .run(
                ACQUIRE
                    .key(&keys.lease)
                    .key(&keys.fence)
                    .arg(owner)
                    .arg(millis(lease)),
                Resend::Never,
            )
            .await?;
        Ok(if acquired == 1 {
            Vote {
                attempt: Attempt::Acquired {
                    fencing_token: value.max(0).unsigned_abs(),
                },
                holder: None,
            }
        } else {
            // PTTL: -1 the key has no expiry, -2 it vanished since SET NX failed.
            Vote {
                attempt: Attempt::Held {
                    remaining: match value {
                        -1 => None,
                        ms => Some(Duration::from_millis(ms.max(0).unsigned_abs())),
                    },
                },
                holder: (!holder.is_empty()).then_some(HolderId(holder)),
            }
        })
    }

    pub(crate) async fn release(&self, keys: &LockKeys, owner: &str) -> RedisResult<Ownership> {
        self.release_waking(keys, owner, self.publish).await
    }

    /// A release that wakes nobody: a Redlock contender giving back the votes
    /// of an attempt that did not win. Nobody waits for a lock that was never
    /// held, and the contender's own wake-up would end its wait at once.
    pub(crate) async fn give_back(&self, keys: &LockKeys, owner: &str) -> RedisResult<Ownership> {
        self.release_waking(keys, owner, "").await
    }

    async fn release_waking(
        &self,
        keys: &LockKeys,
        owner: &str,
        publish: &str,
    ) -> RedisResult<Ownership> {
        let found: i64 = self
            .run(
                RELEASE.key(&keys.lease).arg(owner).arg(publish),
                Resend::IfConnectionDied,
            )
            .await?;
        Ok(ownership(found))
    }

    pub(crate) async fn extend(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Ownership> {
        let found: i64 = self
            .run(
                EXTEND.key(&keys.lease).arg(owner).arg(millis(lease)),
                Resend::IfConnectionDied,
            )
            .await?;
        Ok(ownership(found))
    }
}

/// One node's answer to an acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vote {
    /// `Acquired` or `Held`, never `Split`.
    pub(crate) attempt: Attempt,
    /// Who holds the lock, when it is held.
    pub(crate) holder: Option<HolderId>,
}

/// Tells holders of a lock apart without revealing their owner tokens,
/// which are what release and extend check: 64 bits of the token's SHA-1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HolderId(pub(crate) String);

fn ownership(found: i64) -> Ownership {
    match found {
        1 => Ownership::Owned,
        0 => Ownership::Expired,
        _ => Ownership::TakenOver,
    }
}

/// Whole milliseconds, saturating (leases lie between 3 ms and
/// [`crate::lease::MAX_LEASE`]).
pub(crate) fn millis(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}
