//! The critical section under test, and the Redis state it works on.
//!
//! The lock comes from `#[distributed_lock]`; the state is read and written
//! over a plain Redis connection, deliberately non-atomically (GET, a yield,
//! SET), so that any two sections running at once show up in the state.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use distlock::{LockError, distributed_lock};
use redis::Script;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

/// The lease in the attribute below, for waiting on leftovers.
pub const LEASE: Duration = Duration::from_secs(10);
/// Prefix of every state key a run writes; the run id follows.
pub const STATE_PREFIX: &str = "exclusion_check:";
/// Prefix of every lock key a run takes, as given to distlock.
const LOCK_PREFIX: &str = "exclusion:";

/// One hot key: the name of its lock and the keys of the state it guards.
#[derive(Debug, Clone)]
pub struct Slot {
    /// The variable part of the lock key `exclusion:<lock>`.
    pub lock: String,
    /// The counter each section increments with GET, a yield, then SET.
    pub counter: String,
    /// Raised at the start of an unfenced section and lowered at its end.
    pub inside: String,
    /// The fencing token of every unfenced section, in the order they ran.
    pub tokens: String,
    /// The process of every unfenced section, in the order they ran.
    pub holders: String,
    /// Fenced sections: the highest fencing token the state has seen.
    pub fence: String,
    /// Fenced sections: how many commits the state accepted.
    pub commits: String,
    /// Fenced sections: the last [`ENTERED_KEPT`] tokens that entered, in
    /// order.
    pub entered: String,
    /// Fenced sections: every write the state refused, see [`Refusal`].
    pub refusals: String,
}

/// How many of the latest entered tokens a key keeps, to name the first
/// successor of a refused token.
const ENTERED_KEPT: usize = 64;

impl Slot {
    pub fn new(run: &str, name: &str) -> Slot {
        let state = |what: &str| format!("{STATE_PREFIX}{run}:{name}:{what}");
        Slot {
            lock: format!("{run}:{name}"),
            counter: state("counter"),
            inside: state("inside"),
            tokens: state("tokens"),
            holders: state("holders"),
            fence: state("fence"),
            commits: state("commits"),
            entered: state("entered"),
            refusals: state("refusals"),
        }
    }

    /// The key distlock is asked to lock, as the attribute builds it.
    pub fn lock_key(&self) -> String {
        format!("{LOCK_PREFIX}{}", self.lock)
    }
}

/// How a section records its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Unfenced: INCR `inside`, GET the counter, yield, SET counter + 1,
    /// RPUSH the fencing token, DECR `inside`. Exact, as long as no call is
    /// cancelled.
    Check,
    /// Fenced: the state itself refuses a write carrying an older fencing
    /// token than one it has seen. A cancelled body may still have a write
    /// in flight when its guard's drop releases the lock; fencing turns that
    /// late write into a refused one, instead of a false overlap or a lost
    /// update. A refusal seen by a section that is still running is an
    /// overlap.
    Soak,
}

/// Where an injected panic fires in a fenced section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the section touched the state.
    Start,
    /// After it read the counter and raised the fence, before its commit.
    Middle,
    /// After its commit.
    End,
}

/// The payload of injected panics, so the panic hook can keep them quiet and
/// the caller can tell them from real ones.
#[derive(Debug)]
pub struct InjectedPanic;

/// One call's instructions, and what it saw: how far it got (for telling
/// where a cancellation hit) and whether it met another section.
#[derive(Debug)]
pub struct Probe {
    pub mode: Mode,
    /// The calling process, recorded by unfenced sections.
    pub process: usize,
    /// Sleep after the yield, if not zero.
    pub pause: Duration,
    pub panic_at: Option<Stage>,
    entered: AtomicBool,
    finished: AtomicBool,
    overlapped: AtomicBool,
    token: AtomicU64,
    entered_signal: Notify,
}

