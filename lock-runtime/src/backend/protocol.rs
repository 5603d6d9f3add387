//! The lock protocol on one Redis node. Every Redis backend speaks it;
//! they differ in how many nodes they send it to and how they reach them.
//!
//! **Protocol v2** (one server whose run is known, see [`ServerRun`]):
//!
//! - *acquire*, the uncontended path, is no script at all: `SET lease owner
//!   NX PX ttl` and `INCRBY` of the fencing counter, pipelined in one round
//!   trip. The INCRBY runs before the reply, so before any later holder's
//!   SET; an INCRBY of a failed SET only skips tokens. It reserves a block
//!   of [`TOKEN_BLOCK`] tokens: the holder uses the first, and the tasks of
//!   its process it passes the lock to the others (see `local_queue.rs`).
//!   The counter is named after the server's run and lifted to the server
//!   clock whenever the INCRBY finds it new (one more round trip,
//!   `refloor.lua`), so tokens keep rising across restarts, lost data and
//!   stale snapshots.
//! - *waiting* (`queue.lua`): a waiter takes a place in the lock's queue,
//!   in Redis, refreshes it while it waits, and marks the lease as waited
//!   for.
//! - *release* (`hand_over.lua`): owner-checked; if the lease is marked,
//!   the lock goes straight to the first live waiter, who learns it from
//!   one message, `"<owner> <fencing token> <round>"`, on the lock's channel.
//!   If it is not, the release is the seed protocol's compare-and-delete:
//!   nobody is woken, nothing is published.
//!
//! **Protocol v1** (Redis Cluster, Redlock, or a server that does not say
//! its run): one script per step (`acquire.lua`, `release.lua`), a
//! release waking every waiter, who then contend.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::{Cmd, ErrorKind, Pipeline, RedisResult, Script, ServerErrorKind, Value};

use super::outcome::{Attempt, Ownership, connection_died};
use super::reconnect::{Built, Connect, Reconnecting, ServerRun};
use super::timeout::{Awaited, bounded};
use crate::clock::millis;
use crate::keyspace::LockKeys;

/// A v2 script, with the rules they share (`fence.lua`) spliced in where
/// it says so: after its fast path, so that Lua does not define them for a
/// call that returns before.
macro_rules! v2_script {
    ($file:literal) => {
        LazyLock::new(|| {
            let step = include_str!(concat!("scripts/", $file));
            let shared = include_str!("scripts/fence.lua");
            Lua::new(step.replacen("-- {fence.lua}\n", shared, 1))
        })
    };
}

macro_rules! v1_script {
    ($file:literal) => {
        LazyLock::new(|| Lua::new(include_str!(concat!("scripts/", $file)).to_owned()))
    };
}

mod operator;
mod raise;
mod replicas;
mod shared;

static ACQUIRE: LazyLock<Lua> = v1_script!("acquire.lua");
static RELEASE: LazyLock<Lua> = v1_script!("release.lua");
static EXTEND: LazyLock<Lua> = v1_script!("extend.lua");
static REFLOOR: LazyLock<Lua> = v2_script!("refloor.lua");
static QUEUE: LazyLock<Lua> = v2_script!("queue.lua");
static HAND_OVER: LazyLock<Lua> = v2_script!("hand_over.lua");
static LEAVE: LazyLock<Lua> = v2_script!("leave.lua");
static SUCCEED: LazyLock<Lua> = v2_script!("succeed.lua");
/// Every step of the shared kinds (`protocol/shared.rs`), on v1 too.
static SHARED: LazyLock<Lua> = v2_script!("shared.lua");
/// What protocol v2 sends, loaded on every connection before its first step.
static V2_SCRIPTS: [&LazyLock<Lua>; 7] = [
    &HAND_OVER, &LEAVE, &QUEUE, &SUCCEED, &REFLOOR, &EXTEND, &SHARED,
];

/// A script's source, which `SCRIPT LOAD` sends, and its SHA-1, which
/// `EVALSHA` names.
struct Lua {
    code: String,
    sha1: String,
}

