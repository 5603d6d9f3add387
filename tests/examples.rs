//! Runs the example programs, each against its own throwaway Redis.
//!
//! `cargo test` builds the examples before running tests; these tests run
//! those binaries.

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

async fn run(name: &str) -> String {
    run_with(name, &[], None).await
}

/// Runs example `name` with `args`, against the Redis at `redis_url` if
/// given (otherwise the example starts its own).
async fn run_with(name: &str, args: &[&str], redis_url: Option<&str>) -> String {
    let mut command = Command::new(common::example_binary(name));
    command
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("REDLOCK_URLS")
        .env_remove("REDIS_CLUSTER_URLS")
        .env_remove("REDIS_SENTINEL_URLS")
        .kill_on_drop(true);
    if let Some(url) = redis_url {
        command.env("REDIS_URL", url);
    }
    let output = command.output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("example finished in time")
        .expect("example ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn quickstart_serializes_two_payments_with_rising_fencing_tokens() {
    let stdout = run("quickstart").await;
    // Each worker's "done" comes before the other worker starts charging.
    assert_eq!(
        starts_and_ends(&stdout, "charging", "done"),
        ["start", "end", "start", "end"],
        "{stdout}"
    );
    assert!(
        stdout.contains("increasing") && !stdout.contains("NOT increasing"),
        "{stdout}"
    );
}

/// `start` and `end` for the lines of `output` that contain `start` or
/// `end`, in order: alternating when the critical sections never overlap.
fn starts_and_ends(output: &str, start: &str, end: &str) -> Vec<&'static str> {
    output
        .lines()
        .filter_map(|line| {
            if line.contains(start) {
                Some("start")
            } else if line.contains(end) {
                Some("end")
            } else {
                None
            }
        })
        .collect()
}

#[tokio::test]
async fn cluster_serializes_each_order_and_runs_different_orders_side_by_side() {
    let stdout = run("cluster").await;
    for order in 1..=3 {
        let tag = format!("order {order}: ");
        let lines: Vec<&str> = stdout.lines().filter(|line| line.contains(&tag)).collect();
        assert_eq!(
            starts_and_ends(&lines.join("\n"), "charging", "done"),
            ["start", "end", "start", "end"],
            "{stdout}"
        );
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with(&tag) && line.ends_with(": increasing")),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("NOT increasing"), "{stdout}");
    // The three orders' first payments all started before any finished.
    let first_done = stdout
        .lines()
        .position(|line| line.ends_with("done"))
        .expect("a payment finished");
    let started_before = stdout
        .lines()
        .take(first_done)
        .filter(|line| line.contains("charging"))
        .count();
    assert_eq!(started_before, 3, "{stdout}");
}

#[tokio::test]
async fn redlock_serializes_the_workers_before_and_after_two_of_five_nodes_stop() {
    let stdout = run("redlock").await;
    assert!(
        stdout.contains("redlock over 5 nodes: a lock needs 3 of them"),
        "{stdout}"
    );
    let (before, after) = stdout
        .split_once("2 of 5 nodes stopped")
        .unwrap_or_else(|| panic!("no nodes stopped: {stdout}"));
    for half in [before, after] {
        // Each worker is done before the other one starts.
        assert_eq!(
            starts_and_ends(half, "settles invoice 7", ": done"),
            ["start", "end", "start", "end"],
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("increasing") && !stdout.contains("NOT increasing"),
        "{stdout}"
    );
}

#[tokio::test]
async fn grpc_service_settles_one_region_at_a_time_across_replicas() {
    let stdout = run("grpc_service").await;
    let eu: Vec<&str> = stdout.lines().filter(|line| line.contains(" eu")).collect();
    // Each `eu` settlement ends before the other replica's starts.
    assert_eq!(
        starts_and_ends(&eu.join("\n"), "settling", "settled"),
        ["start", "end", "start", "end"],
        "{stdout}"
    );
    // ... and the two are different replicas.
    let replica = |line: &str| {
        line.split(':')
            .next()
            .and_then(|head| head.split_whitespace().last())
            .map(str::to_owned)
    };
    assert_ne!(replica(eu[0]), replica(eu[2]), "{stdout}");
    // `us` has a lock of its own: it starts before the first `eu` one ends.
    let first_settled = stdout
        .lines()
        .position(|line| line.ends_with("settled"))
        .expect("a settlement finished");
    let started_before = stdout
        .lines()
        .take(first_settled)
        .filter(|line| line.contains("settling"))
        .count();
    assert_eq!(started_before, 2, "{stdout}");
    assert!(
        stdout.contains("increasing") && !stdout.contains("NOT increasing"),
        "{stdout}"
    );
}

#[tokio::test]
async fn scheduled_job_runs_each_tick_once() {
    let stdout = run("scheduled_job").await;
    assert_eq!(stdout.matches("ran 1 time(s)").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("skips").count(), 6, "{stdout}");
}

#[tokio::test]
async fn fencing_rejects_the_write_of_a_holder_whose_lease_ran_out() {
    let stdout = run("fencing").await;
    let token = |worker: &str| -> u64 {
        stdout
            .lines()
            .find(|line| line.contains(&format!("{worker}: holds")))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|token| token.parse().ok())
            .unwrap_or_else(|| panic!("no token for {worker}: {stdout}"))
    };
    assert!(token("worker-a") < token("worker-b"), "{stdout}");
    assert!(stdout.contains("worker-b: write accepted"), "{stdout}");
    assert!(
        stdout.contains("worker-a: wakes up; lock still held: false"),
        "{stdout}"
    );
    assert!(stdout.contains("worker-a: write rejected"), "{stdout}");
    assert!(
        stdout.contains("invoice 7: settled by worker-b"),
        "{stdout}"
    );
}

