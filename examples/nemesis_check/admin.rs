//! The nemesis's own connections to Redis nodes (never the workers'): each
//! command bounded in time, so a paused node cannot hang the run.

use std::time::{Duration, Instant};

use lock_testkit::RedisServer;

use redis::FromRedisValue;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long the nemesis gives a command to a node.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to the node at `url`, with [`ADMIN_TIMEOUT`] on connect
/// and on each reply.
pub fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let conn = redis::Client::open(url)?.get_connection_with_timeout(ADMIN_TIMEOUT)?;
    conn.set_read_timeout(Some(ADMIN_TIMEOUT))?;
    Ok(conn)
}

/// `cmd` on the node at `url`, on a connection of its own.
pub fn query<T: FromRedisValue>(url: &str, cmd: &redis::Cmd) -> Result<T, Error> {
    Ok(cmd.query(&mut connect(url)?)?)
}

/// `SHUTDOWN SAVE` on `server` (it saves and exits, answering nothing more
/// after the save), then, `down` later, a start on the same port from that
/// snapshot; what was done.
pub fn restart_with_data(server: &mut RedisServer, down: Duration) -> Result<String, Error> {
    // The connection closes without an answer: the server exited.
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN")
        .arg("SAVE")
        .query(&mut connect(&server.url())?);
    let started = Instant::now();
    while server.is_running() {
        if started.elapsed() > ADMIN_TIMEOUT {
            return Err("the server did not exit after SHUTDOWN SAVE".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let snapshot = std::fs::read(server.snapshot_path())?;
    std::thread::sleep(down);
    server.restart_from_snapshot(&snapshot);
    Ok(format!("down {down:.1?}, {} bytes of data", snapshot.len()))
}

/// `CLIENT KILL TYPE normal` on the node at `url`: how many connections it
/// closed.
pub fn kill_clients(url: &str) -> Result<i64, Error> {
    query(
        url,
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal"),
    )
}

/// The lease keys of the workers' locks on the node at `url`
/// (`distlock:{G}:lock:nemesis:<key>`).
pub fn lock_keys(url: &str) -> Result<Vec<String>, Error> {
    query(url, redis::cmd("KEYS").arg("distlock:*:lock:nemesis:*"))
}

/// Whether the cluster node at `url` serves the slot of `key`: it answers
/// a plain `EXISTS` for its own slots, and `MOVED` for the others.
pub fn serves(url: &str, key: &str) -> Result<bool, Error> {
    match redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(&mut connect(url)?)
    {
        Ok(_) => Ok(true),
        Err(error) if error.code() == Some("MOVED") => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// The node's replication role, from `ROLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It serves writes.
    Master,
    /// A replica, with the state of its link to its master.
    Replica(Link),
    /// A sentinel, or a reply this tool does not know.
    Other,
}

/// A replica's link to its master, from `ROLE`'s fourth field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `connected`: it copies the master's writes.
    Connected,
    /// Connecting, syncing, or an unknown state.
    Down,
}

/// `ROLE` of the node at `url`.
pub fn role(url: &str) -> Result<Role, Error> {
    let reply: Vec<redis::Value> = query(url, &redis::cmd("ROLE"))?;
    let text = |index: usize| match reply.get(index) {
        Some(redis::Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Some(redis::Value::SimpleString(text)) => Some(text.clone()),
        _ => None,
    };
    Ok(match text(0).as_deref() {
        Some("master") => Role::Master,
        Some("slave") => Role::Replica(match text(3).as_deref() {
            Some("connected") => Link::Connected,
            _ => Link::Down,
        }),
        _ => Role::Other,
    })
}
