//! Verifying what a run left in Redis against what the workers reported,
//! and printing the figures.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::Settings;
use crate::report::{self, Sample, WorkerReport, duration, kib, mib, print_table, thousands};
use crate::section::{Refusal, Slot};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Memory (resident, and heap in use) may grow by this share between
/// warm-up and the end of a soak.
const MEMORY_GROWTH_LIMIT: f64 = 0.10;

/// A look at Redis: connections, wake-up subscriptions, memory.
#[derive(Debug, Clone, Copy)]
pub struct RedisSample {
    pub at: Duration,
    pub clients: u64,
    /// Wake-up channels of this run's locks with a subscriber.
    pub channels: u64,
    /// The most subscribers one of them had.
    pub subscribers: u64,
    pub used_memory: u64,
}

/// What the run left behind, and how Redis looked along the way.
pub struct Leftovers {
    pub lock_keys_at_drain: u64,
    pub lock_keys_left: u64,
    pub lock_keys_waited: Duration,
    pub at_ready: RedisSample,
    pub at_drain: RedisSample,
    pub at_exit: RedisSample,
    pub samples: Vec<RedisSample>,
}

/// The state each hot key ended with.
pub struct State {
    keys: Vec<KeyState>,
}

struct KeyState {
    counter: u64,
    inside: i64,
    tokens: Vec<u64>,
    holders: Vec<u64>,
    commits: u64,
    /// Writes the fenced state refused.
    refusals: Vec<Refusal>,
}

impl KeyState {
    /// Positions where a token is not above the one before it.
    fn out_of_order(&self) -> usize {
        self.tokens.windows(2).filter(|w| w[1] <= w[0]).count()
    }

    /// Handoffs of the lock, and how many stayed in the same process.
    fn handoffs(&self) -> (usize, usize) {
        let same = self.holders.windows(2).filter(|w| w[1] == w[0]).count();
        (self.holders.len().saturating_sub(1), same)
    }
}

/// A key's state as read: counter, inside, tokens, holders, commits, refusals.
type RawKeyState = (
    Option<u64>,
    Option<i64>,
    Vec<u64>,
    Vec<u64>,
    Option<u64>,
    Vec<String>,
);

impl State {
    pub async fn read(redis: &mut MultiplexedConnection, slots: &[Slot]) -> Result<State, Error> {
        let mut keys = Vec::with_capacity(slots.len());
        for slot in slots {
            let (counter, inside, tokens, holders, commits, refusals): RawKeyState = redis::pipe()
                .cmd("GET")
                .arg(&slot.counter)
                .cmd("GET")
                .arg(&slot.inside)
                .cmd("LRANGE")
                .arg(&slot.tokens)
                .arg(0)
                .arg(-1)
                .cmd("LRANGE")
                .arg(&slot.holders)
                .arg(0)
                .arg(-1)
                .cmd("GET")
                .arg(&slot.commits)
                .cmd("LRANGE")
                .arg(&slot.refusals)
                .arg(0)
                .arg(-1)
                .query_async(redis)
                .await?;
            keys.push(KeyState {
                counter: counter.unwrap_or(0),
                inside: inside.unwrap_or(0),
                tokens,
                holders,
                commits: commits.unwrap_or(0),
                refusals: refusals
                    .iter()
                    .filter_map(|text| Refusal::parse(text))
                    .collect(),
            });
        }
        Ok(State { keys })
    }
}

/// Collects the verdicts of a run.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
}

impl Verdict {
    /// A table row for a count that must be zero: label, count, verdict;
    /// records "`count` `what`" as a failure otherwise.
    fn zero(&mut self, label: &str, count: u64, what: &str) -> Vec<String> {
        vec![
            label.into(),
            thousands(count),
            self.check(count == 0, || format!("{count} {what}")),
        ]
    }

    /// Records `failure` unless `ok`; returns the table cell.
    fn check(&mut self, ok: bool, failure: impl FnOnce() -> String) -> String {
        if ok {
            "ok".into()
        } else {
            self.failures.push(failure());
            "FAIL".into()
        }
    }

    /// Prints the result line and tells whether the run passed.
    fn finish(self) -> bool {
        if self.failures.is_empty() {
            println!("\nresult: PASS");
            true
        } else {
            println!("\nresult: FAIL");
            for failure in &self.failures {
                println!("  - {failure}");
            }
            false
        }
    }
}

