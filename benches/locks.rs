//! `cargo bench`: distlock against baselines measured in the same run, on the
//! same machine, each benchmark on its own throwaway `redis-server`.
//!
//! `DISTLOCK_BENCH_SECS` (default 3) sets the seconds measured per figure and
//! `DISTLOCK_BENCH_WARMUP_SECS` (default 0.5) the warm-up before each; an
//! argument such as `cargo bench --bench locks -- handoff` runs only the
//! benchmarks whose name contains it (`uncontended`, `hot_key`,
//! `hot_key_processes`, `handoff`, `redlock`).

mod common;

use std::cell::OnceCell;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::contend::{self, Tally, Window};
use common::handoff;
use common::locking::{self, Algorithm, BenchError, Locker};
use common::procs::{self, ChildPlan};
use common::report::{self, Row};
use common::settings::{MEASURE_ENV, Settings, WARMUP_ENV};
use common::stats::Percentiles;
use common::turns::{self, Cycle};
use lock_testkit::RedisServer;

const UNCONTENDED_TASKS: usize = 64;
const HOT_KEY_TASKS: usize = 32;
const PROCESSES: usize = 4;
const TASKS_PER_PROCESS: usize = 8;
const HANDOFF_HOLD: Duration = Duration::from_millis(1);
/// Tasks sharing the lock in the handoff runs: one holder, the rest waiting.
const HANDOFF_TASKS: [usize; 2] = [2, 8];
/// At most this long is spent measuring the PING round trip.
const PING_MEASURE: Duration = Duration::from_secs(2);
/// Independent servers of the Redlock benchmark.
const REDLOCK_NODES: usize = 5;
/// Tasks of the Redlock throughput run, each on its own key.
const REDLOCK_TASKS: usize = 16;
const CONTENDED: [Algorithm; 3] = [
    Algorithm::Distlock,
    Algorithm::FixedPoll,
    Algorithm::BackoffPoll,
];

struct Bench {
    name: &'static str,
    run: fn(&Harness) -> Result<Vec<Row>, BenchError>,
}

const BENCHES: [Bench; 5] = [
    Bench {
        name: "uncontended",
        run: uncontended,
    },
    Bench {
        name: "hot_key",
        run: hot_key,
    },
    Bench {
        name: "hot_key_processes",
        run: hot_key_processes,
    },
    Bench {
        name: "handoff",
        run: handoff,
    },
    Bench {
        name: "redlock",
        run: redlock,
    },
];

/// What the benchmarks share: settings, the runtime, what was learnt of Redis.
struct Harness {
    settings: Settings,
    runtime: tokio::runtime::Runtime,
    redis_version: OnceCell<String>,
}