impl Lua {
    fn new(code: String) -> Self {
        let sha1 = Script::new(&code).get_hash().to_owned();
        Lua { code, sha1 }
    }

    fn load(&self) -> Cmd {
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(&self.code);
        load
    }

    /// A pipeline that loads the script, its answer ignored, for the
    /// caller to append `commands` more commands that call it. Sent as one
    /// pipeline, the load goes where the call goes: on a cluster, to the
    /// master of the call's slot. (A `SCRIPT LOAD` of its own goes to every
    /// node, replicas too, and waits for one that is stalled.)
    fn loaded_before(&self, commands: usize) -> Pipeline {
        let mut pipeline = Pipeline::with_capacity(1 + commands);
        pipeline.add_command(self.load()).ignore();
        pipeline
    }
}

/// How many fencing tokens each grant on protocol v2 reserves: one for the
/// holder, and one for each task of its process it may pass the lock to in
/// a row ([`crate::local_queue::MAX_SUCCESSIONS`]). `TOKEN_BLOCK` in
/// `fence.lua` is the same.
pub(crate) const TOKEN_BLOCK: u64 = 9;

/// How long a v2 fencing counter lives after its last change;
/// `COUNTER_LIFE_MS` in `fence.lua` is the same.
const COUNTER_LIFE_MS: u64 = 86_400_000;

/// Fencing tokens lifted to the clock are microseconds since 1970, far above
/// this (2001); a token below it came from an INCRBY of a new counter.
const CLOCK_FLOOR: i64 = 1_000_000_000_000_000;

/// Which protocol a connection speaks where the server's run is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Plain commands for the uncontended path, a queue for waiters.
    V2,
    /// One script per step, waking every waiter at a release: Redlock,
    /// whose votes count holders, and Redis Cluster.
    V1,
}

/// A shared connection to one node (or, for a cluster, to every node), with
/// the time Redis has to answer.
///
/// The bound covers the whole step: building a connection when this
/// runtime has none or its connection died (see `reconnect.rs`), the two
/// extra round trips of the first use of a script on a server (EVALSHA
/// answered NOSCRIPT, SCRIPT LOAD, EVALSHA again), the lift of a new
/// fencing counter, and the one re-send of a step whose connection had
/// died (see [`Resend`]).
pub(crate) struct Connection<K: Connect> {
    pub(crate) redis: Arc<Reconnecting<K>>,
    pub(crate) timeout: Duration,
    /// How a v1 release wakes waiters.
    pub(crate) publish: Publish,
    pub(crate) protocol: Protocol,
}

impl<K: Connect> Clone for Connection<K> {
    fn clone(&self) -> Self {
        Connection {
            redis: self.redis.clone(),
            timeout: self.timeout,
            publish: self.publish,
            protocol: self.protocol,
        }
    }
}

/// The command a v1 release wakes the lock's waiters with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// `PUBLISH`, on one server.
    Plain,
    /// `SPUBLISH`, on a cluster: a sharded channel stays on the node
    /// serving the lock's slot.
    Sharded,
}

