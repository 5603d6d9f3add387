//! Loopback stand-ins for a host that does not answer.
//!
//! Tests must never send a packet beyond loopback, so an "unreachable host"
//! is built here instead of dialled somewhere: a listener on 127.0.0.1 or
//! `::1` that either never completes a TCP handshake or never says a word.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// How a [`BlackHole`] swallows a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// The TCP handshake never completes: the listener's accept queue is
    /// full, so the kernel drops every new SYN and the client keeps
    /// retransmitting, as it does towards a host that drops packets.
    NoHandshake,
    /// The handshake completes (the kernel queues the connection), but
    /// nothing is ever read or written: a server that hangs after accepting.
    NoReply,
}

/// A loopback listener that swallows connections; see [`Silence`].
///
/// ```no_run
/// use lock_testkit::{BlackHole, Silence};
///
/// let hole = BlackHole::start("127.0.0.1".parse().unwrap(), Silence::NoHandshake).unwrap();
/// let url = hole.url(); // "redis://127.0.0.1:<port>": connecting hangs
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct BlackHole {
    listener: TcpListener,
    /// Connections that fill the accept queue; kept open so it stays full.
    fillers: Vec<TcpStream>,
}

/// How long a filler connection may take before the queue counts as full.
const HANDSHAKE_PROBE: Duration = Duration::from_millis(200);
/// More than any accept queue of backlog 0 holds (Linux holds one).
const MAX_FILLERS: usize = 16;

impl BlackHole {
    /// Listens on a free port of `ip`, which must be a loopback address.
    pub fn start(ip: IpAddr, silence: Silence) -> io::Result<BlackHole> {
        if !ip.is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a black hole listens on loopback only, not {ip}"),
            ));
        }
        let listener = TcpListener::bind(SocketAddr::new(ip, 0))?;
        let mut hole = BlackHole {
            listener,
            fillers: Vec::new(),
        };
        if silence == Silence::NoHandshake {
            hole.fill_accept_queue()?;
        }
        Ok(hole)
    }

    /// The address it listens on.
    pub fn addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `redis://<addr>`, with IPv6 addresses in brackets.
    pub fn url(&self) -> String {
        match self.addr() {
            Ok(addr) => format!("redis://{addr}"),
            // Only a closed socket has no address; the URL then fails to
            // connect, which is what a black hole's user expects anyway.
            Err(_) => "redis://127.0.0.1:1".to_owned(),
        }
    }

    /// Shrinks the accept queue to its minimum, then connects (and never
    /// accepts) until a handshake no longer completes.
    fn fill_accept_queue(&mut self) -> io::Result<()> {
        // SAFETY: `listen` on a socket this listener owns; calling it again
        // on a listening socket only changes the backlog.
        if unsafe { libc::listen(self.listener.as_raw_fd(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let addr = self.addr()?;
        for _ in 0..MAX_FILLERS {
            match TcpStream::connect_timeout(&addr, HANDSHAKE_PROBE) {
                Ok(filler) => self.fillers.push(filler),
                Err(error) if error.kind() == io::ErrorKind::TimedOut => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::other(format!(
            "the accept queue of {addr} took {MAX_FILLERS} connections without filling up"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn connect_times_out(hole: &BlackHole) -> bool {
        let addr = hole.addr().unwrap();
        matches!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(300)),
            Err(error) if error.kind() == io::ErrorKind::TimedOut
        )
    }

    #[test]
    fn no_handshake_leaves_connect_hanging_on_both_loopbacks() {
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            let hole = BlackHole::start(ip, Silence::NoHandshake).unwrap();
            assert!(connect_times_out(&hole), "{ip}: a handshake completed");
        }
    }

    #[test]
    fn no_reply_accepts_and_says_nothing() {
        let hole = BlackHole::start(IpAddr::V4(Ipv4Addr::LOCALHOST), Silence::NoReply).unwrap();
        assert!(!connect_times_out(&hole), "the handshake should complete");
        let mut stream = TcpStream::connect(hole.addr().unwrap()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let error = stream.read(&mut [0; 1]).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{error}"
        );
    }

    #[test]
    fn refuses_to_listen_beyond_loopback() {
        let error =
            BlackHole::start(IpAddr::V4(Ipv4Addr::UNSPECIFIED), Silence::NoReply).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
