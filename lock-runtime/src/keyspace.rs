//! Where one lock lives in Redis.
//!
//! A lock `K` under prefix `P` uses two keys that share the hash tag `{G}`,
//! so every script touches a single Redis Cluster slot whatever bytes `K`
//! holds:
//!
//! - `P{G}:lock:K` — the lease, holding the owner token;
//! - `P{G}:fence` — the fencing counter shared by every lock of group `G`
//!   (protocol v1: Redis Cluster, Redlock);
//! - `P{G}:fence:R` — the same for one run `R` of a single server (protocol
//!   v2, see `backend/protocol.rs`), expiring when unused;
//! - `P{G}:queue:K` — the waiters of `K`, in arrival order (protocol v2);
//! - `P{G}:waiter:O` — the entry of the waiter whose owner token is `O`,
//!   holding the lease it asked for, expiring unless refreshed (protocol v2).
//!
//! A semaphore keeps `P{G}:permits:K` (its holders), `P{G}:permits-queue:K`
//! and `P{G}:permits-places:K` (its waiters) and `P{G}:permits-capacity:K`
//! (its number of permits), a read-write lock the same under `rw`,
//! `rw-queue`, `rw-places` and `rw-capacity` (see [`LockKind`]), and both
//! the fencing counters above.
//!
//! The v2 scripts name the queue and the entries themselves, from the lease
//! key, on their slow paths (`lock_keys` in `backend/scripts/fence.lua`).
//!
//! A release wakes waiters on the pub/sub channel named like the lease key
//! (channels and keys are separate namespaces in Redis), so it needs no name
//! of its own and hashes to the same slot.
//!
//! `G` is a stable hash of `K` folded into [`GROUPS`] values, so the number of
//! never-expiring counter keys is bounded by `GROUPS` no matter how many
//! distinct lock keys an application uses. Redis hashes only what stands
//! between the first `{` and the next `}`; the prefix may contain neither, so
//! the first pair is always ours.

use crate::LockError;
use crate::kind::{Family, LockKind};

/// How many fencing groups (and so counter keys) there are at most.
pub(crate) const GROUPS: u64 = 16384;

/// Longest key accepted, in bytes; far below Redis's limit, far above any sane key.
pub(crate) const MAX_KEY_LEN: usize = 64 * 1024;

/// The Redis keys of one lock.
///
/// Only the lease's name is built per request; the fencing counter is named
/// from it when a step needs it, as a [`KeyName`] written straight into the
/// command, so that the uncontended path allocates one string.
#[derive(Debug, Clone)]
pub(crate) struct LockKeys {
    /// The key holding the lock: an exclusive lock's lease, the holders of
    /// a shared kind. Also the channel its releases are published on.
    pub(crate) lease: String,
    /// Where `P{G}` ends in `lease`.
    tag_end: usize,
    pub(crate) kind: LockKind,
}

impl LockKeys {
    /// The keys of the exclusive lock `key`.
    pub(crate) fn new(prefix: &str, key: &str) -> Result<Self, LockError> {
        Self::of_kind(prefix, key, LockKind::Exclusive)
    }

    /// The keys of the lock `key` of `kind`.
    pub(crate) fn of_kind(prefix: &str, key: &str, kind: LockKind) -> Result<Self, LockError> {
        if key.is_empty() {
            return Err(LockError::InvalidKey {
                key: String::new(),
                reason: "a lock key must not be empty".into(),
            });
        }
        if key.len() > MAX_KEY_LEN {
            return Err(LockError::InvalidKey {
                key: format!("{}…", truncate(key, 64)),
                reason: format!(
                    "a lock key may be at most {MAX_KEY_LEN} bytes, this one has {}",
                    key.len()
                ),
            });
        }
        let group = (fnv1a(key.as_bytes()) % GROUPS).to_string();
        let mut lease = String::with_capacity(prefix.len() + group.len() + 8 + key.len());
        lease.push_str(prefix);
        lease.push('{');
        lease.push_str(&group);
        lease.push('}');
        let tag_end = lease.len();
        lease.push_str(Segments::of(kind).holders);
        lease.push_str(key);
        Ok(LockKeys {
            lease,
            tag_end,
            kind,
        })
    }

    /// The key the lock was asked for: `K` of `P{G}:lock:K`.
    pub(crate) fn key(&self) -> &str {
        &self.lease[self.tag_end + Segments::of(self.kind).holders.len()..]
    }

    /// The fencing counter of this lock's group (protocol v1).
    pub(crate) fn fence(&self) -> String {
        format!("{}:fence", self.tagged())
    }

    /// The fencing counter of this lock's group for one run of a server.
    pub(crate) fn run_fence<'a>(&'a self, run: &'a str) -> KeyName<'a> {
        KeyName([self.tagged(), ":fence:", run])
    }