impl Probe {
    pub fn new(mode: Mode, process: usize, pause: Duration, panic_at: Option<Stage>) -> Probe {
        Probe {
            mode,
            process,
            pause,
            panic_at,
            entered: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            overlapped: AtomicBool::new(false),
            token: AtomicU64::new(0),
            entered_signal: Notify::new(),
        }
    }

    /// Completes once the body holds the lock and has started.
    pub async fn entered(&self) {
        self.entered_signal.notified().await;
    }

    /// The fencing token of the lock the body ran under (0 before).
    pub fn token(&self) -> u64 {
        self.token.load(Ordering::SeqCst)
    }

    /// Whether the body started.
    pub fn has_entered(&self) -> bool {
        self.entered.load(Ordering::SeqCst)
    }

    /// Whether the body returned (the release may still have been running).
    pub fn has_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Whether the body saw another section on its key, also when the call
    /// was then cancelled or panicked.
    pub fn overlapped(&self) -> bool {
        self.overlapped.load(Ordering::SeqCst)
    }

    fn enter(&self, token: u64) {
        self.token.store(token, Ordering::SeqCst);
        self.entered.store(true, Ordering::SeqCst);
        self.entered_signal.notify_one();
    }

    fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    fn saw_overlap_if(&self, overlapped: bool) {
        if overlapped {
            self.overlapped.store(true, Ordering::SeqCst);
        }
    }

    fn panic_if(&self, stage: Stage) {
        if self.panic_at == Some(stage) {
            std::panic::panic_any(InjectedPanic);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The locked read-modify-write of one hot key; what it saw is in `probe`.
#[distributed_lock(key = "exclusion:<slot.lock>", ttl = "10s", wait = "60s", guard = lock)]
pub async fn critical_section(
    slot: &Slot,
    state: &MultiplexedConnection,
    probe: &Probe,
) -> Result<(), SectionError> {
    let token = lock.fencing_token();
    let mut conn = state.clone();
    probe.enter(token);
    match probe.mode {
        Mode::Check => unfenced(&[slot], &mut conn, token, probe).await?,
        Mode::Soak => fenced(slot, &mut conn, token, probe).await?,
    }
    probe.finish();
    Ok(())
}

/// The locked read-modify-write of two distinct hot keys, held together
/// (`keys = [...]`; callers name them in either order), unfenced as in
/// [`Mode::Check`]; what it saw is in `probe`.
#[distributed_lock(
    keys = ["exclusion:<a.lock>", "exclusion:<b.lock>"],
    ttl = "10s",
    wait = "60s",
    guard = both
)]
pub async fn pair_section(
    a: &Slot,
    b: &Slot,
    state: &MultiplexedConnection,
    probe: &Probe,
) -> Result<(), SectionError> {
    let token = both.fencing_token();
    probe.enter(token);
    unfenced(&[a, b], &mut state.clone(), token, probe).await?;
    probe.finish();
    Ok(())
}

/// The unfenced read-modify-write of every key in `slots` (all of them
/// locked by the caller): raise each `inside`, read each counter, yield,
/// then write each counter + 1, record the token and the process on each
/// key, and lower each `inside`.
async fn unfenced(
    slots: &[&Slot],
    conn: &mut MultiplexedConnection,
    token: u64,
    probe: &Probe,
) -> Result<(), SectionError> {
    let mut read = redis::pipe();
    for slot in slots {
        read.cmd("INCR")
            .arg(&slot.inside)
            .cmd("GET")
            .arg(&slot.counter);
    }
    // Per key: `inside` after the raise, then the counter (nil before the
    // first write).
    let seen: Vec<Option<i64>> = read.query_async(conn).await?;
    pause(probe).await;
    let mut write = redis::pipe();
    let mut entered_alone = true;
    for (slot, seen) in slots.iter().zip(seen.chunks(2)) {
        entered_alone &= seen[0] == Some(1);
        write
            .cmd("SET")
            .arg(&slot.counter)
            .arg(seen[1].unwrap_or(0) + 1)
            .ignore()
            .cmd("RPUSH")
            .arg(&slot.tokens)
            .arg(token)
            .ignore()
            .cmd("RPUSH")
            .arg(&slot.holders)
            .arg(probe.process)
            .ignore()
            .cmd("DECR")
            .arg(&slot.inside);
    }
    // Per key: `inside` after the lowering.
    let still_inside: Vec<i64> = write.query_async(conn).await?;
    probe.saw_overlap_if(!entered_alone || still_inside.iter().any(|&n| n != 0));
    Ok(())
}

/// Records a refused write of ARGV[1] in KEYS[#KEYS], naming the first
/// token after it that entered (KEYS[#KEYS - 1]) and Redis's clock.
const REFUSE: &str = r"
local function refuse()
  local successor = '0'
  for _, entered in ipairs(redis.call('LRANGE', KEYS[#KEYS - 1], 0, -1)) do
    if tonumber(entered) > tonumber(ARGV[1]) then
      successor = entered
      break
    end
  end
  local now = redis.call('TIME')
  redis.call('RPUSH', KEYS[#KEYS],
    ARGV[1] .. ':' .. successor .. ':' .. now[1] .. string.format('%06d', tonumber(now[2])))
end
";

/// Raises the fence to the caller's token and reads the counter, or refuses
/// (-1) when the fence is already at or above it.
/// KEYS: fence, counter, entered, refusals. ARGV: token.
static ENTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{REFUSE}
if tonumber(ARGV[1]) <= tonumber(redis.call('GET', KEYS[1]) or '0') then
  refuse()
  return -1
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], -{ENTERED_KEPT}, -1)
return tonumber(redis.call('GET', KEYS[2]) or '0')
"
    ))
});

