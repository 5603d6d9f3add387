//! Checks shared by the tests of the URLs a manager is built from
//! (`tests/bad_input.rs`, `tests/managers.rs`, `tests/cluster.rs`,
//! `tests/security.rs`): the error a build must end in, and the password
//! `hunter2` of a URL, which its message must mask.

use std::fmt::Debug;
use std::time::Duration;

use distlock::{LockError, LockManagerBuilder};

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The message of the `InvalidConfig` error that building `what` (its URL,
/// or what else names the case) must have failed with.
pub fn config_error<T: Debug>(what: &str, result: Result<T, LockError>) -> String {
    let error = result.expect_err(what);
    let message = error.to_string();
    assert!(
        matches!(error, LockError::InvalidConfig { .. }),
        "{what:?}: {message}"
    );
    message
}

/// The message of the `Connect` error that building `what` (its URL, or
/// what else names the case) must have failed with.
pub fn connect_error<T: Debug>(what: &str, result: Result<T, LockError>) -> String {
    let error = result.expect_err(what);
    let message = error.to_string();
    assert!(
        matches!(error, LockError::Connect { .. }),
        "{what:?}: {message}"
    );
    message
}

/// Builds `builder`, whose URL carries the password `hunter2` to a
/// [`closed_port`], with a 500 ms connect timeout: a `Connect` error within
/// 2 s, whose message shows `***` in place of the password.
pub async fn assert_unreachable_masks_password(builder: LockManagerBuilder) {
    let (result, took) =
        super::timed(builder.connect_timeout(Duration::from_millis(500)).build()).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    let message = connect_error("a URL to a closed port", result);
    assert!(
        !message.contains("hunter2") && message.contains("***"),
        "{message}"
    );
}

/// Builds each of `attempts`, managers that trust a CA other than the
/// server's (named by the first of each pair), with a 3 s connect timeout:
/// each fails with a `Connect` error about the certificate within `within`.
pub async fn assert_untrusted_refused<'a>(
    attempts: impl IntoIterator<Item = (&'a str, LockManagerBuilder)>,
    within: Duration,
) {
    for (trusting, builder) in attempts {
        let connect_timeout = Duration::from_secs(3);
        let (built, took) = super::timed(builder.connect_timeout(connect_timeout).build()).await;
        let message = connect_error(trusting, built);
        assert!(
            message.contains("certificate"),
            "trusting {trusting}: {message}"
        );
        assert!(took < within, "trusting {trusting}: {took:?}: {message}");
    }
}
