//! Talking to one node directly: a command, the replication health check,
//! and the lag made before a grant.

use std::time::{Duration, Instant};

use lock_testkit::RedisServer;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};

/// What the program fails with: a topology that does not start or heal.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A key the health check writes and deletes.
const PROBE_VALUE: &str = "failover-check";
/// How large each value written to make lag is.
const LAG_VALUE_BYTES: usize = 1 << 20;
/// How much stream must wait in the primary's output buffer for each
/// frozen replica: beyond what the kernel's socket buffers took (about
/// 3 MiB on loopback), so the lease written after it cannot reach a replica
/// once the primary is killed.
pub const LAG_BACKLOG: u64 = 4 << 20;
/// The most written to make lag, in values, and the longest it may take: a
/// frozen replica must be resumed well within 1 s.
const LAG_MAX_VALUES: u32 = 64;
const LAG_MAX_TIME: Duration = Duration::from_millis(400);

/// Sends SIGKILL to `server` at once, returning when it was sent; the
/// kit's `stop` reaps it after.
pub fn sigkill(server: &RedisServer) -> Result<Instant, Error> {
    let pid = server.pid().ok_or("the node to kill is not running")?;
    // A child not reaped yet: the pid cannot have been reused.
    let pid = libc::pid_t::try_from(pid)?;
    // SAFETY: kill(2) takes a pid and a signal number; no memory is passed.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        Ok(Instant::now())
    } else {
        Err(std::io::Error::last_os_error().into())
    }
}

/// Sends SIGCONT to the process `pid` (a frozen replica), ignoring a
/// failure: the run resumes it through the kit too.
pub fn sigcont(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes a pid and a signal number; no memory is passed.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
        }
    }
}

/// A connection to `url` with short timeouts.
pub async fn connect(url: &str) -> Result<MultiplexedConnection, Error> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    let client = redis::Client::open(url)?;
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

/// `cmd` sent to the node at `url` on a connection of its own.
pub async fn query<T: FromRedisValue>(url: &str, cmd: &redis::Cmd) -> Result<T, Error> {
    let mut conn = connect(url).await?;
    Ok(cmd.query_async(&mut conn).await?)
}

/// The value of `field` in an `INFO` (or `CLUSTER INFO`) answer.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Whether the primary at `url` has `replicas` replicas connected and all
/// of them acknowledge a write of `key` within 500 ms (`WAIT`); `key` must
/// be served by that node (a cluster node refuses another slot's keys).
pub async fn replicas_acknowledge(url: &str, replicas: usize, key: &str) -> Result<(), String> {
    let check = async {
        let info: String = query(url, redis::cmd("INFO").arg("replication")).await?;
        let connected = info_field(&info, "connected_slaves").unwrap_or("?");
        if connected != replicas.to_string() {
            return Err(format!("{connected} replicas connected, not {replicas}").into());
        }
        let mut conn = connect(url).await?;
        let ((), _, acked): ((), i64, usize) = redis::pipe()
            .cmd("SET")
            .arg(key)
            .arg(PROBE_VALUE)
            .cmd("DEL")
            .arg(key)
            .cmd("WAIT")
            .arg(replicas)
            .arg(500)
            .query_async(&mut conn)
            .await?;
        if acked < replicas {
            return Err(format!("{acked} of {replicas} replicas acknowledged a write").into());
        }
        Ok::<_, Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("{url}: {error}")),
        Err(_) => Err(format!("{url}: no answer within 3 s")),
    }
}

/// What [`fill`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fill {
    /// MiB written.
    pub written: u32,
    /// The least stream waiting for a replica in the primary's output
    /// buffer at the end, in bytes.
    pub backlog: u64,
}

/// Writes 1 MiB values of `key` to the primary at `url` until at least
/// [`LAG_BACKLOG`] bytes wait in its output buffer for each of its
/// `replicas` replicas (which the caller froze), or until
/// [`LAG_MAX_VALUES`] values or [`LAG_MAX_TIME`].
pub async fn fill(url: &str, key: &str, replicas: usize) -> Result<Fill, Error> {
    let started = Instant::now();
    let mut conn = connect(url).await?;
    let value = vec![b'x'; LAG_VALUE_BYTES];
    let mut fill = Fill::default();
    while fill.written < LAG_MAX_VALUES && started.elapsed() < LAG_MAX_TIME {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(&value)
            .query_async(&mut conn)
            .await?;
        fill.written += 1;
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("replica")
            .query_async(&mut conn)
            .await?;
        let backlogs: Vec<u64> = clients
            .lines()
            .filter_map(|line| {
                line.split(' ')
                    .find_map(|field| field.strip_prefix("omem="))
                    .and_then(|omem| omem.parse().ok())
            })
            .collect();
        fill.backlog = backlogs.iter().copied().min().unwrap_or(0);
        if backlogs.len() >= replicas && fill.backlog >= LAG_BACKLOG {
            break;
        }
    }
    Ok(fill)
}
