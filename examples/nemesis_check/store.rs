//! The store: a redis-server of its own that no fault touches, holding what
//! the bodies read and write for each hot key.
//!
//! - the **plain counter**: `GET`, a pause, then `SET v+1` together with
//!   `INCR` of the count of plain writes, in one `MULTI`/`EXEC`. The store
//!   counts every write that ran, also those of a body killed or dropped
//!   before it could log it, so `plain writes - plain counter` is exactly
//!   the number of lost updates.
//! - the **fenced counter**: a read and a write through two scripts that
//!   keep, per key, the highest fencing token seen. The read refuses a
//!   token below it (and raises it to the caller's); the write refuses
//!   unless the highest token seen is still the caller's, i.e. no newer
//!   holder read since, then `SET`s the value read + 1 and counts the
//!   accepted write. A write is a `SET` of what was read, not an `INCR`, so
//!   the counter equals its accepted writes only if the fencing held: a
//!   stale holder's write is refused, and only duplicate fencing tokens can
//!   lose an update.

use std::sync::LazyLock;

use redis::Script;
use redis::aio::MultiplexedConnection;

/// The store keys of hot key `key`.
#[derive(Debug, Clone)]
pub struct Keys {
    pub plain: String,
    pub plain_writes: String,
    pub fenced: String,
    pub fenced_max: String,
    pub fenced_accepted: String,
    pub fenced_refused: String,
}

impl Keys {
    pub fn of(key: usize) -> Keys {
        let name = |what: &str| format!("nemesis:{key}:{what}");
        Keys {
            plain: name("plain"),
            plain_writes: name("plain-writes"),
            fenced: name("fenced"),
            fenced_max: name("fenced-max"),
            fenced_accepted: name("fenced-accepted"),
            fenced_refused: name("fenced-refused"),
        }
    }
}

/// Reads the fenced counter, or refuses (-1) a token below the highest seen.
/// KEYS: max, counter, refused. ARGV: token.
static FENCED_READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local max = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = tonumber(ARGV[1])
if token < max then
  redis.call('INCR', KEYS[3])
  return -1
end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(redis.call('GET', KEYS[2]) or '0')
",
    )
});

/// Writes the fenced counter (1) if no newer token was seen since the
/// caller's read, or refuses (0).
/// KEYS: max, counter, accepted, refused. ARGV: token, value.
static FENCED_WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then
  redis.call('INCR', KEYS[4])
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
",
    )
});

/// The plain counter's value.
pub async fn plain_read(conn: &mut MultiplexedConnection, keys: &Keys) -> redis::RedisResult<i64> {
    let value: Option<i64> = redis::cmd("GET").arg(&keys.plain).query_async(conn).await?;
    Ok(value.unwrap_or(0))
}

/// Writes `value` into the plain counter and counts the write, atomically.
pub async fn plain_write(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    value: i64,
) -> redis::RedisResult<()> {
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(&keys.plain)
        .arg(value)
        .ignore()
        .cmd("INCR")
        .arg(&keys.plain_writes)
        .ignore()
        .query_async(conn)
        .await
}

/// The fenced counter's value, or `None` when the store refused the token.
pub async fn fenced_read(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    token: u64,
) -> redis::RedisResult<Option<i64>> {
    let value: i64 = FENCED_READ
        .key(&keys.fenced_max)
        .key(&keys.fenced)
        .key(&keys.fenced_refused)
        .arg(token)
        .invoke_async(conn)
        .await?;
    Ok((value >= 0).then_some(value))
}

/// Writes `value` into the fenced counter; whether the store accepted it.
pub async fn fenced_write(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    token: u64,
    value: i64,
) -> redis::RedisResult<bool> {
    let accepted: i64 = FENCED_WRITE
        .key(&keys.fenced_max)
        .key(&keys.fenced)
        .key(&keys.fenced_accepted)
        .key(&keys.fenced_refused)
        .arg(token)
        .arg(value)
        .invoke_async(conn)
        .await?;
    Ok(accepted == 1)
}

/// What the store holds for one key at the end of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub plain: i64,
    pub plain_writes: i64,
    pub fenced: i64,
    pub fenced_accepted: i64,
    pub fenced_refused: i64,
}

impl Totals {
    /// Reads them with a blocking connection (the parent's main thread).
    pub fn read(url: &str, key: usize) -> redis::RedisResult<Totals> {
        let keys = Keys::of(key);
        let mut conn = redis::Client::open(url)?.get_connection()?;
        let values: Vec<Option<i64>> = redis::cmd("MGET")
            .arg(&keys.plain)
            .arg(&keys.plain_writes)
            .arg(&keys.fenced)
            .arg(&keys.fenced_accepted)
            .arg(&keys.fenced_refused)
            .query(&mut conn)?;
        let at = |i: usize| values.get(i).copied().flatten().unwrap_or(0);
        Ok(Totals {
            plain: at(0),
            plain_writes: at(1),
            fenced: at(2),
            fenced_accepted: at(3),
            fenced_refused: at(4),
        })
    }

    pub fn add(&mut self, other: Totals) {
        self.plain += other.plain;
        self.plain_writes += other.plain_writes;
        self.fenced += other.fenced;
        self.fenced_accepted += other.fenced_accepted;
        self.fenced_refused += other.fenced_refused;
    }
}
