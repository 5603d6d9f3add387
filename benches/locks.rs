//! `cargo bench`: distlock against baselines measured in the same run, on the
//! same machine, each benchmark on its own throwaway `redis-server`, ending in
//! one line per target of issue 13 (U1 … R1) with its verdict.
//!
//! `DISTLOCK_BENCH_SECS` (default 3) sets the seconds measured per figure and
//! `DISTLOCK_BENCH_WARMUP_SECS` (default 0.5) the warm-up before each; an
//! argument such as `cargo bench --bench locks -- handoff` runs only the
//! benchmarks whose name contains it (`uncontended`, `one_task`, `hot_key`,
//! `hot_key_processes`, `handoff`, `redlock`), or the one measuring a target
//! id (`-- U2`, `-- h1`).
//!
//! After the tables, `-- --charts` draws the charts of the README into
//! `docs/charts/` (`--charts=DIR` elsewhere) and `-- --json FILE` writes the
//! figures as JSON; both are kept from every benchmark that ran:
//!
//! ```text
//! cargo bench --bench locks -- --charts
//! cargo bench --bench locks -- --json target/bench.json hot_key
//! ```
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "measurement code: nanosecond counts and percentiles turned back into integers are far inside u64"
)]

mod common;

use std::cell::{OnceCell, RefCell};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::charts;
use common::contend::{self, Tally, Window};
use common::figures::{self, Benchmark, Figure, Machine};
use common::handoff;
use common::locking::{self, Algorithm, BenchError, Locker};
use common::procs::{self, ChildPlan, ChildWork};
use common::redis_time::RedisTime;
use common::relay::{self, CrossHandoffs};
use common::report::{self, Check, TargetLine};
use common::settings::{MEASURE_ENV, Settings, WARMUP_ENV};
use common::stats::{Percentiles, Waits};
use common::turns::{self, Cycle};
use lock_testkit::RedisServer;

const UNCONTENDED_TASKS: usize = 64;
const HOT_KEY_TASKS: usize = 32;
const PROCESSES: usize = 4;
const TASKS_PER_PROCESS: usize = 8;
const HANDOFF_HOLD: Duration = Duration::from_millis(1);
/// Tasks sharing the lock in the in-process handoff runs: one holder, the
/// rest waiting.
const HANDOFF_TASKS: [usize; 2] = [2, 8];
/// At most this long is spent measuring the PING round trip.
const PING_MEASURE: Duration = Duration::from_secs(2);
/// Independent servers of the Redlock benchmark.
const REDLOCK_NODES: usize = 5;
/// Tasks of the Redlock throughput run, each on its own key.
const REDLOCK_TASKS: usize = 16;
/// The Redlock hot key: processes × tasks each.
const REDLOCK_PROCESSES: usize = 2;
const REDLOCK_TASKS_PER_PROCESS: usize = 8;
/// Uncontended runs: distlock, then its baselines; SET+DEL is the floor.
const UNCONTENDED: [Algorithm; 4] = [
    Algorithm::Distlock,
    Algorithm::Seed,
    Algorithm::Rslock,
    Algorithm::SetDel,
];
/// Hot-key runs: distlock, rslock (the target's baseline), the seed
/// protocol, two polling loops.
const CONTENDED: [Algorithm; 5] = [
    Algorithm::Distlock,
    Algorithm::Rslock,
    Algorithm::Seed,
    Algorithm::BackoffPoll,
    Algorithm::FixedPoll,
];
/// The targets of issue 13, in the order of the summary.
const TARGET_IDS: [&str; 7] = ["U1", "U2", "U3", "H1", "H2", "L1", "R1"];

struct Bench {
    name: &'static str,
    /// The targets whose figures this benchmark measures.
    ids: &'static [&'static str],
    run: fn(&Harness) -> Result<Vec<TargetLine>, BenchError>,
}

const BENCHES: [Bench; 6] = [
    Bench {
        name: "uncontended",
        ids: &["U1", "U2"],
        run: uncontended,
    },
    Bench {
        name: "one_task",
        ids: &["U3"],
        run: one_task,
    },
    Bench {
        name: "hot_key",
        ids: &["H2"],
        run: hot_key,
    },
    Bench {
        name: "hot_key_processes",
        ids: &["H1"],
        run: hot_key_processes,
    },
    Bench {
        name: "handoff",
        ids: &["L1"],
        run: handoff,
    },
    Bench {
        name: "redlock",
        ids: &["R1"],
        run: redlock,
    },
];

