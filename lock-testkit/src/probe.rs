//! Readiness probes: a raw RESP `PING` and reading the server's log files.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Name of the log file (`--logfile`) inside a server's directory.
pub(crate) const LOG_FILE: &str = "redis.log";
/// Name of the file inside a server's directory that captures its stderr
/// (where `redis-server` reports command-line errors before logging starts).
pub(crate) const STDERR_FILE: &str = "stderr.log";

/// The line `redis-server` logs once it listens and serves clients.
pub(crate) const READY_LINE: &str = "Ready to accept connections";
/// What a sentinel logs instead (it never logs [`READY_LINE`]), once it
/// listens: its identity, before it starts monitoring.
pub(crate) const SENTINEL_READY_LINE: &str = "Sentinel ID is";
/// Timeout for connecting, writing and reading during one probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// How many log lines to quote in error messages.
const TAIL_LINES: usize = 20;

/// Whether a server on `port` answers an inline `PING`.
///
/// `+PONG` counts, and so does `-NOAUTH` (the server is up but requires a
/// password); anything else, such as `-LOADING`, means "not ready yet".
pub(crate) fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
        return false;
    };
    if stream.set_read_timeout(Some(PROBE_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(PROBE_TIMEOUT)).is_err()
        || stream.write_all(b"PING\r\n").is_err()
    {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while !reply.ends_with(b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH")
}

/// Whether the log in `dir` contains `line`, e.g. [`READY_LINE`].
///
/// This proves that *our* process bound the port: a PING alone could be
/// answered by some other server that grabbed the port first.
pub(crate) fn log_says(dir: &Path, line: &str) -> bool {
    fs::read_to_string(dir.join(LOG_FILE)).is_ok_and(|log| log.contains(line))
}

/// The last lines of the server's log and stderr, for error messages.
pub(crate) fn log_tail(dir: &Path) -> String {
    tail_of(dir, &[LOG_FILE, STDERR_FILE], "redis-server")
}

/// The last lines of each of the files `names` in `dir` that `program`
/// wrote, for error messages.
pub(crate) fn tail_of(dir: &Path, names: &[&str], program: &str) -> String {
    let mut out = String::new();
    for name in names {
        let Ok(bytes) = fs::read(dir.join(name)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        let _ = write!(out, "\n--- last lines of {name} ---\n");
        out.push_str(&lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n"));
    }
    if out.is_empty() {
        let _ = write!(out, "\n({program} wrote no log output)");
    }
    out
}
