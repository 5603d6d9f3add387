//! The [`FaultProxy`]: a TCP proxy in front of a server that delays, swallows
//! or cuts its traffic on command.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::unpoisoned;

/// How long the proxy may take to connect to its target for a new client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the acceptor looks for new connections (and for `refuse`/`pass`).
const ACCEPT_POLL: Duration = Duration::from_millis(2);
/// Size of one read; a chunk read in one go is forwarded in one go.
const CHUNK: usize = 16 * 1024;

/// A TCP proxy on a free loopback port that forwards to a target port (a
/// [`RedisServer`](crate::RedisServer)'s) and injects network faults on
/// command, for testing what a client does when the network misbehaves.
///
/// Point the client at [`url`](Self::url) instead of the server's. The
/// controls take effect at once, also on connections already open, and can
/// be switched at any time from the test:
///
/// | control | what the client sees |
/// |---|---|
/// | [`pass`](Self::pass) | a normal server (the initial state) |
/// | [`delay`](Self::delay) | every chunk of bytes arrives that much later, in both directions |
/// | [`blackhole`](Self::blackhole) | connections open and stay open, but nothing reaches the other side: commands hang until the client's timeout |
/// | [`lose_next_reply`](Self::lose_next_reply) | the next command reaches the server, its answer never comes back |
/// | [`drop_connections`](Self::drop_connections) | every open connection is closed now; new ones work |
/// | [`refuse`](Self::refuse) | new connections are refused, as if nothing listened |
///
/// ```no_run
/// use std::time::Duration;
/// use lock_testkit::{FaultProxy, RedisServer};
///
/// let server = RedisServer::start();
/// let proxy = FaultProxy::start(server.port());
/// let url = proxy.url(); // "redis://127.0.0.1:<proxy port>": give this to the client
/// # let _ = url;
/// proxy.delay(Duration::from_millis(500)); // a slow network
/// proxy.blackhole(); // a partition: commands time out
/// proxy.pass(); // healed: connections that lost bytes are closed, the client reconnects
/// proxy.drop_connections(); // every open connection closed at once
/// ```
///
/// Each accepted connection is served by two threads, one per direction;
/// dropping the proxy closes every connection and joins every thread.
///
/// # Lost bytes close the connection
///
/// TCP never delivers a stream with a hole in it: a real network either
/// delivers bytes late or breaks the connection. So a connection that
/// swallowed bytes (under [`blackhole`](Self::blackhole) or
/// [`lose_next_reply`](Self::lose_next_reply)) is never resumed: it stays
/// silent until [`pass`](Self::pass) or [`delay`](Self::delay), which close
/// it. Resuming it would hand the client the answer to some other command
/// (a multiplexed Redis client matches answers to commands by order).
pub struct FaultProxy {
    shared: Arc<ProxyState>,
    acceptor: Option<JoinHandle<()>>,
    port: u16,
}

/// State shared by the handle, the acceptor and the pumps.
struct ProxyState {
    target: SocketAddr,
    /// `None` while refusing connections.
    listener: Mutex<Option<TcpListener>>,
    faults: Mutex<Faults>,
    stopping: AtomicBool,
}

/// What to do with traffic; decisions and taints are made under its lock,
/// so a mode change sees every connection that lost bytes before it.
struct Faults {
    mode: Mode,
    /// One-shot: swallow the next chunk the server sends, and cut that
    /// connection off.
    lose_next_reply: bool,
    connections: Vec<Connection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    Delay(Duration),
    Blackhole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

/// One proxied connection: its two sockets and the threads pumping them.
struct Connection {
    link: Arc<Link>,
    pumps: Vec<JoinHandle<()>>,
}

struct Link {
    client: TcpStream,
    server: TcpStream,
    /// Bytes (or the end of the stream) were swallowed: never resume it.
    tainted: AtomicBool,
    /// This connection alone swallows everything ([`FaultProxy::lose_next_reply`]).
    cut_off: AtomicBool,
    closed: AtomicBool,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to
    /// `127.0.0.1:<target_port>`, in [`pass`](Self::pass) mode.
    ///
    /// # Panics
    ///
    /// Panics if no loopback port can be bound; see [`try_start`](Self::try_start).
    #[track_caller]
    #[must_use = "dropping a FaultProxy closes it"]
    pub fn start(target_port: u16) -> FaultProxy {
        Self::try_start(target_port).unwrap_or_else(|e| panic!("failed to start a FaultProxy: {e}"))
    }

