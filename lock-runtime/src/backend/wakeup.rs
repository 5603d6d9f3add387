//! Wake-ups on release: one pub/sub connection per manager, shared by every
//! waiting task of the process.
//!
//! The release script publishes on the lock's channel. A waiter subscribes
//! (and has the subscription confirmed by Redis) before the acquire attempt
//! that fails, and marks the channel's counter as seen before each attempt,
//! so a release that lands between the attempt and the wait still wakes it.
//! Channels are subscribed while someone waits on them and unsubscribed after.
//!
//! The connection reconnects by itself; after a reconnect every waiter is
//! woken once, since messages may have been lost. Waiters never depend on a
//! message alone: their fallback timer is bounded by the holder's lease.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{OnceCell, watch};

/// Longest a (un)subscribe may take before the waiter relies on its timer.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The wake-up channels of one manager.
pub(crate) struct Wakeups {
    shared: Arc<Shared>,
    /// Dropped with the manager, which stops the dispatcher task.
    _shutdown: watch::Sender<()>,
}

struct Shared {
    client: redis::Client,
    channels: Mutex<HashMap<String, Channel>>,
    /// The subscriber's command half; `None` while (re)connecting.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    /// Whether a dispatcher task runs. It starts at the first wait, and again
    /// if the runtime it ran on has shut down.
    running: AtomicBool,
    shutdown: watch::Receiver<()>,
}

struct Channel {
    waiters: usize,
    wakes: watch::Sender<u64>,
    /// Completed once Redis has confirmed the subscription.
    subscribed: Arc<OnceCell<()>>,
}

/// A waiter's interest in one channel; unsubscribes when the last one drops.
pub(crate) struct Subscription {
    shared: Arc<Shared>,
    channel: String,
    wakes: watch::Receiver<u64>,
}

impl Wakeups {
    pub(crate) fn new(client: redis::Client) -> Self {
        let (shutdown, stopped) = watch::channel(());
        Wakeups {
            shared: Arc::new(Shared {
                client,
                channels: Mutex::new(HashMap::new()),
                sink: tokio::sync::Mutex::new(None),
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
        let (wakes, subscribed) = {
            let mut channels = self.shared.channels();
            let entry = channels
                .entry(channel.to_owned())
                .or_insert_with(|| Channel {
                    waiters: 0,
                    wakes: watch::Sender::new(0),
                    subscribed: Arc::new(OnceCell::new()),
                });
            entry.waiters += 1;
            (entry.wakes.subscribe(), entry.subscribed.clone())
        };
        let subscription = Subscription {
            shared: self.shared.clone(),
            channel: channel.to_owned(),
            wakes,
        };
        let _ = subscribed
            .get_or_try_init(|| async {
                let mut sink = self.shared.sink.lock().await;
                match sink.as_mut() {
                    // Bounded, so a half-open connection cannot hold the sink.
                    Some(sink) => {
                        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(channel)).await
                        {
                            Ok(Ok(())) => Ok(()),
                            _ => Err(()),
                        }
                    }
                    // Not connected: the dispatcher subscribes every known
                    // channel when it connects.
                    None => Err(()),
                }
            })
            .await;
        subscription
    }
}

impl Subscription {
    /// Marks every wake-up so far as seen; call before each acquire attempt.
    pub(crate) fn mark_seen(&mut self) {
        self.wakes.borrow_and_update();
    }

    /// Completes at the first wake-up not yet marked seen.
    pub(crate) async fn woken(&mut self) {
        if self.wakes.changed().await.is_err() {
            // The channel entry is gone (cannot happen while we hold it);
            // never resolve, and let the caller's timer decide.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let last = {
            let mut channels = self.shared.channels();
            match channels.get_mut(&self.channel) {
                Some(entry) => {
                    entry.waiters -= 1;
                    entry.waiters == 0
                }
                None => false,
            }
        };
        if !last {
            return;
        }
        let (shared, channel) = (self.shared.clone(), std::mem::take(&mut self.channel));
        let unsubscribe = async move {
            let mut sink = shared.sink.lock().await;
            // Someone may have started waiting again meanwhile.
            let idle = {
                let mut channels = shared.channels();
                let idle = channels
                    .get(&channel)
                    .is_some_and(|entry| entry.waiters == 0);
                if idle {
                    channels.remove(&channel);
                }
                idle
            };
            if let (true, Some(sink)) = (idle, sink.as_mut()) {
                let _ = tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.unsubscribe(&channel)).await;
            }
        };
        // Without a runtime the idle entry stays subscribed, and is reused by
        // the next waiter of this key.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(unsubscribe);
        }
    }
}

impl Shared {
    fn channels(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start(self: &Arc<Self>) {
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(dispatch(Arc::downgrade(self), self.shutdown.clone()));
            }
            Err(_) => self.running.store(false, Ordering::SeqCst),
        }
    }

    /// Wakes every waiter of `channel`, or of every channel when `None`.
    fn wake(&self, channel: Option<&str>) {
        let channels = self.channels();
        match channel {
            Some(channel) => {
                if let Some(entry) = channels.get(channel) {
                    entry.wakes.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            None => channels
                .values()
                .for_each(|entry| entry.wakes.send_modify(|n| *n = n.wrapping_add(1))),
        }
    }
}

/// The subscriber's read loop: connects, (re)subscribes, routes messages to
/// waiters, and reconnects after a failure until the manager is dropped.
async fn dispatch(shared: Weak<Shared>, mut shutdown: watch::Receiver<()>) {
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
                        Some(message) => strong.wake(Some(message.get_channel_name())),
                        None => {
                            *strong.sink.lock().await = None;
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
async fn connect(shared: &Weak<Shared>) -> Option<PubSubStream> {
    let client = shared.upgrade()?.client.clone();
    let pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .ok()?
        .ok()?;
    let (mut sink, stream) = pubsub.split();
    let strong = shared.upgrade()?;
    let mut slot = strong.sink.lock().await;
    let known: Vec<String> = strong.channels().keys().cloned().collect();
    if !known.is_empty() {
        let subscribed = tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(&known)).await;
        if !matches!(subscribed, Ok(Ok(()))) {
            tracing::debug!("distlock wake-up connection could not subscribe; retrying");
            return None;
        }
    }
    *slot = Some(sink);
    drop(slot);
    strong.wake(None);
    Some(stream)
}

struct Running(Weak<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.running.store(false, Ordering::SeqCst);
        }
    }
}
