//! Who waits for which lock: the wake-up channels of one manager, each with
//! its waiters, shared by the Redis backends.
//!
//! The release script publishes on the lock's channel. A waiter subscribes
//! (and has the subscription confirmed by Redis) before the acquire attempt
//! that fails, and marks the channel's counter as seen before each attempt,
//! so a release that lands between the attempt and the wait still wakes it.
//! A channel is subscribed while someone waits on it and unsubscribed when
//! the last waiter leaves. How a channel is (un)subscribed in Redis is the
//! backend's [`Link`]; where the messages come from is the backend's too.
//!
//! Under protocol v2 a release hands the lock to the first waiter of its
//! queue in Redis and publishes `"<owner> <fencing token> <round>"`: the waiter whose
//! owner token that is ([`Subscription::expect_grant`]) is woken with the
//! grant ([`Subscription::granted`]), and nobody else. A v1 release
//! publishes an empty message, which wakes every waiter of the channel.
//!
//! Waiters never depend on a message alone: their fallback timer is bounded
//! by the holder's lease.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::RedisResult;
use tokio::sync::{Notify, OnceCell, watch};

use crate::background;
use crate::unpoisoned;

/// Longest a (un)subscribe may take before the waiter relies on its timer.
pub(crate) const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The waiters of one manager by wake-up channel, and the link on which
/// their channels are subscribed.
pub(crate) struct Waiters<L> {
    channels: Mutex<HashMap<String, Channel>>,
    /// Held while (un)subscribing, so that the unsubscribe of a channel
    /// nobody waits on any more cannot overtake its next waiter's subscribe.
    link: tokio::sync::Mutex<L>,
}

/// How a backend subscribes a wake-up channel in Redis.
pub(crate) trait Link: Send + 'static {
    /// Subscribes `channel`, returning once Redis confirmed it.
    fn subscribe(&mut self, channel: &str) -> impl Future<Output = RedisResult<()>> + Send;

    /// Unsubscribes `channel`.
    fn unsubscribe(&mut self, channel: &str) -> impl Future<Output = RedisResult<()>> + Send;
}

struct Channel {
    waiters: usize,
    wakes: watch::Sender<u64>,
    /// Completed once Redis has confirmed the subscription.
    subscribed: Arc<OnceCell<()>>,
    /// The subscription broke (its connection did) or Redis ended it:
    /// messages may be lost until Redis confirms it again.
    interrupted: bool,
    /// The owner tokens of this process's waiters in the lock's queue.
    expected: HashMap<String, Expected>,
}

/// A waiter's interest in one channel; unsubscribes when the last one drops.
pub(crate) struct Subscription<L: Link> {
    waiters: Arc<Waiters<L>>,
    channel: String,
    wakes: watch::Receiver<u64>,
    /// The owner token whose grant this waiter expects, if any.
    owner: Option<String>,
    /// Woken by a grant to that owner: a grant wakes its waiter alone, not
    /// the other waiters of this process on the channel (several wait on
    /// one semaphore).
    granted: Arc<Notify>,
}

impl<L: Link> Waiters<L> {
    pub(crate) fn new(link: L) -> Arc<Self> {
        Arc::new(Waiters {
            channels: Mutex::new(HashMap::new()),
            link: tokio::sync::Mutex::new(link),
        })
    }

    /// Subscribes to `channel`, returning once Redis confirmed it (or once it
    /// failed: the caller's fallback timer covers that case).
    pub(crate) async fn subscribe(self: &Arc<Self>, channel: &str) -> Subscription<L> {
        let (wakes, subscribed) = {
            let mut channels = self.channels();
            let entry = channels
                .entry(channel.to_owned())
                .or_insert_with(|| Channel {
                    waiters: 0,
                    wakes: watch::Sender::new(0),
                    subscribed: Arc::new(OnceCell::new()),
                    interrupted: false,
                    expected: HashMap::new(),
                });
            entry.waiters += 1;
            (entry.wakes.subscribe(), entry.subscribed.clone())
        };
        let subscription = Subscription {
            waiters: self.clone(),
            channel: channel.to_owned(),
            wakes,
            owner: None,
            granted: Arc::new(Notify::new()),
        };
        let _ = subscribed
            .get_or_try_init(|| async {
                // Bounded, lock included, so a half-open connection cannot
                // hold up the waiters of other keys.
                let subscribe = async { self.link.lock().await.subscribe(channel).await };
                match tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe).await {
                    Ok(Ok(())) => Ok(()),
                    _ => Err(()),
                }
            })
            .await;
        subscription
    }

    /// The link, for a backend that replaces it (a new connection) or
    /// subscribes channels itself (all at once, or again after a break).
    pub(crate) fn link(&self) -> &tokio::sync::Mutex<L> {
        &self.link
    }
}

