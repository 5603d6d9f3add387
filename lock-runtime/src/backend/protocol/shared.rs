//! The steps of the shared kinds (semaphores, read-write locks) on one node:
//! `shared.lua`, one script for every step, on a single server and on each
//! node of a cluster alike (its keys share one slot).

use std::time::Duration;

use redis::{Cmd, RedisResult};

use super::{Connection, Request, Resend, SHARED, ownership, remaining};
use crate::backend::outcome::{Attempt, Fault, Ownership};
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

/// `shared.lua`'s refusal of a capacity other than the one in use, as the
/// fault it is; any other error as it came.
fn capacity_in_use(error: redis::RedisError) -> Fault {
    let in_use = (error.code() == Some("DISTLOCK_CAPACITY"))
        .then(|| error.detail()?.trim().parse().ok())
        .flatten();
    match in_use {
        Some(capacity) => Fault::Capacity { in_use: capacity },
        None => Fault::Redis(error),
    }
}

impl<K: Connect> Connection<K> {
    /// An attempt of a shared kind: `Acquired` (no spare tokens: shared
    /// holders never pass batons), or `Held`/`Queued` with how long until
    /// the first holder's lease ends; [`Fault::Capacity`] when the lock is
    /// in use with another capacity.
    pub(crate) async fn shared_attempt(
        &self,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> Result<Attempt, Fault> {
        let answer = self.shared(keys, share, step, owner, lease).await;
        let (taken, value): (i64, i64) = answer.map_err(capacity_in_use)?;
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

    /// The call of `shared.lua` for `step`, on the server run at hand.
    pub(super) fn shared_call(
        &self,
        run: &ServerRun,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> Cmd {
        let round = match step {
            SharedStep::Wait { round } => round,
            _ => 0,
        };
        let mut call = Request::script(&SHARED, 5, keys);
        call.arg(&keys.lease).arg(keys.queue()).arg(keys.places());
        // v2's counters are named after the server run and expire a day
        // after their last use; v1's one counter per group never does.
        let life = match self.v2_run(run) {
            Some(id) => {
                call.arg(keys.run_fence(id));
                "day"
            }
            None => {
                call.arg(keys.fence());
                "forever"
            }
        };
        call.arg(keys.capacity())
            .arg(step.name())
            .arg(owner)
            .arg(share.weight)
            .arg(share.capacity)
            .arg(millis(lease))
            .arg(round)
            .arg(self.publish.command())
            .arg(life);
        call
    }

    async fn shared<T: redis::FromRedisValue>(
        &self,
        keys: &LockKeys,
        share: Share,
        step: SharedStep,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<T> {
        let call = |run: &ServerRun| {
            let call = self.shared_call(run, keys, share, step, owner, lease);
            Request::Script {
                script: &SHARED,
                call,
            }
        };
        let (answer, _): (T, ServerRun) = self.run(resend(step), call).await?;
        Ok(answer)
    }
}
