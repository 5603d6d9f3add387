//! Several processes on one key. The bench binary re-executes itself as
//! children; they start at one shared wall-clock instant, and each prints one
//! result line that the parent merges.

use std::io::Read;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::contend::{self, DRAIN_LIMIT, Tally, Window};
use super::locking::{self, Algorithm, BenchError, Locker};
use super::relay::{self, Holds};
use super::stats::Waits;

const ROLE_ENV: &str = "DISTLOCK_BENCH_ROLE";
const URLS_ENV: &str = "DISTLOCK_BENCH_URLS";
const ALGORITHM_ENV: &str = "DISTLOCK_BENCH_ALGORITHM";
const TASKS_ENV: &str = "DISTLOCK_BENCH_TASKS";
const HOLD_ENV: &str = "DISTLOCK_BENCH_HOLD_US";
const PROCESS_ENV: &str = "DISTLOCK_BENCH_PROCESS";
const KEY_ENV: &str = "DISTLOCK_BENCH_KEY";
const START_AT_ENV: &str = "DISTLOCK_BENCH_START_AT_UNIX_MS";
const WARMUP_ENV: &str = "DISTLOCK_BENCH_WARMUP_MS";
const MEASURE_ENV: &str = "DISTLOCK_BENCH_MEASURE_MS";
const CONTENDER_ROLE: &str = "contender";
const RELAY_ROLE: &str = "relay";
/// Marks the one stdout line a child reports on.
const RESULT_TAG: &str = "DISTLOCK_BENCH_RESULT";
/// Time the children get to start and connect before the common start.
const STARTUP_ALLOWANCE: Duration = Duration::from_millis(1500);
/// Processes of the cross-process handoff: they pass the lock back and forth.
pub const RELAY_PROCESSES: usize = 2;

/// What each child process runs.
#[derive(Debug, Clone)]
pub struct ChildPlan {
    /// One server, or the nodes of a Redlock.
    pub urls: Vec<String>,
    pub algorithm: Algorithm,
    pub work: ChildWork,
    pub key: String,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What the children do on the key.
#[derive(Debug, Clone, Copy)]
pub enum ChildWork {
    /// `tasks` tasks per process contend on the key (see `contend::run`).
    Contend { tasks: usize },
    /// One task per process; the processes hand the lock to each other in
    /// turn, each holding it for `hold` (see `relay::pass_in_turns`).
    Relay { hold: Duration },
}

impl ChildWork {
    fn role(self) -> &'static str {
        match self {
            ChildWork::Contend { .. } => CONTENDER_ROLE,
            ChildWork::Relay { .. } => RELAY_ROLE,
        }
    }
}

/// Whether this process was started by [`run`] as a child.
pub fn is_child() -> bool {
    std::env::var(ROLE_ENV).is_ok_and(|role| role == CONTENDER_ROLE || role == RELAY_ROLE)
}

/// Runs `processes` contending children of `plan` and merges their tallies.
pub async fn run(plan: &ChildPlan, processes: usize) -> Result<Tally, BenchError> {
    let mut tally = Tally::default();
    for (process, line) in run_children(plan, processes).await?.iter().enumerate() {
        tally.merge(decode(line).map_err(|e| format!("child process {process}: {e}"))?);
    }
    Ok(tally)
}

/// Runs [`RELAY_PROCESSES`] relay children of `plan`; the holds of each.
pub async fn relay(plan: &ChildPlan) -> Result<Vec<Holds>, BenchError> {
    run_children(plan, RELAY_PROCESSES)
        .await?
        .iter()
        .enumerate()
        .map(|(process, line)| {
            Holds::decode(process, line).map_err(|e| format!("child process {process}: {e}").into())
        })
        .collect()
}

