//! Security: TLS with a private CA, AUTH and a least-privilege ACL user, and
//! owner tokens that no other client can use, tested across OS processes.
//!
//! Every server is a throwaway `redis-server` started by lock-testkit.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::{Duration, Instant};

use distlock::{LockError, LockGuard, LockManager, ReleaseOutcome};
use lock_testkit::{RedisServer, TestCertificates, TlsRedisServer};
use redis::aio::MultiplexedConnection;

/// The permissions distlock needs, as an ACL rule for a user of the default
/// key prefix `distlock:` (replace both patterns for another prefix):
///
/// - `~distlock:*` the lease keys and fencing counters,
///   `&distlock:*` the wake-up channels (named like the lease keys);
/// - `+evalsha +script|load` the scripts, loaded when a connection opens;
/// - `+set +get +del +pexpire +pttl +time +publish` what the scripts call;
/// - `+subscribe +unsubscribe` the wake-up connection.
///
/// Redis 7.2+ also receives `CLIENT SETINFO` from redis-rs on connect; its
/// reply is ignored, so it needs no permission (7.0 rejects the rule
/// `+client|setinfo`). Nothing else is sent: `AUTH` needs no permission.
const DISTLOCK_ACL: &str = "resetchannels ~distlock:* &distlock:* -@all \
    +evalsha +script|load +set +get +del +incrby +pexpire +pttl +time \
    +lpop +llen +lpos +rpush +lrem +publish +subscribe +unsubscribe +ping +info";

const ADMIN_PASSWORD: &str = "admin-secret";
const USER_PASSWORD: &str = "user-secret";
/// A wake-up must beat the waiter's fallback timer (500 ms) by far.
const WAKE_UP_WITHIN: Duration = Duration::from_millis(150);
/// A denied command is answered at once; a hang would run into the 2 s
/// command timeout of the managers here.
const DENIED_WITHIN: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_manager_trusting_the_ca_acquires_is_woken_by_a_release_and_releases() {
    let server = TlsRedisServer::start();
    let holder = tls_manager(&server).await;
    let waiter = tls_manager(&server).await;
    let mut admin = tls_admin(&server).await;

    let guard = common::hold(&holder, "order:1").await;
    let lease = common::lease_key(&mut admin, "order:1").await;
    assert_eq!(
        get(&mut admin, &lease).await.as_deref(),
        Some(guard.owner_token())
    );
    let first_token = guard.fencing_token();

    // The waiter's subscription lives on the pub/sub connection, which the
    // TLS-only server can only have accepted over TLS.
    let (outcome, next, woken_after) = hand_over(guard, &waiter, &mut admin, &lease).await;
    assert_eq!(outcome, ReleaseOutcome::Released);
    assert!(
        woken_after < WAKE_UP_WITHIN,
        "the waiter got the lock {woken_after:?} after the release: not woken over TLS pub/sub"
    );
    assert!(next.fencing_token() > first_token);
    next.extend(Duration::from_secs(20))
        .await
        .expect("extend over TLS");
    assert!(common::pttl(&mut admin, &lease).await > 10_000);
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
    assert_eq!(get(&mut admin, &lease).await, None);
}

