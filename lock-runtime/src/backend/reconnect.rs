//! Connections that outlive what kills connections: the socket closing
//! while idle (a restart, `CLIENT KILL`, a proxy's idle timeout) and the
//! tokio runtime they were built on shutting down.
//!
//! redis-rs drives each multiplexed or cluster connection with a task
//! spawned on the runtime that built it, and that task dies with the
//! runtime. A manager kept in a `static` and used from `#[tokio::test]`
//! fns, each on its own runtime, would find its connection dead in every
//! test but the first; and with several runtimes at once, one of them
//! ending would fail the steps the others have in flight. So a manager has
//! one connection per node and per runtime in use, built on that runtime
//! by its first step there: a runtime's end can only take its own steps
//! with it. Each runtime builds under a lock of its own, so a connect that
//! hangs (until the connect timeout) delays only the steps of the runtime
//! it is for. With one runtime, the usual case, that is one connection.
//!
//! A socket that closed is only found out by the next request on it, which
//! redis-rs fails without writing it; [`Reconnecting::revive`] then builds
//! a new connection, and `protocol.rs` decides whether the step is sent
//! again.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::RedisResult;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use tokio::runtime::Id;
use tokio::sync::oneshot;

use super::address::Address;
use super::timeout::{Awaited, bounded};
use crate::background;
use crate::unpoisoned;

/// How to open one more connection; it is opened on the caller's runtime,
/// which drives it from then on.
pub(crate) trait Connect: Send + Sync + 'static {
    type Redis: ConnectionLike + Clone + Send + Sync + 'static;

    fn connect(&self) -> impl Future<Output = RedisResult<Opened<Self::Redis>>> + Send;
}

/// A connection just opened, and the run of the server it reaches.
pub(crate) struct Opened<R> {
    pub(crate) redis: R,
    pub(crate) run: ServerRun,
}

/// Which run of a server, and which term of it as a primary, a connection
/// reaches: Redis draws a new `run_id` at every start, and a new
/// `master_replid` at every promotion (a replica taking over, or a primary
/// coming back as one and promoted again, which keeps its `run_id`). A
/// restart closes every connection, and Sentinel's reconfiguration kills
/// the clients of a demoted primary, so what a connection learnt at its
/// start holds for every step sent on it (a bare `REPLICAOF` leaves clients
/// connected: see the guide's "Fencing", `docs/guide/fencing.md`).
///
/// Protocol v2 names its fencing counters after both (see `protocol.rs`): a
/// server that came back with older data, or a replica that took over with
/// a lagging copy, starts new counters, which the clock floor lifts above
/// every token handed out before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerRun {
    /// The server's `run_id` and `master_replid` (12 hex digits of each).
    Known(Arc<str>),
    /// Not known (a cluster, whose steps go to several servers, or a server
    /// that refused `INFO`): protocol v1 is spoken.
    Unknown,
}

/// One Redis server, through a multiplexed connection.
pub(crate) struct Server {
    pub(crate) address: Arc<Address>,
    pub(crate) config: redis::AsyncConnectionConfig,
    pub(crate) connect_timeout: Duration,
}

impl Connect for Server {
    type Redis = MultiplexedConnection;

    async fn connect(&self) -> RedisResult<Opened<MultiplexedConnection>> {
        let connect = async {
            let client = self.address.client().await?;
            let mut redis = client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            let run = server_run(&mut redis).await?;
            Ok(Opened { redis, run })
        };
        let connected = tokio::time::timeout(self.connect_timeout, connect).await;
        bounded(connected, self.connect_timeout, Awaited::Connection)
    }
}

/// The run of the server `redis` reaches, from `INFO`: [`ServerRun::Unknown`]
/// if the server refuses `INFO` (renamed away, or denied by an ACL), for
/// every connection alike; any other failure fails the connect, so that a
/// manager never speaks v1 on one connection and v2 on another.
async fn server_run(redis: &mut MultiplexedConnection) -> RedisResult<ServerRun> {
    // The default sections, which hold both fields on every version (one
    // `INFO server replication` needs Redis 7).
    let info: String = match redis::cmd("INFO").query_async(redis).await {
        Ok(info) => info,
        Err(error) if refused(&error) => {
            tracing::debug!(%error, "distlock cannot read INFO: speaking protocol v1");
            return Ok(ServerRun::Unknown);
        }
        Err(error) => return Err(error),
    };
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().get(..12).unwrap_or(value.trim()).to_owned())
    };
    Ok(match (field("run_id:"), field("master_replid:")) {
        (Some(run), Some(term)) => ServerRun::Known(Arc::from(format!("{run}{term}"))),
        _ => ServerRun::Unknown,
    })
}