impl<L> Waiters<L> {
    /// Every channel someone waits on.
    pub(crate) fn channel_names(&self) -> Vec<String> {
        self.channels().keys().cloned().collect()
    }

    /// Wakes every waiter of `channel`.
    pub(crate) fn wake(&self, channel: &str) {
        if let Some(entry) = self.channels().get_mut(channel) {
            entry.wake();
        }
    }

    /// Routes a message published on `channel`: a v2 grant, "<owner>
    /// <fencing token>", goes to the waiter expecting it (a grant for a
    /// waiter of another process wakes nobody); anything else wakes every
    /// waiter of the channel.
    pub(crate) fn deliver(&self, channel: &str, message: &[u8]) {
        let mut channels = self.channels();
        let Some(entry) = channels.get_mut(channel) else {
            return;
        };
        let Some(grant) = parse_grant(message) else {
            entry.wake();
            return;
        };
        entry.grant(&grant);
    }

    /// Hands a grant straight to the waiter expecting it, as [`deliver`]
    /// does a published one: for a store in this process's memory.
    ///
    /// [`deliver`]: Self::deliver
    pub(crate) fn grant(&self, channel: &str, owner: &str, fencing_token: u64, round: u64) {
        if let Some(entry) = self.channels().get_mut(channel) {
            entry.grant(&GrantMessage {
                owner,
                fencing_token,
                round,
            });
        }
    }

    /// Wakes every waiter of every channel.
    pub(crate) fn wake_all(&self) {
        self.channels().values_mut().for_each(Channel::wake);
    }

    /// A connection carrying subscriptions broke. Which channels it carried
    /// is not known, so every channel counts as interrupted until Redis
    /// confirms it again (see [`confirmed`](Self::confirmed)).
    pub(crate) fn interrupted(&self) {
        self.channels()
            .values_mut()
            .for_each(|entry| entry.interrupted = true);
    }

    /// Redis ended a subscription of `channel` that its waiters still need
    /// (its slot moved to another node): they try again now, and the
    /// channel counts as interrupted until it is subscribed again.
    pub(crate) fn ended(&self, channel: &str) {
        if let Some(entry) = self.channels().get_mut(channel) {
            entry.wake();
            entry.interrupted = true;
        }
    }

    /// Redis confirmed a subscription of `channel`: after an interruption,
    /// a release may have gone unheard, so its waiters try again.
    pub(crate) fn confirmed(&self, channel: &str) {
        if let Some(entry) = self.channels().get_mut(channel)
            && entry.interrupted
        {
            entry.wake();
        }
    }

    /// The channels someone waits on that are interrupted: to subscribe again.
    pub(crate) fn interrupted_channels(&self) -> Vec<String> {
        self.channels()
            .iter()
            .filter(|(_, entry)| entry.interrupted)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        unpoisoned::lock(&self.channels)
    }
}

/// What a waiter in a lock's queue expects.
struct Expected {
    /// Its attempt whose answer it has last seen: a grant after an earlier
    /// one is stale (its lease ran out before that answer).
    round: u64,
    /// The fencing token of the grant, once it came.
    grant: Option<u64>,
    /// Its waiter's wake-up.
    wake: Arc<Notify>,
}

/// A v2 grant, as `fence.lua` publishes it: "<owner> <fencing token> <round>".
struct GrantMessage<'a> {
    owner: &'a str,
    fencing_token: u64,
    round: u64,
}

fn parse_grant(message: &[u8]) -> Option<GrantMessage<'_>> {
    let mut fields = std::str::from_utf8(message).ok()?.split(' ');
    let grant = GrantMessage {
        owner: fields.next()?,
        fencing_token: fields.next()?.parse().ok()?,
        round: fields.next()?.parse().ok()?,
    };
    fields.next().is_none().then_some(grant)
}

impl Channel {
    /// A grant wakes the waiter expecting it after that round, if any.
    fn grant(&mut self, grant: &GrantMessage<'_>) {
        if let Some(expected) = self.expected.get_mut(grant.owner)
            && expected.round == grant.round
        {
            expected.grant = Some(grant.fencing_token);
            expected.wake.notify_one();
        }
    }