    /// Starts a proxy on a free loopback port forwarding to
    /// `127.0.0.1:<target_port>`, in [`pass`](Self::pass) mode.
    ///
    /// The target need not be up: a connection accepted while it is down is
    /// closed at once, as the target's refusal would have closed it.
    ///
    /// # Errors
    ///
    /// Fails if no loopback port can be bound or the acceptor thread cannot
    /// be spawned.
    pub fn try_start(target_port: u16) -> io::Result<FaultProxy> {
        let listener = listen(0)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(ProxyState {
            target: SocketAddr::from((Ipv4Addr::LOCALHOST, target_port)),
            listener: Mutex::new(Some(listener)),
            faults: Mutex::new(Faults {
                mode: Mode::Pass,
                lose_next_reply: false,
                connections: Vec::new(),
            }),
            stopping: AtomicBool::new(false),
        });
        let acceptor = thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn({
                let shared = shared.clone();
                move || shared.accept_loop()
            })?;
        Ok(FaultProxy {
            shared,
            acceptor: Some(acceptor),
            port,
        })
    }

    /// The URL clients connect to instead of the server's:
    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The proxy's own loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Back to normal: forwards everything as it comes, accepts new
    /// connections again after [`refuse`](Self::refuse), and disarms a
    /// pending [`lose_next_reply`](Self::lose_next_reply).
    ///
    /// Connections that lost bytes meanwhile are closed (see "Lost bytes
    /// close the connection" on [`FaultProxy`]); bytes still held back by
    /// [`delay`](Self::delay) are delivered when due, in order.
    ///
    /// # Panics
    ///
    /// Panics if accepting again fails because another process took the
    /// proxy's port while it was refusing.
    #[track_caller]
    pub fn pass(&self) {
        self.set_mode(Mode::Pass);
        let mut listener = self.shared.listener();
        if listener.is_none() {
            let relisten = listen(self.port).unwrap_or_else(|e| {
                panic!("FaultProxy cannot listen on port {} again: {e}", self.port)
            });
            *listener = Some(relisten);
        }
    }

    /// Forwards every chunk of bytes `delay` after it arrived, in both
    /// directions and in order, so a round trip takes at least twice `delay`.
    /// Chunks are not delayed one after the other: a chunk that arrives while
    /// another waits is due `delay` after its own arrival.
    ///
    /// Connections that lost bytes before are closed, as by [`pass`](Self::pass).
    pub fn delay(&self, delay: Duration) {
        self.set_mode(Mode::Delay(delay));
    }

    /// Forwards nothing in either direction: connections are accepted and kept
    /// open, and every byte (also bytes still held back by
    /// [`delay`](Self::delay)) is swallowed, as in a network partition
    /// where the peers do not notice they are cut off. Requests hang until
    /// the client's own timeout.
    ///
    /// A connection that swallowed bytes is closed at the next
    /// [`pass`](Self::pass) or [`delay`](Self::delay).
    pub fn blackhole(&self) {
        self.set_mode(Mode::Blackhole);
    }

    /// One-shot: the next chunk the server sends (on whichever connection)
    /// is swallowed, and that connection is then cut off — it forwards
    /// nothing more in either direction, until [`pass`](Self::pass) or
    /// [`delay`](Self::delay) close it. Other connections are unaffected.
    ///
    /// For "the command reached the server but its answer was lost": the
    /// client's request runs, and the client times out waiting.
    pub fn lose_next_reply(&self) {
        self.shared.faults().lose_next_reply = true;
    }

