//! Bad input to the runtime: URLs, hosts, durations, keys, prefixes, names.
//!
//! Each case ends in a `LockError` of the right variant whose message names
//! the problem, or — where Redis takes the input as it is — in a lock that
//! really excludes a second manager and does not collide with other keys.
//! Nothing panics. Cases already covered by `managers.rs` and
//! `lock_protocol.rs` are not repeated here.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use distlock::{LockError, LockManager, MAX_LEASE, ReleaseOutcome, distributed_lock};
use lock_testkit::{BlackHole, RedisServer, Silence};

/// The longest lock key accepted, in bytes.
const MAX_KEY_LEN: usize = 64 * 1024;

/// Slack for a loaded 2-core machine on top of a timeout under test.
const MARGIN: Duration = Duration::from_millis(700);

/// Builds a manager of `url` with `connect_timeout`: the result, and how
/// long the build took.
async fn timed_build(
    url: &str,
    connect_timeout: Duration,
) -> (Result<LockManager, LockError>, Duration) {
    common::timed(
        LockManager::builder(url)
            .connect_timeout(connect_timeout)
            .build(),
    )
    .await
}

#[tokio::test]
async fn malformed_urls_are_configuration_errors_naming_url_and_reason() {
    let cases = [
        ("redis://", "Missing hostname"),
        ("redis://127.0.0.1:99999", "did not parse"),
        ("redis://127.0.0.1:port", "did not parse"),
        ("redis://127.0.0.1/one", "Invalid database number"),
        ("redis://ho st:1", "did not parse"),
        ("redis://\0:1", "did not parse"),
        ("redis://:hunter2@127.0.0.1:99999", "did not parse"),
        ("redis://:hunter2@[::1", "did not parse"),
    ];
    for (url, reason) in cases {
        let (result, took) = common::timed(LockManager::connect(url)).await;
        let message = common::urls::config_error(url, result);
        let shown = url.replace("hunter2", "***");
        assert!(
            message.contains(&format!("`{shown}`")) && message.contains(reason),
            "{url:?}: {message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
        // Rejected before any connection attempt.
        assert!(took < Duration::from_millis(500), "{url:?} took {took:?}");
    }
}

#[tokio::test]
async fn settings_redis_refuses_are_connect_errors_naming_redis_reason() {
    let server = RedisServer::start();
    let connect_timeout = Duration::from_secs(3);
    for (db, reason) in [("99", "DB index is out of range"), ("-1", "out of range")] {
        let url = format!("{}/{db}", server.url());
        let (result, took) = timed_build(&url, connect_timeout).await;
        let message = common::urls::connect_error(url.as_str(), result);
        assert!(
            message.contains(&url) && message.contains(reason),
            "{url}: {message}"
        );
        assert!(took < connect_timeout + MARGIN, "{url} took {took:?}");
    }
}

/// A closed local port, non-routable and black-hole addresses (RFC 5737
/// TEST-NET-1, RFC 6666 discard prefix, an unassigned private address) and a
/// name that never resolves (RFC 6761): whatever the network does with each,
/// the build gives up with `Connect` within its connect timeout.
#[tokio::test]
async fn unreachable_hosts_fail_within_the_connect_timeout() {
    let connect_timeout = Duration::from_millis(300);
    // Hosts that drop packets or hang, built on loopback: no test sends a
    // packet anywhere else.
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let mut holes = vec![
        BlackHole::start(v4, Silence::NoHandshake).unwrap(),
        BlackHole::start(v4, Silence::NoReply).unwrap(),
    ];
    // Some containers have no `::1`; the IPv4 cases still run there.
    match BlackHole::start(v6, Silence::NoHandshake) {
        Ok(hole) => holes.push(hole),
        Err(error) => eprintln!("skipping the IPv6 black hole: {error}"),
    }
    let mut urls = vec![
        format!("redis://127.0.0.1:{}", common::urls::closed_port()),
        // A host that cannot resolve, and whose lookup sends nothing: glibc
        // refuses a DNS label over 63 bytes before building a query (a plain
        // `x.invalid` would still be asked of the configured resolver).
        format!("redis://{}.invalid:6390", "x".repeat(64)),
        "redis+unix:///nonexistent/distlock/redis.sock".to_owned(),
    ];
    urls.extend(holes.iter().map(BlackHole::url));
    let attempts = urls.iter().map(|url| timed_build(url, connect_timeout));
    for (url, (result, took)) in urls
        .iter()
        .zip(futures_util::future::join_all(attempts).await)
    {
        let message = common::urls::connect_error(url.as_str(), result);
        assert!(
            message.contains(&format!("cannot connect to redis at {url}")),
            "{message}"
        );
        assert!(took < connect_timeout + MARGIN, "{url} took {took:?}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_named_when_the_timeout_allows_a_retry() {
    // The client retries twice with back-off (about 0.5 s); with room for
    // that, the error says what went wrong instead of "no connection".
    let url = format!("redis://127.0.0.1:{}", common::urls::closed_port());
    let connect_timeout = Duration::from_secs(3);
    let (result, took) = timed_build(&url, connect_timeout).await;
    let message = result.unwrap_err().to_string();
    assert!(message.contains("refused"), "{message}");
    assert!(took < connect_timeout + MARGIN, "took {took:?}");
}

#[tokio::test]
async fn a_server_that_stops_answering_fails_within_the_command_timeout() {
    let mut server = RedisServer::start();
    let command_timeout = Duration::from_millis(300);
    let manager = LockManager::builder(server.url())
        .command_timeout(command_timeout)
        .build()
        .await
        .unwrap();

    server.pause(); // the connection stays open, nothing answers: a black hole
    let (result, took) = common::timed(manager.lock("paused").acquire()).await;
    server.resume();
    let error = result.unwrap_err();
    assert!(
        matches!(&error, LockError::Backend { key, .. } if key == "paused"),
        "{error}"
    );
    assert!(error.to_string().contains("`paused`"), "{error}");
    assert!(took < command_timeout + MARGIN, "took {took:?}");

    server.stop(); // connections refused from now on
    let (result, took) = common::timed(manager.lock("stopped").acquire()).await;
    let error = result.unwrap_err();
    assert!(
        matches!(&error, LockError::Backend { key, .. } if key == "stopped"),
        "{error}"
    );
    assert!(took < command_timeout + MARGIN, "took {took:?}");
}

#[tokio::test]
async fn unusable_durations_are_configuration_errors_naming_the_setting() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let too_short = "a lease (ttl) must be at least 3ms";
    let too_long = "a lease (ttl) may be at most";
    // Leases under 3 ms used to be accepted and then time out as if the
    // lock were held: the 2 ms drift allowance left them no validity.
    for (ttl, problem) in [
        (Duration::from_micros(999), too_short),
        (Duration::from_millis(1), too_short),
        (Duration::from_millis(2), too_short),
        (Duration::from_micros(2_999), too_short),
        (MAX_LEASE + Duration::from_nanos(1), too_long),
        (Duration::MAX, too_long),
    ] {
        let (result, took) = common::timed(
            manager
                .lock("durations")
                .ttl(ttl)
                .wait(Duration::from_secs(5))
                .acquire(),
        )
        .await;
        let error = result.unwrap_err();
        assert!(
            matches!(error, LockError::InvalidConfig { .. }),
            "{ttl:?}: {error}"
        );
        assert!(error.to_string().contains(problem), "{ttl:?}: {error}");
        assert!(took < Duration::from_millis(100), "{ttl:?} took {took:?}");
        let error = manager
            .lock("durations")
            .ttl(ttl)
            .try_acquire()
            .await
            .unwrap_err();
        assert!(error.to_string().contains(problem), "{ttl:?}: {error}");
    }

    for (builder, problem) in [
        (
            LockManager::builder(server.url()).default_ttl(Duration::ZERO),
            too_short,
        ),
        (
            LockManager::builder(server.url()).default_ttl(Duration::MAX),
            too_long,
        ),
        (
            LockManager::builder(server.url()).command_timeout(Duration::ZERO),
            "the command timeout must be above zero",
        ),
        (
            LockManager::builder(server.url()).connect_timeout(Duration::ZERO),
            "the connect timeout must be above zero",
        ),
    ] {
        let error = builder.build().await.unwrap_err();
        assert!(
            matches!(error, LockError::InvalidConfig { .. }),
            "{problem}: {error}"
        );
        assert!(error.to_string().contains(problem), "{error}");
    }

    let guard = manager.lock("extended").acquire().await.unwrap();
    for ttl in [Duration::ZERO, Duration::from_millis(2), Duration::MAX] {
        let error = guard.extend(ttl).await.unwrap_err();
        assert!(
            matches!(error, LockError::InvalidConfig { .. }),
            "{ttl:?}: {error}"
        );
    }
    // A rejected extension leaves the lock as it was.
    assert!(common::held_elsewhere(&server, "extended").await);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn extreme_but_valid_durations_work() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;

    // The longest lease reaches Redis whole, not truncated or wrapped.
    let guard = manager
        .lock("month")
        .ttl(MAX_LEASE)
        .acquire()
        .await
        .unwrap();
    let lease_key = common::lease_keys(&server)
        .await
        .pop()
        .expect("a lease key");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&lease_key)
        .query_async(&mut common::raw(&server).await)
        .await
        .unwrap();
    let month = i64::try_from(MAX_LEASE.as_millis()).unwrap();
    assert!((month - 60_000..=month).contains(&pttl), "PTTL {pttl}");
    assert!(common::held_elsewhere(&server, "month").await);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);

    // The shortest lease is accepted. Less than 1 ms of it is usable, so
    // on a busy machine the attempt may outlive it and time out instead.
    match manager
        .lock("shortest")
        .ttl(Duration::from_millis(3))
        .wait(Duration::from_millis(200))
        .acquire()
        .await
    {
        Ok(guard) => {
            let _ = guard.release().await;
        }
        Err(error) => assert!(matches!(error, LockError::Timeout { .. }), "{error}"),
    }

    // An endless wait has no deadline to overflow: it waits for the holder.
    let holder = manager.lock("endless").acquire().await.unwrap();
    let other = common::manager(&server).await;
    let waiter = tokio::spawn(async move {
        other
            .lock("endless")
            .wait(Duration::MAX)
            .acquire()
            .await
            .map(|guard| guard.key().to_owned())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);
    let acquired = tokio::time::timeout(Duration::from_secs(5), waiter).await;
    assert_eq!(acquired.unwrap().unwrap().unwrap(), "endless");

    // No wait at all: one attempt, a timeout that names the key.
    let holder = manager.lock("busy").acquire().await.unwrap();
    let (result, took) = common::timed(
        common::manager(&server)
            .await
            .lock("busy")
            .wait(Duration::ZERO)
            .acquire(),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        matches!(&error, LockError::Timeout { key, .. } if key == "busy"),
        "{error}"
    );
    assert!(error.to_string().contains("`busy`"), "{error}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert_eq!(holder.release().await.unwrap(), ReleaseOutcome::Released);

    // Timeouts of any size: endless ones have nothing to overflow, tiny
    // ones are rounded up to the timer's millisecond or fail cleanly.
    let endless = LockManager::builder(server.url())
        .command_timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .build()
        .await
        .unwrap();
    let guard = endless.lock("endless-timeouts").acquire().await.unwrap();
    assert!(common::held_elsewhere(&server, "endless-timeouts").await);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);

    if let Err(error) = LockManager::builder(server.url())
        .connect_timeout(Duration::from_nanos(1))
        .build()
        .await
    {
        assert!(matches!(error, LockError::Connect { .. }), "{error}");
        assert!(
            error.to_string().contains("no connection within 1ns"),
            "{error}"
        );
    }
    if let Ok(tiny) = LockManager::builder(server.url())
        .command_timeout(Duration::from_nanos(1))
        .build()
        .await
    {
        match tiny.lock("tiny-timeout").acquire().await {
            Ok(guard) => {
                let _ = guard.release().await;
            }
            Err(error) => assert!(matches!(error, LockError::Backend { .. }), "{error}"),
        }
    }
}

#[tokio::test]
async fn unusable_keys_are_invalid_key_errors_with_a_bounded_message() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    for (key, problem) in [
        (String::new(), "a lock key must not be empty".to_owned()),
        (
            "k".repeat(MAX_KEY_LEN + 1),
            format!(
                "at most {MAX_KEY_LEN} bytes, this one has {}",
                MAX_KEY_LEN + 1
            ),
        ),
        // Multi-byte characters across the limit, and across the point where
        // the message cuts the key short: the cut falls between characters.
        (
            format!("a{}", "é".repeat(MAX_KEY_LEN / 2)),
            format!(
                "at most {MAX_KEY_LEN} bytes, this one has {}",
                MAX_KEY_LEN + 1
            ),
        ),
        (
            format!("{}{}", "k".repeat(62), "🧾".repeat(MAX_KEY_LEN / 4)),
            format!("this one has {}", MAX_KEY_LEN + 62),
        ),
    ] {
        let error = manager.lock(key.as_str()).acquire().await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, LockError::InvalidKey { .. }),
            "{}: {message}",
            key.len()
        );
        assert!(message.contains(&problem), "{message}");
        assert!(message.len() < 500, "{} bytes of message", message.len());
        let error = manager.lock(key).try_acquire().await.unwrap_err();
        assert!(matches!(error, LockError::InvalidKey { .. }), "{error}");
    }
    assert!(common::all_keys(&server).await.is_empty());
}

