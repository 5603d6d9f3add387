//! The kit's scratch directories (a server's working directory, an etcd
//! member's data, certificate files), and the sweep that removes those of
//! kit processes that died without removing their own.
//!
//! A directory is removed when the value owning it is dropped. A process
//! that ends without dropping it (killed, aborted, or ending with the value
//! still alive) leaves it behind, and an etcd member's is 125 MB (its
//! preallocated write-ahead log). So every directory's name carries the id
//! of the process that made it, `lock-testkit-<what>-<pid>-<random>`, and
//! the first directory a process makes sweeps away those whose process is
//! gone.

use std::io;
use std::path::Path;
use std::sync::Once;

use tempfile::TempDir;

/// The start of every scratch directory's name.
const PREFIX: &str = "lock-testkit-";

/// A new scratch directory for `what` (`redis`, `etcd`, `tls`), in the
/// system's temp directory. The first call of a process first removes the
/// directories of kit processes that are gone.
pub(crate) fn scratch_dir(what: &str) -> io::Result<TempDir> {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep(&std::env::temp_dir()));
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{what}-{}-", std::process::id()))
        .tempdir()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a temp dir for {what}: {e}"),
            )
        })
}

/// Removes the scratch directories in `parent` made by processes that no
/// longer exist. Best effort: a directory that cannot be read or removed is
/// left as it is.
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner) else {
            continue;
        };
        if !process_exists(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The id of the process that made the scratch directory named `name`, or
/// `None` if `name` is not one (or is from a kit that did not name its
/// owner).
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.split('-');
    let (_what, pid, _random) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with id `pid` exists (a zombie counts): `kill(pid, 0)`
/// fails with `ESRCH` only when none does.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; it only checks that `pid` exists.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_read_from_the_name() {
        assert_eq!(owner("lock-testkit-etcd-4242-aB3xYz"), Some(4242));
        assert_eq!(owner("lock-testkit-redis-7-x"), Some(7));
        // Older names, and anything else, are not the kit's to remove.
        assert_eq!(owner("lock-testkit-etcd-aB3xYz"), None);
        assert_eq!(owner("lock-testkit-etcd-12x-aB3xYz"), None);
        assert_eq!(owner("other-etcd-4242-aB3xYz"), None);
    }

    #[test]
    fn the_sweep_removes_only_directories_of_processes_that_are_gone() {
        let parent = tempfile::tempdir().expect("a temp dir");
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("`true` runs");
        let gone = child.id();
        child.wait().expect("`true` is reaped");
        let dead = parent.path().join(format!("{PREFIX}etcd-{gone}-abc"));
        let alive = parent
            .path()
            .join(format!("{PREFIX}etcd-{}-abc", std::process::id()));
        let foreign = parent.path().join("lock-testkit-etcd-abc");
        for dir in [&dead, &alive, &foreign] {
            std::fs::create_dir_all(dir.join("data")).expect("a directory is made");
        }
        sweep(parent.path());
        assert!(
            !dead.exists(),
            "the directory of a process that is gone stays"
        );
        assert!(alive.exists(), "the directory of a live process is removed");
        assert!(foreign.exists(), "a directory without an owner is removed");
    }
}
