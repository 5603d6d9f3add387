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
//! with it. With one runtime, the usual case, that is one connection.
//!
//! A socket that closed is only found out by the next request on it, which
//! redis-rs fails without writing it; [`Reconnecting::revive`] then builds
//! a new connection, and `protocol.rs` decides whether the step is sent
//! again.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use redis::RedisResult;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use tokio::runtime::{Handle, Id};
use tokio::sync::oneshot;

use super::client;
use crate::background;

/// How to open one more connection; it is opened on the caller's runtime,
/// which drives it from then on.
pub(crate) trait Connect: Send + Sync + 'static {
    type Redis: ConnectionLike + Clone + Send + Sync + 'static;

    fn connect(&self) -> impl Future<Output = RedisResult<Self::Redis>> + Send;
}

/// One Redis server, through a multiplexed connection.
pub(crate) struct Server {
    pub(crate) client: redis::Client,
    pub(crate) config: redis::AsyncConnectionConfig,
    pub(crate) connect_timeout: Duration,
}

impl Connect for Server {
    type Redis = MultiplexedConnection;

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let connect = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config);
        client::within(self.connect_timeout, connect).await
    }
}

impl Connect for ClusterClient {
    type Redis = ClusterConnection;

    async fn connect(&self) -> RedisResult<ClusterConnection> {
        self.get_async_connection().await
    }
}

/// The connections of one node (or cluster), one per runtime in use, each
/// replaced when it died.
pub(crate) struct Reconnecting<K: Connect> {
    connect: K,
    /// Few: one per runtime that has sent a step and not shut down since.
    built: RwLock<Vec<Built<K::Redis>>>,
    /// Held while building, so that the steps that found one connection
    /// dead build one new connection between them.
    building: tokio::sync::Mutex<u64>,
}

/// One connection, which one it is, and the runtime that drives it.
#[derive(Clone)]
pub(crate) struct Built<R> {
    pub(crate) redis: R,
    pub(crate) generation: Generation,
    runtime: Arc<RuntimeWatch>,
}

/// Tells a connection from the one that replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation(u64);

impl<K: Connect> Reconnecting<K> {
    /// Not connected yet: the first step on each runtime connects.
    pub(crate) fn new(connect: K) -> Self {
        Reconnecting {
            connect,
            built: RwLock::new(Vec::new()),
            building: tokio::sync::Mutex::new(0),
        }
    }

    /// The connection of the caller's runtime, built now if there is none.
    pub(crate) async fn connection(&self) -> RedisResult<Built<K::Redis>> {
        let runtime = current_runtime();
        match self.find(runtime, None) {
            Some(built) => Ok(built),
            None => self.revive(None).await,
        }
    }

    /// Replaces connection `dead` (`None`: the caller's runtime has none)
    /// with one built on the caller's runtime, unless another step has
    /// already done so, and returns the connection to use.
    pub(crate) async fn revive(&self, dead: Option<Generation>) -> RedisResult<Built<K::Redis>> {
        let mut generations = self.building.lock().await;
        let runtime = current_runtime();
        if let Some(built) = self.find(runtime, dead) {
            return Ok(built);
        }
        let redis = self.connect.connect().await?;
        *generations += 1;
        let built = Built {
            redis,
            generation: Generation(*generations),
            runtime: RuntimeWatch::on_current_runtime(runtime),
        };
        let mut all = self.built.write().unwrap_or_else(PoisonError::into_inner);
        // A runtime's old connection goes, as do those of runtimes that ended.
        all.retain(|other| other.runtime.is_running() && other.runtime.id != runtime);
        all.push(built.clone());
        Ok(built)
    }

    /// The live connection of `runtime`, unless it is `dead`.
    fn find(&self, runtime: Option<Id>, dead: Option<Generation>) -> Option<Built<K::Redis>> {
        let all = self.built.read().unwrap_or_else(PoisonError::into_inner);
        all.iter()
            .find(|built| {
                built.runtime.id == runtime
                    && Some(built.generation) != dead
                    && built.runtime.is_running()
            })
            .cloned()
    }
}

fn current_runtime() -> Option<Id> {
    Handle::try_current().ok().map(|runtime| runtime.id())
}

/// Whether the runtime a connection was built on (and whose task drives
/// it) still runs: a task on that runtime clears the flag when the runtime
/// drops it at shutdown. Dropping the watch ends that task.
struct RuntimeWatch {
    id: Option<Id>,
    running: Arc<AtomicBool>,
    _stop: oneshot::Sender<()>,
}

impl RuntimeWatch {
    fn on_current_runtime(id: Option<Id>) -> Arc<RuntimeWatch> {
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
        Arc::new(RuntimeWatch {
            id,
            running,
            _stop: stop,
        })
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