/// What the benchmarks share: settings, the runtime, what was learnt of Redis.
struct Harness {
    settings: Settings,
    runtime: tokio::runtime::Runtime,
    redis_version: OnceCell<String>,
    /// What each benchmark measured, for the charts and the JSON report.
    kept: RefCell<Vec<Benchmark>>,
}

/// One algorithm's run of a throughput benchmark.
struct Run {
    algorithm: Algorithm,
    label: String,
    tally: Tally,
}

impl Run {
    fn new(algorithm: Algorithm, tally: Tally) -> Run {
        Run {
            algorithm,
            label: algorithm.label().to_owned(),
            tally,
        }
    }
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
        kept: RefCell::new(Vec::new()),
    };
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|bench| harness.settings.selects(bench.name, bench.ids))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = BENCHES.iter().map(|bench| bench.name).collect();
        eprintln!(
            "no benchmark name contains {:?}, nor is it a target id; the benchmarks are {}, the ids {}",
            harness.settings.filter().unwrap_or_default(),
            names.join(", "),
            TARGET_IDS.join(", ")
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
    let mut lines = Vec::new();
    let mut failures = 0;
    for bench in selected {
        match (bench.run)(&harness) {
            Ok(bench_lines) => lines.extend(bench_lines),
            Err(error) => {
                eprintln!("benchmark {} failed: {error}", bench.name);
                failures += 1;
            }
        }
    }
    harness.print_summary(&lines);
    failures += harness.write_outputs(&lines);
    println!("benchmarks took {:.1} s", started.elapsed().as_secs_f64());
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// U1 and U2: 64 tasks, each on its own key, each algorithm on a fresh
/// server whose `INFO commandstats` is read at both ends of the window.
fn uncontended(harness: &Harness) -> Result<Vec<TargetLine>, BenchError> {
    let mut runs = Vec::new();
    let mut redis_times = Vec::new();
    for algorithm in UNCONTENDED {
        let server = RedisServer::start();
        let (run, redis_time) = harness
            .runtime
            .block_on(harness.uncontended_run(algorithm, &server.url()))?;
        runs.push(run);
        redis_times.push(redis_time);
    }
    let title = format!("U1: uncontended, {UNCONTENDED_TASKS} tasks on own keys, one process");
    harness.print_runs(&title, "lock+unlock cycles/s", &runs);
    let per_cycle: Vec<Option<f64>> = runs
        .iter()
        .zip(&redis_times)
        .map(|(run, spent)| {
            report::quotient(spent.command_usec() as f64, run.tally.acquisitions as f64)
        })
        .collect();
    print_redis_time(&runs, &redis_times, &per_cycle);
    let mut kept = harness.benchmark_of(
        "uncontended",
        &title,
        format!("{UNCONTENDED_TASKS} tasks on own keys, one process"),
        &runs,
    );
    for (figure, usec) in kept.figures.iter_mut().zip(&per_cycle) {
        figure.redis_us_per_cycle = *usec;
    }
    harness.keep(kept);

    let rate = |algorithm| harness.rate_of(&runs, algorithm);
    let vs_seed =
        rate(Algorithm::Seed).and_then(|seed| report::quotient(rate(Algorithm::Distlock)?, seed));
    let vs_rslock = rate(Algorithm::Rslock)
        .and_then(|rslock| report::quotient(rate(Algorithm::Distlock)?, rslock));
    let rate_text = |algorithm| rate(algorithm).map_or("n/a".to_owned(), report::rate);
    let u1 = TargetLine {
        id: "U1",
        figure: rate_text(Algorithm::Distlock),
        baseline: format!(
            "seed {}; rslock {}",
            rate_text(Algorithm::Seed),
            rate_text(Algorithm::Rslock)
        ),
        ratio: format!(
            "{} seed; {} rslock",
            report::ratio(vs_seed),
            report::ratio(vs_rslock)
        ),
        target: "≥ 0.9× seed and ≥ 1.0× rslock",
        checks: vec![
            Check::at_least("vs seed", vs_seed, 0.9),
            Check::at_least("vs rslock", vs_rslock, 1.0),
        ],
    };
    let usec_text =
        |usec: Option<f64>| usec.map_or("n/a".to_owned(), |usec| format!("{usec:.2} µs/cycle"));
    let u2_ratio = per_cycle[1].and_then(|seed| report::quotient(per_cycle[0]?, seed));
    let u2 = TargetLine {
        id: "U2",
        figure: usec_text(per_cycle[0]),
        baseline: format!("seed {}", usec_text(per_cycle[1])),
        ratio: report::ratio(u2_ratio),
        target: "≤ 1.2× seed (commandstats usec)",
        checks: vec![Check::at_most("Redis time", u2_ratio, 1.2)],
    };
    Ok(vec![u1, u2])
}

/// U2's detail: Redis's time per cycle, by command.
fn print_redis_time(runs: &[Run], redis_times: &[RedisTime], per_cycle: &[Option<f64>]) {
    let lines: Vec<Vec<String>> = runs
        .iter()
        .zip(redis_times)
        .zip(per_cycle)
        .map(|((run, spent), usec)| {
            let cycles = run.tally.acquisitions;
            let cpu = spent
                .main_thread_cpu_us()
                .and_then(|cpu| report::quotient(cpu as f64, cycles as f64));
            vec![
                run.label.clone(),
                usec.map_or("n/a".to_owned(), |usec| format!("{usec:.2} µs")),
                cpu.map_or("n/a".to_owned(), |cpu| format!("{cpu:.2} µs")),
                report::thousands(cycles),
                spent.per_cycle_breakdown(cycles),
            ]
        })
        .collect();
    println!(
        "## U2: Redis's time per uncontended cycle (each algorithm on a fresh server)\n\n\
         commandstats usec: the sum over every command row, read at both ends of the window, \
         divided by the cycles completed in it; Redis also counts commands called from a script \
         in their own rows, so those are counted twice. Main-thread CPU: `INFO cpu`, the same \
         window, including parsing and socket I/O.\n"
    );
    report::print_markdown(
        &[
            "algorithm",
            "commandstats usec / cycle",
            "main-thread CPU / cycle",
            "cycles",
            "per cycle: command calls× usec",
        ],
        &lines,
    );
}

/// U3: whole lock+unlock cycles of one task, distlock and the baselines
/// taken in turns so that the noise of a shared machine hits them alike.
fn one_task(harness: &Harness) -> Result<Vec<TargetLine>, BenchError> {
    let server = RedisServer::start();
    let url = server.url();
    let algorithms = [Algorithm::Distlock, Algorithm::Seed, Algorithm::Rslock];
    harness.runtime.block_on(async {
        harness.learn_redis_version(&url).await?;
        let mut cycles = Vec::new();
        for algorithm in algorithms {
            cycles.push(Cycle::Lock(
                Locker::connect(algorithm, &url).await?.contender(0),
            ));
        }
        let samples = harness.cycles_in_turns(&mut cycles, "one-task").await?;
        let labels: Vec<&str> = algorithms
            .iter()
            .map(|algorithm| algorithm.label())
            .collect();
        harness.keep_cycles(
            "one_task",
            "U3: one task's lock+unlock cycles",
            &labels,
            &samples,
        );
        let percentiles = percentiles_of(&samples)?;
        let [distlock, seed, _] = &percentiles[..] else {
            return Err("one figure per cycle was expected".into());
        };
        let versus = |figure: &Percentiles| {
            report::quotient(figure.p50.as_secs_f64(), seed.p50.as_secs_f64())
        };
        println!("## U3: one task's lock+unlock cycles, algorithms taken in turns\n");
        print_cycles(&labels, &percentiles, "p50 / seed p50", versus);
        let ratio = versus(distlock);
        Ok(vec![TargetLine {
            id: "U3",
            figure: format!("p50 {}", report::duration(distlock.p50)),
            baseline: format!("seed p50 {}", report::duration(seed.p50)),
            ratio: report::ratio(ratio),
            target: "≤ 1.1× seed p50",
            checks: vec![Check::at_most("p50", ratio, 1.1)],
        }])
    })
}

/// H2: 32 tasks of one process on one key, empty critical section.
fn hot_key(harness: &Harness) -> Result<Vec<TargetLine>, BenchError> {
    let server = RedisServer::start();
    let runs = harness.runtime.block_on(async {
        harness.learn_redis_version(&server.url()).await?;
        let mut runs = Vec::new();
        for algorithm in CONTENDED {
            let keys = vec![fresh_key("hot"); HOT_KEY_TASKS];
            let tally = harness.in_process(algorithm, &server.url(), keys).await?;
            runs.push(Run::new(algorithm, tally));
        }
        Ok::<_, BenchError>(runs)
    })?;
    let workload = format!("1 process × {HOT_KEY_TASKS} tasks");
    let title = format!("H2: hot key, {workload}");
    harness.print_runs(&title, "acquisitions/s", &runs);
    harness.keep(harness.benchmark_of("hot_key", &title, workload, &runs));
    let line = harness.hot_key_line("H2", &runs, "≥ 1.5× rslock, p99 wait ≤ 5 ms", 1.5, 5.0);
    Ok(vec![line])
}

/// H1: 4 processes × 8 tasks on one key, empty critical section.
fn hot_key_processes(harness: &Harness) -> Result<Vec<TargetLine>, BenchError> {
    let server = RedisServer::start();
    let runs = harness.runtime.block_on(async {
        harness.learn_redis_version(&server.url()).await?;
        let mut runs = Vec::new();
        for algorithm in CONTENDED {
            let plan = harness.contend_plan(vec![server.url()], algorithm, TASKS_PER_PROCESS);
            runs.push(Run::new(algorithm, procs::run(&plan, PROCESSES).await?));
        }
        Ok::<_, BenchError>(runs)
    })?;
    let workload = format!("{PROCESSES} processes × {TASKS_PER_PROCESS} tasks");
    let title = format!("H1: hot key, {workload}");
    harness.print_runs(&title, "acquisitions/s", &runs);
    harness.keep(harness.benchmark_of("hot_key_processes", &title, workload, &runs));
    let mut line = harness.hot_key_line(
        "H1",
        &runs,
        "≥ 1.0× rslock, p99 wait ≤ 10 ms, per-task max/min ≤ 1.25",
        1.0,
        10.0,
    );
    let fairness = runs
        .iter()
        .find(|run| run.algorithm == Algorithm::Distlock)
        .and_then(|run| run.tally.max_over_min());
    let _ = write!(line.figure, ", max/min {}", report::spread(fairness));
    line.checks.push(Check::at_most("max/min", fairness, 1.25));
    Ok(vec![line])
}

/// L1: a release in one process to the next holder in another, against the
/// PING round trip; the in-process handoffs beside it for comparison.
fn handoff(harness: &Harness) -> Result<Vec<TargetLine>, BenchError> {
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
        let ping_samples = handoff::ping_round_trips(&mut conn, window).await?;
        let ping = ping_samples
            .percentiles()
            .ok_or("no PING round trip was measured")?;
        let found = cross_process_handoffs(harness, &url).await?;
        let cross = found
            .samples
            .percentiles()
            .ok_or("no cross-process handoff was measured")?;
        let signal = found
            .signals
            .percentiles()
            .ok_or("no turn signal across processes was measured")?;
        let oddities = found.same_process + found.inversions + found.late_waiter;
        let mut kept = vec![
            Figure::of_samples("PING round trip", &ping_samples, 0),
            Figure::of_samples(
                "one message to the waiting process (LPUSH → BLPOP)",
                &found.signals,
                0,
            ),
            Figure::of_samples(
                &format!(
                    "distlock, across processes, {} processes × 1 task",
                    procs::RELAY_PROCESSES
                ),
                &found.samples,
                oddities,
            ),
        ];
        kept.extend(in_process_handoffs(harness, &url).await?);
        let mut lines = Vec::new();
        for figure in &kept {
            let figures = figure
                .samples
                .percentiles()
                .ok_or_else(|| format!("no sample of {}", figure.label))?;
            lines.push(handoff_line(&figure.label, &figures, &ping, figure.errors));
        }
        harness.keep(Benchmark {
            name: "handoff",
            title: "L1: handoff latency, release start to next holder, vs PING".to_owned(),
            workload: format!("each holder holding {} ms", HANDOFF_HOLD.as_millis()),
            samples_are: "handoff (release started to next holder holding), or PING round trip",
            figures: kept,
        });
        println!(
            "## L1: handoff latency, release start to next holder, vs PING\n\n\
             Across processes: the holder and the waiter are different processes, both reading \
             CLOCK_MONOTONIC (one system-wide clock on Linux); the waiter queues while the holder \
             holds ({} ms). The PING round trip is measured back to back; the one-message line is \
             the relay's own turn signal between the same two processes, sent while one holds and \
             received by the other waiting idle: what one message through Redis to a waiting \
             process costs here, the floor of any handoff across processes. Oddities, left out of \
             the samples: successive holds in one process ({}), a holder before its predecessor's \
             release ({}), a waiter that called acquire only after the release started ({}).\n",
            HANDOFF_HOLD.as_millis(),
            found.same_process,
            found.inversions,
            found.late_waiter
        );
        report::print_markdown(
            &[
                "",
                "p50",
                "p99",
                "max",
                "samples",
                "p50 / PING p50",
                "errors / oddities",
            ],
            &lines,
        );
        Ok(vec![l1_line(&cross, &ping, &signal)])
    })
}

