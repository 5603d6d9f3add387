//! Spawning a `redis-server` child process and waiting until it serves.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::port::free_port;
use crate::probe::{self, LOG_FILE, STDERR_FILE};
use crate::scratch::scratch_dir;

/// How many times a start is attempted when the server exits during startup
/// (usually because another process took the port).
const ATTEMPTS: u32 = 5;
/// The RDB file a server writes at `SAVE` and loads at start, in its `--dir`.
pub(crate) const SNAPSHOT_FILE: &str = "dump.rdb";
/// A sentinel's configuration file, in its `--dir`.
const SENTINEL_CONFIG_FILE: &str = "sentinel.conf";
/// Pause before the n-th retry is `n * RETRY_BACKOFF`.
const RETRY_BACKOFF: Duration = Duration::from_millis(20);
/// How long a started server may take to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A started, ready server process and the directory it runs in.
pub(crate) struct Launched {
    /// The `redis-server` process.
    pub(crate) child: Child,
    /// Its `--dir`, holding its log; removed when dropped.
    pub(crate) dir: TempDir,
    /// The loopback port it listens on.
    pub(crate) port: u16,
}

/// Why one start attempt failed.
enum Failure {
    /// Retrying cannot help (binary missing, no temp dir, timeout).
    Fatal(io::Error),
    /// The server exited during startup, typically because the port was taken.
    Retry(io::Error),
}

/// What to run: the binary, the caller's extra arguments and, for a
/// sentinel, its configuration.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    binary: PathBuf,
    args: Vec<String>,
    /// A sentinel's configuration file, written afresh into every new
    /// directory (a sentinel rewrites it as it learns); `None` for a server.
    sentinel_config: Option<String>,
}

impl Launcher {
    /// A launcher for `binary`, appending `args` to the managed arguments.
    pub(crate) fn new(binary: PathBuf, args: Vec<String>) -> Self {
        Self {
            binary,
            args,
            sentinel_config: None,
        }
    }

    /// Runs the binary as a sentinel (`<config file> --sentinel`) whose
    /// configuration file starts as `config`.
    pub(crate) fn sentinel(mut self, config: String) -> Self {
        self.sentinel_config = Some(config);
        self
    }

    /// Starts a server on a free port, trying new ports if it exits early.
    pub(crate) fn on_free_port(&self) -> io::Result<Launched> {
        self.with_retries(free_port)
    }

    /// Starts a server on `port`, retrying a few times if it exits early.
    pub(crate) fn on_port(&self, port: u16) -> io::Result<Launched> {
        self.with_retries(|| Ok(port))
    }

    /// Starts a server on `port` whose directory holds `files` (name,
    /// bytes) at start: an RDB snapshot it loads, a cluster node's
    /// `nodes.conf`.
    pub(crate) fn on_port_with(&self, port: u16, files: &[(&str, &[u8])]) -> io::Result<Launched> {
        self.with_retries_from(|| Ok(port), files)
    }

    fn with_retries(&self, next_port: impl FnMut() -> io::Result<u16>) -> io::Result<Launched> {
        self.with_retries_from(next_port, &[])
    }

