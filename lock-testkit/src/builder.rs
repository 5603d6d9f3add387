//! Configuring a server before starting it.

use std::env;
use std::io;
use std::path::PathBuf;

use crate::launch::Launcher;
use crate::server::RedisServer;

/// Environment variable naming the `redis-server` binary to run.
const BIN_ENV: &str = "REDIS_SERVER_BIN";
/// Binary looked up on `PATH` when neither the builder nor the environment names one.
const DEFAULT_BIN: &str = "redis-server";

/// Configures and starts a [`RedisServer`]; created by [`RedisServer::builder`].
///
/// ```no_run
/// let server = lock_testkit::RedisServer::builder()
///     .arg("--requirepass")
///     .arg("secret")
///     .start()
///     .expect("redis-server should start");
/// # drop(server);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct RedisServerBuilder {
    binary: Option<PathBuf>,
    args: Vec<String>,
    /// Set for a sentinel: its configuration file's first contents.
    sentinel_config: Option<String>,
}

impl RedisServerBuilder {
    /// A builder with default settings; same as [`RedisServer::builder`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `path` instead of the default binary, which is the value of the
    /// `REDIS_SERVER_BIN` environment variable if set, else `redis-server`
    /// looked up on `PATH`.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Appends one command-line argument after the managed ones, e.g.
    /// `.arg("--requirepass").arg("secret")`.
    ///
    /// The port, bind address, directory, log file and persistence settings
    /// are managed by this crate; overriding them is not supported.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts a sentinel (`redis-server <config file> --sentinel`) instead of
    /// a server; its configuration file, in its own directory, starts as
    /// `config`. See [`RedisSentinel`](crate::RedisSentinel).
    pub(crate) fn sentinel(mut self, config: String) -> Self {
        self.sentinel_config = Some(config);
        self
    }

    /// Starts the server on a free loopback port and waits until it answers
    /// `PING`.
    ///
    /// # Errors
    ///
    /// Fails with [`io::ErrorKind::NotFound`] if the binary does not exist,
    /// with [`io::ErrorKind::TimedOut`] if it does not answer within 10 s, and
    /// with an error quoting the end of its log if it keeps exiting during
    /// startup.
    pub fn start(self) -> io::Result<RedisServer> {
        let binary = self.binary.unwrap_or_else(default_binary);
        let launcher = Launcher::new(binary, self.args);
        match self.sentinel_config {
            Some(config) => RedisServer::launch(launcher.sentinel(config)),
            None => RedisServer::launch(launcher),
        }
    }
}

fn default_binary() -> PathBuf {
    env::var_os(BIN_ENV)
        .filter(|bin| !bin.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_BIN), PathBuf::from)
}

/// The ways to start a server, here beside the builder they go through.
impl RedisServer {
    /// Starts a fresh server on a free loopback port.
    ///
    /// # Panics
    ///
    /// Panics with the reason (e.g. how to install `redis-server`) if the
    /// server cannot be started; see [`try_start`](Self::try_start).
    #[track_caller]
    #[must_use = "dropping a RedisServer kills it"]
    pub fn start() -> RedisServer {
        Self::try_start().unwrap_or_else(|e| panic!("failed to start redis-server: {e}"))
    }

    /// Starts a fresh server on a free loopback port with default settings.
    ///
    /// # Errors
    ///
    /// See [`RedisServerBuilder::start`].
    pub fn try_start() -> io::Result<RedisServer> {
        Self::builder().start()
    }

    /// A builder to choose the binary or pass extra arguments.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::new()
    }
}