/// L1: the cross-process handoff against the PING round trip's p50, which
/// is what "a PING round trip" of the target is taken to mean; the
/// one-message floor beside it.
fn l1_line(cross: &Percentiles, ping: &Percentiles, signal: &Percentiles) -> TargetLine {
    let p50 = report::quotient(cross.p50.as_secs_f64(), ping.p50.as_secs_f64());
    let p99 = report::quotient(cross.p99.as_secs_f64(), ping.p50.as_secs_f64());
    TargetLine {
        id: "L1",
        figure: format!(
            "p50 {}, p99 {}",
            report::duration(cross.p50),
            report::duration(cross.p99)
        ),
        baseline: format!(
            "PING p50 {}; one message to an idle process p50 {}",
            report::duration(ping.p50),
            report::duration(signal.p50)
        ),
        ratio: format!(
            "p50 {}; p99 {} (p50 {} the one message)",
            report::ratio(p50),
            report::ratio(p99),
            report::ratio(report::quotient(
                cross.p50.as_secs_f64(),
                signal.p50.as_secs_f64()
            ))
        ),
        target: "p50 ≤ 1.5×, p99 ≤ 3× PING p50",
        checks: vec![
            Check::at_most("p50", p50, 1.5),
            Check::at_most("p99", p99, 3.0),
        ],
    }
}

