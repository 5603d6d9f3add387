//! The fault proxy in front of a real `redis-server`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use lock_testkit::{FaultProxy, RedisServer};

/// Generous bound for "at once" on a loaded machine.
const PROMPT: Duration = Duration::from_millis(150);

fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port())).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
}

/// Sends one inline command and reads a one-line reply, waiting at most
/// `timeout`. `Ok(None)`: the connection was closed.
fn request(stream: &mut TcpStream, command: &str, timeout: Duration) -> io::Result<Option<String>> {
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    read_line(stream, timeout)
}

fn read_line(stream: &mut TcpStream, timeout: Duration) -> io::Result<Option<String>> {
    stream.set_read_timeout(Some(timeout))?;
    let mut reply = Vec::new();
    let mut byte = [0u8];
    while !reply.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => reply.push(byte[0]),
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(error) => return Err(error),
        }
    }
    Ok(Some(String::from_utf8_lossy(&reply).into_owned()))
}

fn ping(stream: &mut TcpStream) -> String {
    request(stream, "PING", Duration::from_secs(5))
        .expect("PING")
        .expect("connection open")
}

fn timed_out(result: &io::Result<Option<String>>) -> bool {
    matches!(result, Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// Whether the peer closed `stream` within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    matches!(read_line(stream, within), Ok(None))
}

#[test]
fn pass_forwards_both_ways() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    assert_eq!(proxy.url(), format!("redis://127.0.0.1:{}", proxy.port()));
    assert_ne!(proxy.port(), server.port());
    let mut stream = connect(&proxy);
    let started = Instant::now();
    assert_eq!(ping(&mut stream), "+PONG\r\n");
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
    assert_eq!(
        request(&mut stream, "SET k v", PROMPT).unwrap().unwrap(),
        "+OK\r\n"
    );
    assert_eq!(proxy.open_connections(), 1);
}

#[test]
fn delay_holds_back_each_direction_without_piling_up() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy);
    assert_eq!(ping(&mut stream), "+PONG\r\n");

    let delay = Duration::from_millis(150);
    proxy.delay(delay);
    let sent = Instant::now();
    assert_eq!(ping(&mut stream), "+PONG\r\n");
    let round_trip = sent.elapsed();
    assert!(
        round_trip >= delay * 2 && round_trip < delay * 2 + PROMPT,
        "{round_trip:?}"
    );

    // A second request sent while the first is held back is due 2 x delay
    // after its own sending, not after the first one's answer.
    let first = Instant::now();
    stream.write_all(b"PING\r\n").unwrap();
    thread::sleep(Duration::from_millis(50));
    stream.write_all(b"ECHO two\r\n").unwrap();
    let second = Instant::now();
    assert_eq!(
        read_line(&mut stream, Duration::from_secs(5))
            .unwrap()
            .unwrap(),
        "+PONG\r\n"
    );
    assert!(first.elapsed() >= delay * 2);
    assert_eq!(
        read_line(&mut stream, Duration::from_secs(5))
            .unwrap()
            .unwrap(),
        "$3\r\n"
    );
    let second_trip = second.elapsed();
    assert!(
        second_trip >= delay * 2 && second_trip < delay * 2 + PROMPT,
        "{second_trip:?}"
    );

    proxy.pass();
    let _ = read_line(&mut stream, PROMPT); // the rest of the bulk reply
    let started = Instant::now();
    assert_eq!(ping(&mut stream), "+PONG\r\n");
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
}

