//! The locking algorithms under test: distlock and the baselines it is
//! compared with, all on one multiplexed connection per process.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use distlock::{LockGuard, LockManager, ReleaseOutcome};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// Lease of every lock taken here: far longer than any critical section.
const LEASE: Duration = Duration::from_secs(10);
/// distlock's wait bound: long enough that no acquisition of a run times out.
const DISTLOCK_WAIT: Duration = Duration::from_secs(600);
/// The retry interval of the polling loop found in most examples.
const FIXED_POLL_INTERVAL: Duration = Duration::from_millis(100);
const BACKOFF_FIRST: Duration = Duration::from_millis(1);
const BACKOFF_CAP: Duration = Duration::from_millis(100);
/// The seed protocol's wait on a held key: a uniformly random pause up to
/// rslock's default retry delay, retried until the lock is won, which is what
/// `rslock::LockManager::acquire` does and what its users copy.
const SEED_RETRY_CAP: Duration = Duration::from_millis(200);

/// The owner-checked delete of the common examples and of the seed protocol.
static OWNER_CHECKED_DEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then \
             return redis.call('del', KEYS[1]) \
         else \
             return 0 \
         end",
    )
});

/// One way of taking and releasing a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `manager.lock(key).ttl(..).wait(..).acquire()`, `guard.release()`;
    /// a Redlock manager when given several servers.
    Distlock,
    /// The seed protocol: `SET key <uuid v4> NX PX 10000`, released by the
    /// owner-checked Lua compare-and-delete through `EVALSHA`. On a held key
    /// it sleeps a random 0–200 ms and retries, as rslock's `acquire` does.
    Seed,
    /// rslock 0.10 with its defaults (3 tries per `lock`, a random 0–200 ms
    /// between tries, `acquire` looping over `lock` until it wins); Redlock
    /// over every server it is given.
    Rslock,
    /// `SET key val NX PX 10000` then `DEL key`: the floor for one
    /// uncontended lock cycle, with no ownership check at all.
    SetDel,
    /// `SET NX EX 10`, on failure sleep 100 ms and retry; owner-checked Lua DEL.
    FixedPoll,
    /// `SET NX PX 10000`, on failure sleep a uniformly random time up to a cap
    /// of 1 ms doubling to 100 ms (full jitter); owner-checked Lua DEL.
    BackoffPoll,
}

impl Algorithm {
    const ALL: [Algorithm; 6] = [
        Algorithm::Distlock,
        Algorithm::Seed,
        Algorithm::Rslock,
        Algorithm::SetDel,
        Algorithm::FixedPoll,
        Algorithm::BackoffPoll,
    ];

    /// Stable identifier, passed to child processes.
    pub fn id(self) -> &'static str {
        match self {
            Algorithm::Distlock => "distlock",
            Algorithm::Seed => "seed",
            Algorithm::Rslock => "rslock",
            Algorithm::SetDel => "set-del",
            Algorithm::FixedPoll => "poll-100ms",
            Algorithm::BackoffPoll => "poll-backoff",
        }
    }

    pub fn from_id(id: &str) -> Option<Algorithm> {
        Self::ALL.into_iter().find(|algorithm| algorithm.id() == id)
    }

    /// How the algorithm appears in tables.
    pub fn label(self) -> &'static str {
        match self {
            Algorithm::Distlock => "distlock",
            Algorithm::Seed => "seed protocol (SET NX PX uuid, Lua CAS-DEL)",
            Algorithm::Rslock => "rslock 0.10 (defaults: 3 tries, 0-200 ms retry)",
            Algorithm::SetDel => "SET NX PX + DEL",
            Algorithm::FixedPoll => "SET NX EX, sleep 100 ms",
            Algorithm::BackoffPoll => "SET NX PX, backoff 1-100 ms",
        }
    }

    /// A name short enough for a chart's panel caption.
    pub fn short_label(self) -> &'static str {
        match self {
            Algorithm::Distlock => "distlock",
            Algorithm::Seed => "seed protocol",
            Algorithm::Rslock => "rslock",
            Algorithm::SetDel => "SET+DEL",
            Algorithm::FixedPoll => "100 ms poll",
            Algorithm::BackoffPoll => "backoff poll",
        }
    }

    /// How this algorithm waits once the key is held; `attempt` counts the
    /// failed tries of this acquisition, from 0.
    fn retry_delay(self, attempt: u32, rng: &mut Rng) -> Option<Duration> {
        match self {
            Algorithm::FixedPoll => Some(FIXED_POLL_INTERVAL),
            Algorithm::BackoffPoll => {
                let cap = BACKOFF_FIRST
                    .saturating_mul(1 << attempt.min(16))
                    .min(BACKOFF_CAP);
                Some(rng.up_to(cap))
            }
            Algorithm::Seed => Some(rng.up_to(SEED_RETRY_CAP)),
            Algorithm::SetDel | Algorithm::Distlock | Algorithm::Rslock => None,
        }
    }
}

/// An algorithm bound to a connection; cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct Locker {
    algorithm: Algorithm,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Distlock(LockManager),
    Rslock(rslock::LockManager),
    Redis(ConnectionManager),
}

/// A lock one task holds.
pub enum Held {
    Distlock(LockGuard),
    Rslock(rslock::LockGuard),
    Redis { key: String, owner: String },
}