    /// Closes every open connection now (both its sides); new connections
    /// are accepted as before.
    pub fn drop_connections(&self) {
        let faults = self.shared.faults();
        for connection in &faults.connections {
            connection.link.close();
        }
    }

    /// Stops accepting: the listening socket is closed, so new connections
    /// are refused, as by a host where nothing listens on the port; those
    /// the kernel had completed but the proxy not yet accepted are reset.
    /// Open connections are left as they are: add
    /// [`drop_connections`](Self::drop_connections) for a server that went
    /// away. [`pass`](Self::pass) accepts again, on the same port.
    pub fn refuse(&self) {
        // Dropping the listener closes it; the acceptor then finds none.
        self.shared.listener().take();
    }

    /// How many proxied connections are open.
    pub fn open_connections(&self) -> usize {
        let mut faults = self.shared.faults();
        faults.reap();
        faults.connections.len()
    }

    fn set_mode(&self, mode: Mode) {
        let mut faults = self.shared.faults();
        faults.mode = mode;
        if mode == Mode::Pass {
            faults.lose_next_reply = false;
        }
        if mode != Mode::Blackhole {
            for connection in &faults.connections {
                if connection.link.tainted.load(Ordering::SeqCst) {
                    connection.link.close();
                }
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.listener().take();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // Taken out first: the pumps lock `faults` for every chunk.
        let connections = std::mem::take(&mut self.shared.faults().connections);
        for connection in &connections {
            connection.link.close();
        }
        for connection in connections {
            connection.join();
        }
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults = self.shared.faults();
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .field("target", &self.shared.target)
            .field("mode", &faults.mode)
            .field("connections", &faults.connections.len())
            .finish_non_exhaustive()
    }
}

impl ProxyState {
    fn faults(&self) -> MutexGuard<'_, Faults> {
        unpoisoned::lock(&self.faults)
    }

    fn listener(&self) -> MutexGuard<'_, Option<TcpListener>> {
        unpoisoned::lock(&self.listener)
    }

    /// Accepts connections until the proxy is dropped. The listener is
    /// non-blocking so `refuse` can close it at any time.
    fn accept_loop(self: Arc<Self>) {
        while !self.stopping.load(Ordering::SeqCst) {
            let accepted = match self.listener().as_ref() {
                Some(listener) => listener.accept().map(|(client, _)| client),
                None => Err(io::ErrorKind::WouldBlock.into()),
            };
            match accepted {
                Ok(client) => {
                    // A connection that cannot be set up is dropped, which
                    // closes it: the client sees the server go away.
                    let _ = self.open(client);
                }
                Err(_) => thread::sleep(ACCEPT_POLL),
            }
        }
    }

