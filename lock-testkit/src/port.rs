//! Picking a free loopback TCP port.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding to port 0 and releasing the listener, so
/// another process may grab it before `redis-server` binds it; callers retry
/// with a new port when that happens.
pub(crate) fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_and_not_the_default_redis_port() {
        let port = free_port().expect("no free port");
        assert_ne!(port, 0);
        assert_ne!(port, 6379);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port should be free again");
    }
}
