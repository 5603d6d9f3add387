//! A worker process: the example's binary re-executed by the parent. Its
//! tasks call the critical section on the hot keys, then it reports one line.
//!
//! Talks to the parent over stdio: prints `READY` once connected and warmed
//! up, waits for `go` on stdin, runs the load, prints `DRAINED <report>` once
//! idle again (and stays connected, so the parent can look at Redis while
//! the worker's connections are still open), and exits on `exit`. End of file
//! on stdin means the parent is gone: the worker exits at once.

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use distlock::{LockError, LockManager};
use futures_util::FutureExt;
use redis::aio::MultiplexedConnection;
use tokio::runtime::RuntimeMetrics;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::refusals::{Cancellations, Dropped, Explainer, unix_micros};
use crate::report::{Latencies, Sample, WorkerReport};
use crate::section::{InjectedPanic, Mode, Probe, Rng, SectionError, Slot, Stage};
use crate::section::{LEASE, critical_section, pair_section};

pub const ROLE_ENV: &str = "EXCLUSION_CHECK_ROLE";
const WORKER_ROLE: &str = "worker";
const URL_ENV: &str = "EXCLUSION_CHECK_URL";
const RUN_ENV: &str = "EXCLUSION_CHECK_RUN";
const INDEX_ENV: &str = "EXCLUSION_CHECK_INDEX";
const TASKS_ENV: &str = "EXCLUSION_CHECK_TASKS";
const SECTIONS_ENV: &str = "EXCLUSION_CHECK_SECTIONS";
const KEYS_ENV: &str = "EXCLUSION_CHECK_KEYS";
const SOAK_ENV: &str = "EXCLUSION_CHECK_SOAK_MS";
const PAIRS_ENV: &str = "EXCLUSION_CHECK_PAIRS";
/// The etcd endpoints the locks live on, comma-separated; empty: Redis.
const ETCD_ENV: &str = "EXCLUSION_CHECK_ETCD";

pub const READY: &str = "EXCLUSION_CHECK_READY";
pub const DRAINED: &str = "EXCLUSION_CHECK_DRAINED";
pub const GO: &str = "go";
pub const EXIT: &str = "exit";

/// How often a worker samples its memory and task count.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Longest a worker waits for its tasks to get back to the baseline.
const SETTLE_LIMIT: Duration = LEASE;
/// Share of check-mode sections that sleep between read and write (1 in 8).
const SLEEPING_SECTIONS: u64 = 8;
const LONGEST_PAUSE: Duration = Duration::from_millis(1);

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What one worker process runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: String,
    pub run: String,
    pub index: usize,
    pub tasks: usize,
    /// Sections of this process (check mode).
    pub sections: u64,
    pub keys: usize,
    /// Soak mode and its length; `None` for the check.
    pub soak: Option<Duration>,
    /// Check mode: each section locks two of the keys.
    pub pairs: bool,
    /// The etcd endpoints the locks live on; none: in Redis, at `url`.
    pub etcd: Vec<String>,
}