    /// Connects `client` to the target and starts pumping both ways.
    fn open(self: &Arc<Self>, client: TcpStream) -> io::Result<()> {
        client.set_nonblocking(false)?;
        let server = TcpStream::connect_timeout(&self.target, CONNECT_TIMEOUT)?;
        for stream in [&client, &server] {
            stream.set_nodelay(true)?;
        }
        let link = Arc::new(Link {
            client: client.try_clone()?,
            server: server.try_clone()?,
            tainted: AtomicBool::new(false),
            cut_off: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        // Registered before its pumps run, so no control misses it.
        let mut faults = self.faults();
        faults.reap();
        let mut pumps = Vec::with_capacity(2);
        for (from, to, direction) in [
            (client, server.try_clone()?, Direction::ToServer),
            (server, link.client.try_clone()?, Direction::ToClient),
        ] {
            let pump = Pump {
                shared: self.clone(),
                link: link.clone(),
                from,
                to,
                direction,
            };
            match thread::Builder::new()
                .name("fault-proxy-pump".to_owned())
                .spawn(move || pump.run())
            {
                Ok(handle) => pumps.push(handle),
                Err(error) => {
                    drop(faults);
                    link.close();
                    Connection { link, pumps }.join();
                    return Err(error);
                }
            }
        }
        faults.connections.push(Connection { link, pumps });
        Ok(())
    }

    /// Where a chunk that just arrived goes: `Some(delay)` to forward it
    /// after `delay`, `None` to swallow it (the connection is then tainted).
    fn route(&self, link: &Link, direction: Direction) -> Option<Duration> {
        let mut faults = self.faults();
        let delay = if link.cut_off.load(Ordering::SeqCst) {
            None
        } else if direction == Direction::ToClient && faults.lose_next_reply {
            faults.lose_next_reply = false;
            link.cut_off.store(true, Ordering::SeqCst);
            None
        } else {
            match faults.mode {
                Mode::Pass => Some(Duration::ZERO),
                Mode::Delay(delay) => Some(delay),
                Mode::Blackhole => None,
            }
        };
        if delay.is_none() {
            link.tainted.store(true, Ordering::SeqCst);
        }
        delay
    }

    /// Whether a chunk that fell due (or the end of the stream) must be
    /// swallowed now; taints the connection if so.
    fn swallows(&self, link: &Link) -> bool {
        let faults = self.faults();
        let swallow = faults.mode == Mode::Blackhole || link.cut_off.load(Ordering::SeqCst);
        if swallow {
            link.tainted.store(true, Ordering::SeqCst);
        }
        swallow
    }
}

impl Faults {
    /// Forgets connections whose threads have ended.
    fn reap(&mut self) {
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.connections)
            .into_iter()
            .partition(Connection::is_finished);
        self.connections = open;
        for connection in done {
            connection.join();
        }
    }
}

impl Connection {
    fn is_finished(&self) -> bool {
        self.pumps.iter().all(JoinHandle::is_finished)
    }

    fn join(self) {
        for pump in self.pumps {
            let _ = pump.join();
        }
    }
}

impl Link {
    /// Closes both sockets, which ends both pumps (a blocked read returns).
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

/// Moves bytes in one direction of one connection, each chunk when it is due.
struct Pump {
    shared: Arc<ProxyState>,
    link: Arc<Link>,
    from: TcpStream,
    to: TcpStream,
    direction: Direction,
}

impl Pump {
    fn run(mut self) {
        let mut due: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
        let mut buf = vec![0; CHUNK];
        let mut ended = false;
        loop {
            if self.write_due(&mut due).is_err() {
                break;
            }
            let wait = due.front().map(|(at, _)| {
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            });
            if ended {
                match wait {
                    Some(wait) => {
                        thread::sleep(wait);
                        continue;
                    }
                    None => break,
                }
            }
            // Block until bytes arrive, or until the next chunk is due.
            if self.from.set_read_timeout(wait).is_err() {
                break;
            }
            match self.from.read(&mut buf) {
                Ok(0) => {
                    if self.link.closed.load(Ordering::SeqCst) {
                        return;
                    }
                    // The end of the stream is data too: a black hole
                    // swallows it and leaves the other side open.
                    if self.shared.swallows(&self.link) {
                        return;
                    }
                    ended = true;
                }
                Ok(n) => {
                    if let Some(delay) = self.shared.route(&self.link, self.direction) {
                        // Never before a chunk that arrived earlier.
                        let at = (Instant::now() + delay)
                            .max(due.back().map_or_else(Instant::now, |(at, _)| *at));
                        due.push_back((at, buf[..n].to_vec()));
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
        self.link.close();
    }

    /// Writes the chunks that are due, unless they must be swallowed now.
    fn write_due(&mut self, due: &mut VecDeque<(Instant, Vec<u8>)>) -> io::Result<()> {
        let now = Instant::now();
        while let Some((at, _)) = due.front()
            && *at <= now
        {
            let Some((_, chunk)) = due.pop_front() else {
                break;
            };
            if !self.shared.swallows(&self.link) {
                self.to.write_all(&chunk)?;
            }
        }
        Ok(())
    }
}

/// A non-blocking listener on `127.0.0.1:<port>` (0: a free port).
fn listen(port: u16) -> io::Result<TcpListener> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
