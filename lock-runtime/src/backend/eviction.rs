//! Whether a Redis server may evict lock keys: read once, when a manager is
//! built.
//!
//! A Redis used as a cache runs with `maxmemory` and an evicting
//! `maxmemory-policy`. Once its memory is full it deletes keys to make
//! room: an `allkeys-*` policy any key, a `volatile-*` policy keys with a
//! TTL, which every lease has. A lease deleted that way frees a lock its
//! holder still relies on (its validity is not over), and the next
//! requester is granted it too. Only `noeviction` keeps every key: a full
//! server refuses writes instead, which fails a step rather than granting
//! a lock twice.
//!
//! The policy is read with `INFO memory` (`maxmemory_policy` and
//! `maxmemory`), which managed services answer where they disable
//! `CONFIG`. On a cluster redis-rs sends `INFO` to every master it knows
//! and answers with each master's reply; on Redlock every node reached at
//! start-up is asked. A server whose policy cannot be read (`INFO` denied
//! by an ACL or renamed away, no answer within the command timeout) is
//! logged at INFO and not checked: the check never fails a build it cannot
//! decide.
//!
//! A policy evicts only once memory passes `maxmemory`. With `maxmemory 0`
//! (no limit, the default on 64-bit builds) it never does, so such a
//! server is logged at INFO, neither warned about nor refused; a managed
//! service always sets `maxmemory` (the size of the plan), so it is
//! checked.

use std::fmt;
use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionLike;

use super::reconnect::{Connect, Reconnecting};
use super::timeout::{Awaited, bounded};
use crate::LockError;

/// What building a manager does about a Redis server that may evict lock
/// keys: one whose `maxmemory-policy` is not `noeviction` and whose
/// `maxmemory` is set. That is every `allkeys-*` policy, and every
/// `volatile-*` one too, since a lease is a key with a TTL. Under memory
/// pressure such a server can delete a held lock's lease, and the lock is
/// granted to a second holder while the first still holds it.
///
/// Set with
/// [`LockManagerBuilder::on_evicting_server`](crate::LockManagerBuilder::on_evicting_server);
/// the check runs on every server a manager locks on (each master of a
/// cluster, each Redlock node).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EvictingServer {
    /// Build the manager, and log a WARN naming the server, its policy, the
    /// hazard and the remedy. The default.
    #[default]
    Warn,
    /// Fail the build with [`LockError::InvalidConfig`] naming the server
    /// and its policy.
    Refuse,
}

/// Which keys a `maxmemory-policy` deletes once memory is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evicts {
    /// `noeviction`: none; writes fail instead.
    Nothing,
    /// `allkeys-lru`, `allkeys-lfu`, `allkeys-random`: any key.
    AnyKey,
    /// `volatile-lru`, `volatile-lfu`, `volatile-random`, `volatile-ttl`:
    /// keys with a TTL, every lease among them.
    KeysWithTtl,
    /// A policy distlock does not know: only `noeviction` is known to keep
    /// every key, so it is taken to evict.
    Unknown,
}

impl Evicts {
    /// What the policy named `policy` (as `INFO` spells it) deletes.
    pub(crate) fn of(policy: &str) -> Evicts {
        if policy == "noeviction" {
            Evicts::Nothing
        } else if policy.starts_with("allkeys-") {
            Evicts::AnyKey
        } else if policy.starts_with("volatile-") {
            Evicts::KeysWithTtl
        } else {
            Evicts::Unknown
        }
    }

    /// Why the policy endangers a lease, for messages.
    fn why(self) -> &'static str {
        match self {
            Evicts::Nothing => "it keeps every key",
            Evicts::AnyKey => "it may evict any key",
            Evicts::KeysWithTtl => "it evicts keys that have a TTL, and every lease has one",
            Evicts::Unknown => {
                "distlock does not know this policy, and only noeviction keeps every key"
            }
        }
    }
}

/// What one server's `INFO memory` told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// `noeviction`: lock keys are never evicted.
    Keeps,
    /// The policy evicts and `maxmemory` is set (or not shown): a held
    /// lock's lease can be evicted.
    Evicting {
        policy: String,
        /// `maxmemory` in bytes; `None` when `INFO` did not show it.
        maxmemory: Option<u64>,
    },
    /// The policy would evict, but `maxmemory` is 0: it never does until
    /// a limit is set.
    Dormant { policy: String },
    /// Not known: `INFO` refused or not answered, or without the fields.
    Unread { reason: String },
}

