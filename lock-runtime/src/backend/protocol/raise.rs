//! The step of a lock over several keys once every key is held: lifting
//! each key's fencing counter to the lock's one token, the highest of its
//! keys' tokens, so that whoever holds one of the keys later gets a higher
//! token than the lock reported.

use std::sync::LazyLock;

use redis::RedisResult;

use super::{COUNTER_LIFE_MS, Connection, Lua, Request, Resend};
use crate::backend::reconnect::{Connect, ServerRun};
use crate::keyspace::LockKeys;

static RAISE_FENCE: LazyLock<Lua> =
    LazyLock::new(|| Lua::new(include_str!("../scripts/raise_fence.lua").to_owned()));

impl<K: Connect> Connection<K> {
    /// Lifts the fencing counter of `keys`' group to at least `token`:
    /// the counter of the server's run on protocol v2 (living a day after
    /// the change, as `fence.lua` keeps them), the group's on v1.
    pub(crate) async fn raise_fence(&self, keys: &LockKeys, token: u64) -> RedisResult<()> {
        let step = |run: &ServerRun| {
            let mut call = Request::script(&RAISE_FENCE, 1, keys);
            match self.v2_run(run) {
                Some(id) => call.arg(keys.run_fence(id)).arg(token).arg(COUNTER_LIFE_MS),
                None => call.arg(keys.fence()).arg(token).arg(""),
            };
            Request::Script {
                script: &RAISE_FENCE,
                call,
            }
        };
        let (_, _): (i64, ServerRun) = self.run(Resend::IfConnectionDied, step).await?;
        Ok(())
    }
}
