//! Redis's own time per lock cycle (U2): `INFO commandstats` read at both ends
//! of a window, with the server's main-thread CPU time beside it.
//!
//! Redis counts a command a script calls twice: in the script's `usec` and
//! again in the called command's own row (checked on 7.0.15: 200 `EVAL`s of
//! `SET`+`GET` add 200 calls to `cmdstat_set` and `cmdstat_get`). The sum over
//! all rows, which issue 13 names as the figure, therefore overstates a
//! scripted protocol a little; the main-thread CPU time (`INFO cpu`) is free
//! of that, and covers the parsing and socket I/O that `usec` leaves out.

use std::collections::BTreeMap;

use redis::aio::ConnectionManager;

use super::locking::BenchError;

/// Commands the harness itself sends to read the figures: not the lock's.
const HARNESS_COMMANDS: [&str; 2] = ["info", "config"];

/// Cumulative counters of one server at one moment, or their difference.
#[derive(Debug, Clone, Default)]
pub struct RedisTime {
    commands: BTreeMap<String, CommandTime>,
    /// `used_cpu_user_main_thread + used_cpu_sys_main_thread`, when the
    /// server reports them (Redis 6.2 and later).
    main_thread_cpu_us: Option<u64>,
}

/// One `cmdstat_*` row.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandTime {
    pub calls: u64,
    pub usec: u64,
}

impl RedisTime {
    /// Reads the counters now.
    pub async fn read(conn: &mut ConnectionManager) -> Result<RedisTime, BenchError> {
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(conn)
            .await?;
        let cpu: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
        let commands = stats.lines().filter_map(parse_command_row).collect();
        let cpu_field = |name: &str| {
            cpu.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.trim().parse::<f64>().ok())
        };
        let main_thread_cpu_us = match (
            cpu_field("used_cpu_user_main_thread"),
            cpu_field("used_cpu_sys_main_thread"),
        ) {
            (Some(user), Some(sys)) => Some(((user + sys) * 1e6).round() as u64),
            _ => None,
        };
        Ok(RedisTime {
            commands,
            main_thread_cpu_us,
        })
    }

    /// What happened between `earlier` and `self`, the harness's own
    /// commands left out.
    pub fn since(&self, earlier: &RedisTime) -> RedisTime {
        let commands = self
            .commands
            .iter()
            .filter(|(name, _)| !HARNESS_COMMANDS.iter().any(|own| name.starts_with(own)))
            .map(|(name, now)| {
                let before = earlier.commands.get(name).copied().unwrap_or_default();
                let spent = CommandTime {
                    calls: now.calls.saturating_sub(before.calls),
                    usec: now.usec.saturating_sub(before.usec),
                };
                (name.clone(), spent)
            })
            .filter(|(_, spent)| spent.calls > 0)
            .collect();
        let main_thread_cpu_us = match (self.main_thread_cpu_us, earlier.main_thread_cpu_us) {
            (Some(now), Some(before)) => Some(now.saturating_sub(before)),
            _ => None,
        };
        RedisTime {
            commands,
            main_thread_cpu_us,
        }
    }

    /// The sum of `usec` over every command row.
    pub fn command_usec(&self) -> u64 {
        self.commands.values().map(|row| row.usec).sum()
    }

    pub fn main_thread_cpu_us(&self) -> Option<u64> {
        self.main_thread_cpu_us
    }

    /// `evalsha 2.00× 9.1 µs, set 1.00× 0.8 µs`: calls and usec per cycle.
    pub fn per_cycle_breakdown(&self, cycles: u64) -> String {
        if cycles == 0 {
            return "n/a".to_owned();
        }
        let per = |value: u64| value as f64 / cycles as f64;
        let parts: Vec<String> = self
            .commands
            .iter()
            .map(|(name, row)| format!("{name} {:.2}× {:.2} µs", per(row.calls), per(row.usec)))
            .collect();
        parts.join(", ")
    }
}

/// `cmdstat_get:calls=200,usec=16,…` into `("get", {200, 16})`.
fn parse_command_row(line: &str) -> Option<(String, CommandTime)> {
    let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
    let field = |wanted: &str| {
        fields
            .split(',')
            .find_map(|pair| pair.strip_prefix(wanted)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
    };
    Some((
        name.to_owned(),
        CommandTime {
            calls: field("calls")?,
            usec: field("usec")?,
        },
    ))
}