/// Verifies a check-mode run, one key per section or pairs: per key, the
/// counter and the fencing tokens against the sections that included it.
pub fn check(
    settings: &Settings,
    total: &WorkerReport,
    state: &State,
    leftovers: &Leftovers,
) -> bool {
    let mut verdict = Verdict::default();
    println!();
    print_keys(&mut verdict, settings, total, state);
    println!();
    let mut rows = load_rows(&mut verdict, settings, total, state);
    rows.extend(leftover_rows(&mut verdict, leftovers));
    print_table(&["figure", "value", ""], &rows);
    verdict.finish()
}

/// The table of keys: per key, the sections that included it against its
/// counter, its fencing tokens and its `inside` marker.
fn print_keys(verdict: &mut Verdict, settings: &Settings, total: &WorkerReport, state: &State) {
    let mut rows: Vec<Vec<String>> = total
        .completed
        .iter()
        .zip(&state.keys)
        .enumerate()
        .map(|(key, (sections, found))| key_row(verdict, key, *sections, found))
        .collect();
    rows.push(vec![
        "all".into(),
        thousands(total.completed_total()),
        thousands(state.keys.iter().map(|k| k.counter).sum()),
        thousands(state.keys.iter().map(|k| k.tokens.len() as u64).sum()),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let sections = if settings.pairs {
        "sections including it"
    } else {
        "sections run"
    };
    print_table(
        &[
            "key",
            sections,
            "final counter",
            "fencing tokens",
            "tokens strictly increasing",
            "inside at end",
            "",
        ],
        &rows,
    );
}

/// One key's row: `sections` ran on it, `found` is what it ended with.
fn key_row(verdict: &mut Verdict, key: usize, sections: u64, found: &KeyState) -> Vec<String> {
    let increasing = found.out_of_order() == 0;
    let exact = found.counter == sections && found.tokens.len() as u64 == sections;
    let cell = verdict.check(exact && increasing && found.inside == 0, || {
        format!(
            "key {key}: {sections} sections, counter {}, {} tokens ({} out of order), inside {}",
            found.counter,
            found.tokens.len(),
            found.out_of_order(),
            found.inside
        )
    });
    vec![
        key.to_string(),
        thousands(sections),
        thousands(found.counter),
        thousands(found.tokens.len() as u64),
        if increasing {
            "yes".into()
        } else {
            format!("NO ({} out of order)", found.out_of_order())
        },
        found.inside.to_string(),
        cell,
    ]
}

/// The figures of the load: sections, time, latencies, handoffs, and the
/// counts that must be zero.
fn load_rows(
    verdict: &mut Verdict,
    settings: &Settings,
    total: &WorkerReport,
    state: &State,
) -> Vec<Vec<String>> {
    // A pair section counts once on each of its keys.
    let per_section = settings.keys_per_section();
    let sections = total.completed_total() / per_section;
    let expected = settings.sections;
    let load = total.load;
    vec![
        vec![
            "critical sections".into(),
            format!(
                "{} ({} processes × {} tasks{}; {} expected)",
                thousands(sections),
                settings.processes,
                settings.tasks,
                if settings.pairs { ", 2 keys each" } else { "" },
                thousands(expected)
            ),
            verdict.check(total.completed_total() == expected * per_section, || {
                format!("{sections} sections ran, {expected} expected")
            }),
        ],
        vec!["duration".into(), duration(load), String::new()],
        vec![
            "throughput".into(),
            format!("{} sections/s", thousands(per_second(sections, load))),
            String::new(),
        ],
        vec![
            "call (wait + section + release) p50 / p99 / p99.9 / max".into(),
            latency_figures(&total.latencies),
            String::new(),
        ],
        handoff_row(settings, state),
        verdict.zero(
            "overlaps observed",
            total.overlaps,
            "sections overlapped another",
        ),
        verdict.zero(
            "lock waits timed out (60 s)",
            total.timeouts,
            "lock waits timed out",
        ),
        verdict.zero("errors", total.errors, "errors (see stderr)"),
    ]
}

/// How often the next holder of a key was in the same process.
fn handoff_row(settings: &Settings, state: &State) -> Vec<String> {
    let (handoffs, same) = state
        .keys
        .iter()
        .map(KeyState::handoffs)
        .fold((0, 0), |(all, same), (a, s)| (all + a, same + s));
    vec![
        "next holder of a key in the same process".into(),
        format!(
            "{:.0}% of {} handoffs ({:.0}% if the {} processes took turns at random)",
            same as f64 * 100.0 / handoffs.max(1) as f64,
            thousands(handoffs as u64),
            100.0 / settings.processes as f64,
            settings.processes
        ),
        String::new(),
    ]
}

pub fn soak(
    settings: &Settings,
    soak: Duration,
    reports: &[WorkerReport],
    total: &WorkerReport,
    state: &State,
    leftovers: &Leftovers,
) -> bool {
    let mut verdict = Verdict::default();
    let warmup = warmup_of(soak);
    println!();
    let mut rows = Vec::new();
    for (key, (completed, found)) in total.completed.iter().zip(&state.keys).enumerate() {
        let cell = verdict.check(found.counter == found.commits, || {
            format!(
                "key {key}: counter {} but {} commits accepted",
                found.counter, found.commits
            )
        });
        rows.push(vec![
            key.to_string(),
            thousands(*completed),
            thousands(found.commits),
            thousands(found.counter),
            thousands(found.refusals.len() as u64),
            cell,
        ]);
    }
    print_table(
        &[
            "key",
            "sections completed",
            "commits accepted",
            "final counter",
            "writes refused by fencing",
            "",
        ],
        &rows,
    );
    println!();

    let mut rows = Vec::new();
    for (index, report) in reports.iter().enumerate() {
        let process = (index, report);
        let (rss, rss_cell) = memory_growth(&mut verdict, process, warmup, RSS);
        let (heap, heap_cell) = memory_growth(&mut verdict, process, warmup, HEAP);
        let tasks = verdict.check(report.tasks_after <= report.tasks_baseline, || {
            format!(
                "process {index}: {} tokio tasks alive after the load, {} before",
                report.tasks_after, report.tasks_baseline
            )
        });
        rows.push(vec![
            index.to_string(),
            thousands(report.calls),
            thousands(report.completed_total()),
            format!(
                "{} / {} / {}",
                thousands(report.cancelled_waiting),
                thousands(report.cancelled_in_body),
                thousands(report.cancelled_in_release)
            ),
            thousands(report.panics),
            format!(
                "{} → {} → {} ({})",
                report.tasks_baseline,
                report.tasks_peak,
                report.tasks_after,
                duration(report.settle)
            ),
            tasks,
            rss,
            rss_cell,
            heap,
            heap_cell,
        ]);
    }
    print_table(
        &[
            "process",
            "calls",
            "completed",
            "cancelled waiting / in body / in release",
            "panics",
            "tokio tasks before → peak → after (settled in)",
            "",
            &format!("RSS after {} warm-up → last", duration(warmup)),
            "",
            "heap in use, same samples",
            "",
        ],
        &rows,
    );
    println!();
    print_memory_timeline(reports);
    println!();

    let committed: u64 = state.keys.iter().map(|k| k.commits).sum();
    let completed = total.completed_total();
    let aborted = total.cancelled_in_body + total.cancelled_in_release + total.panics;
    let refused: u64 = state.keys.iter().map(|k| k.refusals.len() as u64).sum();
    let explained =
        total.overlaps + total.late_writes + total.unseen_overlaps + total.undecided_refusals;
    let memory_warm = leftovers
        .samples
        .iter()
        .find(|s| s.at >= warmup)
        .map_or(0, |s| s.used_memory);
    let memory_last = leftovers.samples.last().map_or(0, |s| s.used_memory);
    let mut rows = vec![
        vec![
            "locked calls".into(),
            format!(
                "{} in {} ({} processes × {} tasks): {} completed, {} cancelled, {} panicked",
                thousands(total.calls),
                duration(total.load),
                settings.processes,
                settings.tasks,
                thousands(completed),
                thousands(total.cancelled()),
                thousands(total.panics)
            ),
            String::new(),
        ],
        vec![
            "throughput".into(),
            format!(
                "{} calls/s, {} completed sections/s",
                thousands(per_second(total.calls, total.load)),
                thousands(per_second(completed, total.load))
            ),
            String::new(),
        ],
        vec![
            "completed call p50 / p99 / p99.9 / max".into(),
            latency_figures(&total.latencies),
            String::new(),
        ],
        verdict.zero("overlaps seen by a running section (its write refused)", total.overlaps, "sections overlapped another"),
        vec![
            "refused writes of dropped bodies: late / overlap / undecided".into(),
            format!(
                "{} / {} / {}",
                thousands(total.late_writes),
                thousands(total.unseen_overlaps),
                thousands(total.undecided_refusals)
            ),
            verdict.check(total.unseen_overlaps == 0, || {
                format!(
                    "{} dropped bodies still ran when the next holder took their lock",
                    total.unseen_overlaps
                )
            }),
        ],
        vec![
            "refused writes nobody explains".into(),
            thousands(refused.saturating_sub(explained)),
            verdict.check(refused <= explained, || {
                format!("{refused} refused writes, {explained} explained")
            }),
        ],
        vec![
            "commits: completed ≤ accepted ≤ completed + aborted in body or release".into(),
            format!(
                "{} ≤ {} ≤ {}",
                thousands(completed),
                thousands(committed),
                thousands(completed + aborted)
            ),
            verdict.check(
                completed <= committed && committed <= completed + aborted,
                || format!("{committed} commits for {completed} completed and {aborted} aborted sections"),
            ),
        ],
        verdict.zero("lock waits timed out (60 s)", total.timeouts, "lock waits timed out"),
        verdict.zero("errors", total.errors, "errors (see stderr)"),
        vec![
            format!("redis used_memory after {} → last", duration(warmup)),
            format!("{} → {}", mib(memory_warm as f64 / 1024.0), mib(memory_last as f64 / 1024.0)),
            String::new(),
        ],
    ];
    rows.extend(leftover_rows(&mut verdict, leftovers));
    print_table(&["figure", "value", ""], &rows);
    print_refusals(state, total);
    verdict.finish()
}

/// The first refused writes, with what the dropped body's process saw:
/// when it dropped the body, against when the next holder took the lock
/// (its fencing token) and when the write reached Redis.
fn print_refusals(state: &State, total: &WorkerReport) {
    const SHOWN: usize = 10;
    let refusals: Vec<(usize, &Refusal)> = state
        .keys
        .iter()
        .enumerate()
        .flat_map(|(key, found)| found.refusals.iter().map(move |refusal| (key, refusal)))
        .collect();
    if refusals.is_empty() {
        return;
    }
    let micros =
        |later: u64, earlier: u64| format!("{:+} µs", i128::from(later) - i128::from(earlier));
    let rows: Vec<Vec<String>> = refusals
        .iter()
        .take(SHOWN)
        .map(|(key, refusal)| {
            let dropped = total
                .refused_drops
                .iter()
                .find(|dropped| dropped.token == refusal.token);
            let successor = (refusal.successor > 0).then_some(refusal.successor);
            vec![
                key.to_string(),
                refusal.token.to_string(),
                match dropped {
                    Some(dropped) => micros(dropped.to, dropped.from),
                    None => "not dropped".into(),
                },
                match (dropped, successor) {
                    (Some(dropped), Some(taken)) => micros(taken, dropped.to),
                    _ => "?".into(),
                },
                successor.map_or_else(|| "?".into(), |taken| micros(refusal.at, taken)),
            ]
        })
        .collect();
    println!(
        "\nrefused writes ({} of {}): times on this machine's clock, which Redis's TIME and the fencing tokens (µs) also read\n",
        rows.len(),
        refusals.len()
    );
    print_table(
        &[
            "key",
            "refused token",
            "body dropped within",
            "next holder took the lock, after the drop",
            "write reached Redis, after that",
        ],
        &rows,
    );
}

/// Lock keys, subscriptions and connections left by the run.
fn leftover_rows(verdict: &mut Verdict, leftovers: &Leftovers) -> Vec<Vec<String>> {
    let during = |pick: fn(&RedisSample) -> u64| {
        let values = leftovers.samples.iter().map(pick);
        (values.clone().min().unwrap_or(0), values.max().unwrap_or(0))
    };
    let (clients_min, clients_max) = during(|s| s.clients);
    let (_, channels_max) = during(|s| s.channels);
    let (_, subscribers_max) = during(|s| s.subscribers);
    let Leftovers {
        at_ready,
        at_drain,
        at_exit,
        ..
    } = leftovers;
    vec![
        vec![
            "lock keys left: when idle / after waiting".into(),
            format!(
                "{} / {} (waited {})",
                leftovers.lock_keys_at_drain,
                leftovers.lock_keys_left,
                duration(leftovers.lock_keys_waited)
            ),
            verdict.check(leftovers.lock_keys_left == 0, || {
                format!(
                    "{} lock keys still there one lease after the load",
                    leftovers.lock_keys_left
                )
            }),
        ],
        vec![
            "wake-up channels subscribed: during load (max) / when idle".into(),
            format!("{channels_max} / {}", at_drain.channels),
            verdict.check(at_drain.channels == 0, || {
                format!(
                    "{} wake-up channels still subscribed with every worker idle",
                    at_drain.channels
                )
            }),
        ],
        vec![
            "subscribers of one channel (max)".into(),
            subscribers_max.to_string(),
            String::new(),
        ],
        vec![
            "redis clients: ready / during load (min–max) / idle / after exit".into(),
            format!(
                "{} / {clients_min}–{clients_max} / {} / {}",
                at_ready.clients, at_drain.clients, at_exit.clients
            ),
            verdict.check(
                clients_max <= at_ready.clients && at_drain.clients <= at_ready.clients,
                || {
                    format!(
                        "redis clients grew from {} to {clients_max} during the load ({} when idle)",
                        at_ready.clients, at_drain.clients
                    )
                },
            ),
        ],
    ]
}

fn latency_figures(latencies: &report::Latencies) -> String {
    format!(
        "{} / {} / {} / {}",
        duration(latencies.quantile(0.5)),
        duration(latencies.quantile(0.99)),
        duration(latencies.quantile(0.999)),
        duration(latencies.max())
    )
}

fn per_second(count: u64, elapsed: Duration) -> u64 {
    (count as f64 / elapsed.as_secs_f64().max(1e-9)).round() as u64
}

/// The part of a soak after which memory must stay flat.
fn warmup_of(soak: Duration) -> Duration {
    (soak / 10).clamp(Duration::from_secs(5), Duration::from_secs(30))
}

/// Picks one figure out of a sample.
type Figure = fn(&Sample) -> u64;

/// A memory figure: its name, where it is in a sample, how it is shown.
type Memory = (&'static str, Figure, fn(f64) -> String);

const RSS: Memory = ("resident memory", |s| s.rss_kib, mib);
const HEAP: Memory = ("heap in use", |s| s.heap_kib, kib);

/// The growth of a memory figure from just after warm-up to the end: the
/// table cell and its verdict.
fn memory_growth(
    verdict: &mut Verdict,
    (index, report): (usize, &WorkerReport),
    warmup: Duration,
    (what, figure, unit): Memory,
) -> (String, String) {
    match report.after_warmup_and_last(warmup, figure) {
        Some((warm, last)) => {
            let growth = last / warm.max(1.0) - 1.0;
            (
                format!("{} → {} ({:+.1}%)", unit(warm), unit(last), growth * 100.0),
                verdict.check(growth <= MEMORY_GROWTH_LIMIT, || {
                    format!(
                        "process {index}: {what} grew {:.1}% after warm-up",
                        growth * 100.0
                    )
                }),
            )
        }
        None => ("too few samples".into(), String::new()),
    }
}

/// Resident memory and heap in use of every process at about ten points of
/// the run.
fn print_memory_timeline(reports: &[WorkerReport]) {
    let Some(first) = reports.first() else {
        return;
    };
    let count = first.samples.len();
    let mut points: Vec<usize> = (1..=10)
        .map(|i| (i * count / 10).saturating_sub(1))
        .collect();
    points.dedup();
    if count == 0 {
        return;
    }
    let mut headers = vec!["memory at".to_owned()];
    headers.extend(points.iter().map(|&i| duration(first.samples[i].at)));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (index, report) in reports.iter().enumerate() {
        for (name, figure, unit) in [RSS, HEAP] {
            let mut row = vec![format!("process {index} {name}")];
            row.extend(points.iter().map(|&i| {
                report
                    .samples
                    .get(i)
                    .map_or_else(String::new, |sample| unit(figure(sample) as f64))
            }));
            rows.push(row);
        }
    }
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    print_table(&headers, &rows);
}