impl Locker {
    /// Opens the one connection this process's tasks share.
    pub async fn connect(algorithm: Algorithm, url: &str) -> Result<Locker, BenchError> {
        Self::connect_nodes(algorithm, &[url.to_owned()]).await
    }

    /// `algorithm` over `nodes`: one server, or Redlock over several
    /// independent servers (distlock and rslock only), each with its defaults.
    pub async fn connect_nodes(
        algorithm: Algorithm,
        nodes: &[String],
    ) -> Result<Locker, BenchError> {
        let backend = match (algorithm, nodes) {
            (_, []) => return Err("no server to lock on".into()),
            (Algorithm::Distlock, [url]) => {
                Backend::Distlock(LockManager::builder(url.as_str()).build().await?)
            }
            (Algorithm::Distlock, _) => {
                Backend::Distlock(LockManager::redlock(nodes).build().await?)
            }
            (Algorithm::Rslock, _) => Backend::Rslock(rslock::LockManager::new(nodes.to_vec())),
            (_, [url]) => Backend::Redis(connect_plain(url).await?),
            (_, _) => return Err(format!("{} runs on one server only", algorithm.label()).into()),
        };
        Ok(Locker { algorithm, backend })
    }

    /// The per-task handle: its own owner tokens and jitter.
    pub fn contender(&self, task: usize) -> Contender {
        Contender {
            locker: self.clone(),
            rng: Rng::seeded(task),
            owner_prefix: format!("{}:{task}:", std::process::id()),
            acquisitions: 0,
        }
    }
}

/// A `ConnectionManager` set up as distlock sets up its own.
pub async fn connect_plain(url: &str) -> Result<ConnectionManager, BenchError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let client = redis::Client::open(url)?;
    Ok(ConnectionManager::new_with_config(client, config).await?)
}

/// One task's view of a [`Locker`].
pub struct Contender {
    locker: Locker,
    rng: Rng,
    owner_prefix: String,
    acquisitions: u64,
}

impl Contender {
    /// Waits until the lock `key` is ours.
    pub async fn acquire(&mut self, key: &str) -> Result<Held, BenchError> {
        match &self.locker.backend {
            Backend::Distlock(manager) => {
                let guard = manager
                    .lock(key)
                    .ttl(LEASE)
                    .wait(DISTLOCK_WAIT)
                    .acquire()
                    .await?;
                Ok(Held::Distlock(guard))
            }
            Backend::Rslock(manager) => Ok(Held::Rslock(manager.acquire(key, LEASE).await?)),
            Backend::Redis(conn) => {
                let conn = conn.clone();
                self.acquire_plain(conn, key).await
            }
        }
    }

    /// `SET NX` until it is stored, waiting between tries as the algorithm does.
    async fn acquire_plain(
        &mut self,
        mut conn: ConnectionManager,
        key: &str,
    ) -> Result<Held, BenchError> {
        let algorithm = self.locker.algorithm;
        let owner = match algorithm {
            Algorithm::Seed => uuid::Uuid::new_v4().to_string(),
            _ => {
                self.acquisitions += 1;
                format!("{}{}", self.owner_prefix, self.acquisitions)
            }
        };
        let mut set = redis::cmd("SET");
        set.arg(key).arg(&owner).arg("NX");
        match algorithm {
            Algorithm::FixedPoll => set.arg("EX").arg(LEASE.as_secs()),
            _ => set.arg("PX").arg(LEASE.as_millis() as u64),
        };
        let mut attempt = 0_u32;
        loop {
            let stored: Option<String> = set.query_async(&mut conn).await?;
            if stored.is_some() {
                return Ok(Held::Redis {
                    key: key.to_owned(),
                    owner,
                });
            }
            let delay = algorithm
                .retry_delay(attempt, &mut self.rng)
                .ok_or_else(|| format!("`{key}` is held although only one task uses it"))?;
            attempt += 1;
            tokio::time::sleep(delay).await;
        }
    }

    pub async fn release(&mut self, held: Held) -> Result<(), BenchError> {
        let (key, owner) = match held {
            Held::Distlock(guard) => {
                return match guard.release().await? {
                    ReleaseOutcome::Released => Ok(()),
                    outcome => Err(format!("distlock release found {outcome:?}").into()),
                };
            }
            // rslock's release is best effort and reports nothing.
            Held::Rslock(guard) => {
                guard.release().await;
                return Ok(());
            }
            Held::Redis { key, owner } => (key, owner),
        };
        let Backend::Redis(conn) = &self.locker.backend else {
            unreachable!("plain locks come from a plain connection")
        };
        let mut conn = conn.clone();
        let deleted: i64 = if self.locker.algorithm == Algorithm::SetDel {
            redis::cmd("DEL").arg(&key).query_async(&mut conn).await?
        } else {
            OWNER_CHECKED_DEL
                .key(&key)
                .arg(&owner)
                .invoke_async(&mut conn)
                .await?
        };
        match deleted {
            1 => Ok(()),
            _ => Err(format!("`{key}` was no longer ours at release").into()),
        }
    }
}

/// xorshift64*: enough randomness for jitter, no dependency.
struct Rng(u64);

impl Rng {
    fn seeded(task: usize) -> Rng {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let mixed =
            (u64::from(clock) << 20) ^ (task as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Rng(mixed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, bound]`.
    fn up_to(&mut self, bound: Duration) -> Duration {
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.next() % nanos.saturating_add(1))
    }
}
