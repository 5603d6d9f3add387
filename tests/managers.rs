//! Building managers and finding them by name.

mod common;

use std::time::{Duration, Instant};

use distlock::{LockError, LockManager};
use lock_testkit::RedisServer;

#[tokio::test]
async fn an_unregistered_name_is_not_initialized() {
    let error = distlock::manager("never-registered").unwrap_err();
    assert!(matches!(&error, LockError::NotInitialized { name } if name == "never-registered"));
    assert!(error.to_string().contains("never-registered"));
}

#[tokio::test]
async fn a_name_is_registered_once_and_then_found() {
    let server = RedisServer::start();
    let manager = distlock::init_named("managers-test", &server.url())
        .await
        .unwrap();
    let found = distlock::manager("managers-test").unwrap();
    let guard = found.lock("k").acquire().await.unwrap();
    let other = common::manager(&server).await;
    assert!(other.lock("k").try_acquire().await.unwrap().is_none());
    assert_eq!(
        guard.release().await.unwrap(),
        distlock::ReleaseOutcome::Released
    );

    let again = distlock::init_named("managers-test", &server.url())
        .await
        .unwrap_err();
    assert!(matches!(again, LockError::AlreadyInitialized { name } if name == "managers-test"));
    let again = distlock::register("managers-test", manager).unwrap_err();
    assert!(matches!(again, LockError::AlreadyInitialized { .. }));
}

#[tokio::test]
async fn invalid_urls_are_configuration_errors() {
    for url in ["", "not a url", "http://127.0.0.1:1", "redis://[::1"] {
        let error = LockManager::connect(url).await.unwrap_err();
        assert!(
            matches!(error, LockError::InvalidConfig { .. }),
            "{url}: {error}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_within_the_connect_timeout_without_leaking_the_password() {
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let error = LockManager::builder(format!("redis://user:hunter2@127.0.0.1:{free_port}/0"))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, LockError::Connect { .. }), "{error}");
    let message = error.to_string();
    assert!(
        !message.contains("hunter2") && message.contains("***"),
        "{message}"
    );
}

#[tokio::test]
async fn url_selects_database_and_credentials() {
    let server = lock_testkit::RedisServer::builder()
        .arg("--requirepass")
        .arg("s3cret")
        .start()
        .unwrap();
    let port = server.port();
    let wrong = LockManager::connect(format!("redis://:wrong@127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(wrong, LockError::Connect { .. }), "{wrong}");

    let manager = LockManager::builder(format!("redis://:s3cret@127.0.0.1:{port}/3"))
        .key_prefix("shop:")
        .build()
        .await
        .unwrap();
    let guard = manager.lock("k").acquire().await.unwrap();
    let mut conn = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{port}/3"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("shop:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.iter().any(|k| k.ends_with(":lock:k")), "{keys:?}");
    assert_eq!(
        guard.release().await.unwrap(),
        distlock::ReleaseOutcome::Released
    );
}