/// Keys Redis stores as they are (binary-safe): NUL bytes, protocol and glob
/// syntax, text that imitates distlock's own key layout, invisible and
/// combining characters, and the longest key accepted.
fn odd_keys() -> Vec<String> {
    vec![
        "\0".to_owned(),
        "a\0b".to_owned(),
        "\0{\0}\0".to_owned(),
        "\r\n*1\r\n$8\r\nFLUSHALL\r\n".to_owned(),
        "*".to_owned(),
        "?[a-z]*".to_owned(),
        "%s%d%%".to_owned(),
        " ".to_owned(),
        "\u{feff}".to_owned(),
        "\u{202e}txt.exe".to_owned(),
        "👩\u{200d}👩\u{200d}👧".to_owned(),
        "e\u{301}".to_owned(),
        "x}:fence".to_owned(),
        "distlock:{1}:lock:x".to_owned(),
        ":lock:".to_owned(),
        "k".repeat(MAX_KEY_LEN),
        "é".repeat(MAX_KEY_LEN / 2),
    ]
}

#[tokio::test]
async fn odd_keys_redis_allows_really_lock() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let other = common::manager(&server).await;
    let mut conn = common::raw(&server).await;
    let () = redis::cmd("SET")
        .arg("canary")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();

    for key in odd_keys() {
        let shown = key.escape_debug().take(40).collect::<String>();
        let guard = manager.lock(key.as_str()).acquire().await.unwrap();
        assert_eq!(guard.key(), key);
        assert!(
            other
                .lock(key.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{shown} is not exclusive"
        );
        // The lease key holds the lock key byte for byte.
        let lease_keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg("distlock:{*}:lock:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(lease_keys.len(), 1, "{shown}");
        assert!(lease_keys[0].ends_with(key.as_bytes()), "{shown}");
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        let next = other.lock(key.as_str()).try_acquire().await.unwrap();
        assert_eq!(
            next.expect("free after release").release().await.unwrap(),
            ReleaseOutcome::Released
        );
    }
    assert!(common::lease_keys(&server).await.is_empty());
    let canary: Option<i64> = redis::cmd("GET")
        .arg("canary")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(canary, Some(1), "a key reached Redis as a command");
}

#[tokio::test]
async fn distinct_odd_keys_never_collide() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let other = common::manager(&server).await;
    let mut keys = odd_keys();
    // Near-twins: a NUL more or less, NFC against NFD, case, spaces,
    // braces, one byte apart at the length limit.
    keys.extend(
        [
            "a",
            "a\0",
            "\0a",
            "a\0c",
            "é",
            "A",
            "a ",
            " a",
            "{a}",
            "{a",
            "a}",
            "x}:fence\0",
        ]
        .map(str::to_owned),
    );
    keys.push(format!("{}j", "k".repeat(MAX_KEY_LEN - 1)));

    // Every key is taken while all the others are held.
    let mut guards = Vec::new();
    for key in &keys {
        let guard = manager.lock(key.as_str()).try_acquire().await.unwrap();
        guards.push(guard.unwrap_or_else(|| panic!("{key:?} collided with another key")));
    }
    for key in &keys {
        assert!(
            other
                .lock(key.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none()
        );
    }
    for guard in guards {
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    }
    assert!(common::lease_keys(&server).await.is_empty());
}

#[tokio::test]
async fn key_prefixes_with_braces_are_rejected_and_others_work() {
    let server = RedisServer::start();
    for prefix in ["{", "}", "}{", "app:}", "a{b}c:"] {
        let error = LockManager::builder(server.url())
            .key_prefix(prefix)
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(error, LockError::InvalidConfig { .. }),
            "{prefix}: {error}"
        );
        assert!(
            error.to_string().contains(&format!(
                "key prefix `{prefix}` must not contain `{{` or `}}`"
            )),
            "{error}"
        );
    }

    let long = "p".repeat(10_000);
    for prefix in ["", "\0", "ключ:", "a b:", "*:", long.as_str()] {
        let build = || {
            LockManager::builder(server.url())
                .key_prefix(prefix)
                .build()
        };
        let (manager, same_prefix) = (build().await.unwrap(), build().await.unwrap());
        let guard = manager.lock("k").acquire().await.unwrap();
        assert!(
            same_prefix.lock("k").try_acquire().await.unwrap().is_none(),
            "{prefix:?}: not exclusive"
        );
        // Another prefix is another namespace: no collision.
        let default_prefix = common::manager(&server).await;
        let elsewhere = default_prefix.lock("k").try_acquire().await.unwrap();
        let elsewhere = elsewhere.unwrap_or_else(|| panic!("{prefix:?} collided with the default"));
        let keys = common::all_keys(&server).await;
        assert!(
            keys.iter()
                .any(|key| key.starts_with(&format!("{prefix}{{")) && key.ends_with("}:lock:k")),
            "{prefix:?}: {keys:?}"
        );
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
        assert_eq!(elsewhere.release().await.unwrap(), ReleaseOutcome::Released);
    }
}