impl Finding {
    /// What `INFO memory` (its text) says.
    pub(crate) fn of(info: &str) -> Finding {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
        };
        let Some(policy) = field("maxmemory_policy:") else {
            return Finding::Unread {
                reason: "INFO memory shows no maxmemory_policy".to_owned(),
            };
        };
        let maxmemory = field("maxmemory:").and_then(|bytes| bytes.parse::<u64>().ok());
        match (Evicts::of(policy), maxmemory) {
            (Evicts::Nothing, _) => Finding::Keeps,
            (_, Some(0)) => Finding::Dormant {
                policy: policy.to_owned(),
            },
            (_, maxmemory) => Finding::Evicting {
                policy: policy.to_owned(),
                maxmemory,
            },
        }
    }

    /// What one server answered to `INFO memory`.
    fn of_reply(reply: &Value) -> Finding {
        match reply {
            Value::BulkString(bytes) => Finding::of(&String::from_utf8_lossy(bytes)),
            Value::SimpleString(text) | Value::VerbatimString { text, .. } => Finding::of(text),
            Value::ServerError(error) => Finding::unread(error),
            other => Finding::unread(format_args!("unexpected reply {other:?}")),
        }
    }

    fn unread(reason: impl fmt::Display) -> Finding {
        Finding::Unread {
            reason: reason.to_string(),
        }
    }
}

/// A server and what it told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerPolicy {
    /// Its URL without a password, or its address in a cluster.
    pub(crate) name: String,
    pub(crate) finding: Finding,
}

/// Reads the eviction policy of the server behind `connection`, named
/// `name` in logs, or of every master of a cluster, named by their
/// addresses. Never fails: what it cannot read within `timeout` is
/// [`Finding::Unread`].
pub(crate) async fn read<K: Connect>(
    connection: &Reconnecting<K>,
    name: &str,
    timeout: Duration,
) -> Vec<ServerPolicy> {
    let info = async {
        let mut built = connection.connection().await?;
        built
            .redis
            .req_packed_command(redis::cmd("INFO").arg("memory"))
            .await
    };
    let answered = tokio::time::timeout(timeout, info).await;
    let server = |finding| ServerPolicy {
        name: name.to_owned(),
        finding,
    };
    match bounded(answered, timeout, Awaited::Answer) {
        // A cluster's masters, each with its own reply (or error).
        Ok(Value::Map(masters)) => masters
            .iter()
            .map(|(address, reply)| ServerPolicy {
                name: match address {
                    Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    _ => name.to_owned(),
                },
                finding: Finding::of_reply(reply),
            })
            .collect(),
        Ok(reply) => vec![server(Finding::of_reply(&reply))],
        Err(error) => vec![server(Finding::unread(error))],
    }
}