/// Two processes passing distlock's lock to each other (see `relay`).
async fn cross_process_handoffs(harness: &Harness, url: &str) -> Result<CrossHandoffs, BenchError> {
    let plan = ChildPlan {
        work: ChildWork::Relay { hold: HANDOFF_HOLD },
        ..harness.contend_plan(vec![url.to_owned()], Algorithm::Distlock, 1)
    };
    Ok(relay::handoffs(&procs::relay(&plan).await?))
}

/// The in-process handoff runs, one figure each.
async fn in_process_handoffs(harness: &Harness, url: &str) -> Result<Vec<Figure>, BenchError> {
    let settings = &harness.settings;
    let locker = Locker::connect(Algorithm::Distlock, url).await?;
    let mut figures = Vec::new();
    for tasks in HANDOFF_TASKS {
        let waiters = tasks - 1;
        let label = format!(
            "distlock, in one process, {waiters} waiter{}",
            if waiters == 1 { "" } else { "s" },
        );
        let window = Window::after_warmup(Instant::now(), settings.warmup, settings.measure);
        let run = handoff::run(&locker, &fresh_key("handoff"), tasks, HANDOFF_HOLD, window).await;
        if let Some(error) = &run.first_error {
            eprintln!("{label}: {} errors, first: {error}", run.errors);
        }
        figures.push(Figure::of_samples(&label, &run.samples, run.errors));
    }
    Ok(figures)
}