#[tokio::test]
async fn over_tls_a_manager_without_the_servers_ca_fails_with_a_certificate_error() {
    let server = TlsRedisServer::start();
    let another_ca = TestCertificates::generate().unwrap();
    let attempts = [
        ("the default roots", LockManager::builder(server.url())),
        (
            "another CA",
            LockManager::builder(server.url()).tls_root_certificate(another_ca.ca_pem()),
        ),
    ];
    common::urls::assert_untrusted_refused(attempts, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn a_tls_only_server_refuses_plain_connections() {
    let server = TlsRedisServer::start();
    let plain = format!("redis://127.0.0.1:{}", server.port());
    let built = LockManager::builder(&plain)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await;
    common::urls::connect_error(&plain, built);
}

#[tokio::test]
async fn a_server_that_allows_only_tls_1_2_is_reachable() {
    let server = TlsRedisServer::start();
    let mut admin = tls_admin(&server).await;
    // Applies to the connections accepted from now on.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-protocols")
        .arg("TLSv1.2")
        .query_async(&mut admin)
        .await
        .unwrap();
    let manager = tls_manager(&server).await;
    let guard = common::hold(&manager, "tls12").await;
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

#[tokio::test]
async fn a_tls_root_certificate_that_cannot_work_is_a_configuration_error() {
    let ca = TestCertificates::generate().unwrap();
    let cases = [
        (
            "rediss://127.0.0.1:1",
            b"not a certificate".to_vec(),
            "no PEM",
        ),
        (
            "redis://127.0.0.1:1",
            ca.ca_pem().as_bytes().to_vec(),
            "rediss://",
        ),
        (
            "rediss://:hunter2@127.0.0.1:1",
            ca.ca_pem().as_bytes()[..200].to_vec(),
            "not valid PEM",
        ),
    ];
    for (url, pem, says) in cases {
        let built = LockManager::builder(url)
            .tls_root_certificate(pem)
            .build()
            .await;
        let message = common::urls::config_error(url, built);
        assert!(message.contains(says), "{url}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}

// ---------------------------------------------------------------- AUTH and ACL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_with_only_the_documented_rule_acquires_is_woken_extends_and_releases() {
    let server = acl_server(&[("distlock", DISTLOCK_ACL)]);
    let mut admin = acl_admin(&server).await;
    let holder = user_manager(&server, "distlock").await;
    let waiter = user_manager(&server, "distlock").await;

    // A fresh server knows no script: the first calls also load them.
    let guard = common::hold(&holder, "order:1").await;
    let lease = common::lease_key(&mut admin, "order:1").await;
    let (outcome, next, woken_after) = hand_over(guard, &waiter, &mut admin, &lease).await;
    assert_eq!(outcome, ReleaseOutcome::Released);
    assert!(woken_after < WAKE_UP_WITHIN, "woken after {woken_after:?}");
    next.extend(Duration::from_secs(20)).await.expect("extend");
    assert!(common::pttl(&mut admin, &lease).await > 10_000);
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
    // The waiter's channel is given up once nobody waits.
    assert!(
        numsub_becomes(&mut admin, &lease, 0).await,
        "never unsubscribed"
    );

    assert_eq!(
        acl_log(&mut admin).await,
        Vec::<(String, String)>::new(),
        "distlock sent a command the rule does not allow"
    );
}

/// Which step of [`run_steps`] needs each permission of [`DISTLOCK_ACL`]
/// that, when missing, must make distlock fail (rather than degrade).
/// (`+lpop`, `+llen` and `+publish` are needed too, by a release that hands
/// the lock to a waiter, which the documented rule's test above runs;
/// `+lrem` by the give-back of a waiter that stops waiting, which runs in
/// the background; `+info` only chooses the protocol: see
/// `without_info_locks_work_on_protocol_v1`.)
const NEEDED: [(&str, Step); 12] = [
    ("~distlock:*", Step::Acquire),
    ("+evalsha", Step::Acquire),
    ("+script|load", Step::Acquire),
    ("+set", Step::Acquire),
    ("+incrby", Step::Acquire),
    ("+time", Step::Acquire),
    ("+get", Step::Acquire),
    ("+pexpire", Step::Extend),
    ("+del", Step::Release),
    ("+lpos", Step::WaitHeld),
    ("+rpush", Step::WaitHeld),
    ("+pttl", Step::WaitHeld),
];

#[tokio::test]
async fn an_acl_user_missing_one_needed_permission_fails_at_once_with_a_permission_error() {
    let rules: Vec<(String, String)> = NEEDED
        .iter()
        .enumerate()
        .map(|(i, (permission, _))| (format!("without{i}"), without(permission)))
        .collect();
    let mut users: Vec<(&str, &str)> = vec![("distlock", DISTLOCK_ACL)];
    users.extend(
        rules
            .iter()
            .map(|(user, rule)| (user.as_str(), rule.as_str())),
    );
    let server = acl_server(&users);
    let mut admin = acl_admin(&server).await;
    let holder = user_manager(&server, "distlock").await;
    let held = common::hold(&holder, "held").await;

    // The complete rule runs every step.
    flush_scripts(&mut admin).await;
    let full = user_manager(&server, "distlock").await;
    if let Some((step, error, _)) = run_steps(&full, "full").await {
        panic!("the complete rule failed at {step:?}: {error}");
    }

    for (i, (permission, expected_step)) in NEEDED.iter().enumerate() {
        // Scripts are loaded once per server; forget them so that every
        // user has to load them.
        flush_scripts(&mut admin).await;
        reset_acl_log(&mut admin).await;
        let manager = user_manager(&server, &format!("without{i}")).await;
        let Some((step, error, took)) = run_steps(&manager, &format!("k{i}")).await else {
            panic!("without `{permission}` every step worked");
        };
        assert_eq!(step, *expected_step, "without `{permission}`: {error}");
        assert!(
            is_permission_error(&error),
            "without `{permission}`, {step:?} failed with an unclear error: {error}"
        );
        assert!(
            took < DENIED_WITHIN,
            "without `{permission}`, {step:?} took {took:?}"
        );
        // ...and Redis denied exactly what the rule left out.
        let denied = acl_log(&mut admin).await;
        let expected_object = permission.trim_start_matches('+');
        assert!(
            denied
                .iter()
                .any(|(reason, object)| if permission.starts_with('~') {
                    reason == "key" && object.starts_with("distlock:")
                } else {
                    reason == "command" && object == expected_object
                }),
            "without `{permission}`, the ACL log shows {denied:?}"
        );
    }
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
}

/// A server that does not tell its run (`INFO` denied, or renamed away as
/// some managed services do) gets protocol v1: one script per step, waiters
/// woken by every release. Everything works, and nothing denied is retried
/// per step: `INFO` is asked once per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_info_locks_work_on_protocol_v1() {
    let rule = without("+info");
    let server = acl_server(&[("noinfo", &rule)]);
    let mut admin = acl_admin(&server).await;
    let holder = user_manager(&server, "noinfo").await;
    let waiter = user_manager(&server, "noinfo").await;
    let held = common::hold(&waiter, "held").await;
    if let Some((step, error, _)) = run_steps(&holder, "steps").await {
        panic!("without INFO, {step:?} failed: {error}");
    }
    assert_eq!(held.release().await.unwrap(), ReleaseOutcome::Released);
    let guard = common::hold(&holder, "order:1").await;
    let lease = common::lease_key(&mut admin, "order:1").await;
    let (outcome, next, woken_after) = hand_over(guard, &waiter, &mut admin, &lease).await;
    assert_eq!(outcome, ReleaseOutcome::Released);
    assert!(woken_after < WAKE_UP_WITHIN, "woken after {woken_after:?}");
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);
    // v1's keys: the group counter, and no queue.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("distlock:*")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(keys.iter().any(|key| key.ends_with("}:fence")), "{keys:?}");
    assert!(!keys.iter().any(|key| key.contains("}:fence:")), "{keys:?}");
    let denied = acl_log(&mut admin).await;
    let infos = denied.iter().filter(|(_, object)| object == "info").count();
    assert!(infos <= 4, "INFO asked per step: {denied:?}");
    assert!(
        denied.iter().all(|(_, object)| object == "info"),
        "{denied:?}"
    );
}

/// Channel rights only speed waiting up: without them a release cannot wake
/// anyone (the script's PUBLISH fails inside `pcall`, SUBSCRIBE is refused),
/// and waiters get the lock from their fallback timer, at most 500 ms late.
/// The ACL log is where an operator sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_channel_rights_releases_work_and_waiters_fall_back_to_their_timer() {
    let no_channels = DISTLOCK_ACL.replace(" &distlock:*", "");
    let server = acl_server(&[("nochannels", &no_channels)]);
    let mut admin = acl_admin(&server).await;
    let holder = user_manager(&server, "nochannels").await;
    let waiter = user_manager(&server, "nochannels").await;

    let guard = common::hold(&holder, "order:1").await;
    let lease = common::lease_key(&mut admin, "order:1").await;
    let waiting = spawn_waiter(&waiter, "order:1");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(numsub(&mut admin, &lease).await, 0);
    let released_at = Instant::now();
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    let (next, acquired_at) = waiting.await.unwrap();
    let waited = acquired_at.duration_since(released_at);
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    assert_eq!(next.release().await.unwrap(), ReleaseOutcome::Released);

    let denied = acl_log(&mut admin).await;
    assert!(
        denied.iter().any(|(reason, _)| reason == "channel"),
        "no channel denial logged: {denied:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_connect_error_about_authentication() {
    let server = acl_server(&[("distlock", DISTLOCK_ACL)]);
    let port = server.port();
    for url in [
        format!("redis://distlock:wrong-password@127.0.0.1:{port}"),
        format!("redis://nobody:{USER_PASSWORD}@127.0.0.1:{port}"),
        format!("redis://:wrong-password@127.0.0.1:{port}"),
    ] {
        let started = Instant::now();
        let built = LockManager::builder(&url)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .await;
        let message = common::urls::connect_error(&url, built);
        assert!(
            message.to_lowercase().contains("authentication"),
            "{url}: {message}"
        );
        assert!(!message.contains("wrong-password") && !message.contains(USER_PASSWORD));
        assert!(started.elapsed() < Duration::from_secs(3), "{url}");
    }
}

/// `build` checks the credentials with a PING, so a missing password is a
/// `Connect` error at start-up, not a `Backend` "NOAUTH" at the first lock.
#[tokio::test]
async fn no_password_for_a_server_that_requires_one_is_a_connect_error() {
    let server = acl_server(&[]);
    let result = LockManager::builder(server.url()).build().await;
    common::urls::connect_error("a URL without the password", result);
}

// ---------------------------------------------------------------- owner tokens

/// Marks the environment of the process [`another_process_cannot_release_or_extend_a_held_lock`]
/// starts, and carries the server URL.
const ATTACK_URL: &str = "DISTLOCK_SECURITY_ATTACK_URL";
/// The lock key, its lease key in Redis, and near misses of the holder's
/// token, separated by newlines.
const ATTACK_TARGET: &str = "DISTLOCK_SECURITY_ATTACK_TARGET";
/// Printed by the other process once every attempt was refused.
const ATTACK_REFUSED: &str = "every attempt on the held lock was refused";

#[tokio::test]
async fn another_process_cannot_release_or_extend_a_held_lock() {
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let mut admin = common::raw(&server).await;
    let guard = manager
        .lock("order:7")
        .ttl(Duration::from_secs(30))
        .acquire()
        .await
        .unwrap();
    let lease = common::lease_key(&mut admin, "order:7").await;
    let fence = lease.replace(":lock:order:7", ":fence");
    let fence_before = get(&mut admin, &fence).await;
    let pttl_before = common::pttl(&mut admin, &lease).await;
    let started = Instant::now();

    let token = guard.owner_token();
    let near_misses = [
        token.to_uppercase(),
        token[..token.len() - 1].to_owned(),
        format!("{token} "),
        format!("{token}0"),
        flip_last_hex_digit(token),
    ];
    let mut target = vec!["order:7".to_owned(), lease.clone()];
    target.extend(near_misses);
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "attacker_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ATTACK_URL, server.url())
        .env(ATTACK_TARGET, target.join("\n"))
        .output()
        .await
        .expect("run the other process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(ATTACK_REFUSED),
        "the other process: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    // Still ours, with our lease: neither shortened nor lengthened. (The
    // other process waited for it too: protocol v2 marks a lease that
    // someone waits for with a '+' after the owner token.)
    let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap();
    let pttl_after = common::pttl(&mut admin, &lease).await;
    let holder = get(&mut admin, &lease).await;
    assert_eq!(
        holder.as_deref().map(|value| value.trim_end_matches('+')),
        Some(token)
    );
    assert!(
        pttl_after <= pttl_before && pttl_after >= pttl_before - elapsed - 50,
        "lease went from {pttl_before} ms to {pttl_after} ms in {elapsed} ms"
    );
    // Failed attempts issue no fencing token.
    assert_eq!(get(&mut admin, &fence).await, fence_before);
    guard
        .extend(Duration::from_secs(30))
        .await
        .expect("still ours");
    assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
}

/// Not a test on its own: the other process of
/// [`another_process_cannot_release_or_extend_a_held_lock`], which runs this
/// test binary again for this test alone. Returns at once otherwise.
#[tokio::test]
#[ignore = "the other process of another_process_cannot_release_or_extend_a_held_lock, which runs it"]
async fn attacker_process() {
    let (Ok(url), Ok(target)) = (std::env::var(ATTACK_URL), std::env::var(ATTACK_TARGET)) else {
        return;
    };
    let mut target = target.lines().map(str::to_owned);
    let (key, lease) = (target.next().unwrap(), target.next().unwrap());
    let mut guesses: Vec<String> = target.collect();
    guesses.extend(
        ["", "0", "1", "*", "nil", "null", "distlock"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    guesses.push("00000000-0000-0000-0000-000000000000".to_owned());
    // Random uuid v4s, and the genuine tokens of locks this process holds.
    guesses.extend((0..200).map(|_| random_uuid_v4()));
    let manager = LockManager::connect(url.as_str()).await.unwrap();
    for i in 0..20 {
        let own = manager.lock(format!("mine:{i}")).acquire().await.unwrap();
        guesses.push(own.owner_token().to_owned());
        assert_eq!(own.release().await.unwrap(), ReleaseOutcome::Released);
    }

    // The scripts exactly as distlock sends them (EVALSHA, loaded if needed).
    let release = redis::Script::new(include_str!(
        "../lock-runtime/src/backend/scripts/release.lua"
    ));
    let extend = redis::Script::new(include_str!(
        "../lock-runtime/src/backend/scripts/extend.lua"
    ));
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for guess in &guesses {
        let released: i64 = release
            .key(&lease)
            .arg(guess)
            .arg("PUBLISH")
            .invoke_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(released, -1, "released with {guess:?}");
        for lease_ms in [1, 3_600_000] {
            let extended: i64 = extend
                .key(&lease)
                .arg(guess)
                .arg(lease_ms)
                .invoke_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(extended, -1, "extended to {lease_ms} ms with {guess:?}");
        }
    }

    // And through distlock: the lock is simply held.
    assert!(manager.lock(&key).try_acquire().await.unwrap().is_none());
    let error = manager
        .lock(&key)
        .wait(Duration::from_millis(200))
        .acquire()
        .await
        .expect_err("acquired a held lock");
    assert!(matches!(error, LockError::Timeout { .. }), "{error}");
    println!("{ATTACK_REFUSED} ({} guessed tokens)", guesses.len());
}

#[tokio::test]
async fn owner_tokens_are_distinct_random_uuid_v4s_stored_as_the_lease() {
    const N: usize = 500;
    let server = RedisServer::start();
    let manager = common::manager(&server).await;
    let mut admin = common::raw(&server).await;
    let mut tokens = Vec::with_capacity(N);
    for i in 0..N {
        let guard = manager.lock("token").acquire().await.unwrap();
        if i % 50 == 0 {
            let lease = common::lease_key(&mut admin, "token").await;
            assert_eq!(
                get(&mut admin, &lease).await.as_deref(),
                Some(guard.owner_token())
            );
        }
        tokens.push(guard.owner_token().to_owned());
        assert_eq!(guard.release().await.unwrap(), ReleaseOutcome::Released);
    }

    assert_eq!(
        tokens.iter().collect::<HashSet<_>>().len(),
        N,
        "a token repeated"
    );
    let values: Vec<u128> = tokens.iter().map(|t| parse_uuid_v4(t)).collect();
    // A v4 uuid fixes 6 bits (version 4, variant 10) and draws the other 122
    // at random: each of those must take both values, about half the time.
    let mut constant = 0;
    for bit in 0..128 {
        let ones = values.iter().filter(|v| (*v >> bit) & 1 == 1).count();
        if ones == 0 || ones == N {
            constant += 1;
        } else {
            assert!(
                (N * 35 / 100..=N * 65 / 100).contains(&ones),
                "bit {bit} is set in {ones} of {N} tokens"
            );
        }
    }
    assert_eq!(constant, 6, "a v4 uuid has exactly 6 fixed bits");
}

// ---------------------------------------------------------------- helpers

/// The steps a user of distlock takes, in the order [`run_steps`] takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Acquire a free lock.
    Acquire,
    /// Extend it.
    Extend,
    /// Release it.
    Release,
    /// A short wait for the lock `held`, which another user holds: a place
    /// in its queue.
    WaitHeld,
}

/// Runs every step with `manager` on the lock `key`; returns the first that
/// failed, its error, and how long it took.
async fn run_steps(manager: &LockManager, key: &str) -> Option<(Step, LockError, Duration)> {
    let acquire = manager.lock(key).ttl(Duration::from_secs(2)).acquire();
    let guard = match common::timed(acquire).await {
        (Ok(guard), _) => guard,
        (Err(error), took) => return Some((Step::Acquire, error, took)),
    };
    if let (Err(error), took) = common::timed(guard.extend(Duration::from_secs(2))).await {
        return Some((Step::Extend, error, took));
    }
    match common::timed(guard.release()).await {
        (Ok(outcome), _) => assert_eq!(outcome, ReleaseOutcome::Released),
        (Err(error), took) => return Some((Step::Release, error, took)),
    }
    let wait = manager
        .lock("held")
        .wait(Duration::from_millis(50))
        .acquire();
    match common::timed(wait).await {
        (Ok(_), _) => panic!("acquired a held lock"),
        (Err(LockError::Timeout { .. }), _) => {}
        (Err(error), took) => return Some((Step::WaitHeld, error, took)),
    }
    None
}

/// Whether `error` is Redis refusing a command, a key or a channel.
fn is_permission_error(error: &LockError) -> bool {
    let LockError::Backend { source, .. } = error else {
        return false;
    };
    let message = source.to_string();
    // Denied directly: NOPERM; denied inside a script: an error that says so
    // (Redis: "… can't run this command …"; Valkey: "ACL failure in script:
    // … has no permissions to run …").
    source.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
        || message.contains("can't run this command")
        || message.contains("ACL failure in script")
}

/// [`DISTLOCK_ACL`] without `permission`.
fn without(permission: &str) -> String {
    let rule: Vec<&str> = DISTLOCK_ACL
        .split_whitespace()
        .filter(|p| *p != permission)
        .collect();
    assert_eq!(rule.len() + 1, DISTLOCK_ACL.split_whitespace().count());
    rule.join(" ")
}

/// A server whose default user needs [`ADMIN_PASSWORD`], with `users` (name,
/// rule) enabled with [`USER_PASSWORD`] by `user` directives at start.
fn acl_server(users: &[(&str, &str)]) -> RedisServer {
    let mut builder = RedisServer::builder()
        .arg("--requirepass")
        .arg(ADMIN_PASSWORD);
    for (name, rule) in users {
        // One argument per token: redis-server quotes each argument.
        builder = builder
            .arg("--user")
            .arg(*name)
            .arg("on")
            .arg(format!(">{USER_PASSWORD}"));
        for token in rule.split_whitespace() {
            builder = builder.arg(token);
        }
    }
    builder.start().expect("start redis-server with ACL users")
}

async fn user_manager(server: &RedisServer, user: &str) -> LockManager {
    let url = format!("redis://{user}:{USER_PASSWORD}@127.0.0.1:{}", server.port());
    LockManager::builder(url)
        .command_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

async fn acl_admin(server: &RedisServer) -> MultiplexedConnection {
    let url = format!("redis://:{ADMIN_PASSWORD}@127.0.0.1:{}", server.port());
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn tls_manager(server: &TlsRedisServer) -> LockManager {
    LockManager::builder(server.url())
        .tls_root_certificate(server.ca_pem())
        .command_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("connect over TLS")
}

async fn tls_admin(server: &TlsRedisServer) -> MultiplexedConnection {
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(server.ca_pem().as_bytes().to_vec()),
    };
    redis::Client::build_with_tls(server.url(), certificates)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn spawn_waiter(
    manager: &LockManager,
    key: &'static str,
) -> tokio::task::JoinHandle<(LockGuard, Instant)> {
    let manager = manager.clone();
    tokio::spawn(async move {
        let guard = manager
            .lock(key)
            .ttl(Duration::from_secs(30))
            .wait(Duration::from_secs(5))
            .acquire()
            .await
            .expect("the waiter acquires");
        (guard, Instant::now())
    })
}

/// Releases `guard` while a task of `waiter` waits for its lock `order:1`,
/// once that waiter is subscribed to the lease's channel; returns the
/// release's outcome, the waiter's guard, and how long after the release the
/// waiter had the lock.
async fn hand_over(
    guard: LockGuard,
    waiter: &LockManager,
    admin: &mut MultiplexedConnection,
    lease: &str,
) -> (ReleaseOutcome, LockGuard, Duration) {
    let waiting = spawn_waiter(waiter, "order:1");
    assert!(
        numsub_becomes(admin, lease, 1).await,
        "the waiter never subscribed"
    );
    // Let its attempt find the lock held, so that it sleeps on its timer.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released_at = Instant::now();
    let outcome = guard.release().await.unwrap();
    let (next, acquired_at) = waiting.await.unwrap();
    (outcome, next, acquired_at.duration_since(released_at))
}

async fn get(conn: &mut MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(conn).await.unwrap()
}

async fn numsub(conn: &mut MultiplexedConnection, channel: &str) -> i64 {
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(conn)
        .await
        .unwrap();
    count
}

/// Polls until `channel` has `count` subscribers (up to 2 s).
async fn numsub_becomes(conn: &mut MultiplexedConnection, channel: &str, count: i64) -> bool {
    for _ in 0..200 {
        if numsub(conn, channel).await == count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn flush_scripts(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(conn)
        .await
        .unwrap();
}

async fn reset_acl_log(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query_async(conn)
        .await
        .unwrap();
}

/// What the server denied: (reason, object) of each ACL log entry, but for
/// the `CLIENT SETINFO` redis-rs sends as it connects (and ignores a refusal
/// of), which servers that know the command (Redis 7.2+, Valkey) log when
/// the rule leaves it out; Redis 7.0 refuses it before checking the ACL.
async fn acl_log(conn: &mut MultiplexedConnection) -> Vec<(String, String)> {
    let entries: Vec<HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(conn)
        .await
        .unwrap();
    let text = |entry: &HashMap<String, redis::Value>, field: &str| {
        entry
            .get(field)
            .map(|value| redis::from_redis_value_ref::<String>(value).unwrap())
            .unwrap_or_default()
    };
    entries
        .iter()
        .map(|entry| (text(entry, "reason"), text(entry, "object")))
        .filter(|(reason, object)| !(reason == "command" && object == "client|setinfo"))
        .collect()
}

/// A uuid v4 from the OS's random source, formatted as distlock formats its tokens.
fn random_uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    let mut value = u128::from_be_bytes(bytes);
    value = (value & !(0xf << 76)) | (0x4 << 76);
    value = (value & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Parses a hyphenated, lower-case uuid v4 (RFC 9562 variant), panicking on
/// anything else.
fn parse_uuid_v4(token: &str) -> u128 {
    let groups: Vec<&str> = token.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(
        lengths,
        [8, 4, 4, 4, 12],
        "not a hyphenated uuid: {token:?}"
    );
    let hex = groups.concat();
    assert!(
        hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "not lower-case hex: {token:?}"
    );
    assert_eq!(&hex[12..13], "4", "not version 4: {token:?}");
    assert!(
        matches!(&hex[16..17], "8" | "9" | "a" | "b"),
        "not the RFC variant: {token:?}"
    );
    u128::from_str_radix(&hex, 16).unwrap()
}

fn flip_last_hex_digit(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}