    fn with_retries_from(
        &self,
        mut next_port: impl FnMut() -> io::Result<u16>,
        files: &[(&str, &[u8])],
    ) -> io::Result<Launched> {
        let mut last_error = None;
        for attempt in 1..=ATTEMPTS {
            let port = next_port()?;
            match self.attempt(port, files) {
                Ok(launched) => return Ok(launched),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retry(error)) => last_error = Some(error),
            }
            if attempt < ATTEMPTS {
                thread::sleep(RETRY_BACKOFF * attempt);
            }
        }
        let error = last_error.expect("at least one attempt was made");
        Err(io::Error::new(
            error.kind(),
            format!("redis-server did not start in {ATTEMPTS} attempts; last error: {error}"),
        ))
    }

    fn attempt(&self, port: u16, files: &[(&str, &[u8])]) -> Result<Launched, Failure> {
        let dir = scratch_dir("redis").map_err(Failure::Fatal)?;
        let stderr = File::create(dir.path().join(STDERR_FILE))
            .map_err(|e| Failure::Fatal(context(&e, "cannot create redis-server's stderr file")))?;
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).map_err(|e| {
                Failure::Fatal(context(&e, &format!("cannot write {name} to start with")))
            })?;
        }

        if let Some(config) = &self.sentinel_config {
            std::fs::write(dir.path().join(SENTINEL_CONFIG_FILE), config).map_err(|e| {
                Failure::Fatal(context(&e, "cannot write the sentinel's config file"))
            })?;
        }

        let child = self
            .command(port, dir.path(), stderr)
            .spawn()
            .map_err(|e| Failure::Fatal(spawn_error(&self.binary, &e)))?;
        // With a user-supplied `--logfile` our log never shows up; rely on PING.
        let check_log = !self.args.iter().any(|a| a == "--logfile");
        let ready_line = if self.sentinel_config.is_some() {
            probe::SENTINEL_READY_LINE
        } else {
            probe::READY_LINE
        };
        let child = wait_until_ready(child, dir.path(), port, check_log.then_some(ready_line))?;
        Ok(Launched { child, dir, port })
    }

    /// The command line: the managed arguments, then the caller's. A
    /// sentinel's config file goes first, as `redis-server` requires.
    fn command(&self, port: u16, dir: &Path, stderr: File) -> Command {
        let mut command = Command::new(&self.binary);
        if self.sentinel_config.is_some() {
            command
                .arg(dir.join(SENTINEL_CONFIG_FILE))
                .arg("--sentinel");
        }
        command
            .arg("--port")
            .arg(port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dbfilename", SNAPSHOT_FILE])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join(LOG_FILE))
            .args(&self.args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        kill_when_parent_exits(&mut command);
        command
    }
}

/// Polls until the server answers `PING`, fails fast if it exits.
///
/// With `ready_line`, the server must also have logged that line, which
/// proves that this process (not another that took the port) answers.
fn wait_until_ready(
    mut child: Child,
    dir: &Path,
    port: u16,
    ready_line: Option<&str>,
) -> Result<Child, Failure> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut logged_ready = ready_line.is_none();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(Failure::Retry(io::Error::other(format!(
                    "redis-server exited during startup on port {port} ({status}){}",
                    probe::log_tail(dir)
                ))));
            }
            Ok(None) => {}
            Err(error) => {
                kill_and_reap(&mut child);
                return Err(Failure::Fatal(context(&error, "cannot poll redis-server")));
            }
        }
        logged_ready = logged_ready || ready_line.is_some_and(|line| probe::log_says(dir, line));
        if logged_ready && probe::answers_ping(port) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            kill_and_reap(&mut child);
            return Err(Failure::Fatal(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "redis-server on port {port} did not answer PING within {READY_TIMEOUT:?}{}",
                    probe::log_tail(dir)
                ),
            )));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// SIGKILLs `child` and waits for it, ignoring errors (it may be gone already).
pub(crate) fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn context(error: &io::Error, what: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

fn spawn_error(binary: &Path, error: &io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "redis-server not found (looked for `{}`): install it with \
                 `sudo apt-get install redis-server` on Debian/Ubuntu, or run the README's \
                 test command (scripts/test.sh), which installs it; set REDIS_SERVER_BIN \
                 to use another binary",
                binary.display()
            ),
        )
    } else {
        context(error, &format!("cannot spawn `{}`", binary.display()))
    }
}

/// Makes the kernel SIGKILL the server (or an etcd member) when its parent
/// goes away, so servers do not outlive a test process that crashed or was
/// killed.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits,
/// not only the process; see the caveat on [`crate::RedisServer`].
#[cfg(target_os = "linux")]
pub(crate) fn kill_when_parent_exits(command: &mut Command) {
    use std::os::unix::process::CommandExt;

    let parent = std::process::id();
    let sigkill = libc::SIGKILL as libc::c_ulong;
    let hook = move || -> io::Result<()> {
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets an attribute of the calling
        // process and takes the signal as an unsigned long, as passed here.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sigkill) } == -1 {
            return Err(io::Error::last_os_error());
        }
        // If the parent died before prctl took effect, no signal will come.
        // SAFETY: getppid has no preconditions and cannot fail.
        if u32::try_from(unsafe { libc::getppid() }).ok() != Some(parent) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: `hook` runs in the forked child before exec, where only
    // async-signal-safe operations are allowed: it only calls prctl and
    // getppid, and builds errors from errno values without allocating.
    unsafe {
        command.pre_exec(hook);
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn kill_when_parent_exits(_command: &mut Command) {}