fn handoff_line(label: &str, figure: &Percentiles, ping: &Percentiles, errors: u64) -> Vec<String> {
    vec![
        label.to_owned(),
        report::duration(figure.p50),
        report::duration(figure.p99),
        report::duration(figure.max),
        report::thousands(figure.count as u64),
        report::ratio(report::quotient(
            figure.p50.as_secs_f64(),
            ping.p50.as_secs_f64(),
        )),
        errors.to_string(),
    ]
}

/// R1: distlock's Redlock against rslock's on the same 5 servers, 16 tasks
/// on own keys and a hot key of 2 processes × 8 tasks; before them, one
/// task's cycles next to what a bare fan-out costs.
fn redlock(harness: &Harness) -> Result<Vec<TargetLine>, BenchError> {
    let single = RedisServer::start();
    let nodes = lock_testkit::start_many(REDLOCK_NODES);
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let (own_keys, hot) = harness.runtime.block_on(async {
        harness.learn_redis_version(&single.url()).await?;
        redlock_latency(harness, &single.url(), &urls).await?;
        let mut own_keys = Vec::new();
        for (algorithm, servers) in [
            (Algorithm::Distlock, urls.clone()),
            (Algorithm::Rslock, urls.clone()),
            (Algorithm::Distlock, vec![single.url()]),
        ] {
            let locker = Locker::connect_nodes(algorithm, &servers).await?;
            let keys = (0..REDLOCK_TASKS)
                .map(|task| fresh_key(&format!("redlock:{task}")))
                .collect();
            let window = Window::after_warmup(
                Instant::now(),
                harness.settings.warmup,
                harness.settings.measure,
            );
            own_keys.push(Run {
                algorithm,
                label: format!("{}, {}", algorithm.label(), servers_text(servers.len())),
                tally: contend::run(&locker, keys, window).await,
            });
        }
        let mut hot = Vec::new();
        for algorithm in [Algorithm::Distlock, Algorithm::Rslock] {
            let plan = harness.contend_plan(urls.clone(), algorithm, REDLOCK_TASKS_PER_PROCESS);
            let tally = procs::run(&plan, REDLOCK_PROCESSES).await?;
            hot.push(Run::new(algorithm, tally));
        }
        Ok::<_, BenchError>((own_keys, hot))
    })?;
    let workload = format!("{REDLOCK_TASKS} tasks on own keys");
    let title = format!("R1: Redlock over {REDLOCK_NODES} servers, {workload}");
    harness.print_runs(&title, "lock+unlock cycles/s", &own_keys);
    harness.keep(harness.benchmark_of("redlock_own_keys", &title, workload, &own_keys));
    let workload =
        format!("hot key, {REDLOCK_PROCESSES} processes × {REDLOCK_TASKS_PER_PROCESS} tasks");
    let title = format!("R1: Redlock over {REDLOCK_NODES} servers, {workload}");
    harness.print_runs(&title, "acquisitions/s", &hot);
    harness.keep(harness.benchmark_of("redlock_hot_key", &title, workload, &hot));
    Ok(vec![harness.redlock_line(&own_keys, &hot)])
}