/// Whether Redis refused a command outright (unknown, or not permitted),
/// which asking again would not change.
fn refused(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        error.kind(),
        ErrorKind::Server(ServerErrorKind::NoPerm | ServerErrorKind::ResponseError)
    )
}

impl Connect for ClusterClient {
    type Redis = ClusterConnection;

    async fn connect(&self) -> RedisResult<Opened<ClusterConnection>> {
        let redis = self.get_async_connection().await?;
        Ok(Opened {
            redis,
            run: ServerRun::Unknown,
        })
    }
}

/// The connections of one node (or cluster), one per runtime in use, each
/// replaced when it died.
pub(crate) struct Reconnecting<K: Connect> {
    connect: K,
    /// Few: one per runtime that has sent a step and not shut down since.
    runtimes: RwLock<Vec<PerRuntime<K::Redis>>>,
    /// Numbers the connections, so that a step tells the one it found dead
    /// from the one that replaced it.
    generations: AtomicU64,
}

/// What one runtime has: its connection, and the lock its steps build it
/// under.
struct PerRuntime<R> {
    watch: RuntimeWatch,
    /// Held while building this runtime's connection, so that its steps
    /// that found none (or found it dead) build one between them. Never
    /// shared with another runtime: a connect that hangs, or a task
    /// dropped by its runtime's teardown while it connects, holds up the
    /// steps of its own runtime only.
    building: Arc<tokio::sync::Mutex<()>>,
    /// `None` until a build on this runtime succeeded.
    built: Option<Built<R>>,
}

/// One connection, and which one it is.
#[derive(Clone)]
pub(crate) struct Built<R> {
    pub(crate) redis: R,
    pub(crate) generation: Generation,
    pub(crate) run: ServerRun,
    /// Whether the protocol prepared this connection (loaded its scripts),
    /// shared by the clones of this connection.
    pub(crate) prepared: Arc<AtomicBool>,
}

/// Tells a connection from the one that replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation(u64);

impl<K: Connect> Reconnecting<K> {
    /// Not connected yet: the first step on each runtime connects.
    pub(crate) fn new(connect: K) -> Self {
        Reconnecting {
            connect,
            runtimes: RwLock::new(Vec::new()),
            generations: AtomicU64::new(0),
        }
    }

    /// The connection of the caller's runtime, built now if there is none.
    ///
    /// The path of every step: one look-up of the current runtime, one
    /// shared read lock, and one clone of the connection (which
    /// `ConnectionLike` needs mutably).
    pub(crate) async fn connection(&self) -> RedisResult<Built<K::Redis>> {
        match self.find(current_runtime(), None) {
            Some(built) => Ok(built),
            None => self.revive(None).await,
        }
    }

    /// Replaces connection `dead` (`None`: the caller's runtime has none)
    /// with one built on the caller's runtime, unless a step of the same
    /// runtime built one while this one waited for the runtime's build
    /// lock, and returns the connection to use.
    pub(crate) async fn revive(&self, dead: Option<Generation>) -> RedisResult<Built<K::Redis>> {
        let runtime = current_runtime();
        let building = self.build_lock(runtime);
        let _building = building.lock().await;
        if let Some(built) = self.find(runtime, dead) {
            return Ok(built);
        }
        let Opened { redis, run } = self.connect.connect().await?;
        let generation = Generation(self.generations.fetch_add(1, Ordering::Relaxed) + 1);
        let built = Built {
            redis,
            generation,
            run,
            prepared: Arc::new(AtomicBool::new(false)),
        };
        let mut all = unpoisoned::write(&self.runtimes);
        // Gone if the runtime ended meanwhile: the connection then serves
        // this step only.
        if let Some(entry) = all
            .iter_mut()
            .find(|entry| Arc::ptr_eq(&entry.building, &building))
        {
            entry.built = Some(built.clone());
        }
        Ok(built)
    }

    /// The build lock of `runtime`, which gets an entry now if it has none.
    /// The entries of runtimes that ended go, with their connections.
    fn build_lock(&self, runtime: Option<Id>) -> Arc<tokio::sync::Mutex<()>> {
        let mut all = unpoisoned::write(&self.runtimes);
        all.retain(|entry| entry.watch.is_running());
        if let Some(entry) = all.iter().find(|entry| entry.watch.id == runtime) {
            return entry.building.clone();
        }
        let entry = PerRuntime {
            watch: RuntimeWatch::on_current_runtime(runtime),
            building: Arc::new(tokio::sync::Mutex::new(())),
            built: None,
        };
        let building = entry.building.clone();
        all.push(entry);
        building
    }

