//! The steps of the shared kinds (semaphores, read-write locks) on one node:
//! `shared.lua`, one script for every step, on a single server and on each
//! node of a cluster alike (its keys share one slot).

use std::time::Duration;

use redis::RedisResult;

use super::{Connection, Request, Resend, SHARED, ownership, remaining};
use crate::backend::outcome::{Attempt, Ownership};
use crate::backend::reconnect::{Connect, ServerRun};
use crate::backend::step::SharedStep;
use crate::clock::millis;
use crate::keyspace::LockKeys;
use crate::kind::Share;

/// Whether a step whose connection died may be sent again: an attempt may
/// not (see [`Resend`]); letting go and re-arming may.
fn resend(step: SharedStep) -> Resend {
    match step {
        SharedStep::Acquire | SharedStep::Wait { .. } => Resend::Never,
        SharedStep::Release | SharedStep::Leave | SharedStep::Extend => Resend::IfConnectionDied,
    }
}

impl<K: Connect> Connection<K> {
    /// An attempt of a shared kind: `Acquired` (no spare tokens: shared
    /// holders never pass batons), or `Held`/`Queued` with how long until
    /// the first holder's lease ends.
    pub(crate) async fn shared_attempt(
        &self,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Attempt> {
        let (taken, value): (i64, i64) = self.shared(keys, share, step, owner, lease).await?;
        Ok(match (taken, step) {
            (1, _) => Attempt::Acquired {
                fencing_token: value.max(0).unsigned_abs(),
                spare_tokens: 0,
            },
            (_, SharedStep::Wait { .. }) => Attempt::Queued {
                remaining: remaining(value),
            },
            _ => Attempt::Held {
                remaining: remaining(value),
            },
        })
    }

    /// A release, leave or extend of a shared kind, owner-checked.
    pub(crate) async fn shared_ownership(
        &self,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Ownership> {
        let found: i64 = self.shared(keys, share, step, owner, lease).await?;
        Ok(ownership(found))
    }

    async fn shared<T: redis::FromRedisValue>(
        &self,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<T> {
        let round = match step {
            SharedStep::Wait { round } => round,
            _ => 0,
        };
        let call = |run: &ServerRun| {
            let mut call = Request::script(&SHARED, 4, keys);
            call.arg(&keys.lease).arg(keys.queue()).arg(keys.places());
            match self.v2_run(run) {
                Some(id) => call.arg(keys.run_fence(id)),
                None => call.arg(keys.fence()),
            };
            call.arg(step.name())
                .arg(owner)
                .arg(share.weight)
                .arg(share.capacity)
                .arg(millis(lease))
                .arg(round)
                .arg(self.publish.command());
            Request::Script {
                script: &SHARED,
                call,
            }
        };
        let (answer, _): (T, ServerRun) = self.run(resend(step), call).await?;
        Ok(answer)
    }
}