async fn post(port: u16, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[tokio::test]
async fn axum_orders_answers_409_for_a_busy_order_and_serves_other_orders() {
    let mut child = Command::new(common::example_binary("axum_orders"))
        .env_remove("REDIS_URL")
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start axum_orders");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("listening in time")
        .expect("read stdout")
        .expect("a line");
    let port: u16 = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect(&line);

    // Five concurrent payments of order 7: one is served, four are busy.
    let same =
        futures_util::future::join_all((0..5).map(|_| post(port, "/orders/7/pay", ""))).await;
    let ok: Vec<_> = same.iter().filter(|(status, _)| *status == 200).collect();
    let busy = same.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!((ok.len(), busy), (1, 4), "{same:?}");
    assert!(ok[0].1.contains("\"order\":7"), "{}", ok[0].1);

    // Different orders run in parallel.
    let different = futures_util::future::join_all(
        (1..=4).map(|id| async move { post(port, &format!("/orders/{id}/pay"), "").await }),
    )
    .await;
    assert!(
        different.iter().all(|(status, _)| *status == 200),
        "{different:?}"
    );

    // Transfers lock each account: 1→2, 2→1 and 2→3 all touch account 2, so
    // they run one after another (about 50 ms each), and all succeed.
    let bodies = [
        r#"{"from": 1, "to": 2, "amount": 10}"#,
        r#"{"from": 2, "to": 1, "amount": 20}"#,
        r#"{"from": 2, "to": 3, "amount": 30}"#,
    ];
    let started = std::time::Instant::now();
    let transfers =
        futures_util::future::join_all(bodies.map(|body| post(port, "/transfers", body))).await;
    let took = started.elapsed();
    assert!(
        transfers.iter().all(|(status, _)| *status == 200),
        "{transfers:?}"
    );
    assert!(
        transfers[1].1.contains("moved 20 from 2 to 1"),
        "{transfers:?}"
    );
    assert!(
        took >= Duration::from_millis(150),
        "transfers sharing account 2 overlapped: all three took {took:?}"
    );

    // SIGTERM while a payment runs: it finishes (drained), then the
    // process shuts distlock down and exits on its own.
    let paying = tokio::spawn(post(port, "/orders/8/pay", ""));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let (status, text) = paying.await.unwrap();
    assert_eq!(status, 200, "{text}");
    let exited = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exited after SIGTERM")
        .expect("wait");
    assert!(exited.success(), "{exited:?}");
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.starts_with("shutting down"))
            && rest.iter().any(|l| l.starts_with("distlock shut down")),
        "{rest:?}"
    );
}

/// Runs `exit_while_holding` on its own Redis: `main` returns while a
/// spawned task holds `job:7` (30 s lease, renewed). Returns its output and
/// how long the process took.
async fn exit_while_holding(flavor: &str) -> (String, Duration) {
    let server = lock_testkit::RedisServer::start();
    let started = std::time::Instant::now();
    let output = Command::new(common::example_binary("exit_while_holding"))
        .arg(flavor)
        .env("REDIS_URL", server.url())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("example finished in time")
        .expect("example ran");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Right after the process exited: no lease left, though one was taken.
    let keys = common::all_keys(&server).await;
    assert!(keys.iter().any(|k| k.contains("}:fence")), "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.ends_with("}:lock:job:7")),
        "{keys:?}"
    );
    (stdout, took)
}

