//! An operator's steps on one Redis node: looking at a lock without taking
//! it, and freeing it whoever holds it. Neither reads an owner token back.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Pipeline, RedisResult, Value};

use super::{Connection, Lua, Request, Resend, remaining};
use crate::backend::outcome::{ForcedRelease, LockInfo};
use crate::backend::reconnect::{Connect, ServerRun};
use crate::keyspace::LockKeys;

static FORCE_RELEASE: LazyLock<Lua> =
    LazyLock::new(|| Lua::new(include_str!("../scripts/force_release.lua").to_owned()));
static SHARED_OPERATOR: LazyLock<Lua> =
    LazyLock::new(|| Lua::new(include_str!("../scripts/shared_operator.lua").to_owned()));

/// What an operator does to a lock of a shared kind, as
/// `shared_operator.lua` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Inspect,
    Force,
}

impl<K: Connect> Connection<K> {
    /// The lease's time left, the fencing counter of the lock's group, and
    /// on protocol v2 the length of its queue, in one pipeline.
    pub(crate) async fn inspect(&self, keys: &LockKeys) -> RedisResult<LockInfo> {
        if keys.kind.share().is_some() {
            return self.operate_shared(keys, Operation::Inspect).await;
        }
        let step = |run: &ServerRun| {
            let mut pipeline = Pipeline::with_capacity(3);
            pipeline.cmd("PTTL").arg(&keys.lease);
            match self.v2_run(run) {
                Some(id) => {
                    pipeline.cmd("GET").arg(keys.run_fence(id));
                    pipeline.cmd("LLEN").arg(keys.queue());
                }
                None => {
                    pipeline.cmd("GET").arg(keys.fence());
                }
            }
            Request::Pipeline(pipeline)
        };
        let (answers, _): (Vec<Value>, ServerRun) =
            self.run(Resend::IfConnectionDied, step).await?;
        let mut answers = answers.into_iter();
        let left: i64 = redis::from_redis_value(answers.next().unwrap_or(Value::Nil))?;
        let counter: Option<u64> = redis::from_redis_value(answers.next().unwrap_or(Value::Nil))?;
        let queued: Option<u64> = answers.next().map(redis::from_redis_value).transpose()?;
        Ok(LockInfo {
            key: keys.key().to_owned(),
            holders: u32::from(left != -2),
            remaining: lease_left(left),
            fencing_counter: counter,
            waiters: queued,
        })
    }

    /// Deletes the lease whoever holds it, and wakes the lock's waiters.
    pub(crate) async fn force_release(&self, keys: &LockKeys) -> RedisResult<ForcedRelease> {
        if keys.kind.share().is_some() {
            let found = self.operate_shared(keys, Operation::Force).await?;
            return Ok(ForcedRelease::of(&found));
        }
        let publish = self.publish.command();
        let step = |_: &ServerRun| {
            let mut call = Request::script(&FORCE_RELEASE, 1, keys);
            call.arg(&keys.lease).arg(publish);
            Request::Script {
                script: &FORCE_RELEASE,
                call,
            }
        };
        // Never re-sent: not owner-checked, a second run could delete the
        // lease of the waiter the first one woke.
        let (left, _): (i64, ServerRun) = self.run(Resend::Never, step).await?;
        Ok(match left {
            -2 => ForcedRelease::NotHeld,
            left => ForcedRelease::Freed {
                remaining: lease_left(left),
            },
        })
    }
}

impl<K: Connect> Connection<K> {
    /// Looks at a lock of a shared kind, or frees it; what it found before.
    async fn operate_shared(&self, keys: &LockKeys, operation: Operation) -> RedisResult<LockInfo> {
        let publish = self.publish.command();
        let step = |run: &ServerRun| {
            let mut call = Request::script(&SHARED_OPERATOR, 3, keys);
            call.arg(&keys.lease).arg(keys.queue());
            match self.v2_run(run) {
                Some(id) => call.arg(keys.run_fence(id)),
                None => call.arg(keys.fence()),
            };
            let name = match operation {
                Operation::Inspect => "inspect",
                Operation::Force => "force",
            };
            call.arg(name).arg(publish);
            Request::Script {
                script: &SHARED_OPERATOR,
                call,
            }
        };
        // A force is never re-sent, as above.
        let resend = match operation {
            Operation::Inspect => Resend::IfConnectionDied,
            Operation::Force => Resend::Never,
        };
        let ((holders, left, counter, waiters), _): ((u32, i64, i64, u64), ServerRun) =
            self.run(resend, step).await?;
        Ok(LockInfo {
            key: keys.key().to_owned(),
            holders,
            remaining: lease_left(left),
            fencing_counter: u64::try_from(counter).ok(),
            waiters: Some(waiters),
        })
    }
}

/// A `PTTL` answer as the time a lease has left: `None` for no key (-2),
/// and as an acquire reads it otherwise (`None` for no expiry).
fn lease_left(pttl: i64) -> Option<Duration> {
    if pttl == -2 { None } else { remaining(pttl) }
}