    /// The queue of this lock's waiters (protocol v2, and shared kinds), as
    /// the scripts name it.
    pub(crate) fn queue(&self) -> KeyName<'_> {
        KeyName([self.tagged(), Segments::of(self.kind).queue, self.key()])
    }

    /// The places of a shared kind's waiters (`backend/scripts/shared.lua`).
    pub(crate) fn places(&self) -> KeyName<'_> {
        KeyName([self.tagged(), Segments::of(self.kind).places, self.key()])
    }

    /// The capacity a shared kind's lock is in use with.
    pub(crate) fn capacity(&self) -> KeyName<'_> {
        KeyName([self.tagged(), Segments::of(self.kind).capacity, self.key()])
    }

    /// `P{G}`.
    fn tagged(&self) -> &str {
        &self.lease[..self.tag_end]
    }
}

/// What follows `P{G}` in the names of one kind's keys.
struct Segments {
    holders: &'static str,
    queue: &'static str,
    /// Shared kinds only: v2's exclusive waiters have a key each.
    places: &'static str,
    /// Shared kinds only: the capacity the lock is in use with.
    capacity: &'static str,
}

impl Segments {
    fn of(kind: LockKind) -> Self {
        match kind.family() {
            Family::Exclusive => Segments {
                holders: ":lock:",
                queue: ":queue:",
                places: ":places:",
                capacity: ":capacity:",
            },
            Family::Permits => Segments {
                holders: ":permits:",
                queue: ":permits-queue:",
                places: ":permits-places:",
                capacity: ":permits-capacity:",
            },
            Family::ReadWrite => Segments {
                holders: ":rw:",
                queue: ":rw-queue:",
                places: ":rw-places:",
                capacity: ":rw-capacity:",
            },
        }
    }
}

/// A key name in three parts, written into a command as one argument
/// without being put together first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyName<'a>([&'a str; 3]);

impl redis::ToRedisArgs for KeyName<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write;
        let mut writer = out.writer_for_next_arg();
        for part in self.0 {
            // Writing into memory cannot fail.
            let _ = writer.write_all(part.as_bytes());
        }
    }
}

impl std::fmt::Display for KeyName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|part| f.write_str(part))
    }
}

/// Checks a key prefix: it must not contain a hash tag of its own.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), LockError> {
    if prefix.contains(['{', '}']) {
        return Err(LockError::invalid_config(format!(
            "key prefix `{prefix}` must not contain `{{` or `}}`: distlock chooses the hash tag itself"
        )));
    }
    Ok(())
}

/// FNV-1a, 64 bit: stable across processes, versions and platforms, which
/// `std`'s hasher does not promise.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Redis hashes: the text between the first `{` and the next `}`.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("a tag");
        let close = key[open + 1..].find('}').expect("a closing brace") + open + 1;
        &key[open + 1..close]
    }

    #[test]
    fn the_key_asked_for_is_read_back_whatever_its_bytes() {
        for prefix in ["", "app:", "x:lock:"] {
            for key in ["a", "}:lock:", "{x}", "ключ"] {
                let keys = LockKeys::new(prefix, key).expect("a valid key");
                assert_eq!(keys.key(), key, "prefix {prefix:?}");
            }
        }
    }

    #[test]
    fn both_keys_share_the_tag_whatever_the_key_holds() {
        for key in [
            "order:1",
            "{evil}",
            "}{",
            "a b c",
            "ключ",
            "\u{0}\u{7f}{}",
            "{",
        ] {
            let keys = LockKeys::new("distlock:", key).unwrap();
            let tag = hash_tag(&keys.lease);
            for other in [keys.fence(), keys.run_fence("abc").to_string()] {
                assert_eq!(hash_tag(&other), tag, "{key}: {other}");
            }
            assert!(keys.lease.starts_with("distlock:{"));
            assert!(keys.lease.ends_with(&format!("}}:lock:{key}")));
            assert!(keys.fence().ends_with("}:fence"));
            assert!(keys.run_fence("abc").to_string().ends_with("}:fence:abc"));
            // Written into a command, a name is one argument.
            let fence = keys.run_fence("abc");
            assert_eq!(
                redis::ToRedisArgs::to_redis_args(&fence),
                [fence.to_string().into_bytes()]
            );
        }
    }

    #[test]
    fn groups_are_stable_and_bounded() {
        let a = LockKeys::new("p:", "order:42").unwrap();
        let b = LockKeys::new("p:", "order:42").unwrap();
        assert_eq!(a.fence(), b.fence());
        let tag: u64 = hash_tag(&a.fence()).parse().unwrap();
        assert!(tag < GROUPS);
    }

    #[test]
    fn rejects_empty_and_huge_keys_and_tagged_prefixes() {
        assert!(matches!(
            LockKeys::new("p:", ""),
            Err(LockError::InvalidKey { .. })
        ));
        let huge = "é".repeat(MAX_KEY_LEN);
        assert!(matches!(
            LockKeys::new("p:", &huge),
            Err(LockError::InvalidKey { .. })
        ));
        assert!(validate_prefix("app:{x}:").is_err());
        assert!(validate_prefix("app:").is_ok());
    }
}
