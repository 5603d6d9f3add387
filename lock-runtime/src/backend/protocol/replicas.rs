//! The step of a grant that replicas must acknowledge: re-arm the lease
//! (owner-checked) and `WAIT` for the replicas, in one pipeline, so the
//! `WAIT` counts a write of this connection made after the grant, whoever
//! wrote the grant (a hand-over is written by the releaser's connection).
//! Sent on a connection kept for it (`Single::confirming`), since `WAIT`
//! holds up the commands behind it.

use std::time::Duration;

use redis::{Pipeline, RedisResult};

use super::{Connection, EXTEND, Request, Resend, SHARED, extend_call, ownership};
use crate::backend::outcome::Ownership;
use crate::backend::reconnect::{Connect, ServerRun};
use crate::backend::step::SharedStep;
use crate::clock::millis;
use crate::keyspace::LockKeys;

impl<K: Connect> Connection<K> {
    /// Re-arms `owner`'s lease for `lease` and waits up to `timeout` for
    /// `replicas` replicas to acknowledge it: what the re-arm found, and how
    /// many replicas acknowledged. On a cluster the pipeline goes to the
    /// master of the lock's slot, routed by its first command's key.
    pub(crate) async fn confirm_replicas(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<(Ownership, u32)> {
        let step = |run: &ServerRun| {
            let (script, rearm) = match keys.kind.share() {
                Some(share) => {
                    let call = self.shared_call(run, keys, share, SharedStep::Extend, owner, lease);
                    (&*SHARED, call)
                }
                None => (&*EXTEND, extend_call(keys, owner, lease)),
            };
            let mut pipeline = Pipeline::with_capacity(2);
            pipeline.add_command(rearm);
            pipeline.cmd("WAIT").arg(replicas).arg(millis(timeout));
            Request::PipelineWithScript { script, pipeline }
        };
        // The replicas' time, and the command timeout for the rest (twice,
        // when a node lacks the script and the pipeline is sent again).
        let within = self.timeout + 2 * timeout;
        let ((found, acknowledged), _): ((i64, i64), ServerRun) = self
            .run_within(within, Resend::IfConnectionDied, step)
            .await?;
        let acknowledged = u32::try_from(acknowledged.max(0)).unwrap_or(u32::MAX);
        Ok((ownership(found), acknowledged))
    }
}