    /// The live connection of `runtime`, unless it is `dead`.
    fn find(&self, runtime: Option<Id>, dead: Option<Generation>) -> Option<Built<K::Redis>> {
        let all = unpoisoned::read(&self.runtimes);
        let entry = all.iter().find(|entry| entry.watch.id == runtime)?;
        let built = entry.built.as_ref()?;
        (Some(built.generation) != dead && entry.watch.is_running()).then(|| built.clone())
    }
}

fn current_runtime() -> Option<Id> {
    background::runtime().map(|runtime| runtime.id())
}

/// Whether a runtime (whose tasks drive the connections built on it)
/// still runs: a task on that runtime clears the flag when the runtime
/// drops it at shutdown. Dropping the watch ends that task.
struct RuntimeWatch {
    id: Option<Id>,
    running: Arc<AtomicBool>,
    _stop: oneshot::Sender<()>,
}

impl RuntimeWatch {
    fn on_current_runtime(id: Option<Id>) -> RuntimeWatch {
        let running = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = oneshot::channel::<()>();
        // Set first: a runtime that is shutting down drops the task at once.
        running.store(true, Ordering::Release);
        let flag = ClearOnDrop(running.clone());
        let watching = background::spawn(async move {
            let _flag = flag;
            let _ = stopped.await;
        });
        if watching.is_none() {
            running.store(false, Ordering::Release);
        }
        RuntimeWatch {
            id,
            running,
            _stop: stop,
        }
    }

    fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::super::address::Address;
    use lock_testkit::RedisServer;
    use redis::RedisResult;
    use redis::aio::MultiplexedConnection;
    use tokio::runtime::Id;
    use tokio::sync::oneshot;

    use super::{Connect, Opened, Reconnecting, Server, current_runtime};

    /// Connects to a real server, except from one runtime, whose connect
    /// never ends: a network where one runtime's connect hangs until its
    /// timeout, made deterministic.
    struct StallingOn {
        server: Server,
        stalled: Id,
        /// Told once the stalled runtime is inside its connect.
        entered: Mutex<Option<oneshot::Sender<()>>>,
        connects: AtomicUsize,
    }

    impl Connect for StallingOn {
        type Redis = MultiplexedConnection;

        async fn connect(&self) -> RedisResult<Opened<MultiplexedConnection>> {
            if current_runtime() == Some(self.stalled) {
                let entered = self.entered.lock().expect("not poisoned").take();
                if let Some(entered) = entered {
                    let _ = entered.send(());
                }
                std::future::pending::<()>().await;
            }
            self.connects.fetch_add(1, Ordering::SeqCst);
            self.server.connect().await
        }
    }

    async fn ping(mut redis: MultiplexedConnection) -> RedisResult<()> {
        redis::cmd("PING").query_async::<()>(&mut redis).await
    }

    #[test]
    fn a_runtime_whose_connect_hangs_holds_up_no_other_runtime() {
        let server = RedisServer::start();
        let stalled = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let (entered, is_entered) = oneshot::channel();
        let reconnecting = Arc::new(Reconnecting::new(StallingOn {
            server: Server {
                address: Arc::new(Address::Fixed(
                    redis::Client::open(server.url()).expect("a client"),
                )),
                config: redis::AsyncConnectionConfig::new(),
                connect_timeout: Duration::from_secs(30),
            },
            stalled: stalled.handle().id(),
            entered: Mutex::new(Some(entered)),
            connects: AtomicUsize::new(0),
        }));
        let hanging = {
            let reconnecting = reconnecting.clone();
            stalled.spawn(async move { reconnecting.connection().await.map(|_| ()) })
        };
        let other = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        other.block_on(async {
            is_entered.await.expect("the stalled runtime connects");
            // Two first steps at once: they share one build.
            let steps = async {
                let (first, second) =
                    tokio::join!(reconnecting.connection(), reconnecting.connection());
                let (first, second) = (first?, second?);
                assert_eq!(first.generation, second.generation);
                ping(first.redis).await?;
                ping(second.redis).await
            };
            tokio::time::timeout(Duration::from_secs(5), steps)
                .await
                .expect("another runtime's hanging connect held up this runtime's first steps")
                .expect("PING");
        });
        assert_eq!(reconnecting.connect.connects.load(Ordering::SeqCst), 1);
        assert!(!hanging.is_finished(), "the stalled connect still hangs");
        // Its teardown drops the hanging build; the other runtime's
        // connection is untouched.
        drop(stalled);
        other.block_on(async {
            let built = reconnecting.connection().await.expect("a connection");
            ping(built.redis).await.expect("PING");
        });
        assert_eq!(reconnecting.connect.connects.load(Ordering::SeqCst), 1);
    }
}