/// Writes the counter if the fence still carries the caller's token (1), or
/// refuses (0).
/// KEYS: fence, counter, commits, entered, refusals. ARGV: token, new counter.
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{REFUSE}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  refuse()
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
"
    ))
});

/// A write the fenced state refused: `token:successor:at` in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// The token of the section whose write was refused.
    pub token: u64,
    /// The first token after it that entered (0 if no longer known). Tokens
    /// are Redis's clock in µs when the lock was acquired, so this is when
    /// the successor took the lock.
    pub successor: u64,
    /// Redis's clock when the write arrived, in µs since the Unix epoch.
    pub at: u64,
}

impl Refusal {
    pub fn parse(text: &str) -> Option<Refusal> {
        let mut parts = text.split(':').map(|part| part.parse().ok());
        Some(Refusal {
            token: parts.next()??,
            successor: parts.next()??,
            at: parts.next()??,
        })
    }
}

async fn fenced(
    slot: &Slot,
    conn: &mut MultiplexedConnection,
    token: u64,
    probe: &Probe,
) -> Result<(), SectionError> {
    probe.panic_if(Stage::Start);
    let counter: i64 = ENTER
        .key(&slot.fence)
        .key(&slot.counter)
        .key(&slot.entered)
        .key(&slot.refusals)
        .arg(token)
        .invoke_async(conn)
        .await?;
    if counter < 0 {
        probe.saw_overlap_if(true);
        return Ok(());
    }
    pause(probe).await;
    probe.panic_if(Stage::Middle);
    let committed: i64 = COMMIT
        .key(&slot.fence)
        .key(&slot.counter)
        .key(&slot.commits)
        .key(&slot.entered)
        .key(&slot.refusals)
        .arg(token)
        .arg(counter + 1)
        .invoke_async(conn)
        .await?;
    probe.saw_overlap_if(committed != 1);
    probe.panic_if(Stage::End);
    Ok(())
}

/// Lets other tasks run between the read and the write.
async fn pause(probe: &Probe) {
    tokio::task::yield_now().await;
    if !probe.pause.is_zero() {
        tokio::time::sleep(probe.pause).await;
    }
}

pub use crate::support::rng::Rng;