impl Plan {
    pub fn apply(&self, command: &mut tokio::process::Command) {
        command
            .env(ROLE_ENV, WORKER_ROLE)
            .env(URL_ENV, &self.url)
            .env(RUN_ENV, &self.run)
            .env(INDEX_ENV, self.index.to_string())
            .env(TASKS_ENV, self.tasks.to_string())
            .env(SECTIONS_ENV, self.sections.to_string())
            .env(KEYS_ENV, self.keys.to_string())
            .env(
                SOAK_ENV,
                self.soak.map_or(0, |soak| soak.as_millis()).to_string(),
            )
            .env(PAIRS_ENV, u8::from(self.pairs).to_string())
            .env(ETCD_ENV, self.etcd.join(","));
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
        let soak_ms: u64 = number(SOAK_ENV)?;
        Ok(Plan {
            url: var(URL_ENV)?,
            run: var(RUN_ENV)?,
            index: number(INDEX_ENV)?,
            tasks: number(TASKS_ENV)?,
            sections: number(SECTIONS_ENV)?,
            keys: number(KEYS_ENV)?,
            soak: (soak_ms > 0).then(|| Duration::from_millis(soak_ms)),
            pairs: number::<u8>(PAIRS_ENV)? == 1,
            etcd: var(ETCD_ENV)?
                .split(',')
                .filter(|endpoint| !endpoint.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// A manager on where the locks live.
    async fn lock_manager(&self) -> Result<LockManager, LockError> {
        if self.etcd.is_empty() {
            LockManager::connect(self.url.as_str()).await
        } else {
            LockManager::etcd(self.etcd.clone()).build().await
        }
    }

    fn mode(&self) -> Mode {
        if self.soak.is_some() {
            Mode::Soak
        } else {
            Mode::Check
        }
    }
}

/// Whether this process was started by the parent as a worker.
pub fn is_worker() -> bool {
    std::env::var(ROLE_ENV).is_ok_and(|role| role == WORKER_ROLE)
}

/// The whole life of a worker process.
pub fn main() -> ExitCode {
    match work() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("exclusion_check worker {}: {error}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn work() -> Result<(), Error> {
    let plan = Plan::from_env()?;
    let commands = commands_from_parent();
    quiet_injected_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(plan, commands))
}

/// What every task of the process shares.
struct Load {
    plan: Plan,
    slots: Vec<Slot>,
    state: MultiplexedConnection,
    cancellations: Cancellations,
}

async fn serve(plan: Plan, mut commands: mpsc::UnboundedReceiver<String>) -> Result<(), Error> {
    distlock::register(distlock::DEFAULT_MANAGER, plan.lock_manager().await?)?;
    let state = redis::Client::open(plan.url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let slots = (0..plan.keys)
        .map(|key| Slot::new(&plan.run, &key.to_string()))
        .collect();
    let load = Arc::new(Load {
        plan,
        slots,
        state,
        cancellations: Cancellations::new(),
    });
    warm_up(&load).await?;
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = settled_task_count(&metrics).await;

    println!("{READY}");
    next_command(&mut commands, GO).await?;
    let started = Instant::now();
    let expected_samples = load
        .plan
        .soak
        .map_or(0, |soak| soak.as_secs() / SAMPLE_EVERY.as_secs());
    let (stop_sampling, sampler) = spawn_sampler(
        load.clone(),
        metrics.clone(),
        started,
        expected_samples as usize + 16,
    );
    let mut report = match load.plan.soak {
        None => check(&load).await,
        Some(soak) => soak_load(&load, started + soak).await,
    };
    report.load = started.elapsed();
    let _ = stop_sampling.send(());
    let (samples, mut explainer) = sampler.await?;
    report.samples = samples;

    let settling = Instant::now();
    while metrics.num_alive_tasks() > baseline && settling.elapsed() < SETTLE_LIMIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    report.settle = settling.elapsed();
    // Every write of the load has reached Redis by now.
    explainer
        .look(&load.state, &load.slots, &load.cancellations)
        .await?;
    let explained = explainer.explained();
    report.late_writes = explained.late;
    report.unseen_overlaps = explained.overlaps;
    report.undecided_refusals = explained.undecided;
    report.refused_drops = explainer.dropped();
    report.tasks_baseline = baseline as u64;
    report.tasks_after = metrics.num_alive_tasks() as u64;
    report.tasks_peak = report
        .samples
        .iter()
        .map(|sample| sample.tasks)
        .max()
        .unwrap_or(0);
    println!("{DRAINED} {}", report.encode());
    next_command(&mut commands, EXIT).await
}

/// Makes this process's default manager wait once, so its wake-up
/// connection and dispatcher task exist before the baseline is taken, then
/// runs a short burst so that allocations reach their working size.
async fn warm_up(load: &Arc<Load>) -> Result<(), Error> {
    let slot = Arc::new(Slot::new(
        &load.plan.run,
        &format!("warmup-{}", load.plan.index),
    ));
    let (mode, index) = (load.plan.mode(), load.plan.index);
    // Another manager (another holder, as far as locking goes) holds the
    // lock while the default manager's call waits for it.
    let holder = load.plan.lock_manager().await?;
    let held = holder.lock(slot.lock_key()).acquire().await?;
    let waiter = tokio::spawn({
        let (slot, state) = (slot.clone(), load.state.clone());
        async move {
            let probe = Probe::new(mode, index, Duration::ZERO, None);
            critical_section(&slot, &state, &probe).await
        }
    });
    if load.plan.etcd.is_empty() {
        wait_for_waiter(&load.state, &slot).await?;
    } else {
        // etcd's watches are not visible from Redis: give the call the time
        // to find the lock held and set its watch up.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = held.release().await?;
    waiter.await??;
    drop(holder);

    let burst: Vec<JoinHandle<Result<(), SectionError>>> = (0..load.plan.tasks)
        .map(|_| {
            let (slot, state) = (slot.clone(), load.state.clone());
            tokio::spawn(async move {
                for _ in 0..4 {
                    let probe = Probe::new(mode, index, Duration::ZERO, None);
                    critical_section(&slot, &state, &probe).await?;
                }
                Ok(())
            })
        })
        .collect();
    for task in burst {
        task.await??;
    }
    Ok(())
}

/// Waits until someone subscribed to the wake-up channel of `slot`'s lock,
/// which distlock names like the lock's lease key.
async fn wait_for_waiter(state: &MultiplexedConnection, slot: &Slot) -> Result<(), Error> {
    let mut conn = state.clone();
    let pattern = format!("distlock:*:lock:{}", slot.lock_key());
    let started = Instant::now();
    loop {
        let channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await?;
        if !channels.is_empty() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Err("the warm-up call never waited for the held lock".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The number of alive tasks once it has stopped changing for a while.
async fn settled_task_count(metrics: &RuntimeMetrics) -> usize {
    let mut last = metrics.num_alive_tasks();
    let mut unchanged = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = metrics.num_alive_tasks();
        if now == last {
            unchanged += 1;
            if unchanged == 10 {
                break;
            }
        } else {
            (last, unchanged) = (now, 0);
        }
    }
    last
}

/// The check: every task runs its share of the sections, on random keys (or
/// pairs of keys); a lock wait that runs out is counted and the section
/// tried again.
async fn check(load: &Arc<Load>) -> WorkerReport {
    let quotas = split(load.plan.sections, load.plan.tasks);
    let tasks = quotas
        .into_iter()
        .enumerate()
        .map(|(task, quota)| tokio::spawn(check_task(load.clone(), task, quota)));
    collect(load, tasks.collect()).await
}

async fn check_task(load: Arc<Load>, task: usize, quota: u64) -> WorkerReport {
    let mut rng = Rng::seeded(seed(&load.plan, task));
    let mut report = empty_report(&load.plan);
    for _ in 0..quota {
        let keys = pick_keys(&mut rng, load.slots.len(), load.plan.pairs);
        let pause = if rng.below(SLEEPING_SECTIONS) == 0 {
            rng.duration_up_to(LONGEST_PAUSE)
        } else {
            Duration::ZERO
        };
        let probe = Probe::new(Mode::Check, load.plan.index, pause, None);
        loop {
            report.calls += 1;
            let started = Instant::now();
            let result = check_section(&load, &keys, &probe).await;
            report.latencies.record(started.elapsed());
            match result {
                Ok(()) => {
                    for &key in &keys {
                        report.completed[key] += 1;
                    }
                    report.overlaps += u64::from(probe.overlapped());
                    break;
                }
                Err(SectionError::Lock(LockError::Timeout { .. })) => report.timeouts += 1,
                Err(error) => {
                    report_error(&mut report, &error.to_string());
                    break;
                }
            }
        }
    }
    report
}

/// The keys of one check-mode section: one at random, or with `pairs` two
/// distinct ones in random order (every ordered pair equally likely).
fn pick_keys(rng: &mut Rng, keys: usize, pairs: bool) -> Vec<usize> {
    let first = rng.below(keys as u64) as usize;
    if !pairs {
        return vec![first];
    }
    // Any of the others: a step of 1 to keys - 1 from the first.
    let second = (first + 1 + rng.below(keys as u64 - 1) as usize) % keys;
    vec![first, second]
}

/// One check-mode section on `keys`, as [`pick_keys`] chose them.
async fn check_section(load: &Load, keys: &[usize], probe: &Probe) -> Result<(), SectionError> {
    match *keys {
        [key] => critical_section(&load.slots[key], &load.state, probe).await,
        [a, b] => pair_section(&load.slots[a], &load.slots[b], &load.state, probe).await,
        _ => unreachable!("a section locks one key or two"),
    }
}

/// The soak: until `until`, every task calls the section on random keys,
/// and cancels or panics some of the calls.
async fn soak_load(load: &Arc<Load>, until: Instant) -> WorkerReport {
    let tasks = (0..load.plan.tasks)
        .map(|task| tokio::spawn(soak_task(load.clone(), task, until)))
        .collect();
    collect(load, tasks).await
}

/// Out of 100 calls: this many run plainly, ...
const PLAIN: u64 = 55;
/// ... this many under a random timeout of up to [`LONGEST_TIMEOUT`] (which
/// mostly fires while waiting for the lock), ...
const TIMED_OUT: u64 = 25;
/// ... this many are dropped up to [`LONGEST_IN_BODY`] after their body
/// started, and the rest panic in their body.
const DROPPED_IN_BODY: u64 = 15;
const LONGEST_TIMEOUT: Duration = Duration::from_millis(5);
const LONGEST_IN_BODY: Duration = Duration::from_millis(2);

async fn soak_task(load: Arc<Load>, task: usize, until: Instant) -> WorkerReport {
    let mut rng = Rng::seeded(seed(&load.plan, task));
    let mut report = empty_report(&load.plan);
    while Instant::now() < until {
        let key = rng.below(load.slots.len() as u64) as usize;
        let pause = if rng.below(4) == 0 {
            rng.duration_up_to(LONGEST_PAUSE)
        } else {
            Duration::ZERO
        };
        let fault = rng.below(100);
        let panic_at = (fault >= PLAIN + TIMED_OUT + DROPPED_IN_BODY)
            .then(|| [Stage::Start, Stage::Middle, Stage::End][rng.below(3) as usize]);
        let probe = Probe::new(Mode::Soak, load.plan.index, pause, panic_at);
        let call = AssertUnwindSafe(critical_section(&load.slots[key], &load.state, &probe))
            .catch_unwind();
        report.calls += 1;
        let started = Instant::now();
        let output = if fault < PLAIN {
            Ok(call.await)
        } else if fault < PLAIN + TIMED_OUT {
            let limit = rng.duration_up_to(LONGEST_TIMEOUT);
            unless(call, tokio::time::sleep(limit)).await
        } else if fault < PLAIN + TIMED_OUT + DROPPED_IN_BODY {
            let delay = rng.duration_up_to(LONGEST_IN_BODY);
            let in_body = async {
                probe.entered().await;
                tokio::time::sleep(delay).await;
            };
            unless(call, in_body).await
        } else {
            Ok(call.await)
        };
        let dropped_by = unix_micros();
        match output {
            Err(_) if !probe.has_entered() => report.cancelled_waiting += 1,
            Err(fired) if !probe.has_finished() => {
                report.cancelled_in_body += 1;
                load.cancellations.record(Dropped {
                    token: probe.token(),
                    from: fired,
                    to: dropped_by,
                });
            }
            Err(_) => report.cancelled_in_release += 1,
            Ok(Err(panic)) if panic.is::<InjectedPanic>() => report.panics += 1,
            Ok(Err(_)) => report_error(&mut report, "a section panicked unexpectedly"),
            Ok(Ok(Ok(()))) => {
                report.latencies.record(started.elapsed());
                report.completed[key] += 1;
            }
            Ok(Ok(Err(SectionError::Lock(LockError::Timeout { .. })))) => report.timeouts += 1,
            Ok(Ok(Err(error))) => report_error(&mut report, &error.to_string()),
        }
        // Counted however the call ended: a refused write is an overlap
        // whether or not the caller was still waiting for the answer.
        report.overlaps += u64::from(probe.overlapped());
    }
    report
}

/// Runs `call` unless `canceller` completes first, which drops it: then
/// `Err` of the instant (µs since the Unix epoch) the canceller fired, when
/// the call was still running.
async fn unless<F: Future>(call: F, canceller: impl Future<Output = ()>) -> Result<F::Output, u64> {
    tokio::select! {
        output = call => Ok(output),
        () = canceller => Err(unix_micros()),
    }
}

/// Waits for every task and adds up what they saw.
async fn collect(load: &Load, tasks: Vec<JoinHandle<WorkerReport>>) -> WorkerReport {
    let mut report = empty_report(&load.plan);
    for task in tasks {
        match task.await {
            Ok(task_report) => report.add_counts(&task_report),
            Err(error) => report_error(&mut report, &format!("a task failed: {error}")),
        }
    }
    report
}

fn empty_report(plan: &Plan) -> WorkerReport {
    WorkerReport {
        completed: vec![0; plan.keys],
        latencies: Latencies::default(),
        ..WorkerReport::default()
    }
}

fn report_error(report: &mut WorkerReport, error: &str) {
    if report.errors == 0 {
        eprintln!("exclusion_check worker {}: {error}", std::process::id());
    }
    report.errors += 1;
}

/// Samples memory and tasks every [`SAMPLE_EVERY`] until told to stop, and
/// explains the state's refusals as they come (while this process still
/// remembers the bodies it dropped). Room for `expected` samples is made up
/// front, so that the samples do not show up in the heap they measure.
fn spawn_sampler(
    load: Arc<Load>,
    metrics: RuntimeMetrics,
    started: Instant,
    expected: usize,
) -> (
    tokio::sync::oneshot::Sender<()>,
    JoinHandle<(Vec<Sample>, Explainer)>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(expected);
        let mut explainer = Explainer::new();
        let mut ticks = tokio::time::interval_at((started + SAMPLE_EVERY).into(), SAMPLE_EVERY);
        loop {
            tokio::select! {
                _ = &mut stopped => return (samples, explainer),
                _ = ticks.tick() => {
                    samples.push(Sample {
                        at: started.elapsed(),
                        rss_kib: resident_kib(),
                        heap_kib: (crate::heap::in_use() / 1024) as u64,
                        tasks: metrics.num_alive_tasks() as u64,
                    });
                    // A failure here shows again in the last look, which reports it.
                    let _ = explainer.look(&load.state, &load.slots, &load.cancellations).await;
                }
            }
        }
    });
    (stop, sampler)
}

/// `VmRSS` of /proc/self/status, in KiB (0 where there is no procfs).
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Lines from the parent, read on a thread of their own. End of file (the
/// parent died or closed our stdin) ends the process.
fn commands_from_parent() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line.trim().to_owned());
        }
        std::process::exit(3);
    });
    receiver
}

async fn next_command(
    commands: &mut mpsc::UnboundedReceiver<String>,
    expected: &str,
) -> Result<(), Error> {
    match commands.recv().await {
        Some(command) if command == expected => Ok(()),
        Some(command) => {
            Err(format!("expected {expected:?} from the parent, got {command:?}").into())
        }
        None => Err("the parent closed stdin".into()),
    }
}

/// Injected panics are expected by the thousand: keep them off stderr.
fn quiet_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<InjectedPanic>() {
            default(info);
        }
    }));
}

fn seed(plan: &Plan, task: usize) -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    clock ^ ((plan.index as u64) << 48) ^ ((task as u64) << 32) ^ u64::from(std::process::id())
}

/// `total` split into `parts` shares differing by at most one.
pub fn split(total: u64, parts: usize) -> Vec<u64> {
    let parts_u64 = parts as u64;
    (0..parts_u64)
        .map(|i| total / parts_u64 + u64::from(i < total % parts_u64))
        .collect()
}
