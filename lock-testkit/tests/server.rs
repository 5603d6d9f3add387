//! Integration tests against a real `redis-server`.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use lock_testkit::{RedisServer, start_many};

#[path = "common/process.rs"]
mod process;
use process::process_exists;

/// Sends one inline command and returns the raw RESP reply (one line, plus the
/// payload for bulk strings), waiting at most `timeout` for it.
fn command_with_timeout(port: u16, command: &str, timeout: Duration) -> io::Result<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    if let Some(len) = reply.strip_prefix('$')
        && let Ok(len @ 0..) = len.trim_end().parse::<i64>()
    {
        let mut payload = vec![0; usize::try_from(len).unwrap() + 2];
        reader.read_exact(&mut payload)?;
        reply.push_str(&String::from_utf8_lossy(&payload));
    }
    Ok(reply)
}

/// Like [`command_with_timeout`] with a generous timeout, panicking on I/O errors.
fn command(port: u16, command: &str) -> String {
    command_with_timeout(port, command, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("`{command}` on port {port} failed: {e}"))
}

#[test]
fn start_answers_ping() {
    let server = RedisServer::start();
    assert_ne!(server.port(), 6379);
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
    assert!(server.is_running());
    assert!(server.pid().is_some());
    assert_eq!(command(server.port(), "PING"), "+PONG\r\n");
}

#[test]
fn try_start_and_debug() {
    let server = RedisServer::try_start().expect("redis-server should start");
    let debug = format!("{server:?}");
    assert!(debug.contains(&server.port().to_string()), "{debug}");
}

#[test]
fn start_many_gives_distinct_ports() {
    let servers = start_many(4);
    let ports: HashSet<u16> = servers.iter().map(RedisServer::port).collect();
    assert_eq!(ports.len(), 4);
    for server in &servers {
        assert_eq!(command(server.port(), "PING"), "+PONG\r\n");
    }
}

#[test]
fn servers_started_in_parallel_threads_have_distinct_ports() {
    const THREADS: usize = 4;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let server = RedisServer::start();
                assert_eq!(command(server.port(), "PING"), "+PONG\r\n");
                // Keep every server alive until all have started.
                barrier.wait();
                server.port()
            })
        })
        .collect();
    let ports: HashSet<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ports.len(), THREADS);
}

#[test]
fn restart_keeps_port_and_loses_data() {
    let mut server = RedisServer::start();
    let port = server.port();
    let old_pid = server.pid().unwrap();
    assert_eq!(command(port, "SET k v"), "+OK\r\n");
    assert_eq!(command(port, "GET k"), "$1\r\nv\r\n");

    server.restart();

    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_ne!(server.pid(), Some(old_pid));
    assert_eq!(command(port, "GET k"), "$-1\r\n");
}

#[test]
fn restart_keeping_a_file_starts_from_it_and_from_nothing_else() {
    let mut server = RedisServer::start();
    let port = server.port();
    assert_eq!(command(port, "SET saved v"), "+OK\r\n");
    assert_eq!(command(port, "SAVE"), "+OK\r\n");
    assert_eq!(command(port, "SET unsaved v"), "+OK\r\n");

    // The snapshot kept (and a file the server never wrote, skipped).
    server
        .try_restart_keeping(&["dump.rdb", "nodes.conf"])
        .expect("a restart");
    assert_eq!(server.port(), port);
    assert_eq!(command(port, "GET saved"), "$1\r\nv\r\n");
    assert_eq!(command(port, "GET unsaved"), "$-1\r\n");

    // Nothing kept: empty.
    server.try_restart_keeping(&[]).expect("a restart");
    assert_eq!(command(port, "GET saved"), "$-1\r\n");
}

#[test]
fn restart_after_stop_starts_again() {
    let mut server = RedisServer::start();
    server.stop();
    server.restart();
    assert!(server.is_running());
    assert_eq!(command(server.port(), "PING"), "+PONG\r\n");
}

#[test]
fn pause_blocks_and_resume_answers() {
    let server = RedisServer::start();
    server.pause();
    let error = command_with_timeout(server.port(), "PING", Duration::from_millis(300))
        .expect_err("a paused server must not answer");
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "unexpected error: {error}"
    );
    assert!(server.is_running());

    server.resume();
    assert_eq!(command(server.port(), "PING"), "+PONG\r\n");
}

#[test]
fn stop_refuses_connections_and_is_idempotent() {
    let mut server = RedisServer::start();
    let port = server.port();
    server.stop();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    let error = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect_err("server is stopped");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);

    server.stop();
    assert!(!server.is_running());
    // Signals to a stopped server are no-ops.
    server.pause();
    server.resume();
}

/// Waits up to 2 s for `pid` to disappear.
fn assert_process_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while process_exists(pid) {
        assert!(
            Instant::now() < deadline,
            "redis-server {pid} still alive after drop"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn drop_kills_the_process() {
    let server = RedisServer::start();
    let pid = server.pid().unwrap();
    assert!(process_exists(pid));
    drop(server);
    assert_process_gone(pid);
}

#[test]
fn drop_kills_a_paused_process() {
    let server = RedisServer::start();
    let pid = server.pid().unwrap();
    server.pause();
    drop(server);
    assert_process_gone(pid);
}

#[test]
fn missing_binary_explains_how_to_install() {
    let error = RedisServer::builder()
        .binary("/nonexistent/lock-testkit/redis-server")
        .start()
        .expect_err("binary does not exist");
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
    let message = error.to_string();
    assert!(
        message.contains("apt-get install redis-server"),
        "{message}"
    );
    assert!(
        message.contains("/nonexistent/lock-testkit/redis-server"),
        "{message}"
    );
    assert!(message.contains("REDIS_SERVER_BIN"), "{message}");
}

#[test]
fn invalid_argument_reports_redis_output() {
    let error = RedisServer::builder()
        .arg("--no-such-option")
        .arg("1")
        .start()
        .expect_err("redis-server rejects unknown options");
    let message = error.to_string();
    assert!(message.contains("exited during startup"), "{message}");
    assert!(message.contains("no-such-option"), "{message}");
}

#[test]
fn extra_args_are_passed_to_the_server() {
    let server = RedisServer::builder()
        .arg("--requirepass")
        .arg("pw")
        .start()
        .expect("redis-server with a password should start");
    let reply = command(server.port(), "GET x");
    assert!(reply.starts_with("-NOAUTH"), "{reply}");
}
