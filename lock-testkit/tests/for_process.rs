//! A fixture kept with `for_process` is torn down when its process exits:
//! its server killed and its directory removed, though it lived in a
//! `static`, which Rust never drops.
//!
//! The test runs itself again as a child process (the test binary, with
//! [`CHILD`] set), which starts a shared server, prints what the parent
//! checks, and exits as every test binary does.

use std::path::PathBuf;
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use lock_testkit::{RedisServer, for_process};

#[path = "common/process.rs"]
mod process;
use process::process_exists;

/// Set in the child's environment.
const CHILD: &str = "LOCK_TESTKIT_FOR_PROCESS_CHILD";

/// The child's shared server: its process id.
static SERVER_PID: LazyLock<u32> = LazyLock::new(|| {
    for_process(RedisServer::start, |server| {
        server.pid().expect("a started server has a process")
    })
});

/// The scratch directories in the temp directory made by process `pid`.
fn scratch_dirs_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("lock-testkit-redis-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .expect("the temp directory is readable")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

#[test]
fn a_shared_fixture_is_torn_down_when_the_process_exits() {
    if std::env::var_os(CHILD).is_some() {
        let server = *SERVER_PID;
        let own_dirs = scratch_dirs_of(std::process::id()).len();
        println!("server={server} dirs={own_dirs}");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let child = Command::new(exe)
        .args([
            "a_shared_fixture_is_torn_down_when_the_process_exits",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the test binary runs");
    let child_pid = child.id();
    let output = child.wait_with_output().expect("the child ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child failed: {stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("server="))
        .unwrap_or_else(|| panic!("the child printed no server: {stdout}"));
    let (server, dirs) = line
        .strip_prefix("server=")
        .and_then(|rest| rest.split_once(" dirs="))
        .expect("server=<pid> dirs=<count>");
    let server: u32 = server.parse().expect("a pid");
    assert_eq!(dirs, "1", "the running child had its server's directory");

    assert!(
        scratch_dirs_of(child_pid).is_empty(),
        "the child's directory outlived it: {:?}",
        scratch_dirs_of(child_pid)
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while process_exists(server) {
        assert!(Instant::now() < deadline, "the child's server outlived it");
        std::thread::sleep(Duration::from_millis(10));
    }
}