/// One task's cycles on Redlock and on one server, taken in turns, with the
/// cost of a bare fan-out of PINGs beside them. Informational: no target.
async fn redlock_latency(
    harness: &Harness,
    single: &str,
    urls: &[String],
) -> Result<(), BenchError> {
    let majority = REDLOCK_NODES / 2 + 1;
    let mut fanout = Vec::new();
    for url in urls {
        fanout.push(locking::connect_plain(url).await?);
    }
    let labels = [
        "distlock, 1 server".to_owned(),
        format!("distlock, Redlock over {majority} servers"),
        format!("distlock, Redlock over {REDLOCK_NODES} servers"),
        format!("rslock, Redlock over {REDLOCK_NODES} servers"),
        "2 × PING, 1 server".to_owned(),
        format!("2 × PING to {REDLOCK_NODES} servers, first {majority} answers"),
    ];
    let mut cycles = vec![
        Cycle::Lock(
            Locker::connect(Algorithm::Distlock, single)
                .await?
                .contender(0),
        ),
        Cycle::Lock(
            Locker::connect_nodes(Algorithm::Distlock, &urls[..majority])
                .await?
                .contender(0),
        ),
        Cycle::Lock(
            Locker::connect_nodes(Algorithm::Distlock, urls)
                .await?
                .contender(0),
        ),
        Cycle::Lock(
            Locker::connect_nodes(Algorithm::Rslock, urls)
                .await?
                .contender(0),
        ),
        Cycle::Fanout {
            connections: vec![locking::connect_plain(single).await?],
            answers: 1,
        },
        Cycle::Fanout {
            connections: fanout,
            answers: majority,
        },
    ];
    let samples = harness
        .cycles_in_turns(&mut cycles, "redlock-latency")
        .await?;
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let title = "Redlock: whole lock+unlock cycles of one task, taken in turns";
    harness.keep_cycles("redlock_latency", title, &labels, &samples);
    let percentiles = percentiles_of(&samples)?;
    let one_server = percentiles[0];
    println!("## Redlock: whole lock+unlock cycles of one task, taken in turns (no target)\n");
    print_cycles(
        &labels,
        &percentiles,
        "p50 / distlock 1 server p50",
        |figure| report::quotient(figure.p50.as_secs_f64(), one_server.p50.as_secs_f64()),
    );
    Ok(())
}

