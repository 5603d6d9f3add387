//! The tables a run prints, and whether every must held.

use std::collections::BTreeMap;

use crate::check::Verdict;
use crate::fault::Fault;
use crate::history::{Ending, History};
use crate::line::Outcome;

/// Prints the tables; whether every must held.
pub fn print(history: &History, faults: &[Fault], verdict: &Verdict) -> bool {
    print_counts(history, faults);
    println!("checks:");
    let mut passed = true;
    let mut must = |name: &str, value: String, ok: bool, rule: &str| {
        passed &= ok;
        let mark = if ok { "ok" } else { "FAIL" };
        println!("  {name:<52} {value:>14}   {rule:<28} {mark}");
    };
    let overlaps = &verdict.overlaps;
    must(
        "overlapping bodies, no paused process, no data loss",
        overlaps.unexplained.to_string(),
        overlaps.unexplained == 0,
        "MUST be 0",
    );
    report(
        "overlapping bodies, a paused worker involved",
        overlaps.paused,
    );
    report("overlapping bodies after data loss", overlaps.data_loss);
    let lost = verdict.lost_updates();
    if verdict.lost_updates_must_be_zero() {
        must(
            "plain counter: lost updates (writes - counter)",
            lost.to_string(),
            lost == 0,
            "MUST be 0 (no pause/loss)",
        );
    } else {
        println!(
            "  {:<52} {lost:>14}   reported (workers paused or data lost)",
            "plain counter: lost updates (writes - counter)"
        );
    }
    let totals = verdict.totals;
    must(
        "fenced counter = accepted writes",
        format!("{} = {}", totals.fenced, totals.fenced_accepted),
        verdict.fenced_mismatches == 0,
        "MUST be equal on every key",
    );
    report(
        "fenced writes refused (stale tokens)",
        totals.fenced_refused.unsigned_abs(),
    );
    must(
        "duplicate fencing tokens per key",
        verdict.duplicate_tokens.to_string(),
        verdict.duplicate_tokens == 0,
        "MUST be 0",
    );
    must(
        "hung tasks or workers",
        history.hung.to_string(),
        history.hung == 0,
        "MUST be 0",
    );
    must(
        "panics",
        history.panics.len().to_string(),
        history.panics.is_empty(),
        "MUST be 0",
    );
    must(
        "bodies completed in the quiet period",
        verdict.quiet_bodies.to_string(),
        verdict.quiet_bodies > 0,
        "MUST be > 0",
    );
    must(
        "lock keys left one lease after the stop",
        verdict.leftover_locks.to_string(),
        verdict.leftover_locks == 0,
        "MUST be 0",
    );
    must(
        "garbled worker lines",
        history.garbled.to_string(),
        history.garbled == 0,
        "MUST be 0",
    );
    for panic in history.panics.iter().take(3) {
        println!("  panic: {panic}");
    }
    println!("RESULT {}", if passed { "pass" } else { "FAIL" });
    passed
}

fn report(name: &str, value: u64) {
    println!("  {name:<52} {value:>14}   reported");
}

fn print_counts(history: &History, faults: &[Fault]) {
    let mut kinds = BTreeMap::new();
    for fault in faults {
        *kinds.entry(fault.kind).or_insert(0u64) += 1;
    }
    println!("faults injected by kind: {} in all", faults.len());
    for (kind, count) in &kinds {
        println!("  {:<60} {count:>6}", kind.name());
    }
    let calls: u64 = history.calls.values().sum();
    println!("calls by outcome: {calls} in all");
    for outcome in Outcome::ALL {
        let count = history.calls.get(&outcome).copied().unwrap_or(0);
        println!("  {:<60} {count:>6}", outcome.name());
    }
    println!("bodies by ending: {} in all", history.bodies.len());
    for ending in [Ending::Done, Ending::Dropped, Ending::Killed, Ending::Open] {
        let count = history
            .bodies
            .iter()
            .filter(|body| body.ending == ending)
            .count();
        println!("  {:<60} {count:>6}", ending.name());
    }
}