/// Logs what each server told and, under [`EvictingServer::Refuse`], fails
/// when one of them may evict lock keys.
pub(crate) fn act(servers: &[ServerPolicy], action: EvictingServer) -> Result<(), LockError> {
    let mut refused = Vec::new();
    for server in servers {
        let name = server.name.as_str();
        match &server.finding {
            Finding::Keeps => {
                tracing::debug!(node = %name, "Redis keeps lock keys (maxmemory-policy noeviction)");
            }
            Finding::Dormant { policy } => {
                tracing::info!(node = %name, %policy, "Redis at {name} has maxmemory-policy {policy} but no maxmemory: it evicts nothing now; once a maxmemory is set it may evict held locks' leases, unless the policy is noeviction");
            }
            Finding::Unread { reason } => {
                tracing::info!(node = %name, %reason, "distlock could not read the eviction policy of Redis at {name} (INFO memory): {reason}; not checked");
            }
            Finding::Evicting { policy, maxmemory } => match action {
                EvictingServer::Warn => {
                    let hazard = hazard(name, policy, *maxmemory);
                    tracing::warn!(node = %name, %policy, "{hazard}. Keep locks on a Redis of their own, or set `maxmemory-policy noeviction` on this one; `on_evicting_server(EvictingServer::Refuse)` makes this an error");
                }
                EvictingServer::Refuse => refused.push(hazard(name, policy, *maxmemory)),
            },
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(LockError::invalid_config(format!(
        "{}. Keep locks on a Redis of their own, or set `maxmemory-policy noeviction` (refused by on_evicting_server(EvictingServer::Refuse))",
        refused.join("; ")
    )))
}

/// What an evicting server means for locks, in one sentence.
fn hazard(name: &str, policy: &str, maxmemory: Option<u64>) -> String {
    let limit = maxmemory.map_or_else(|| "not shown".to_owned(), |bytes| format!("{bytes} bytes"));
    let why = Evicts::of(policy).why();
    format!(
        "Redis at {name} evicts keys under memory pressure (maxmemory-policy {policy}, maxmemory {limit}): {why}, so a held lock's lease can be evicted and the lock granted twice, to a second holder while the first still holds it"
    )
}

#[cfg(test)]
mod tests {
    use super::{EvictingServer, Evicts, Finding, ServerPolicy, act};
    use crate::LockError;

    #[test]
    fn only_noeviction_keeps_lock_keys() {
        assert_eq!(Evicts::of("noeviction"), Evicts::Nothing);
        for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
            assert_eq!(Evicts::of(policy), Evicts::AnyKey, "{policy}");
        }
        for policy in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            assert_eq!(Evicts::of(policy), Evicts::KeysWithTtl, "{policy}");
        }
        for policy in ["", "NOEVICTION", "noeviction2", "someday-lrm"] {
            assert_eq!(Evicts::of(policy), Evicts::Unknown, "{policy}");
        }
    }

    fn info(policy: &str, maxmemory: &str) -> String {
        format!(
            "# Memory\r\nused_memory:875000\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:x\r\nmaxmemory_policy:{policy}\r\nallocator_frag_ratio:1.0\r\n"
        )
    }

    #[test]
    fn an_evicting_policy_counts_once_maxmemory_is_set() {
        assert_eq!(Finding::of(&info("noeviction", "2097152")), Finding::Keeps);
        assert_eq!(Finding::of(&info("noeviction", "0")), Finding::Keeps);
        assert_eq!(
            Finding::of(&info("volatile-ttl", "2097152")),
            Finding::Evicting {
                policy: "volatile-ttl".to_owned(),
                maxmemory: Some(2_097_152),
            }
        );
        assert_eq!(
            Finding::of(&info("allkeys-lru", "0")),
            Finding::Dormant {
                policy: "allkeys-lru".to_owned(),
            }
        );
        // A limit not shown is taken to be set.
        assert_eq!(
            Finding::of("maxmemory_policy:allkeys-lfu\n"),
            Finding::Evicting {
                policy: "allkeys-lfu".to_owned(),
                maxmemory: None,
            }
        );
        assert!(matches!(
            Finding::of("# Memory\r\nused_memory:1\r\n"),
            Finding::Unread { .. }
        ));
    }

    #[test]
    fn refusing_names_every_evicting_server_and_nothing_else_refuses() {
        let servers = [
            ("a:1", Finding::of(&info("volatile-lru", "100"))),
            ("b:2", Finding::Keeps),
            ("c:3", Finding::of(&info("allkeys-random", "0"))),
            ("d:4", Finding::unread("NOPERM")),
            ("e:5", Finding::of(&info("allkeys-lru", "100"))),
        ]
        .map(|(name, finding)| ServerPolicy {
            name: name.to_owned(),
            finding,
        });
        assert!(act(&servers, EvictingServer::Warn).is_ok());
        assert!(act(&servers[1..4], EvictingServer::Refuse).is_ok());
        let Err(LockError::InvalidConfig { reason }) = act(&servers, EvictingServer::Refuse) else {
            panic!("an evicting server was not refused");
        };
        assert!(
            reason.contains("a:1") && reason.contains("volatile-lru"),
            "{reason}"
        );
        assert!(
            reason.contains("e:5") && reason.contains("allkeys-lru"),
            "{reason}"
        );
        assert!(
            !reason.contains("b:2") && !reason.contains("c:3"),
            "{reason}"
        );
    }
}
