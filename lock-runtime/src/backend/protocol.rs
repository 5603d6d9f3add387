//! The lock protocol on one Redis node: one Lua script, one round trip, per
//! step. Every Redis backend speaks it; they differ in how many nodes they
//! send it to and how they reach them.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{RedisError, RedisResult, Script, ScriptInvocation};

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
/// The bound covers the whole step: a reconnect in progress (redis-rs
/// retries a broken connection before it gives up) and the two extra round
/// trips of the first use of a script on a server (EVALSHA answered
/// NOSCRIPT, SCRIPT LOAD, EVALSHA again).
#[derive(Clone)]
pub(crate) struct Connection<C> {
    pub(crate) redis: C,
    pub(crate) timeout: Duration,
    /// How a release wakes waiters: `PUBLISH`, or `SPUBLISH` on a cluster,
    /// where a sharded channel stays on the node serving the lock's slot.
    pub(crate) publish: &'static str,
}

impl<C: ConnectionLike + Clone + Send> Connection<C> {
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        // Multiplexed connections are cheap handles on one socket.
        let mut redis = self.redis.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut redis)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("timed out: Redis did not answer within {:?}", self.timeout),
            ))),
        }
    }

    pub(crate) async fn acquire(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Attempt> {
        acquire(self, keys, owner, lease).await
    }

    pub(crate) async fn release(&self, keys: &LockKeys, owner: &str) -> RedisResult<Ownership> {
        let found: i64 = self
            .run(RELEASE.key(&keys.lease).arg(owner).arg(self.publish))
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
            .run(EXTEND.key(&keys.lease).arg(owner).arg(millis(lease)))
            .await?;
        Ok(ownership(found))
    }
}

async fn acquire<C: ConnectionLike + Clone + Send>(
    conn: &Connection<C>,
    keys: &LockKeys,
    owner: &str,
    lease: Duration,
) -> RedisResult<Attempt> {
    let (acquired, value): (i64, i64) = conn
        .run(
            ACQUIRE
                .key(&keys.lease)
                .key(&keys.fence)
                .arg(owner)
                .arg(millis(lease)),
        )
        .await?;
    Ok(if acquired == 1 {
        Attempt::Acquired {
            fencing_token: value.max(0).unsigned_abs(),
        }
    } else {
        // PTTL: -1 the key has no expiry, -2 it vanished since SET NX failed.
        Attempt::Held {
            remaining: match value {
                -1 => None,
                ms => Some(Duration::from_millis(ms.max(0).unsigned_abs())),
            },
        }
    })
}

fn ownership(found: i64) -> Ownership {
    match found {
        1 => Ownership::Owned,
        0 => Ownership::Expired,
        _ => Ownership::TakenOver,
    }
}

/// Leases are validated to lie between 3 ms and [`crate::lease::MAX_LEASE`].
fn millis(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}
