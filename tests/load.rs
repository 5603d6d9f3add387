//! Load: the mutual-exclusion check at its full default size, the same with
//! every section locking two keys at once (smaller), and an opt-in soak with
//! cancellations and panics.
//!
//! All run `examples/exclusion_check.rs` (by default 4 worker processes × 16
//! tasks on 4 hot keys, against its own throwaway Redis) and fail when it
//! reports a violation. Like tests/examples.rs they run the example binary
//! that `cargo test` builds before the tests.
//!
//! ```text
//! cargo test --test load -- --nocapture                             # prints the figures
//! DISTLOCK_SOAK_SECS=300 cargo test --test load soak -- --nocapture # 5 minutes of soak
//! ```

mod common;

use std::time::{Duration, Instant};

use tokio::process::Command;

/// Seconds the soak runs for; the soak is skipped when unset.
const SOAK_ENV: &str = "DISTLOCK_SOAK_SECS";

/// The check at its default size: 4 processes × 16 tasks run 20,000 locked
/// GET / yield / SET sections on 4 keys; the counters must come out exact,
/// the fencing tokens strictly increasing, and no section may see another.
#[tokio::test]
async fn mutual_exclusion_holds_for_20000_sections_across_4_processes() {
    let stdout = run_exclusion_check(&[], Duration::from_secs(600)).await;
    assert!(
        stdout.contains("20,000 (4 processes × 16 tasks; 20,000 expected)"),
        "{stdout}"
    );
}

/// Pairs: 2 processes × 8 tasks run 2,000 sections, each locking two of 4
/// keys with `keys = [...]`, named in random order (A, B against B, A must
/// not deadlock), and doing the GET / yield / SET on both; per key, the
/// counter must equal the sections that included it, the fencing tokens
/// must strictly increase, and no section may see another.
#[tokio::test]
async fn mutual_exclusion_holds_for_2000_sections_locking_two_keys_each() {
    let args = [
        "--pairs",
        "--processes",
        "2",
        "--tasks",
        "8",
        "--sections",
        "2000",
        "--keys",
        "4",
    ];
    let stdout = run_exclusion_check(&args, Duration::from_secs(300)).await;
    assert!(
        stdout.contains("2,000 (2 processes × 8 tasks, 2 keys each; 2,000 expected)"),
        "{stdout}"
    );
}

/// The default load (one key per section) for `DISTLOCK_SOAK_SECS` seconds,
/// with random cancellations and panics: afterwards no lock key, wake-up subscription,
/// Redis connection or tokio task may be left, and memory must be flat.
#[tokio::test]
async fn soak_leaves_no_locks_subscriptions_tasks_or_memory_behind() {
    let Ok(secs) = std::env::var(SOAK_ENV) else {
        println!("soak skipped: set {SOAK_ENV} (e.g. {SOAK_ENV}=300) to run it");
        return;
    };
    let secs: u64 = secs
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{SOAK_ENV}={secs:?} is not a whole number of seconds"));
    run_exclusion_check(
        &["--soak", &secs.to_string()],
        Duration::from_secs(secs + 300),
    )
    .await;
}

/// Runs the check with `args`, prints its figures, and fails unless it passed.
async fn run_exclusion_check(args: &[&str], limit: Duration) -> String {
    let started = Instant::now();
    let output = Command::new(common::example_binary("exclusion_check"))
        .args(args)
        .env_remove("REDIS_URL")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(limit, output)
        .await
        .unwrap_or_else(|_| panic!("exclusion_check {args:?} did not finish within {limit:?}"))
        .expect("exclusion_check ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // Shown with `--nocapture`, and for a failing test.
    println!(
        "{stdout}exclusion_check {args:?} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success() && stdout.contains("result: PASS"),
        "exclusion_check {args:?} failed ({}); its figures are above. stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
