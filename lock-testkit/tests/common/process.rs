//! Whether a process exists: shared by the kit's tests that check a server
//! died (included with `#[path]`, as not every test file uses it).

/// Whether a process with id `pid` exists (a zombie counts).
pub(crate) fn process_exists(pid: u32) -> bool {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}
