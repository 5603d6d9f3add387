//! The [`RedisServer`] handle.

use std::fmt;
use std::io;
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::launch::{Launched, Launcher, kill_and_reap};
use crate::unpoisoned;

/// A throwaway `redis-server` process on a free loopback port.
///
/// The server runs in its own temporary directory with persistence disabled
/// (`--save ""`, `--appendonly no`), so it always starts with empty data.
/// Dropping the handle kills the process (`SIGKILL`, even while paused), waits
/// for it and removes the directory.
///
/// # Thread caveat (Linux)
///
/// Servers are started with `PR_SET_PDEATHSIG(SIGKILL)`, so they die with the
/// test process even if it crashes. The kernel sends that signal when the
/// *thread* that started the server exits. Start and drop a server in the same
/// test thread (the normal case); do not start one in a short-lived thread
/// (e.g. Tokio's `spawn_blocking`) or keep one in a `static` initialised by
/// whichever test runs first, or it will be killed when that thread ends. The
/// same applies to [`restart`](Self::restart), which starts a new process.
/// A server shared by the tests of a binary is kept with
/// [`for_process`](crate::for_process), which also removes it when the
/// process exits.
pub struct RedisServer {
    /// The running process; `None` after [`stop`](Self::stop). Behind a mutex
    /// so `&self` methods can reap a process that died on its own.
    child: Mutex<Option<Child>>,
    port: u16,
    /// Dropped after the process is killed in `Drop::drop`.
    dir: TempDir,
    launcher: Launcher,
}

impl RedisServer {
    pub(crate) fn launch(launcher: Launcher) -> io::Result<RedisServer> {
        let Launched { child, dir, port } = launcher.on_free_port()?;
        Ok(RedisServer {
            child: Mutex::new(Some(child)),
            port,
            dir,
            launcher,
        })
    }

    /// The connection URL, `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The loopback port; it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, or `None` while the server is not running.
    pub fn pid(&self) -> Option<u32> {
        self.live_child().as_ref().map(Child::id)
    }

    /// Whether the process is running (a paused server counts as running).
    pub fn is_running(&self) -> bool {
        self.live_child().is_some()
    }