    fn wake(&mut self) {
        self.interrupted = false;
        self.wakes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl<L: Link> Subscription<L> {
    /// Marks every wake-up so far as seen; call before each acquire attempt.
    pub(crate) fn mark_seen(&mut self) {
        self.wakes.borrow_and_update();
    }

    /// From now on, a grant to `owner` (this waiter's place in the lock's
    /// queue) after its attempt `round` wakes this waiter and is kept for
    /// [`granted`](Self::granted); any other grant is dropped.
    pub(crate) fn expect_grant(&mut self, owner: &str, round: u64) {
        let mut channels = self.waiters.channels();
        let Some(entry) = channels.get_mut(&self.channel) else {
            return;
        };
        if let Some(previous) = self.owner.replace(owner.to_owned())
            && previous != owner
        {
            entry.expected.remove(&previous);
        }
        let expected = Expected {
            round,
            grant: None,
            wake: self.granted.clone(),
        };
        entry.expected.insert(owner.to_owned(), expected);
    }

    /// The fencing token of a grant to the expected owner, once one came;
    /// taken, so a later call returns `None`.
    pub(crate) fn granted(&mut self) -> Option<u64> {
        let owner = self.owner.as_ref()?;
        self.waiters
            .channels()
            .get_mut(&self.channel)?
            .expected
            .get_mut(owner)?
            .grant
            .take()
    }

    /// Completes at the first wake-up not yet marked seen, or at a grant to
    /// the expected owner.
    pub(crate) async fn woken(&mut self) {
        let broadcast = async {
            if self.wakes.changed().await.is_err() {
                // The channel entry is gone (cannot happen while we hold
                // it); never resolve, and let the caller's timer decide.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = broadcast => {}
            () = self.granted.notified() => {}
        }
    }
}

impl<L: Link> Drop for Subscription<L> {
    fn drop(&mut self) {
        let last = match self.waiters.channels().get_mut(&self.channel) {
            Some(entry) => {
                if let Some(owner) = &self.owner {
                    entry.expected.remove(owner);
                }
                entry.waiters -= 1;
                entry.waiters == 0
            }
            None => false,
        };
        if !last {
            return;
        }
        let (waiters, channel) = (self.waiters.clone(), std::mem::take(&mut self.channel));
        let unsubscribe = async move {
            let mut link = waiters.link.lock().await;
            // Someone may have started waiting again meanwhile.
            let idle = {
                let mut channels = waiters.channels();
                let idle = channels
                    .get(&channel)
                    .is_some_and(|entry| entry.waiters == 0);
                if idle {
                    channels.remove(&channel);
                }
                idle
            };
            if idle {
                let _ = tokio::time::timeout(SUBSCRIBE_TIMEOUT, link.unsubscribe(&channel)).await;
            }
        };
        // Without a runtime the idle entry stays subscribed, and is reused by
        // the next waiter of this key.
        background::spawn(unsubscribe);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redis::RedisResult;

    use super::{Link, Waiters};

    /// Confirms every subscription and counts them.
    #[derive(Default)]
    struct Counting {
        subscribes: usize,
    }

    impl Link for Counting {
        async fn subscribe(&mut self, _: &str) -> RedisResult<()> {
            self.subscribes += 1;
            Ok(())
        }

        async fn unsubscribe(&mut self, _: &str) -> RedisResult<()> {
            Ok(())
        }
    }

    async fn is_woken(subscription: &mut super::Subscription<Counting>) -> bool {
        tokio::time::timeout(Duration::from_millis(20), subscription.woken())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_confirmation_wakes_only_after_an_interruption() {
        let waiters = Waiters::new(Counting::default());
        let mut subscription = waiters.subscribe("lock").await;
        subscription.mark_seen();
        waiters.confirmed("lock");
        assert!(!is_woken(&mut subscription).await, "no interruption yet");
        waiters.interrupted();
        assert!(
            !is_woken(&mut subscription).await,
            "not subscribed again yet"
        );
        waiters.confirmed("lock");
        assert!(is_woken(&mut subscription).await);
        subscription.mark_seen();
        waiters.confirmed("lock");
        assert!(
            !is_woken(&mut subscription).await,
            "woken once per interruption"
        );
    }

    #[tokio::test]
    async fn an_ended_subscription_wakes_and_counts_as_interrupted_until_confirmed() {
        let waiters = Waiters::new(Counting::default());
        let mut subscription = waiters.subscribe("lock").await;
        let _other = waiters.subscribe("other").await;
        assert_eq!(waiters.link().lock().await.subscribes, 2, "one per channel");
        subscription.mark_seen();
        waiters.ended("lock");
        assert!(is_woken(&mut subscription).await);
        assert_eq!(waiters.interrupted_channels(), ["lock"]);
        subscription.mark_seen();
        waiters.confirmed("lock");
        assert!(is_woken(&mut subscription).await);
        assert!(waiters.interrupted_channels().is_empty());
    }
}