fn main() -> ExitCode {
    if procs::is_child() {
        return procs::child_main();
    }
    let settings = match Settings::from_env_and_args() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    let harness = Harness {
        settings,
        runtime,
        redis_version: OnceCell::new(),
    };
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|bench| harness.settings.selects(bench.name))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = BENCHES.iter().map(|bench| bench.name).collect();
        eprintln!(
            "no benchmark name contains {:?}; the benchmarks are {}",
            harness.settings.filter().unwrap_or_default(),
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    println!(
        "distlock benchmarks on {}: {} measured after {} of warm-up per figure ({MEASURE_ENV}, {WARMUP_ENV})\n",
        cores(),
        report::duration(harness.settings.measure),
        report::duration(harness.settings.warmup),
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failures = 0;
    for bench in selected {
        match (bench.run)(&harness) {
            Ok(bench_rows) => rows.extend(bench_rows),
            Err(error) => {
                eprintln!("benchmark {} failed: {error}", bench.name);
                failures += 1;
            }
        }
    }
    println!("## Summary\n");
    println!(
        "{}, redis-server {}, {} measured per figure after {} of warm-up; \
         waits are per acquisition, from calling acquire to holding the lock \
         (handoff rows: from the holder starting its release to the next holder holding the lock; \
         latency rows: whole lock+unlock cycles).\n",
        cores(),
        harness
            .redis_version
            .get()
            .map_or("unknown", String::as_str),
        report::duration(harness.settings.measure),
        report::duration(harness.settings.warmup),
    );
    report::print_summary(&rows);
    println!("benchmarks took {:.1} s", started.elapsed().as_secs_f64());
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// 64 tasks, each on its own key: lock + unlock cycles per second.
fn uncontended(harness: &Harness) -> Result<Vec<Row>, BenchError> {
    let title = format!("Uncontended, {UNCONTENDED_TASKS} tasks on own keys");
    let server = RedisServer::start();
    harness.runtime.block_on(async {
        harness.learn_redis_version(&server.url()).await?;
        let mut runs = Vec::new();
        for algorithm in [Algorithm::Distlock, Algorithm::SetDel] {
            let keys = (0..UNCONTENDED_TASKS)
                .map(|task| fresh_key(&format!("uncontended:{task}")))
                .collect();
            runs.push((
                algorithm.label(),
                harness.in_process(algorithm, &server.url(), keys).await?,
            ));
        }
        Ok(harness.contended_section(&title, "lock+unlock cycles/s", &runs))
    })
}

/// 32 tasks of one process on one key, empty critical section.
fn hot_key(harness: &Harness) -> Result<Vec<Row>, BenchError> {
    let title = format!("Hot key, 1 process × {HOT_KEY_TASKS} tasks");
    let server = RedisServer::start();
    harness.runtime.block_on(async {
        harness.learn_redis_version(&server.url()).await?;
        let mut runs = Vec::new();
        for algorithm in CONTENDED {
            let keys = vec![fresh_key("hot"); HOT_KEY_TASKS];
            runs.push((
                algorithm.label(),
                harness.in_process(algorithm, &server.url(), keys).await?,
            ));
        }
        Ok(harness.contended_section(&title, "acquisitions/s", &runs))
    })
}

/// 4 processes × 8 tasks on one key, empty critical section.
fn hot_key_processes(harness: &Harness) -> Result<Vec<Row>, BenchError> {
    let title = format!("Hot key, {PROCESSES} processes × {TASKS_PER_PROCESS} tasks");
    let server = RedisServer::start();
    harness.runtime.block_on(async {
        harness.learn_redis_version(&server.url()).await?;
        let mut runs = Vec::new();
        for algorithm in CONTENDED {
            let plan = ChildPlan {
                url: server.url(),
                algorithm,
                tasks: TASKS_PER_PROCESS,
                key: fresh_key("hot-processes"),
                warmup: harness.settings.warmup,
                measure: harness.settings.measure,
            };
            runs.push((algorithm.label(), procs::run(&plan, PROCESSES).await?));
        }
        Ok(harness.contended_section(&title, "acquisitions/s", &runs))
    })
}

/// Release-to-next-holder latency against the PING round trip.
fn handoff(harness: &Harness) -> Result<Vec<Row>, BenchError> {
    let server = RedisServer::start();
    let url = server.url();
    let settings = &harness.settings;
    harness.runtime.block_on(async {
        harness.learn_redis_version(&url).await?;
        let mut conn = locking::connect_plain(&url).await?;
        let window = Window::after_warmup(
            Instant::now(),
            settings.warmup,
            settings.measure.min(PING_MEASURE),
        );
        let ping = handoff::ping_round_trips(&mut conn, window)
            .await?
            .percentiles()
            .ok_or("no PING round trip was measured")?;
        let locker = Locker::connect(Algorithm::Distlock, &url).await?;
        let mut rows = Vec::new();
        let mut lines = vec![vec![
            "PING round trip".to_owned(),
            report::duration(ping.p50),
            report::duration(ping.p99),
            report::duration(ping.max),
            report::thousands(ping.count as u64),
            "1.00×".to_owned(),
            "0".to_owned(),
        ]];
        for tasks in HANDOFF_TASKS {
            let waiters = tasks - 1;
            let label = format!(
                "Handoff, {waiters} waiter{}, hold {} ms",
                if waiters == 1 { "" } else { "s" },
                HANDOFF_HOLD.as_millis()
            );
            let window = Window::after_warmup(Instant::now(), settings.warmup, settings.measure);
            let run =
                handoff::run(&locker, &fresh_key("handoff"), tasks, HANDOFF_HOLD, window).await;
            if let Some(error) = &run.first_error {
                eprintln!("{label}: {} errors, first: {error}", run.errors);
            }
            let handoffs = run.samples.percentiles().ok_or("no handoff was measured")?;
            let vs_ping = report::ratio(handoffs.p50.as_secs_f64(), ping.p50.as_secs_f64());
            lines.push(vec![
                format!("distlock, {label}"),
                report::duration(handoffs.p50),
                report::duration(handoffs.p99),
                report::duration(handoffs.max),
                report::thousands(handoffs.count as u64),
                vs_ping.clone(),
                run.errors.to_string(),
            ]);
            rows.push(Row {
                benchmark: label,
                distlock: format!("p50 {}", report::duration(handoffs.p50)),
                baseline: "PING round trip".to_owned(),
                baseline_figure: format!("p50 {}", report::duration(ping.p50)),
                ratio: vs_ping,
                distlock_wait: report::waits(Some(handoffs)),
                baseline_wait: report::waits(Some(ping)),
            });
        }
        println!("## Handoff latency: release start to next holder, vs PING\n");
        report::print_markdown(
            &[
                "",
                "p50",
                "p99",
                "max",
                "samples",
                "p50 / PING p50",
                "errors",
            ],
            &lines,
        );
        Ok(rows)
    })
}

/// distlock on Redlock against distlock on one server: whole lock+unlock
/// cycles of one task taking them in turns (latency), next to what a bare
/// fan-out costs on this machine, then 16 tasks on their own keys
/// (throughput).
fn redlock(harness: &Harness) -> Result<Vec<Row>, BenchError> {
    let single = RedisServer::start();
    let nodes = lock_testkit::start_many(REDLOCK_NODES);
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let majority = REDLOCK_NODES / 2 + 1;
    let settings = &harness.settings;
    harness.runtime.block_on(async {
        harness.learn_redis_version(&single.url()).await?;
        let one_server = Locker::connect(Algorithm::Distlock, &single.url()).await?;
        let redlock = Locker::redlock(&urls).await?;
        let redlock_majority = Locker::redlock(&urls[..majority]).await?;
        let mut fanout = Vec::new();
        for url in &urls {
            fanout.push(locking::connect_plain(url).await?);
        }
        let labels = [
            "distlock, 1 server".to_owned(),
            format!("distlock, Redlock over {majority} servers"),
            format!("distlock, Redlock over {REDLOCK_NODES} servers"),
            "2 × PING, 1 server".to_owned(),
            format!("2 × PING to {REDLOCK_NODES} servers, first {majority} answers"),
        ];
        let mut cycles = [
            Cycle::Lock(one_server.contender(0)),
            Cycle::Lock(redlock_majority.contender(0)),
            Cycle::Lock(redlock.contender(0)),
            Cycle::Fanout {
                connections: vec![locking::connect_plain(&single.url()).await?],
                answers: 1,
            },
            Cycle::Fanout {
                connections: fanout,
                answers: majority,
            },
        ];
        let window = Window::after_warmup(Instant::now(), settings.warmup, settings.measure);
        let durations = turns::run(&mut cycles, &fresh_key("redlock"), window).await?;
        let percentiles = durations
            .iter()
            .map(|samples| samples.percentiles().ok_or("no cycle was measured"))
            .collect::<Result<Vec<_>, _>>()?;
        let [lock, lock_majority, lock_all, ping, ping_all] = &percentiles[..] else {
            return Err("one figure per cycle was expected".into());
        };
        let versus = |figure: &Percentiles, baseline: &Percentiles| {
            report::ratio(figure.p50.as_secs_f64(), baseline.p50.as_secs_f64())
        };
        let lines: Vec<Vec<String>> = labels
            .iter()
            .zip(&percentiles)
            .zip([lock, lock, lock, ping, ping])
            .map(|((label, figure), baseline)| {
                vec![
                    label.clone(),
                    report::duration(figure.p50),
                    report::duration(figure.p99),
                    report::duration(figure.max),
                    report::thousands(figure.count as u64),
                    versus(figure, baseline),
                ]
            })
            .collect();
        println!("## Redlock: whole lock+unlock cycles of one task, taken in turns\n");
        report::print_markdown(
            &[
                "cycle",
                "p50",
                "p99",
                "max",
                "samples",
                "p50 / 1 server p50",
            ],
            &lines,
        );
        let mut rows: Vec<Row> = [
            (2, lock_all, lock),
            (1, lock_majority, lock),
            (4, ping_all, ping),
        ]
        .into_iter()
        .map(|(index, figure, baseline)| Row {
            benchmark: format!("Latency, 1 task: {}", labels[index]),
            distlock: format!("p50 {}", report::duration(figure.p50)),
            baseline: labels[if index == 4 { 3 } else { 0 }].clone(),
            baseline_figure: format!("p50 {}", report::duration(baseline.p50)),
            ratio: versus(figure, baseline),
            distlock_wait: report::waits(Some(*figure)),
            baseline_wait: report::waits(Some(*baseline)),
        })
        .collect();

        let mut runs = Vec::new();
        for (index, locker) in [(2, &redlock), (0, &one_server)] {
            let keys = (0..REDLOCK_TASKS)
                .map(|task| fresh_key(&format!("redlock:{task}")))
                .collect();
            let window = Window::after_warmup(Instant::now(), settings.warmup, settings.measure);
            runs.push((
                labels[index].as_str(),
                contend::run(locker, keys, window).await,
            ));
        }
        let title = format!("Redlock, {REDLOCK_TASKS} tasks on own keys");
        rows.extend(harness.contended_section(&title, "lock+unlock cycles/s", &runs));
        Ok(rows)
    })
}

impl Harness {
    /// Runs `keys.len()` tasks of this process, one per key, for one window.
    async fn in_process(
        &self,
        algorithm: Algorithm,
        url: &str,
        keys: Vec<String>,
    ) -> Result<Tally, BenchError> {
        let locker = Locker::connect(algorithm, url).await?;
        let window =
            Window::after_warmup(Instant::now(), self.settings.warmup, self.settings.measure);
        Ok(contend::run(&locker, keys, window).await)
    }

    /// Prints the detail of one benchmark and returns its summary rows:
    /// distlock (the first run) against each other run.
    fn contended_section(&self, title: &str, unit: &str, runs: &[(&str, Tally)]) -> Vec<Row> {
        let measure = self.settings.measure;
        let lines: Vec<Vec<String>> = runs
            .iter()
            .map(|(label, tally)| {
                if let Some(error) = &tally.first_error {
                    eprintln!(
                        "{title}, {}: {} errors, first: {error}",
                        label, tally.errors
                    );
                }
                let waits = tally.waits.percentiles();
                let per_task = match (tally.per_task.iter().min(), tally.per_task.iter().max()) {
                    (Some(min), Some(max)) => format!("{min} – {max}"),
                    _ => "n/a".to_owned(),
                };
                vec![
                    (*label).to_owned(),
                    report::rate(tally.per_second(measure)),
                    waits.map_or("n/a".to_owned(), |w| report::duration(w.p50)),
                    waits.map_or("n/a".to_owned(), |w| report::duration(w.p99)),
                    waits.map_or("n/a".to_owned(), |w| report::duration(w.max)),
                    report::thousands(tally.waits.count() as u64),
                    per_task,
                    format!("{} / {}", tally.errors, tally.abandoned),
                ]
            })
            .collect();
        println!("## {title}\n");
        report::print_markdown(
            &[
                "algorithm",
                unit,
                "p50 wait",
                "p99 wait",
                "max wait",
                "waits",
                "per task (min – max)",
                "errors / abandoned",
            ],
            &lines,
        );
        let Some(((_, distlock), baselines)) = runs.split_first() else {
            return Vec::new();
        };
        baselines
            .iter()
            .map(|(label, baseline)| Row {
                benchmark: format!("{title}, {unit}"),
                distlock: report::rate(distlock.per_second(measure)),
                baseline: (*label).to_owned(),
                baseline_figure: report::rate(baseline.per_second(measure)),
                ratio: report::ratio(distlock.per_second(measure), baseline.per_second(measure)),
                distlock_wait: report::waits(distlock.waits.percentiles()),
                baseline_wait: report::waits(baseline.waits.percentiles()),
            })
            .collect()
    }

    async fn learn_redis_version(&self, url: &str) -> Result<(), BenchError> {
        if self.redis_version.get().is_some() {
            return Ok(());
        }
        let mut conn = locking::connect_plain(url).await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        let version = info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned();
        let _ = self.redis_version.set(version);
        Ok(())
    }
}

/// A key no earlier run of this process used, so a lock abandoned at the end
/// of one run cannot block the next.
fn fresh_key(label: &str) -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    format!("bench:{label}:{}", RUNS.fetch_add(1, Ordering::Relaxed))
}

fn cores() -> String {
    match std::thread::available_parallelism() {
        Ok(n) => format!("{n} cores"),
        Err(_) => "an unknown number of cores".to_owned(),
    }
}
