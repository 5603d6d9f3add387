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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use tokio::sync::{OnceCell, oneshot, watch};

/// The wake-up channels of one manager.
pub(crate) struct Wakeups {
    shared: Arc<Shared>,
    /// Dropped with the manager, which stops the dispatcher task.
    _shutdown: oneshot::Sender<()>,
}

struct Shared {
    client: redis::Client,
    channels: Mutex<HashMap<String, Channel>>,
    /// The subscriber's command half; `None` while (re)connecting.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    /// Set once the dispatcher runs; started lazily on the first wait.
    started: std::sync::Once,
    shutdown: Mutex<Option<oneshot::Receiver<()>>>,
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
        let (shutdown, stopped) = oneshot::channel();
        Wakeups {
            shared: Arc::new(Shared {
                client,
                channels: Mutex::new(HashMap::new()),
                sink: tokio::sync::Mutex::new(None),
                started: std::sync::Once::new(),
                shutdown: Mutex::new(Some(stopped)),
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
            let entry = channels.entry(channel.to_owned()).or_insert_with(|| Channel {
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
                    Some(sink) => sink.subscribe(channel).await.map_err(|_| ()),
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
                let idle = channels.get(&channel).is_some_and(|entry| entry.waiters == 0);
                if idle {
                    channels.remove(&channel);
                }
                idle
            };
            if let (true, Some(sink)) = (idle, sink.as_mut()) {
                let _ = sink.unsubscribe(&channel).await;
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
        self.started.call_once(|| {
            let shutdown = self
                .shutdown
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let (Some(shutdown), Ok(runtime)) = (shutdown, tokio::runtime::Handle::try_current()) {
                runtime.spawn(dispatch(Arc::downgrade(self), shutdown));
            }
        });
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
async fn dispatch(shared: Weak<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let mut retry = Duration::from_millis(50);
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let connected = tokio::select! {
            _ = &mut shutdown => return,
            connected = tokio::time::timeout(Duration::from_secs(5), strong.client.get_async_pubsub()) => connected,
        };
        let mut stream = match connected {
            Ok(Ok(pubsub)) => {
                let (mut sink, stream) = pubsub.split();
                let mut slot = strong.sink.lock().await;
                let known: Vec<String> = strong.channels().keys().cloned().collect();
                if !known.is_empty() && sink.subscribe(&known).await.is_err() {
                    drop(slot);
                    drop(strong);
                    continue;
                }
                *slot = Some(sink);
                drop(slot);
                retry = Duration::from_millis(50);
                // Anything published while we were away is lost: wake everyone.
                strong.wake(None);
                stream
            }
            _ => {
                drop(strong);
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        drop(strong);
        loop {
            let message = tokio::select! {
                _ = &mut shutdown => return,
                message = stream.next() => message,
            };
            let Some(strong) = shared.upgrade() else { return };
            match message {
                Some(message) => strong.wake(Some(message.get_channel_name())),
                None => {
                    // Connection lost: stop routing, reconnect.
                    *strong.sink.lock().await = None;
                    tracing::debug!("distlock wake-up connection lost; reconnecting");
                    break;
                }
            }
        }
    }
}
