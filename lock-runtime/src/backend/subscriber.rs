//! Wake-ups on one Redis server: one pub/sub connection per manager, shared
//! by every waiting task of the process, routing released locks' messages to
//! the manager's [`Waiters`].
//!
//! The connection opens at the first wait and reconnects by itself; after a
//! reconnect every waiter is woken once, since messages may have been lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::RedisResult;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::watch;

use super::address::Address;
use super::waiters::{Link, SUBSCRIBE_TIMEOUT, Waiters};
use crate::background;

/// A waiter's interest in one channel of the single server.
pub(crate) type Subscription = super::waiters::Subscription<Sink>;

/// The subscriber's command half; `None` while (re)connecting.
pub(crate) type Sink = Option<PubSubSink>;

/// The wake-up channels of one manager.
pub(crate) struct Subscriber {
    shared: Arc<Dispatch>,
    /// Dropped with the manager, which stops the dispatcher task.
    _shutdown: watch::Sender<()>,
}

struct Dispatch {
    address: Arc<Address>,
    waiters: Arc<Waiters<Sink>>,
    /// Whether a dispatcher task runs. It starts at the first wait, and again
    /// if the runtime it ran on has shut down.
    running: AtomicBool,
    shutdown: watch::Receiver<()>,
}

impl Subscriber {
    pub(crate) fn new(address: Arc<Address>) -> Self {
        let (shutdown, stopped) = watch::channel(());
        Subscriber {
            shared: Arc::new(Dispatch {
                address,
                waiters: Waiters::new(None),
                running: AtomicBool::new(false),
                shutdown: stopped,
            }),
            _shutdown: shutdown,
        }
    }

    /// Subscribes to `channel`, returning once Redis confirmed it (or once it
    /// failed: the caller's fallback timer covers that case).
    pub(crate) async fn subscribe(&self, channel: &str) -> Subscription {
        self.shared.start();
        self.shared.waiters.subscribe(channel).await
    }
}

impl Link for Sink {
    async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Some(sink) => sink.subscribe(channel).await,
            // The dispatcher subscribes every known channel when it connects.
            None => Err(not_connected()),
        }
    }

    async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Some(sink) => sink.unsubscribe(channel).await,
            None => Err(not_connected()),
        }
    }
}

fn not_connected() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "the wake-up connection is reconnecting",
    ))
}

impl Dispatch {
    fn start(self: &Arc<Self>) {
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        if background::spawn(dispatch(Arc::downgrade(self), self.shutdown.clone())).is_none() {
            self.running.store(false, Ordering::SeqCst);
        }
    }
}

/// The subscriber's read loop: connects, (re)subscribes, routes messages to
/// waiters, and reconnects after a failure until the manager is dropped.
async fn dispatch(shared: Weak<Dispatch>, mut shutdown: watch::Receiver<()>) {
    // Dropped with this future, also when its runtime shuts down, so that the
    // next waiter starts a new dispatcher.
    let _running = Running(shared.clone());
    let mut retry = Duration::from_millis(50);
    loop {
        let connected = tokio::select! {
            _ = shutdown.changed() => return,
            connected = connect(&shared) => connected,
        };
        match connected {
            Some(mut stream) => {
                retry = Duration::from_millis(50);
                loop {
                    let message = tokio::select! {
                        _ = shutdown.changed() => return,
                        message = stream.next() => message,
                    };
                    let Some(strong) = shared.upgrade() else {
                        return;
                    };
                    match message {
                        Some(message) => strong
                            .waiters
                            .deliver(message.get_channel_name(), message.get_payload_bytes()),
                        None => {
                            *strong.waiters.link().lock().await = None;
                            tracing::debug!("distlock wake-up connection lost; reconnecting");
                            break;
                        }
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Opens the subscriber connection and subscribes every channel someone
/// waits on; then wakes every waiter, since messages sent while we were
/// away are lost. `None` when any step failed.
async fn connect(shared: &Weak<Dispatch>) -> Option<PubSubStream> {
    let address = shared.upgrade()?.address.clone();
    let open = async { address.client().await?.get_async_pubsub().await };
    let pubsub = tokio::time::timeout(Duration::from_secs(5), open)
        .await
        .ok()?
        .ok()?;
    let (mut sink, stream) = pubsub.split();
    let strong = shared.upgrade()?;
    let mut slot = strong.waiters.link().lock().await;
    let known = strong.waiters.channel_names();
    if !known.is_empty() {
        let subscribed = tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(&known)).await;
        if !matches!(subscribed, Ok(Ok(()))) {
            tracing::debug!("distlock wake-up connection could not subscribe; retrying");
            return None;
        }
    }
    *slot = Some(sink);
    drop(slot);
    strong.waiters.wake_all();
    Some(stream)
}

/// Marks the dispatcher stopped when its task ends, also when its runtime
/// drops it, and takes its command half out of the slot: that sink's driver
/// task died with the runtime, so a waiter would only subscribe through it
/// in vain. The next waiter then finds no sink and leaves its channel to
/// the dispatcher it starts, which subscribes every channel with waiters.
struct Running(Weak<Dispatch>);

impl Drop for Running {
    fn drop(&mut self) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        // Before the flag, which lets a waiter start the next dispatcher. A
        // drop must not wait: a waiter that holds the slot now finds the
        // sink dead at once (its driver dropped the channel), and the next
        // dispatcher subscribes that waiter's channel too.
        if let Ok(mut slot) = shared.waiters.link().try_lock() {
            *slot = None;
        }
        shared.running.store(false, Ordering::SeqCst);
    }
}