impl Publish {
    /// The command.
    fn command(self) -> &'static str {
        match self {
            Publish::Plain => "PUBLISH",
            Publish::Sharded => "SPUBLISH",
        }
    }

    /// What `release.lua` takes as its wake-up: the command, or `''` to
    /// wake nobody.
    fn script_arg(self, departure: Departure) -> &'static str {
        match departure {
            Departure::Release => self.command(),
            Departure::Leave => "",
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
///   land reports [`Ownership::Expired`], the key being gone, or on
///   protocol v2 [`Ownership::TakenOver`], when it handed the lock to a
///   waiter; that can only happen when the connection died with the
///   request in flight.)
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

/// One step as sent: a script, or plain commands in one pipeline.
enum Request {
    /// `EVALSHA` of `script`, its keys and arguments in `call`, built as
    /// one command (redis-rs's `ScriptInvocation` allocates per argument).
    Script {
        script: &'static Lua,
        call: Cmd,
    },
    Pipeline(Pipeline),
    /// A pipeline whose first command is an `EVALSHA` of `script`: loaded
    /// and sent again if the server does not know it.
    PipelineWithScript {
        script: &'static Lua,
        pipeline: Pipeline,
    },
}

impl Request {
    /// The call of `script` with `keys` keys: the caller appends the keys,
    /// then the arguments. Sized for `keys.lease` twice over, so that it is
    /// not grown arg by arg.
    fn script(script: &Lua, keys: usize, lock: &LockKeys) -> Cmd {
        let mut call = Cmd::with_capacity(8, 160 + 2 * lock.lease.len());
        call.arg("EVALSHA").arg(&script.sha1).arg(keys);
        call
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        redis: &mut impl redis::aio::ConnectionLike,
    ) -> RedisResult<T> {
        match self {
            Request::Script { script, call } => match call.query_async(redis).await {
                Err(error) if lacks_script(&error) => {
                    let mut again = script.loaded_before(1);
                    again.add_command(call.clone());
                    let (answer,): (T,) = again.query_async(redis).await?;
                    Ok(answer)
                }
                answered => answered,
            },
            Request::Pipeline(pipeline) => pipeline.query_async(redis).await,
            Request::PipelineWithScript { script, pipeline } => {
                match pipeline.query_async(redis).await {
                    Err(error) if lacks_script(&error) => {
                        let mut again = script.loaded_before(pipeline.len());
                        for command in pipeline.cmd_iter() {
                            again.add_command(command.clone());
                        }
                        again.query_async(redis).await
                    }
                    answered => answered,
                }
            }
        }
    }
}

/// Whether the server did not know the script called (new, restarted, or
/// its scripts flushed).
fn lacks_script(error: &redis::RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

impl<K: Connect> Connection<K> {
    /// Sends the request `step` makes for the server run of the connection
    /// at hand, within the command timeout; returns the answer and that run.
    async fn run<T: redis::FromRedisValue>(
        &self,
        resend: Resend,
        step: impl Fn(&ServerRun) -> Request,
    ) -> RedisResult<(T, ServerRun)> {
        // One timer bounds the step, a reconnect and a re-send alike. (Not
        // a call of `run_within`: one more `async fn` level in every step
        // takes the future of an annotated fn past the compiler's query
        // depth limit.)
        let answered = tokio::time::timeout(self.timeout, self.send(resend, step)).await;
        bounded(answered, self.timeout, Awaited::Answer)
    }

    /// [`run`](Self::run) within `timeout` rather than the command timeout.
    async fn run_within<T: redis::FromRedisValue>(
        &self,
        timeout: Duration,
        resend: Resend,
        step: impl Fn(&ServerRun) -> Request,
    ) -> RedisResult<(T, ServerRun)> {
        // One timer bounds the step, a reconnect and a re-send alike.
        let answered = tokio::time::timeout(timeout, self.send(resend, step)).await;
        bounded(answered, timeout, Awaited::Answer)
    }

    /// Sends the step; if its connection turns out dead, replaces the
    /// connection (so the next step finds a live one) and, where `resend`
    /// allows, sends the step once more on the new one.
    async fn send<T: redis::FromRedisValue>(
        &self,
        resend: Resend,
        step: impl Fn(&ServerRun) -> Request,
    ) -> RedisResult<(T, ServerRun)> {
        let mut built = self.redis.connection().await?;
        let error = match self.send_on(&mut built, &step).await {
            Err(error) if connection_died(&error) => error,
            answered => return answered.map(|answer| (answer, built.run)),
        };
        tracing::debug!(%error, "distlock connection died; replacing it");
        let mut revived = self.redis.revive(Some(built.generation)).await?;
        match resend {
            Resend::IfConnectionDied => {
                let answer = self.send_on(&mut revived, &step).await?;
                Ok((answer, revived.run))
            }
            Resend::Never => Err(error),
        }
    }

    /// Sends the step on `built`, first loading every v2 script if this
    /// connection has not (one round trip per connection): so that no step,
    /// least of all the give-back of a cancelled attempt, waits for a
    /// script to be loaded, which costs two more round trips on a server
    /// that is new, restarted or failed over.
    async fn send_on<T: redis::FromRedisValue>(
        &self,
        built: &mut Built<K::Redis>,
        step: &impl Fn(&ServerRun) -> Request,
    ) -> RedisResult<T> {
        if self.v2_run(&built.run).is_some() && !built.prepared.load(Ordering::Acquire) {
            let mut load = Pipeline::with_capacity(V2_SCRIPTS.len());
            for script in V2_SCRIPTS {
                load.add_command(script.load()).ignore();
            }
            load.query_async::<()>(&mut built.redis).await?;
            built.prepared.store(true, Ordering::Release);
        }
        step(&built.run).query(&mut built.redis).await
    }

    /// The server run this connection speaks v2 on, if it does.
    fn v2_run<'r>(&self, run: &'r ServerRun) -> Option<&'r str> {
        match (self.protocol, run) {
            (Protocol::V2, ServerRun::Known(id)) => Some(id),
            _ => None,
        }
    }

    /// The first attempt of a request: v2's plain pipeline, or v1's script.
    pub(crate) async fn acquire(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Attempt> {
        if self.protocol == Protocol::V1 {
            return Ok(self.vote(keys, owner, lease).await?.attempt);
        }
        let answered = tokio::time::timeout(self.timeout, self.acquire_v2(keys, owner, lease));
        bounded(answered.await, self.timeout, Awaited::Answer)
    }

    /// v2's uncontended path, or v1's script on a server whose run is not
    /// known.
    async fn acquire_v2(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Attempt> {
        let step = |run: &ServerRun| match self.v2_run(run) {
            Some(id) => {
                let mut set = Cmd::with_capacity(6, 32 + keys.lease.len() + owner.len());
                set.arg("SET")
                    .arg(&keys.lease)
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(lease));
                let mut incr = Cmd::with_capacity(3, 64 + keys.lease.len());
                incr.arg("INCRBY").arg(keys.run_fence(id)).arg(TOKEN_BLOCK);
                let mut pipeline = Pipeline::with_capacity(2);
                pipeline.add_command(set).add_command(incr);
                Request::Pipeline(pipeline)
            }
            None => v1_acquire(keys, owner, lease),
        };
        let (answer, run): (Value, ServerRun) = self.send(Resend::Never, step).await?;
        let Some(id) = self.v2_run(&run) else {
            return Ok(v1_vote(redis::from_redis_value(answer)?).attempt);
        };
        let (set, last): (Option<String>, i64) = redis::from_redis_value(answer)?;
        let fencing_token = match set {
            // The first attempt of a waiter: its next one, in the queue,
            // tells how long the holder has left.
            None => return Ok(Attempt::Held { remaining: None }),
            Some(_) if last >= CLOCK_FLOOR => last.unsigned_abs() - (TOKEN_BLOCK - 1),
            Some(_) => self.refloor(keys, id).await?,
        };
        Ok(Attempt::Acquired {
            fencing_token,
            spare_tokens: TOKEN_BLOCK - 1,
        })
    }

    /// Lifts a new v2 counter to the clock: the caller holds the lock.
    async fn refloor(&self, keys: &LockKeys, run: &str) -> RedisResult<u64> {
        let mut built = self.redis.connection().await?;
        let mut call = Request::script(&REFLOOR, 1, keys);
        call.arg(keys.run_fence(run));
        let refloor = Request::Script {
            script: &REFLOOR,
            call,
        };
        let token: i64 = refloor.query(&mut built.redis).await?;
        Ok(token.max(0).unsigned_abs())
    }

    /// An attempt of a waiter. v2: take the lock if it is free and nobody
    /// waits ahead, else be in its queue, or stay there (refreshing the
    /// place). v1: the same as [`acquire`](Self::acquire).
    pub(crate) async fn wait_turn(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
        round: u64,
    ) -> RedisResult<Attempt> {
        if self.protocol == Protocol::V1 {
            return Ok(self.vote(keys, owner, lease).await?.attempt);
        }
        let step = |run: &ServerRun| match self.v2_run(run) {
            Some(id) => {
                let mut call = Request::script(&QUEUE, 1, keys);
                call.arg(&keys.lease)
                    .arg(owner)
                    .arg(millis(lease))
                    .arg(id)
                    .arg(round);
                Request::Script {
                    script: &QUEUE,
                    call,
                }
            }
            None => v1_acquire(keys, owner, lease),
        };
        let (answer, run): (Value, ServerRun) = self.run(Resend::Never, step).await?;
        if self.v2_run(&run).is_none() {
            return Ok(v1_vote(redis::from_redis_value(answer)?).attempt);
        }
        let (taken, value): (i64, i64) = redis::from_redis_value(answer)?;
        Ok(match taken {
            1 => Attempt::Acquired {
                fencing_token: value.max(0).unsigned_abs(),
                spare_tokens: TOKEN_BLOCK - 1,
            },
            _ => Attempt::Queued {
                remaining: remaining(value),
            },
        })
    }

    /// A task takes over a lock the previous holder of its process left it
    /// under the same owner token (see `local_queue.rs`): v2 re-arms the
    /// lease from now and takes a new fencing token, in one round trip.
    /// `Held` when the lease ran out meanwhile; v1, which has no such step,
    /// releases the lock and answers `Held` too, for the task to contend.
    pub(crate) async fn succeed(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Attempt> {
        let step = |run: &ServerRun| {
            let Some(id) = self.v2_run(run) else {
                let mut call = Request::script(&RELEASE, 1, keys);
                let publish = self.publish.script_arg(Departure::Release);
                call.arg(&keys.lease).arg(owner).arg(publish);
                return Request::Script {
                    script: &RELEASE,
                    call,
                };
            };
            let mut call = Request::script(&SUCCEED, 1, keys);
            call.arg(&keys.lease).arg(owner).arg(millis(lease)).arg(id);
            Request::Script {
                script: &SUCCEED,
                call,
            }
        };
        let (answer, run): (Value, ServerRun) = self.run(Resend::Never, step).await?;
        if self.v2_run(&run).is_none() {
            return Ok(Attempt::Held { remaining: None });
        }
        let (outcome, token): (i64, i64) = redis::from_redis_value(answer)?;
        Ok(match outcome {
            1 => Attempt::Acquired {
                fencing_token: token.max(0).unsigned_abs(),
                spare_tokens: TOKEN_BLOCK - 1,
            },
            _ => Attempt::Held { remaining: None },
        })
    }

    /// An acquire that also tells who holds the lock when it is held: what
    /// one Redlock node answers, since a majority counts holders. Always v1.
    pub(crate) async fn vote(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Vote> {
        let step = |_: &ServerRun| v1_acquire(keys, owner, lease);
        let (answer, _) = self.run(Resend::Never, step).await?;
        Ok(v1_vote(answer))
    }

    pub(crate) async fn release(&self, keys: &LockKeys, owner: &str) -> RedisResult<Ownership> {
        self.release_as(keys, owner, Departure::Release).await
    }

    /// A release by a requester that stops waiting or gives back an attempt
    /// whose outcome is unknown: v2 also takes it out of the lock's queue
    /// (it may have been handed the lock without learning it yet); v1 wakes
    /// nobody, since nobody waits for a lock that was never held and the
    /// requester's own wake-up would end its next wait at once.
    pub(crate) async fn give_back(&self, keys: &LockKeys, owner: &str) -> RedisResult<Ownership> {
        self.release_as(keys, owner, Departure::Leave).await
    }

    async fn release_as(
        &self,
        keys: &LockKeys,
        owner: &str,
        departure: Departure,
    ) -> RedisResult<Ownership> {
        let step = |run: &ServerRun| {
            let Some(id) = self.v2_run(run) else {
                let mut call = Request::script(&RELEASE, 1, keys);
                let publish = self.publish.script_arg(departure);
                call.arg(&keys.lease).arg(owner).arg(publish);
                return Request::Script {
                    script: &RELEASE,
                    call,
                };
            };
            let script = match departure {
                Departure::Release => &HAND_OVER,
                Departure::Leave => &LEAVE,
            };
            let mut call = Request::script(script, 1, keys);
            call.arg(&keys.lease).arg(owner).arg(id);
            Request::Script { script, call }
        };
        let (found, _): (i64, ServerRun) = self.run(Resend::IfConnectionDied, step).await?;
        Ok(ownership(found))
    }

    pub(crate) async fn extend(
        &self,
        keys: &LockKeys,
        owner: &str,
        lease: Duration,
    ) -> RedisResult<Ownership> {
        let step = |_: &ServerRun| Request::Script {
            script: &EXTEND,
            call: extend_call(keys, owner, lease),
        };
        let (found, _): (i64, ServerRun) = self.run(Resend::IfConnectionDied, step).await?;
        Ok(ownership(found))
    }
}

/// How an owner lets go of a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Departure {
    /// A holder's release: the next waiter gets the lock.
    Release,
    /// A requester that stops waiting, or gives back an attempt whose
    /// outcome is unknown.
    Leave,
}

/// The call of `extend.lua`: re-arm `owner`'s lease of an exclusive lock.
fn extend_call(keys: &LockKeys, owner: &str, lease: Duration) -> Cmd {
    let mut call = Request::script(&EXTEND, 1, keys);
    call.arg(&keys.lease).arg(owner).arg(millis(lease));
    call
}

fn v1_acquire(keys: &LockKeys, owner: &str, lease: Duration) -> Request {
    let mut call = Request::script(&ACQUIRE, 2, keys);
    call.arg(&keys.lease)
        .arg(keys.fence())
        .arg(owner)
        .arg(millis(lease));
    Request::Script {
        script: &ACQUIRE,
        call,
    }
}

/// A v1 acquire's answer: {1, token, ''} or {0, PTTL, holder id}.
fn v1_vote((acquired, value, holder): (i64, i64, String)) -> Vote {
    if acquired == 1 {
        return Vote {
            attempt: Attempt::Acquired {
                fencing_token: value.max(0).unsigned_abs(),
                spare_tokens: 0,
            },
            holder: None,
        };
    }
    Vote {
        attempt: Attempt::Held {
            remaining: remaining(value),
        },
        holder: (!holder.is_empty()).then_some(HolderId(holder)),
    }
}

/// A PTTL: -1 the key has no expiry, -2 it vanished since it was found held.
fn remaining(pttl: i64) -> Option<Duration> {
    match pttl {
        -1 => None,
        ms => Some(Duration::from_millis(ms.max(0).unsigned_abs())),
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

#[cfg(test)]
mod tests {
    use super::{HAND_OVER, LEAVE, QUEUE, REFLOOR, SHARED, SUCCEED, TOKEN_BLOCK};

    #[test]
    fn the_counter_life_is_the_one_fence_lua_keeps() {
        let fence = include_str!("scripts/fence.lua");
        let declared = format!("local COUNTER_LIFE_MS = {}\n", super::COUNTER_LIFE_MS);
        assert!(
            fence.contains(&declared),
            "fence.lua does not declare {declared:?}"
        );
    }

    #[test]
    fn every_v2_script_has_the_shared_rules_spliced_in() {
        for script in [&HAND_OVER, &LEAVE, &QUEUE, &REFLOOR, &SUCCEED, &SHARED] {
            assert!(script.code.contains("local function next_token(fence)"));
            assert!(!script.code.lines().any(|line| line == "-- {fence.lua}"));
        }
        // Only after the fast path: a release that returns there defines
        // no functions.
        let fast_path_end = HAND_OVER.code.find("return 1").expect("a fast path");
        assert!(
            HAND_OVER.code[..fast_path_end]
                .find("local function")
                .is_none()
        );
    }

    #[test]
    fn the_token_block_is_the_same_in_rust_and_lua() {
        let lua = format!("local TOKEN_BLOCK = {TOKEN_BLOCK}\n");
        assert!(REFLOOR.code.contains(&lua), "fence.lua says otherwise");
    }
}
