//! The kit's scratch directories (a server's working directory, an etcd
//! member's data, certificate files), and the sweep that removes those of
//! kit processes that died without removing their own.
//!
//! A directory is removed when the value owning it is dropped. A process
//! that ends without dropping it (killed, aborted) leaves it behind, and an
//! etcd member's is 125 MB (its preallocated write-ahead log). So every
//! directory's name says which process made it,
//! `lock-testkit-<what>-<pid namespace>-<pid>-<random>`, and the first
//! directory a process makes sweeps away those whose process is gone. Only
//! directories of its own PID namespace: a process of another one (a
//! container sharing `/tmp`) is invisible to it, not gone.

use std::io;
use std::path::Path;
use std::sync::{LazyLock, Once};

use tempfile::TempDir;

/// The start of every scratch directory's name.
const PREFIX: &str = "lock-testkit-";

/// Who made a scratch directory: a process id, and the PID namespace it
/// means something in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    /// The inode of `/proc/<pid>/ns/pid`, or 0 where it cannot be read.
    namespace: u64,
    pid: u32,
}

/// This process as an [`Owner`].
static THIS_PROCESS: LazyLock<Owner> = LazyLock::new(|| Owner {
    namespace: pid_namespace().unwrap_or(0),
    pid: std::process::id(),
});

/// A new scratch directory for `what` (`redis`, `etcd`, `tls`), in the
/// system's temp directory. The first call of a process first removes the
/// directories of kit processes that are gone.
pub(crate) fn scratch_dir(what: &str) -> io::Result<TempDir> {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep(&std::env::temp_dir(), THIS_PROCESS.namespace));
    let Owner { namespace, pid } = *THIS_PROCESS;
    tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{what}-{namespace}-{pid}-"))
        .tempdir()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a temp dir for {what}: {e}"),
            )
        })
}

/// The inode of this process's PID namespace (`pid:[4026531836]`).
fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_str()?;
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Removes the scratch directories in `parent` made in PID namespace
/// `namespace` by processes that no longer exist. Best effort: a directory
/// that cannot be read or removed is left as it is.
fn sweep(parent: &Path, namespace: u64) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner) else {
            continue;
        };
        if owner.namespace == namespace && !process_exists(owner.pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Who made the scratch directory named `name`, or `None` if `name` is not
/// one (or is from a kit that did not name its owner). Read from the right,
/// so a `what` with a `-` in it parses too.
fn owner(name: &str) -> Option<Owner> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.rsplitn(4, '-');
    let (_random, pid, namespace, _what) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some(Owner {
        namespace: digits(namespace)?,
        pid: u32::try_from(digits(pid)?).ok()?,
    })
}

/// `text` as a number, if it is only ASCII digits (no sign, no space).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether a process with id `pid` exists (a zombie counts): `kill(pid, 0)`
/// fails with `ESRCH` only when none does (`EPERM` means one does, of
/// another user).
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
        let owner_of = |name| owner(name).map(|o| (o.namespace, o.pid));
        assert_eq!(
            owner_of("lock-testkit-etcd-4026531836-4242-aB3xYz"),
            Some((4_026_531_836, 4242))
        );
        assert_eq!(owner_of("lock-testkit-redis-0-7-x"), Some((0, 7)));
        assert_eq!(owner_of("lock-testkit-two-part-5-7-x"), Some((5, 7)));
        // Older names, and anything else, are not the kit's to remove.
        assert_eq!(owner_of("lock-testkit-etcd-aB3xYz"), None);
        assert_eq!(owner_of("lock-testkit-etcd-4242-aB3xYz"), None);
        assert_eq!(owner_of("lock-testkit-etcd-5-12x-aB3xYz"), None);
        assert_eq!(owner_of("lock-testkit-etcd-5-+12-aB3xYz"), None);
        assert_eq!(owner_of("other-etcd-5-4242-aB3xYz"), None);
    }

    #[test]
    fn this_process_has_a_pid_namespace() {
        assert!(pid_namespace().is_some_and(|inode| inode > 0));
    }

    #[test]
    fn the_sweep_removes_only_directories_of_processes_that_are_gone() {
        let parent = tempfile::tempdir().expect("a temp dir");
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("`true` runs");
        let gone = child.id();
        child.wait().expect("`true` is reaped");
        let here = THIS_PROCESS.namespace;
        let me = std::process::id();
        let dir = |name: String| parent.path().join(name);
        let dead = dir(format!("{PREFIX}etcd-{here}-{gone}-abc"));
        let alive = dir(format!("{PREFIX}etcd-{here}-{me}-abc"));
        let elsewhere = dir(format!("{PREFIX}etcd-{}-{gone}-abc", here + 1));
        let foreign = dir("lock-testkit-etcd-abc".to_owned());
        for dir in [&dead, &alive, &elsewhere, &foreign] {
            std::fs::create_dir_all(dir.join("data")).expect("a directory is made");
        }
        sweep(parent.path(), here);
        assert!(
            !dead.exists(),
            "the directory of a process that is gone stays"
        );
        assert!(alive.exists(), "the directory of a live process is removed");
        assert!(
            elsewhere.exists(),
            "a directory of another PID namespace is removed"
        );
        assert!(foreign.exists(), "a directory without an owner is removed");
    }
}