#[test]
fn blackhole_hangs_until_the_client_times_out_and_pass_closes_what_lost_bytes() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut idle = connect(&proxy);
    let mut busy = connect(&proxy);
    assert_eq!(ping(&mut busy), "+PONG\r\n");

    proxy.blackhole();
    let started = Instant::now();
    let answer = request(&mut busy, "INCR swallowed", Duration::from_millis(300));
    assert!(timed_out(&answer), "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // New connections are accepted, and hang too.
    let mut late = connect(&proxy);
    assert!(timed_out(&request(
        &mut late,
        "PING",
        Duration::from_millis(200)
    )));
    // The command never reached the server.
    let mut direct = TcpStream::connect((Ipv4Addr::LOCALHOST, server.port())).unwrap();
    assert_eq!(
        request(&mut direct, "GET swallowed", PROMPT)
            .unwrap()
            .unwrap(),
        "$-1\r\n"
    );

    proxy.pass();
    // Connections that lost bytes are closed; one that lost none goes on.
    assert!(
        closed_within(&mut busy, PROMPT),
        "busy connection still open"
    );
    assert!(
        closed_within(&mut late, PROMPT),
        "late connection still open"
    );
    assert_eq!(ping(&mut idle), "+PONG\r\n");
    assert_eq!(ping(&mut connect(&proxy)), "+PONG\r\n");
}

#[test]
fn lose_next_reply_runs_the_command_and_cuts_off_only_that_connection() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut victim = connect(&proxy);
    let mut bystander = connect(&proxy);
    assert_eq!(ping(&mut victim), "+PONG\r\n");

    proxy.lose_next_reply();
    let answer = request(&mut victim, "INCR counted", Duration::from_millis(300));
    assert!(timed_out(&answer), "{answer:?}");
    // It ran, and the connection stays silent; the other one works.
    assert!(timed_out(&request(
        &mut victim,
        "PING",
        Duration::from_millis(200)
    )));
    assert_eq!(
        request(&mut bystander, "GET counted", PROMPT)
            .unwrap()
            .unwrap(),
        "$1\r\n"
    );

    proxy.pass();
    assert!(closed_within(&mut victim, PROMPT), "victim still open");
    let _ = read_line(&mut bystander, PROMPT); // the payload of `GET`
    assert_eq!(ping(&mut bystander), "+PONG\r\n");
}

#[test]
fn drop_connections_closes_every_connection_and_accepts_new_ones() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut streams: Vec<TcpStream> = (0..3).map(|_| connect(&proxy)).collect();
    for stream in &mut streams {
        assert_eq!(ping(stream), "+PONG\r\n");
    }
    assert_eq!(proxy.open_connections(), 3);

    proxy.drop_connections();
    for stream in &mut streams {
        assert!(closed_within(stream, PROMPT), "still open");
    }
    let deadline = Instant::now() + PROMPT;
    while proxy.open_connections() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(proxy.open_connections(), 0);
    assert_eq!(ping(&mut connect(&proxy)), "+PONG\r\n");
}

#[test]
fn refuse_stops_accepting_until_pass() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut open = connect(&proxy);
    assert_eq!(ping(&mut open), "+PONG\r\n"); // accepted, not just queued
    proxy.refuse();
    let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port()));
    assert_eq!(
        refused.map(drop).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    // Open connections are left alone.
    assert_eq!(ping(&mut open), "+PONG\r\n");
    proxy.pass();
    assert_eq!(ping(&mut connect(&proxy)), "+PONG\r\n");
}

#[test]
fn a_stopped_target_closes_proxied_connections() {
    let mut server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy);
    assert_eq!(ping(&mut stream), "+PONG\r\n");
    server.stop();
    assert!(closed_within(&mut stream, PROMPT), "still open");
    // Accepted, then closed: nothing to forward to.
    let mut orphan = connect(&proxy);
    assert!(closed_within(&mut orphan, Duration::from_secs(2)));
    server.restart();
    assert_eq!(ping(&mut connect(&proxy)), "+PONG\r\n");
}

#[test]
fn dropping_the_proxy_closes_everything() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let port = proxy.port();
    let mut stream = connect(&proxy);
    assert_eq!(ping(&mut stream), "+PONG\r\n");
    proxy.blackhole();
    let started = Instant::now();
    drop(proxy);
    assert!(
        started.elapsed() < PROMPT,
        "drop took {:?}",
        started.elapsed()
    );
    assert!(closed_within(&mut stream, PROMPT));
    assert_eq!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .map(drop)
            .unwrap_err()
            .kind(),
        io::ErrorKind::ConnectionRefused
    );
}
