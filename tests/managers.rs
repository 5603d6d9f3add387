//! Building managers and finding them by name.

mod common;

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
        common::urls::config_error(url, LockManager::connect(url).await);
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_within_the_connect_timeout_without_leaking_the_password() {
    let port = common::urls::closed_port();
    let url = format!("redis://user:hunter2@127.0.0.1:{port}/0");
    common::urls::assert_unreachable_masks_password(LockManager::builder(url)).await;
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

/// A URL read from configuration is a `String`; each entry point takes it
/// moved, borrowed, or as a `&str`, and the manager it builds locks.
#[tokio::test]
async fn every_entry_point_takes_a_string_a_string_ref_and_a_str() {
    let servers = lock_testkit::start_many(3);
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let url: String = urls[0].clone();
    let managers = [
        LockManager::builder(url.clone()).build().await,
        LockManager::builder(&url).build().await,
        LockManager::builder(url.as_str()).build().await,
        LockManager::connect(url.clone()).await,
        LockManager::connect(&url).await,
        LockManager::connect(url.as_str()).await,
        LockManager::redlock(urls.clone()).build().await,
        LockManager::redlock(&urls).build().await,
        LockManager::redlock(urls.iter().map(String::as_str))
            .build()
            .await,
        distlock::init_named("url-types-owned", url.clone()).await,
        distlock::init_named("url-types-borrowed", &url).await,
        distlock::init_named("url-types-str", url.as_str()).await,
        // The one default manager of this test binary.
        distlock::init(url.clone()).await,
    ];
    for (index, manager) in managers.into_iter().enumerate() {
        let manager = manager.unwrap_or_else(|error| panic!("entry point {index}: {error}"));
        let guard = manager.lock("url-types").acquire().await.unwrap();
        assert_eq!(
            guard.release().await.unwrap(),
            distlock::ReleaseOutcome::Released
        );
    }
    for again in [
        distlock::init(&url).await,
        distlock::init(url.as_str()).await,
    ] {
        assert!(matches!(again, Err(LockError::AlreadyInitialized { .. })));
    }
    // The cluster's seeds take the same types; building one needs a cluster,
    // so only the types are checked here (tests/cluster.rs builds them).
    let _ = [
        LockManager::cluster(urls.clone()),
        LockManager::cluster(&urls),
        LockManager::cluster(urls.iter().map(String::as_str)),
    ];
}