    /// Kills the server with `SIGKILL` and waits for it, simulating a crash.
    ///
    /// Does nothing if it is not running.
    pub fn stop(&mut self) {
        let child = unpoisoned::get_mut(&mut self.child);
        if let Some(mut child) = child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Stops the server if needed and starts a new one on the same port with
    /// empty data, returning once it answers `PING`.
    ///
    /// # Panics
    ///
    /// Panics if the server cannot be started again, e.g. because another
    /// process took the port meanwhile; see [`try_restart`](Self::try_restart).
    #[track_caller]
    pub fn restart(&mut self) {
        if let Err(e) = self.try_restart() {
            panic!("failed to restart redis-server on port {}: {e}", self.port);
        }
    }

    /// Like [`restart`](Self::restart), but returns an error instead of
    /// panicking. On error the server is left stopped.
    ///
    /// # Errors
    ///
    /// See [`RedisServerBuilder::start`](crate::RedisServerBuilder::start).
    pub fn try_restart(&mut self) -> io::Result<()> {
        self.stop();
        let Launched { child, dir, .. } = self.launcher.on_port(self.port)?;
        // A fresh directory guarantees empty data; the old one is removed here.
        self.dir = dir;
        *unpoisoned::get_mut(&mut self.child) = Some(child);
        Ok(())
    }

    /// Kills the server with `SIGKILL` and starts a new one on the same
    /// port whose directory starts with a copy of each of `files` the old
    /// one had (by name, such as `nodes.conf`; the others are left out). A
    /// cluster node restarted with its `nodes.conf` rejoins under its old
    /// identity, as one a supervisor restarts after a crash does: once a
    /// replica took its slots over, it comes back as that replica's replica.
    /// Its data is gone unless the snapshot is among `files`.
    ///
    /// # Errors
    ///
    /// Fails if a kept file cannot be read, or as [`try_restart`](Self::try_restart).
    pub fn try_restart_keeping(&mut self, files: &[&str]) -> io::Result<()> {
        self.stop();
        let mut kept = Vec::new();
        for &name in files {
            match std::fs::read(self.dir.path().join(name)) {
                Ok(bytes) => kept.push((name, bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("cannot keep {name}: {e}"))),
            }
        }
        let kept: Vec<(&str, &[u8])> = kept
            .iter()
            .map(|(name, bytes)| (*name, &bytes[..]))
            .collect();
        let Launched { child, dir, .. } = self.launcher.on_port_with(self.port, &kept)?;
        self.dir = dir;
        *unpoisoned::get_mut(&mut self.child) = Some(child);
        Ok(())
    }

    /// Where `SAVE` writes this server's RDB snapshot, to be given to
    /// [`restart_from_snapshot`](Self::restart_from_snapshot) later.
    pub fn snapshot_path(&self) -> std::path::PathBuf {
        self.dir.path().join(crate::launch::SNAPSHOT_FILE)
    }

    /// Stops the server (as [`stop`](Self::stop) does) and starts a new one
    /// on the same port that loads `snapshot`, the bytes of an RDB file: a
    /// server that came back with older data than it had. A new run, with a
    /// new `run_id`, as after any restart.
    ///
    /// # Panics
    ///
    /// Panics if the server cannot be started again.
    #[track_caller]
    pub fn restart_from_snapshot(&mut self, snapshot: &[u8]) {
        self.stop();
        match self
            .launcher
            .on_port_with(self.port, &[(crate::launch::SNAPSHOT_FILE, snapshot)])
        {
            Ok(Launched { child, dir, .. }) => {
                self.dir = dir;
                *unpoisoned::get_mut(&mut self.child) = Some(child);
            }
            Err(e) => panic!("failed to restart redis-server on port {}: {e}", self.port),
        }
    }

    /// Freezes the server with `SIGSTOP`: connections are still accepted by the
    /// kernel, but nothing is answered until [`resume`](Self::resume).
    ///
    /// Does nothing if the server is not running.
    ///
    /// # Panics
    ///
    /// Panics if the signal cannot be sent or the server has not stopped 5 s
    /// after it; [`try_pause`](Self::try_pause) returns the error instead.
    #[track_caller]
    pub fn pause(&self) {
        self.try_pause()
            .unwrap_or_else(|e| panic!("cannot pause redis-server: {e}"));
    }

    /// [`pause`](Self::pause), returning an error when the signal cannot
    /// be sent. Returns once the server has stopped, not merely once the
    /// signal is sent.
    ///
    /// # Errors
    ///
    /// The error of `kill(2)`, naming the server's pid, or `TimedOut` if
    /// the server has not stopped 5 s after the signal (it is then
    /// continued: an error means it is not paused).
    pub fn try_pause(&self) -> io::Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// Continues a [`pause`](Self::pause)d server with `SIGCONT`.
    ///
    /// Does nothing if the server is not running.
    ///
    /// # Panics
    ///
    /// Panics if the signal cannot be sent; [`try_resume`](Self::try_resume)
    /// returns the error instead.
    #[track_caller]
    pub fn resume(&self) {
        self.try_resume()
            .unwrap_or_else(|e| panic!("cannot send SIGCONT to redis-server: {e}"));
    }

    /// [`resume`](Self::resume), returning an error when the signal cannot
    /// be sent.
    ///
    /// # Errors
    ///
    /// The error of `kill(2)`, naming the server's pid.
    pub fn try_resume(&self) -> io::Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// Sends `signal` to the server if it runs.
    fn signal(&self, signal: libc::c_int) -> io::Result<()> {
        match self.live_child().as_ref() {
            Some(child) => send_signal(child, signal)
                .map_err(|e| io::Error::new(e.kind(), format!("pid {}: {e}", child.id()))),
            None => Ok(()),
        }
    }

    /// Locks the child slot, first clearing it if the process has exited.
    fn live_child(&self) -> MutexGuard<'_, Option<Child>> {
        let mut guard = unpoisoned::lock(&self.child);
        if let Some(child) = guard.as_mut()
            && !matches!(child.try_wait(), Ok(None))
        {
            *guard = None;
        }
        guard
    }
}

