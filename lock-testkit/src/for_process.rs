//! Fixtures shared by every test of a test binary, kept until the process
//! exits and then torn down.
//!
//! A server in a `static` is never dropped: Rust runs no destructor of a
//! `static`, and the test harness ends with `exit`. So its processes would
//! die only by their parent-death signal, and its directory would stay
//! behind (an etcd cluster's is 375 MB). [`for_process`] keeps a fixture
//! on a thread that lives as long as the process, since the kit kills a
//! server when the thread that started it ends, and drops it in an `atexit`
//! handler, which `exit` runs: servers killed, directories removed.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, Once};
use std::thread;

use crate::unpoisoned;

/// The fixtures kept until the process exits.
static KEPT: Mutex<Vec<Box<dyn Send>>> = Mutex::new(Vec::new());

/// Starts a fixture with `start` on a thread that lives as long as the
/// process, and returns what `view` reads of it (its URLs, say). The
/// fixture is dropped when the process ends normally (`main` returns, or
/// `std::process::exit`, as the test harness does): its servers are killed
/// and its directories removed. A process killed by a signal or aborted
/// drops nothing; its servers die with it (see
/// [`RedisServer`](crate::RedisServer)) and the next kit process removes
/// its directories.
///
/// Meant for a `static` shared by the tests of one binary:
///
/// ```no_run
/// use std::sync::LazyLock;
/// use lock_testkit::{EtcdCluster, for_process};
///
/// static ETCD: LazyLock<Vec<String>> =
///     LazyLock::new(|| for_process(EtcdCluster::start, EtcdCluster::endpoints));
/// ```
///
/// # Panics
///
/// With the panic of `start` or `view`, if either panics; or if no thread
/// can be started.
pub fn for_process<T, R>(
    start: impl FnOnce() -> T + Send + 'static,
    view: impl FnOnce(&T) -> R + Send + 'static,
) -> R
where
    T: Send + 'static,
    R: Send + 'static,
{
    static TEAR_DOWN_AT_EXIT: Once = Once::new();
    TEAR_DOWN_AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` with no arguments,
        // which is what atexit(3) takes. If registration fails, fixtures
        // are left to the parent-death signal and the next sweep.
        let _ = unsafe { libc::atexit(tear_down) };
    });
    let (viewed, seen) = mpsc::channel::<Result<R, Box<dyn Any + Send>>>();
    let keeper = thread::Builder::new()
        .name("lock-testkit-fixture".into())
        .spawn(move || {
            let kept = panic::catch_unwind(AssertUnwindSafe(|| {
                let fixture = start();
                let seen = view(&fixture);
                // Kept before the caller goes on, so an exit right after
                // this call still finds it.
                unpoisoned::lock(&KEPT).push(Box::new(fixture));
                seen
            }));
            let started = kept.is_ok();
            let _ = viewed.send(kept);
            if started {
                loop {
                    thread::park();
                }
            }
        });
    if let Err(e) = keeper {
        panic!("cannot start a thread for a shared fixture: {e}");
    }
    match seen
        .recv()
        .expect("the fixture's thread sends before it ends")
    {
        Ok(seen) => seen,
        Err(panicked) => panic::resume_unwind(panicked),
    }
}

/// Drops every kept fixture. Runs in `exit`, so it must not unwind.
extern "C" fn tear_down() {
    let _ = panic::catch_unwind(|| {
        let kept = std::mem::take(&mut *unpoisoned::lock(&KEPT));
        drop(kept);
    });
}
