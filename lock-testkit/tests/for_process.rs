//! A fixture kept with `for_process` is torn down when its process exits:
//! its directory removed, though it lived in a `static`, which Rust never
//! drops. (Its server would die anyway, by the parent-death signal.)
//!
//! The test runs itself again as a child process (the test binary, with
//! [`CHILD`] set), which starts a shared server, prints what the parent
//! checks, and exits as every test binary does.

use std::path::PathBuf;
use std::process::Command;
use std::sync::LazyLock;

use lock_testkit::{RedisServer, for_process};

/// Set in the child's environment.
const CHILD: &str = "LOCK_TESTKIT_FOR_PROCESS_CHILD";

/// The child's shared server: its port.
static SERVER: LazyLock<u16> = LazyLock::new(|| for_process(RedisServer::start, RedisServer::port));

/// The redis scratch directories in the temp directory made by process
/// `pid` (named `lock-testkit-redis-<pid namespace>-<pid>-<random>`).
fn scratch_dirs_of(pid: u32) -> Vec<PathBuf> {
    let pid = pid.to_string();
    std::fs::read_dir(std::env::temp_dir())
        .expect("the temp directory is readable")
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("lock-testkit-redis-") && name.rsplit('-').nth(1) == Some(&pid)
        })
        .map(|entry| entry.path())
        .collect()
}

#[test]
fn a_shared_fixture_is_torn_down_when_the_process_exits() {
    if std::env::var_os(CHILD).is_some() {
        LazyLock::force(&SERVER);
        let own_dirs = scratch_dirs_of(std::process::id()).len();
        println!("dirs={own_dirs}");
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
    let dirs = stdout
        .lines()
        .find_map(|line| line.strip_prefix("dirs="))
        .unwrap_or_else(|| panic!("the child printed no count: {stdout}"));
    assert_eq!(dirs, "1", "the running child had its server's directory");

    assert!(
        scratch_dirs_of(child_pid).is_empty(),
        "the child's directory outlived it: {:?}",
        scratch_dirs_of(child_pid)
    );
}