#[tokio::test]
async fn manager_names_are_taken_as_given() {
    let server = RedisServer::start();
    for name in ["", " ", "bad-input\0name", "bad-input ✓ имя", "DEFAULT"] {
        let error = distlock::manager(name).unwrap_err();
        assert!(
            matches!(&error, LockError::NotInitialized { name: found } if found == name),
            "{name:?}: {error}"
        );
        assert!(error.to_string().contains(&format!("`{name}`")), "{error}");
    }
    // An odd name is still a name: registered once, found exactly.
    let name = "bad-input\0name ✓";
    distlock::register(name, common::manager(&server).await).unwrap();
    let guard = distlock::manager(name)
        .unwrap()
        .lock("named")
        .acquire()
        .await
        .unwrap();
    assert!(common::held_elsewhere(&server, "named").await);
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    assert!(distlock::manager("bad-input\0name").is_err());
    let again = distlock::register(name, common::manager(&server).await).unwrap_err();
    assert!(
        matches!(again, LockError::AlreadyInitialized { .. }),
        "{again}"
    );
}

static BODIES_RUN: AtomicUsize = AtomicUsize::new(0);

/// The locked fns' error. (With `LockError` itself, clippy flags the
/// generated `From::from(error)` as `useless_conversion` at the return type.)
#[derive(Debug)]
struct CallFailed(LockError);