#[tokio::test]
async fn a_lock_held_when_a_multi_thread_main_returns_is_released_before_the_exit() {
    let (stdout, took) = exit_while_holding("multi_thread").await;
    assert!(
        stdout.contains("main returns while job:7 is held"),
        "{stdout}"
    );
    assert!(stdout.contains("job:7 is free"), "{stdout}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn a_lock_held_when_a_current_thread_main_returns_is_released_before_the_exit() {
    let (stdout, took) = exit_while_holding("current_thread").await;
    assert!(
        stdout.contains("main returns while job:7 is held"),
        "{stdout}"
    );
    assert!(stdout.contains("job:7 is free"), "{stdout}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn admin_inspects_and_force_releases_a_lock_another_process_holds() {
    let server = lock_testkit::RedisServer::start();
    let manager = common::manager(&server).await;
    let guard = manager
        .lock("order:7")
        .ttl(Duration::from_secs(60))
        .acquire()
        .await
        .unwrap();
    let url = server.url();
    let inspected = run_with("admin", &["inspect", "order:7"], Some(&url)).await;
    assert!(inspected.contains("order:7: held by 1, "), "{inspected}");
    assert!(inspected.contains("ms of its lease left"), "{inspected}");
    assert!(inspected.contains("; 0 waiting"), "{inspected}");
    assert!(!inspected.contains(guard.owner_token()), "{inspected}");
    let forced = run_with("admin", &["force-release", "order:7"], Some(&url)).await;
    assert!(forced.contains("order:7: freed ("), "{forced}");
    let after = run_with("admin", &["inspect", "order:7"], Some(&url)).await;
    assert!(after.contains("order:7: free;"), "{after}");
    assert_eq!(
        guard.release().await.unwrap(),
        distlock::ReleaseOutcome::Expired
    );

    let demo = run_with("admin", &["demo"], None).await;
    assert!(demo.contains("order:42: held by 1"), "{demo}");
    assert!(demo.contains("order:42: freed"), "{demo}");
    assert!(demo.contains("release finds the lock Expired"), "{demo}");
}

#[tokio::test]
async fn transfer_keeps_every_balance_with_transfers_both_ways_at_once() {
    let stdout = run("transfer").await;
    assert!(
        stdout.contains("60 transfers done, 60 distinct fencing tokens"),
        "{stdout}"
    );
    assert!(stdout.contains("every balance is exact"), "{stdout}");
}

#[tokio::test]
async fn bounded_export_runs_three_exports_at_once_across_processes() {
    let stdout = run("bounded_export").await;
    assert!(
        stdout.contains("12 exports in 3 processes: at most 3 ran at once"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("done under permit token").count(),
        12,
        "{stdout}"
    );
}

#[tokio::test]
async fn sentinel_follows_a_failover_with_tokens_still_rising() {
    let stdout = run("sentinel").await;
    assert!(stdout.contains("Sentinel promoted"), "{stdout}");
    assert_eq!(stdout.matches("charging").count(), 4, "{stdout}");
    assert!(stdout.contains(": increasing"), "{stdout}");
}

#[tokio::test]
async fn failover_check_counts_two_sentinel_failovers() {
    // A measurement, not a check: double grants are counted, not asserted
    // (none is expected without lag, but a loaded machine may delay the
    // replication of a lease past the kill).
    let stdout = run_with(
        "failover_check",
        &["--topology", "sentinel", "--acks", "none", "--rounds", "2"],
        None,
    )
    .await;
    assert_eq!(stdout.matches("promoted").count(), 2, "{stdout}");
    assert!(stdout.contains("RESULT rounds=2 "), "{stdout}");
    assert!(stdout.contains(" other_errors=0 "), "{stdout}");
}

/// The nemesis runs go one at a time: each is three worker processes and
/// a lock service of up to seven servers, on a machine of two cores.
static NEMESIS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the nemesis check (issue 18) on `backend` for `seconds` of faults
/// (seed 1), with `extra` arguments: whether it passed, and its output.
async fn nemesis(backend: &str, seconds: u32, extra: &[&str]) -> (bool, String) {
    let _one_at_a_time = NEMESIS.lock().await;
    let seconds = seconds.to_string();
    let mut args = vec!["--backend", backend, "--duration", &seconds, "--seed", "1"];
    args.extend(extra);
    let output = Command::new(common::example_binary("nemesis_check"))
        .args(&args)
        .kill_on_drop(true)
        .output();
    // Faults, 6 s of quiet, the drain and a lease; each heal is bounded.
    let output = tokio::time::timeout(Duration::from_secs(240), output)
        .await
        .expect("the nemesis run finished in time")
        .expect("the nemesis run started");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{stdout}\n{stderr}"))
}

/// Asserts a 30-second mix of faults on `backend` (with `extra`
/// arguments) passed every must of the checker, and returns the output.
async fn assert_nemesis_passes(backend: &str, extra: &[&str]) -> String {
    let (passed, output) = nemesis(backend, 30, extra).await;
    assert!(passed && output.contains("RESULT pass"), "{output}");
    assert!(output.contains("seed 1,"), "{output}");
    assert!(
        service_faults(&output) > 0,
        "no fault hit the lock service itself: {output}"
    );
    output
}

/// How many faults of the run hit the lock service (not a worker), from
/// the report's table of faults by kind.
fn service_faults(output: &str) -> u64 {
    output
        .lines()
        .skip_while(|line| !line.starts_with("faults injected by kind"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter(|line| !line.trim_start().starts_with("worker"))
        .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// One Redis server: pauses, restarts with and without data (data loss
/// included), killed connections, delays and black holes.
#[tokio::test]
async fn nemesis_check_passes_30_s_of_faults_on_one_redis_server() {
    assert_nemesis_passes("single", &[]).await;
}

/// A cluster: masters killed and frozen until failed over, killed
/// connections.
#[tokio::test]
async fn nemesis_check_passes_30_s_of_faults_on_a_cluster() {
    assert_nemesis_passes("cluster", &[]).await;
}

/// Redlock over three servers: a minority paused or restarted empty.
#[tokio::test]
async fn nemesis_check_passes_30_s_of_faults_on_redlock() {
    assert_nemesis_passes("redlock", &[]).await;
}

/// Sentinel: the master killed or frozen until a replica is promoted.
#[tokio::test]
async fn nemesis_check_passes_30_s_of_faults_on_sentinel() {
    assert_nemesis_passes("sentinel", &[]).await;
}

/// A 3-member etcd cluster: leader kills and member pauses. No worker is
/// frozen and no fault loses data, so the plain counter may lose no update.
#[tokio::test]
async fn nemesis_check_passes_30_s_of_faults_on_etcd() {
    let output = assert_nemesis_passes("etcd", &["--no-worker-pause"]).await;
    let lost_updates = checker_line(&output, "plain counter: lost updates");
    assert!(lost_updates.contains("MUST be 0"), "{output}");
    assert!(!output.contains("worker paused"), "{output}");
}

/// The checker's line starting with `check` (after its indentation).
fn checker_line<'a>(output: &'a str, check: &str) -> &'a str {
    output
        .lines()
        .find(|line| line.trim_start().starts_with(check))
        .unwrap_or_else(|| panic!("no line {check:?}: {output}"))
}

/// The checker can fail: the same body with its lock attribute left out
/// (`--unlocked`) overlaps and loses updates, and the run fails on both
/// musts (without worker pauses and data-loss faults, lost updates are
/// one); its timeline (`--timeline`) shows the overlaps.
#[tokio::test]
async fn nemesis_check_fails_a_run_whose_bodies_have_no_lock() {
    let timeline = std::env::temp_dir().join(format!("unlocked-{}.svg", std::process::id()));
    let path = timeline.to_str().expect("a UTF-8 temporary directory");
    let arguments = [
        "--unlocked",
        "--no-worker-pause",
        "--no-data-loss",
        "--timeline",
        path,
    ];
    let (passed, output) = nemesis("single", 5, &arguments).await;
    assert!(!passed && output.contains("RESULT FAIL"), "{output}");
    for check in [
        "overlapping bodies, no paused process",
        "plain counter: lost updates",
    ] {
        let line = checker_line(&output, check);
        assert!(line.trim_end().ends_with("FAIL"), "{output}");
    }
    // The run's timeline is drawn even though it failed, with its overlaps
    // in red (the one red of the charts) and their count in its heading.
    let svg = std::fs::read_to_string(&timeline).expect("the timeline was written");
    std::fs::remove_file(&timeline).expect("the timeline removed");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("nemesis_check --backend single --duration 5 --seed 1"));
    // The legend's swatch is red too: one more than the legend's.
    let red = svg.matches(r##"fill="#D62728""##).count();
    assert!(red > 1, "no overlap drawn in red");
    assert!(
        !svg.contains(" 0 unexplained"),
        "the heading counts no overlap"
    );
    assert!(svg.contains("key 0") && svg.contains("process 2"));
}