/// A table of cycle durations, one line per cycle, with a ratio column.
fn print_cycles(
    labels: &[&str],
    percentiles: &[Percentiles],
    ratio_header: &str,
    ratio: impl Fn(&Percentiles) -> Option<f64>,
) {
    let lines: Vec<Vec<String>> = labels
        .iter()
        .zip(percentiles)
        .map(|(label, figure)| {
            vec![
                (*label).to_owned(),
                report::duration(figure.p50),
                report::duration(figure.p99),
                report::duration(figure.max),
                report::thousands(figure.count as u64),
                report::ratio(ratio(figure)),
            ]
        })
        .collect();
    report::print_markdown(
        &["cycle", "p50", "p99", "max", "samples", ratio_header],
        &lines,
    );
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
        Ok(contend::run(&locker, keys, self.window()).await)
    }

    /// One uncontended run on the server `url`, and what Redis spent on it
    /// inside the measured window.
    async fn uncontended_run(
        &self,
        algorithm: Algorithm,
        url: &str,
    ) -> Result<(Run, RedisTime), BenchError> {
        self.learn_redis_version(url).await?;
        let locker = Locker::connect(algorithm, url).await?;
        let mut stats = locking::connect_plain(url).await?;
        let keys = (0..UNCONTENDED_TASKS)
            .map(|task| fresh_key(&format!("uncontended:{task}")))
            .collect();
        let window = self.window();
        let counters = async {
            tokio::time::sleep_until(window.start.into()).await;
            let before = RedisTime::read(&mut stats).await?;
            tokio::time::sleep_until(window.end.into()).await;
            Ok::<_, BenchError>(RedisTime::read(&mut stats).await?.since(&before))
        };
        let (tally, spent) = tokio::join!(contend::run(&locker, keys, window), counters);
        Ok((Run::new(algorithm, tally), spent?))
    }

    /// Every cycle in turn for one window; the durations of each.
    async fn cycles_in_turns(
        &self,
        cycles: &mut [Cycle],
        label: &str,
    ) -> Result<Vec<Waits>, BenchError> {
        turns::run(cycles, &fresh_key(label), self.window()).await
    }

    /// The figures of throughput runs, as the charts and the JSON report
    /// take them.
    fn benchmark_of(
        &self,
        name: &'static str,
        title: &str,
        workload: String,
        runs: &[Run],
    ) -> Benchmark {
        let measure_secs = self.settings.measure.as_secs_f64();
        Benchmark {
            name,
            title: title.to_owned(),
            workload,
            samples_are: "wait per acquisition (acquire called to lock held)",
            figures: runs
                .iter()
                .map(|run| {
                    let short = run.algorithm.short_label();
                    Figure::of_tally(&run.label, short, &run.tally, measure_secs)
                })
                .collect(),
        }
    }

    /// Keeps the durations of cycles taken in turns, one figure per label.
    fn keep_cycles(&self, name: &'static str, title: &str, labels: &[&str], samples: &[Waits]) {
        self.keep(Benchmark {
            name,
            title: title.to_owned(),
            workload: "one task, in turns".to_owned(),
            samples_are: "whole lock+unlock cycle",
            figures: labels
                .iter()
                .zip(samples)
                .map(|(label, samples)| Figure::of_samples(label, samples, 0))
                .collect(),
        });
    }

    fn keep(&self, benchmark: Benchmark) {
        self.kept.borrow_mut().push(benchmark);
    }

    /// Writes the charts and the JSON report if asked; how many failed.
    fn write_outputs(&self, lines: &[TargetLine]) -> usize {
        let machine = Machine {
            cores: std::thread::available_parallelism().ok().map(usize::from),
            redis_version: self
                .redis_version
                .get()
                .cloned()
                .unwrap_or_else(|| "unknown".to_owned()),
            measure_secs: self.settings.measure.as_secs_f64(),
            warmup_secs: self.settings.warmup.as_secs_f64(),
        };
        let kept = self.kept.borrow();
        let mut failures = 0;
        if let Some(path) = &self.settings.json {
            match figures::write_json(path, &machine, &kept, lines) {
                Ok(()) => println!("figures: {}", path.display()),
                Err(error) => {
                    eprintln!("the figures were not written: {error}");
                    failures += 1;
                }
            }
        }
        if let Some(dir) = &self.settings.charts
            && let Err(error) = charts::write(dir, &machine, &kept)
        {
            eprintln!("charts not drawn: {error}");
            failures += 1;
        }
        failures
    }

    /// Child processes contending with `tasks` tasks each on a fresh key.
    fn contend_plan(&self, urls: Vec<String>, algorithm: Algorithm, tasks: usize) -> ChildPlan {
        ChildPlan {
            urls,
            algorithm,
            work: ChildWork::Contend { tasks },
            key: fresh_key("processes"),
            warmup: self.settings.warmup,
            measure: self.settings.measure,
        }
    }

    /// A window starting after the warm-up from now.
    fn window(&self) -> Window {
        Window::after_warmup(Instant::now(), self.settings.warmup, self.settings.measure)
    }

    /// Acquisitions (cycles) per second of the first run of `algorithm`.
    fn rate_of(&self, runs: &[Run], algorithm: Algorithm) -> Option<f64> {
        let run = runs.iter().find(|run| run.algorithm == algorithm)?;
        Some(run.tally.per_second(self.settings.measure))
    }

    /// A hot-key target: distlock's throughput against rslock's and its p99 wait.
    fn hot_key_line(
        &self,
        id: &'static str,
        runs: &[Run],
        target: &'static str,
        min_ratio: f64,
        max_p99_ms: f64,
    ) -> TargetLine {
        let rate = |algorithm| self.rate_of(runs, algorithm);
        let ratio = rate(Algorithm::Rslock)
            .and_then(|rslock| report::quotient(rate(Algorithm::Distlock)?, rslock));
        let p99 = p99_of(runs, Algorithm::Distlock);
        TargetLine {
            id,
            figure: format!(
                "{}, p99 {}",
                rate(Algorithm::Distlock).map_or("n/a".to_owned(), report::rate),
                p99.map_or("n/a".to_owned(), report::duration)
            ),
            baseline: format!(
                "rslock {}, p99 {}",
                rate(Algorithm::Rslock).map_or("n/a".to_owned(), report::rate),
                p99_of(runs, Algorithm::Rslock).map_or("n/a".to_owned(), report::duration)
            ),
            ratio: report::ratio(ratio),
            target,
            checks: vec![
                Check::at_least("throughput", ratio, min_ratio),
                Check::at_most("p99", p99.map(|p99| p99.as_secs_f64() * 1e3), max_p99_ms),
            ],
        }
    }

    /// R1: both Redlock workloads against rslock, and the hot key's p99.
    fn redlock_line(&self, own_keys: &[Run], hot: &[Run]) -> TargetLine {
        let own = self.hot_key_line("R1", own_keys, "", 1.0, f64::INFINITY);
        let hot_line = self.hot_key_line("R1", hot, "", 1.0, 15.0);
        let mut checks = vec![
            own.checks[0].clone(),
            hot_line.checks[0].clone(),
            hot_line.checks[1].clone(),
        ];
        checks[0].what = "own keys";
        checks[1].what = "hot key";
        checks[2].what = "hot-key p99";
        TargetLine {
            id: "R1",
            figure: format!("own keys {}; hot {}", own.figure, hot_line.figure),
            baseline: format!("own keys {}; hot {}", own.baseline, hot_line.baseline),
            ratio: format!("{}; {}", own.ratio, hot_line.ratio),
            target: "≥ 1.0× rslock on both, hot-key p99 ≤ 15 ms",
            checks,
        }
    }

    /// Prints the detail of one throughput benchmark.
    fn print_runs(&self, title: &str, unit: &str, runs: &[Run]) {
        let measure = self.settings.measure;
        let lines: Vec<Vec<String>> = runs
            .iter()
            .map(|run| {
                let tally = &run.tally;
                if let Some(error) = &tally.first_error {
                    eprintln!(
                        "{title}, {}: {} errors, first: {error}",
                        run.label, tally.errors
                    );
                }
                let waits = tally.waits.percentiles();
                let per_task = match (tally.per_task.iter().min(), tally.per_task.iter().max()) {
                    (Some(min), Some(max)) => format!("{min} – {max}"),
                    _ => "n/a".to_owned(),
                };
                vec![
                    run.label.clone(),
                    report::rate(tally.per_second(measure)),
                    report::waits(waits),
                    report::thousands(tally.waits.count() as u64),
                    per_task,
                    report::spread(tally.max_over_min()),
                    format!("{} / {}", tally.errors, tally.abandoned),
                ]
            })
            .collect();
        println!("## {title}\n");
        report::print_markdown(
            &[
                "algorithm",
                unit,
                "wait p50 / p99 / max",
                "waits",
                "per task (min – max)",
                "max/min",
                "errors / abandoned",
            ],
            &lines,
        );
    }

    fn print_summary(&self, lines: &[TargetLine]) {
        println!("## Summary: the targets of issue 13\n");
        println!(
            "{}, redis-server {}, {} measured per figure after {} of warm-up. Every figure and \
             its baseline come from this run. Waits are per acquisition, from calling acquire to \
             holding the lock; L1 is from the holder starting its release to the next holder \
             (another process) holding it; U3 is whole lock+unlock cycles. rslock is 0.10 with its \
             default retry settings (3 tries, random 0-200 ms apart, `acquire` looping); the seed \
             protocol waits the same way on a held key.\n",
            cores(),
            self.redis_version.get().map_or("unknown", String::as_str),
            report::duration(self.settings.measure),
            report::duration(self.settings.warmup),
        );
        report::print_summary(lines, &TARGET_IDS);
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

/// `1 server`, `Redlock over 5 servers`.
fn servers_text(servers: usize) -> String {
    match servers {
        1 => "1 server".to_owned(),
        _ => format!("Redlock over {servers} servers"),
    }
}

/// The percentiles of each set of cycle durations; an error if one is empty.
fn percentiles_of(samples: &[Waits]) -> Result<Vec<Percentiles>, BenchError> {
    samples
        .iter()
        .map(|samples| {
            samples
                .percentiles()
                .ok_or_else(|| "no cycle was measured".into())
        })
        .collect()
}

/// The p99 wait of the first run of `algorithm`.
fn p99_of(runs: &[Run], algorithm: Algorithm) -> Option<Duration> {
    let run = runs.iter().find(|run| run.algorithm == algorithm)?;
    Some(run.tally.waits.percentiles()?.p99)
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