impl From<LockError> for CallFailed {
    fn from(error: LockError) -> Self {
        CallFailed(error)
    }
}

#[distributed_lock(key = "<id>", wait = "0s", manager = "bad-input-never-registered")]
async fn with_unregistered_manager(id: &str) -> Result<(), CallFailed> {
    let _ = id;
    BODIES_RUN.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

// Nothing in this test binary initializes the default manager.
#[distributed_lock(key = "<id>", wait = "0s")]
async fn with_default_manager(id: &str) -> Result<(), CallFailed> {
    let _ = id;
    BODIES_RUN.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[distributed_lock(key = "<id>", wait = "0s", manager = "bad-input-attribute")]
async fn held_elsewhere_while_locked(id: &str, server: &RedisServer) -> Result<bool, CallFailed> {
    Ok(common::held_elsewhere(server, id).await)
}

#[tokio::test]
async fn the_attribute_reports_bad_runtime_input_without_running_the_body() {
    let error = with_unregistered_manager("k").await.unwrap_err().0;
    assert!(
        matches!(&error, LockError::NotInitialized { name } if name == "bad-input-never-registered"),
        "{error}"
    );
    assert!(error.to_string().contains("`bad-input-never-registered`"));
    let error = with_default_manager("k").await.unwrap_err().0;
    assert!(
        matches!(&error, LockError::NotInitialized { name } if name == "default"),
        "{error}"
    );
    assert_eq!(BODIES_RUN.load(Ordering::SeqCst), 0);

    // Keys built from arguments at run time meet the same checks.
    let server = RedisServer::start();
    distlock::register("bad-input-attribute", common::manager(&server).await).unwrap();
    for id in [String::new(), "k".repeat(MAX_KEY_LEN + 1)] {
        let error = held_elsewhere_while_locked(&id, &server)
            .await
            .unwrap_err()
            .0;
        assert!(matches!(error, LockError::InvalidKey { .. }), "{error}");
    }
    for id in ["a\0b", "\r\nDEL canary", "{}", "ключ"] {
        assert!(
            held_elsewhere_while_locked(id, &server).await.unwrap(),
            "{id:?}"
        );
    }
    assert!(common::lease_keys(&server).await.is_empty());
}

/// The connect timeout is the user's, whole: redis-rs's own default (1 s)
/// must not cut a connection attempt short.
#[tokio::test]
async fn a_connect_gets_its_whole_connect_timeout() {
    let hole = BlackHole::start(IpAddr::V4(Ipv4Addr::LOCALHOST), Silence::NoHandshake).unwrap();
    let connect_timeout = Duration::from_millis(2500);
    let url = hole.url();
    let (result, took) = timed_build(&url, connect_timeout).await;
    let message = common::urls::connect_error(&url, result);
    assert!(
        took + Duration::from_millis(50) >= connect_timeout,
        "gave up after {took:?} of {connect_timeout:?}: {message}"
    );
    assert!(took < connect_timeout + MARGIN, "took {took:?}");
}