/// Starts the children, waits for all of them, and returns the result line
/// of each, in process order.
async fn run_children(plan: &ChildPlan, processes: usize) -> Result<Vec<String>, BenchError> {
    let exe = std::env::current_exe()?;
    let start_at = unix_millis() + STARTUP_ALLOWANCE.as_millis() as u64;
    let (tasks, hold) = match plan.work {
        ChildWork::Contend { tasks } => (tasks, Duration::ZERO),
        ChildWork::Relay { hold } => (1, hold),
    };
    let mut children = Vec::with_capacity(processes);
    for process in 0..processes {
        let mut child = tokio::process::Command::new(&exe)
            .env(ROLE_ENV, plan.work.role())
            .env(URLS_ENV, plan.urls.join(","))
            .env(ALGORITHM_ENV, plan.algorithm.id())
            .env(TASKS_ENV, tasks.to_string())
            .env(HOLD_ENV, hold.as_micros().to_string())
            .env(PROCESS_ENV, process.to_string())
            .env(KEY_ENV, &plan.key)
            .env(START_AT_ENV, start_at.to_string())
            .env(WARMUP_ENV, plan.warmup.as_millis().to_string())
            .env(MEASURE_ENV, plan.measure.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        // Kept open until the child exits: the child takes end-of-file on
        // its stdin as this process's death and exits too.
        let lifeline = child.stdin.take();
        children.push(async move {
            let output = child.wait_with_output().await;
            drop(lifeline);
            (process, output)
        });
    }
    let limit =
        STARTUP_ALLOWANCE + plan.warmup + plan.measure + DRAIN_LIMIT + Duration::from_secs(10);
    // On timeout the children are dropped, which kills them.
    let outputs = tokio::time::timeout(limit, futures_util::future::join_all(children))
        .await
        .map_err(|_| format!("the child processes did not finish within {limit:?}"))?;
    let mut lines = Vec::with_capacity(processes);
    for (process, output) in outputs {
        let output = output?;
        if !output.status.success() {
            return Err(format!("child process {process} failed: {}", output.status).into());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix(RESULT_TAG))
            .ok_or_else(|| format!("child process {process} printed no result line"))?;
        lines.push(line.trim().to_owned());
    }
    Ok(lines)
}

/// The whole life of a child process.
pub fn child_main() -> ExitCode {
    match child() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("distlock bench child {}: {error}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn child() -> Result<(), BenchError> {
    let urls: Vec<String> = env(URLS_ENV)?.split(',').map(str::to_owned).collect();
    let algorithm = Algorithm::from_id(&env(ALGORITHM_ENV)?).ok_or("unknown algorithm")?;
    let key = env(KEY_ENV)?;
    let start_at: u64 = env(START_AT_ENV)?.parse()?;
    let warmup = Duration::from_millis(env(WARMUP_ENV)?.parse()?);
    let measure = Duration::from_millis(env(MEASURE_ENV)?.parse()?);
    let role = env(ROLE_ENV)?;
    exit_with_parent();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let line = runtime.block_on(async {
        let locker = Locker::connect_nodes(algorithm, &urls).await?;
        let begin = instant_of(start_at);
        tokio::time::sleep_until(begin.into()).await;
        let window = Window::after_warmup(begin, warmup, measure);
        if role == RELAY_ROLE {
            let hold = Duration::from_micros(env(HOLD_ENV)?.parse()?);
            let me: usize = env(PROCESS_ENV)?.parse()?;
            let signals = locking::connect_plain(&urls[0]).await?;
            let holds = relay::pass_in_turns(&locker, signals, &key, me, hold, window).await?;
            return Ok::<_, BenchError>(holds.encode());
        }
        let tasks: usize = env(TASKS_ENV)?.parse()?;
        let tally = contend::run(&locker, vec![key; tasks], window).await;
        if let Some(error) = &tally.first_error {
            eprintln!(
                "distlock bench child {}: {} errors, first: {error}",
                std::process::id(),
                tally.errors
            );
        }
        Ok(encode(&tally))
    })?;
    println!("{RESULT_TAG} {line}");
    Ok(())
}

/// Exits as soon as the parent's end of stdin closes, i.e. when the parent
/// is gone, however it died.
fn exit_with_parent() {
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buffer = [0_u8; 64];
        while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
        std::process::exit(3);
    });
}

/// This process's `Instant` for a wall-clock time in unix milliseconds.
fn instant_of(unix_ms: u64) -> Instant {
    let now = Instant::now();
    let ahead = unix_ms.saturating_sub(unix_millis());
    if ahead == 0 {
        eprintln!(
            "distlock bench child {}: started after the common start",
            std::process::id()
        );
    }
    now + Duration::from_millis(ahead)
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn encode(tally: &Tally) -> String {
    let per_task: Vec<String> = tally.per_task.iter().map(u64::to_string).collect();
    format!(
        "acquisitions={} errors={} abandoned={} per_task={} waits={}",
        tally.acquisitions,
        tally.errors,
        tally.abandoned,
        per_task.join(","),
        tally.waits.encode()
    )
}

fn decode(line: &str) -> Result<Tally, String> {
    let mut tally = Tally::default();
    for field in line.split_whitespace() {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| format!("bad field {field:?}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("bad {name} {value:?}"))
        };
        match name {
            "acquisitions" => tally.acquisitions = number()?,
            "errors" => tally.errors = number()?,
            "abandoned" => tally.abandoned = number()?,
            "per_task" => {
                tally.per_task = value
                    .split(',')
                    .filter(|part| !part.is_empty())
                    .map(|part| part.parse().map_err(|_| format!("bad per_task {part:?}")))
                    .collect::<Result<_, _>>()?;
            }
            "waits" => tally.waits = Waits::decode(value)?,
            _ => {}
        }
    }
    Ok(tally)
}