/// Sends `signal` to `child`; `SIGSTOP` returns once every thread of the
/// child has stopped (see [`wait_until_stopped`]), and on an error leaves
/// the child continued (`SIGCONT`), so that an error always means "not
/// paused".
///
/// The child has not been reaped (we own its `Child` and only reap it when
/// taking it out of the slot), so its pid cannot have been reused.
pub(crate) fn send_signal(child: &Child, signal: libc::c_int) -> io::Result<()> {
    kill(child, signal)?;
    if signal == libc::SIGSTOP
        && let Err(e) = wait_until_stopped(child.id())
    {
        let _ = kill(child, libc::SIGCONT);
        return Err(e);
    }
    Ok(())
}

/// kill(2) of `child` with `signal`.
fn kill(child: &Child, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own
    // unreaped child, so the signal cannot hit an unrelated process.
    if unsafe { libc::kill(pid, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How long a process may take to stop after `SIGSTOP`.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until every thread of process `pid` is stopped (or the process
/// is dead). kill(2) only queues the signal: on a loaded machine a thread
/// of etcd ran on for up to 22 ms after it returned (measured), long enough
/// to answer a request sent in the meantime.
fn wait_until_stopped(pid: u32) -> io::Result<()> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !all_threads_stopped(pid)? {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("still running {STOP_TIMEOUT:?} after SIGSTOP"),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Whether no thread of process `pid` runs, from the state field of
/// `/proc/<pid>/task/*/stat`: `T` (stopped), `t` (traced), `Z` or `X`
/// (dead). A thread that ended while being read counts as stopped.
fn all_threads_stopped(pid: u32) -> io::Result<bool> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = match std::fs::read_to_string(task?.path().join("stat")) {
            Ok(stat) => stat,
            // Gone before it was opened (ENOENT), or after (ESRCH).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
            Err(e) => return Err(e),
        };
        // The state follows the command name, which may itself hold ")".
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        if !matches!(state, Some("T" | "t" | "Z" | "X")) {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let slot = unpoisoned::get_mut(&mut self.child);
        if let Some(mut child) = slot.take() {
            // SIGKILL works on stopped processes too; SIGCONT is belt and braces.
            let _ = send_signal(&child, libc::SIGCONT);
            kill_and_reap(&mut child);
        }
        // `self.dir` is removed after this, once the process is gone.
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Starts `n` independent servers, each on its own port.
///
/// # Panics
///
/// Panics if any server cannot be started; see [`try_start_many`].
#[track_caller]
#[must_use = "dropping a RedisServer kills it"]
pub fn start_many(n: usize) -> Vec<RedisServer> {
    try_start_many(n).unwrap_or_else(|e| panic!("failed to start {n} redis-servers: {e}"))
}

/// Starts `n` independent servers, each on its own port.
///
/// They are started one after another in the calling thread (see the thread
/// caveat on [`RedisServer`]); servers already started are killed on error.
///
/// # Errors
///
/// See [`RedisServerBuilder::start`](crate::RedisServerBuilder::start).
pub fn try_start_many(n: usize) -> io::Result<Vec<RedisServer>> {
    (0..n).map(|_| RedisServer::try_start()).collect()
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// A child killed and reaped when the test ends, passed or failed (a
    /// stopped child left behind would keep the runner's output open).
    struct Reaped(Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = kill(&self.0, libc::SIGCONT);
            kill_and_reap(&mut self.0);
        }
    }

    /// A pause returns with the child stopped, not with the signal merely
    /// queued; a resume makes it runnable again; a dead child counts as
    /// stopped.
    #[test]
    fn sigstop_returns_once_the_child_has_stopped() {
        let child = Command::new("sleep")
            .arg("30")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Reaped)
            .expect("a child");
        let pid = child.0.id();
        for _ in 0..20 {
            send_signal(&child.0, libc::SIGSTOP).expect("paused");
            assert!(all_threads_stopped(pid).expect("its threads"));
            send_signal(&child.0, libc::SIGCONT).expect("resumed");
            assert!(!all_threads_stopped(pid).expect("its threads"));
        }
        kill(&child.0, libc::SIGKILL).expect("killed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !all_threads_stopped(pid).expect("a zombie's threads") {
            assert!(Instant::now() < deadline, "the killed child still runs");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
