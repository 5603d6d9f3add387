//! A worker process: this binary re-executed by the parent. Its tasks call
//! the locked body on random hot keys until told to stop, and every start,
//! end and call outcome goes to the parent as a line on stdout (see
//! [`line`](crate::line)).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use distlock::{LockError, LockManager};
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use crate::backend::Backend;
use crate::body::{self, BodyError, LEASE, Locking};
use crate::clock::Rng;
use crate::line::{Event, Outcome, STOP};

const ROLE_ENV: &str = "NEMESIS_CHECK_ROLE";
const BACKEND_ENV: &str = "NEMESIS_CHECK_BACKEND";
const LOCKING_ENV: &str = "NEMESIS_CHECK_LOCKING";
const LOCKS_ENV: &str = "NEMESIS_CHECK_LOCKS";
const STORE_ENV: &str = "NEMESIS_CHECK_STORE";
const TASKS_ENV: &str = "NEMESIS_CHECK_TASKS";
const KEYS_ENV: &str = "NEMESIS_CHECK_KEYS";
const SEED_ENV: &str = "NEMESIS_CHECK_SEED";

/// How long the tasks have to finish their calls after `stop`: the longest
/// wait for a lock plus a lease.
pub const DRAIN: Duration = Duration::from_secs(8);
/// How long a new worker may take to connect to a lock service that is
/// still coming back from a fault.
const CONNECT_LIMIT: Duration = Duration::from_secs(15);
/// Each step of the lock service may take this long before it fails.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What one worker process runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub backend: Backend,
    /// Whether the bodies run under their lock.
    pub locking: Locking,
    /// Where the locks live: URLs or endpoints; for Sentinel, the master
    /// name first.
    pub locks: Vec<String>,
    pub store: String,
    pub tasks: usize,
    pub keys: usize,
    pub seed: u64,
}

impl Plan {
    pub fn apply(&self, command: &mut std::process::Command) {
        command
            .env(ROLE_ENV, "worker")
            .env(BACKEND_ENV, self.backend.name())
            .env(LOCKING_ENV, self.locking.name())
            .env(LOCKS_ENV, self.locks.join(","))
            .env(STORE_ENV, &self.store)
            .env(TASKS_ENV, self.tasks.to_string())
            .env(KEYS_ENV, self.keys.to_string())
            .env(SEED_ENV, self.seed.to_string());
    }

    fn from_env() -> Result<Plan, String> {
        fn var(name: &str) -> Result<String, String> {
            std::env::var(name).map_err(|_| format!("{name} is not set"))
        }
        fn number<T: std::str::FromStr>(name: &str) -> Result<T, String> {
            var(name)?
                .parse()
                .map_err(|_| format!("{name} is not a number"))
        }
        Ok(Plan {
            backend: Backend::parse(&var(BACKEND_ENV)?)?,
            locking: Locking::parse(&var(LOCKING_ENV)?)
                .ok_or_else(|| format!("{LOCKING_ENV}: neither locked nor unlocked"))?,
            locks: var(LOCKS_ENV)?.split(',').map(str::to_owned).collect(),
            store: var(STORE_ENV)?,
            tasks: number(TASKS_ENV)?,
            keys: number(KEYS_ENV)?,
            seed: number(SEED_ENV)?,
        })
    }

    /// A manager on the lock service of the plan.
    async fn lock_manager(&self) -> Result<LockManager, LockError> {
        let builder = match self.backend {
            Backend::Single => LockManager::builder(self.locks[0].clone()),
            Backend::Cluster => LockManager::cluster(self.locks.clone()),
            Backend::Redlock => LockManager::redlock(self.locks.clone()),
            Backend::Sentinel => {
                LockManager::sentinel(self.locks[1..].to_vec(), self.locks[0].clone())
            }
            Backend::Etcd => LockManager::etcd(self.locks.clone()),
        };
        // Redlock's steps have their own bound (a share of the lease).
        let builder = if self.backend == Backend::Redlock {
            builder
        } else {
            builder.command_timeout(COMMAND_TIMEOUT)
        };
        builder.build().await
    }
}

/// Whether this process was started by the parent as a worker.
pub fn is_worker() -> bool {
    std::env::var(ROLE_ENV).is_ok_and(|role| role == "worker")
}

/// The whole life of a worker process.
pub fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| Event::Panic(info.to_string()).emit()));
    match work() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nemesis_check worker {}: {error}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn work() -> Result<(), Error> {
    let plan = Plan::from_env()?;
    let stop = commands_from_parent();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(plan, stop))
}

async fn serve(plan: Plan, mut stop: mpsc::UnboundedReceiver<()>) -> Result<(), Error> {
    distlock::register(distlock::DEFAULT_MANAGER, connect(&plan).await?)?;
    let store = redis::Client::open(plan.store.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    Event::Ready.emit();
    let stopping = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..plan.tasks)
        .map(|task| {
            let seed = plan.seed ^ (u64::from(std::process::id()) << 20) ^ task as u64;
            tokio::spawn(calls(
                plan.keys,
                plan.locking,
                store.clone(),
                Rng::seeded(seed),
                stopping.clone(),
            ))
        })
        .collect();
    let _ = stop.recv().await;
    stopping.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + DRAIN;
    let mut unfinished = 0;
    for task in tasks {
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            unfinished += 1;
        }
    }
    Event::Done { unfinished }.emit();
    Ok(())
}

/// Builds the manager, trying again while the lock service is unreachable
/// (a worker restarted during a fault).
async fn connect(plan: &Plan) -> Result<LockManager, Error> {
    let started = Instant::now();
    loop {
        match plan.lock_manager().await {
            Ok(manager) => return Ok(manager),
            Err(error) if started.elapsed() > CONNECT_LIMIT => return Err(error.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One task: calls on random keys until `stopping`.
async fn calls(
    keys: usize,
    locking: Locking,
    store: MultiplexedConnection,
    mut rng: Rng,
    stopping: Arc<AtomicBool>,
) {
    while !stopping.load(Ordering::SeqCst) {
        let key = rng.below(keys as u64) as usize;
        let pauses = body::pauses(|| rng.next());
        let result = match locking {
            // Boxed: the locked call's future is large (clippy::large_futures).
            Locking::Locked => Box::pin(body::locked_body(key, &store, pauses)).await,
            Locking::Unlocked => body::unlocked_body(key, &store, pauses).await,
        };
        let outcome = outcome(&result);
        Event::Call(outcome).emit();
        if outcome != Outcome::Ok {
            // Do not spin on a lock service that is down.
            tokio::time::sleep(Duration::from_millis(20 + rng.below(30))).await;
        }
    }
}

fn outcome(result: &Result<(), BodyError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(BodyError::Lock(LockError::Lost { .. })) => Outcome::Lost,
        Err(BodyError::Lock(LockError::Timeout { .. })) => Outcome::Timeout,
        Err(BodyError::Lock(
            LockError::Backend { .. } | LockError::NoQuorum { .. } | LockError::Connect { .. },
        )) => Outcome::Backend,
        Err(BodyError::Store(_)) => Outcome::Store,
        Err(BodyError::Lock(error)) => {
            eprintln!("nemesis_check worker {}: {error}", std::process::id());
            Outcome::Other
        }
    }
}

/// `stop` from the parent, read on a thread of its own. End of file (the
/// parent died) ends the process.
fn commands_from_parent() -> mpsc::UnboundedReceiver<()> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line.trim() == STOP {
                let _ = sender.send(());
            }
        }
        std::process::exit(3);
    });
    receiver
}

/// Keeps the lease in the attribute and [`LEASE`] together.
const _: () = assert!(LEASE.as_secs() == 2);
