//! Waits on Redis bounded by a timeout, and the errors they end with.

use std::time::Duration;

/// What a bounded wait on Redis waits for, which its timeout error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Awaited {
    /// A connection: "no connection within …".
    Connection,
    /// The answer to a step: "timed out: Redis did not answer within …".
    Answer,
}

/// The outcome of `tokio::time::timeout(timeout, …)` around a wait on
/// Redis, an elapsed timeout being an I/O error of kind `TimedOut` that
/// names what was `awaited`: the one home of both timeout errors, so that
/// connects and steps report a silent server alike.
///
/// A function on the outcome rather than a future wrapping the wait: each
/// nested future deepens the type of an application's future that awaits
/// `distlock::init`, and clippy's layout queries on those are close to
/// rustc's default recursion limit.
pub(crate) fn bounded<T>(
    outcome: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    timeout: Duration,
    awaited: Awaited,
) -> redis::RedisResult<T> {
    outcome.unwrap_or_else(|_| {
        let message = match awaited {
            Awaited::Connection => format!("no connection within {timeout:?}"),
            Awaited::Answer => format!("timed out: Redis did not answer within {timeout:?}"),
        };
        Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            message,
        )))
    })
}
