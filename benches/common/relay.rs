//! Cross-process handoff (L1): processes pass one lock around in turn, so
//! every release has a waiter queued in another process, and the latency from
//! "the holder starts releasing" (process A) to "the next holder holds"
//! (process B) is read off one clock both processes share.
//!
//! The shared clock is `CLOCK_MONOTONIC` read through `clock_gettime`. On
//! Linux it is one system-wide clock (per time namespace, and the children
//! inherit ours), so readings taken in two processes subtract meaningfully;
//! std's `Instant` reads the same clock but keeps the value opaque. A wall
//! clock would not do: NTP may step or slew it between the two readings.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use super::contend::Window;
use super::locking::{BenchError, Locker};
use super::procs::RELAY_PROCESSES;
use super::stats::Waits;

/// How often a process waiting for its turn checks whether the run is over.
const TURN_POLL_SECS: f64 = 0.1;

/// One holding of the lock, on the shared clock.
#[derive(Debug, Clone, Copy)]
pub struct Hold {
    pub process: usize,
    /// Just before the acquire was called.
    pub asked_ns: u64,
    /// Just after the acquire returned.
    pub holding_ns: u64,
    /// Just before the release was sent.
    pub release_ns: u64,
    /// Just before this process told the next one its turn (an `LPUSH`).
    pub signal_ns: u64,
    /// Just after this process heard its own turn (its `BLPOP` returned);
    /// 0 for the first hold, which waited for no turn.
    pub turn_ns: u64,
}

/// The holds of one process whose holding began inside the window.
#[derive(Debug, Default)]
pub struct Holds {
    pub holds: Vec<Hold>,
}

/// Handoffs found by putting the holds of every process in time order.
#[derive(Debug, Default)]
pub struct CrossHandoffs {
    /// Release start in one process to holding in another.
    pub samples: Waits,
    /// The same processes' turn signal, one `LPUSH` sent while holding to
    /// the `BLPOP` it ends in the other process: one message through Redis
    /// to a process that waits idle, the floor of any handoff across
    /// processes on this machine.
    pub signals: Waits,
    /// Successive holds in one process: the turn-taking failed.
    pub same_process: u64,
    /// The next holder called acquire only after the release had started,
    /// so nobody was waiting: not a handoff, left out of the samples.
    pub late_waiter: u64,
    /// A next holder holding before the previous one started releasing: the
    /// clocks are not comparable after all (never seen on Linux).
    pub inversions: u64,
}

/// Takes part in the relay as process `me`: wait until the previous process
/// holds the lock (a push on this process's turn list), queue for the lock,
/// hold it for `hold`, release. Process 0 starts without waiting. `signals` is
/// a connection of its own, since `BLPOP` blocks it.
pub async fn pass_in_turns(
    locker: &Locker,
    mut signals: ConnectionManager,
    key: &str,
    me: usize,
    hold: Duration,
    window: Window,
) -> Result<Holds, BenchError> {
    let mut contender = locker.contender(me);
    let my_turn = format!("{key}:turn:{me}");
    let next_turn = format!("{key}:turn:{}", (me + 1) % RELAY_PROCESSES);
    let mut holds = Holds::default();
    let mut first = me == 0;
    while Instant::now() < window.end {
        let mut turn_ns = 0;
        if !first {
            if wait_for_turn(&mut signals, &my_turn, window.end).await? == Turn::RunOver {
                break;
            }
            turn_ns = monotonic_ns()?;
        }
        first = false;
        let asked_ns = monotonic_ns()?;
        let held = tokio::time::timeout_at(window.drain_deadline(), contender.acquire(key))
            .await
            .map_err(|_| "the relay lock was never handed over")??;
        let holding_ns = monotonic_ns()?;
        let holding = Instant::now();
        // Lets the next process queue while this one holds, so that the
        // release below finds a waiter in another process.
        let signal_ns = monotonic_ns()?;
        redis::cmd("LPUSH")
            .arg(&next_turn)
            .arg(1)
            .query_async::<()>(&mut signals)
            .await?;
        tokio::time::sleep(hold).await;
        let release_ns = monotonic_ns()?;
        contender.release(held).await?;
        if window.contains(holding) {
            holds.holds.push(Hold {
                process: me,
                asked_ns,
                holding_ns,
                release_ns,
                signal_ns,
                turn_ns,
            });
        }
    }
    Ok(holds)
}

/// What waiting for a turn ended with.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// The previous process holds the lock: queue for it now.
    Ours,
    /// The window is over; the other process may have stopped passing.
    RunOver,
}

/// Blocks until this process's turn list gets a push, or the window ends.
async fn wait_for_turn(
    signals: &mut ConnectionManager,
    my_turn: &str,
    end: Instant,
) -> Result<Turn, BenchError> {
    while Instant::now() < end {
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(my_turn)
            .arg(TURN_POLL_SECS)
            .query_async(signals)
            .await?;
        if popped.is_some() {
            return Ok(Turn::Ours);
        }
    }
    Ok(Turn::RunOver)
}

/// Every succession of holders across all processes, in time order (the lock
/// is exclusive, so holding times order the holds).
pub fn handoffs(processes: &[Holds]) -> CrossHandoffs {
    let mut all: Vec<Hold> = processes
        .iter()
        .flat_map(|holds| holds.holds.iter().copied())
        .collect();
    all.sort_by_key(|hold| hold.holding_ns);
    let mut found = CrossHandoffs::default();
    for pair in all.windows(2) {
        let [previous, next] = pair else { continue };
        if previous.process != next.process && next.turn_ns > previous.signal_ns {
            found
                .signals
                .record(Duration::from_nanos(next.turn_ns - previous.signal_ns));
        }
        if previous.process == next.process {
            found.same_process += 1;
        } else if next.holding_ns < previous.release_ns {
            found.inversions += 1;
        } else if next.asked_ns > previous.release_ns {
            found.late_waiter += 1;
        } else {
            found
                .samples
                .record(Duration::from_nanos(next.holding_ns - previous.release_ns));
        }
    }
    found
}

impl Holds {
    /// `asked:holding:release,…` in nanoseconds, for a child's result line.
    pub fn encode(&self) -> String {
        let parts: Vec<String> = self
            .holds
            .iter()
            .map(|hold| {
                format!(
                    "{}:{}:{}:{}:{}",
                    hold.asked_ns, hold.holding_ns, hold.release_ns, hold.signal_ns, hold.turn_ns
                )
            })
            .collect();
        format!("holds={}", parts.join(","))
    }

    pub fn decode(process: usize, line: &str) -> Result<Holds, String> {
        let list = line
            .strip_prefix("holds=")
            .ok_or_else(|| format!("no holds in {line:?}"))?;
        let holds = list
            .split(',')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let numbers = part
                    .split(':')
                    .map(|text| text.parse().map_err(|_| format!("bad hold {part:?}")))
                    .collect::<Result<Vec<u64>, String>>()?;
                let [asked_ns, holding_ns, release_ns, signal_ns, turn_ns] = numbers[..] else {
                    return Err(format!("bad hold {part:?}"));
                };
                Ok(Hold {
                    process,
                    asked_ns,
                    holding_ns,
                    release_ns,
                    signal_ns,
                    turn_ns,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Holds { holds })
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: see the module comment for why.
fn monotonic_ns() -> Result<u64, BenchError> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the call's duration.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    if status != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let seconds = u64::try_from(now.tv_sec)?;
    let nanos = u64::try_from(now.tv_nsec)?;
    Ok(seconds * 1_000_000_000 + nanos)
}
