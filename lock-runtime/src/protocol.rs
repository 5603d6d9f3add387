//! The lock protocol on one Redis server: one Lua script, one round trip, per step.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisError, RedisResult, Script, ScriptInvocation};

use crate::keyspace::LockKeys;

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/acquire.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release.lua")));
static EXTEND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/extend.lua")));

/// A manager's shared connection, with the time Redis has to answer.
///
/// The bound covers the whole step: a reconnect in progress (redis-rs
/// retries a broken connection before it gives up) and the two extra round
/// trips of the first use of a script on a server (EVALSHA answered
/// NOSCRIPT, SCRIPT LOAD, EVALSHA again).
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) redis: ConnectionManager,
    pub(crate) timeout: Duration,
}

impl Connection {
    async fn run<T: redis::FromRedisValue>(
        &mut self,
        invocation: &ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut self.redis)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("timed out: Redis did not answer within {:?}", self.timeout),
            ))),
        }
    }
}

/// What one acquire attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The lock is ours, with this fencing token.
    Acquired { fencing_token: u64 },
    /// Someone else holds it; their lease ends within `remaining`
    /// (`None`: the key has no expiry, so the end is unknown).
    Held { remaining: Option<Duration> },
}

/// What the server found when an owner released or extended its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// The lock was still ours (and is now released or extended).
    Owned,
    /// The lease had run out: nobody holds the lock.
    Expired,
    /// The lease had run out and another owner holds the lock now.
    TakenOver,
}

pub(crate) async fn acquire(
    conn: &mut Connection,
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

pub(crate) async fn release(
    conn: &mut Connection,
    keys: &LockKeys,
    owner: &str,
) -> RedisResult<Ownership> {
    let found: i64 = conn.run(RELEASE.key(&keys.lease).arg(owner)).await?;
    Ok(ownership(found))
}

pub(crate) async fn extend(
    conn: &mut Connection,
    keys: &LockKeys,
    owner: &str,
    lease: Duration,
) -> RedisResult<Ownership> {
    let found: i64 = conn
        .run(EXTEND.key(&keys.lease).arg(owner).arg(millis(lease)))
        .await?;
    Ok(ownership(found))
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
