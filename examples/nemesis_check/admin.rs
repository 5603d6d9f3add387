//! The nemesis's own connections to Redis nodes (never the workers'): each
//! command bounded in time, so a paused node cannot hang the run.

use std::time::Duration;

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
