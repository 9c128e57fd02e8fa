//! Streaming subscriptions as the simulated server keeps them: who owns each one,
//! which mailbox and backend server it belongs to, the events queued for it while no
//! stream carries it, the stream that carries it now, and its idle expiry.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use common::sync::lock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use dashmap::DashMap;
use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;

use ews::ops::get_streaming_events::EventKind;

/// Events kept per subscription while nobody reads them; past this the oldest are
/// dropped and the subscription reports ErrorMissedNotificationEvents.
pub const MAX_QUEUED_EVENTS: usize = 1000;

/// Which object an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventObject {
    /// A calendar item (number, version).
    Item(u32, u32),
    /// The mailbox's calendar folder.
    Folder,
}

/// An event waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// What happened.
    pub kind: EventKind,
    /// To what.
    pub object: EventObject,
    /// When.
    pub timestamp: Timestamp,
}

/// Why a subscription no longer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Idle past its lifetime, or expired by a fault.
    Expired,
    /// Unsubscribed.
    Unsubscribed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<QueuedEvent>,
    missed: bool,
    /// (stream number, its waker) of the stream carrying this subscription.
    stream: Option<(u64, Arc<Notify>)>,
    idle_since: Instant,
    gone: Option<Gone>,
}

/// One subscription.
#[derive(Debug)]
pub struct Subscription {
    /// The id handed to the client.
    pub id: String,
    /// Index of the subscribed mailbox.
    pub mailbox: usize,
    /// Backend server hosting it.
    pub backend: usize,
    /// The account that created it (the only one that may read it).
    pub owner: String,
    /// Requested event kinds.
    pub kinds: Vec<EventKind>,
    state: Mutex<State>,
}

impl Subscription {
    /// Queues an event if its kind was subscribed; wakes the carrying stream.
    pub fn push(&self, event: QueuedEvent) {
        if !self.kinds.contains(&event.kind) {
            return;
        }
        let mut state = lock(&self.state);
        if state.gone.is_some() {
            return;
        }
        if state.queue.len() >= MAX_QUEUED_EVENTS {
            state.queue.pop_front();
            state.missed = true;
        }
        state.queue.push_back(event);
        if let Some((_, waker)) = &state.stream {
            waker.notify_one();
        }
    }

    /// Takes up to `max` queued events, oldest first.
    pub fn take(&self, max: usize) -> Vec<QueuedEvent> {
        let mut state = lock(&self.state);
        let n = state.queue.len().min(max);
        state.queue.drain(..n).collect()
    }

    /// Whether events were dropped since the last call (the queue overflowed).
    pub fn take_missed(&self) -> bool {
        std::mem::take(&mut lock(&self.state).missed)
    }

    /// Whether events are waiting.
    pub fn has_pending(&self) -> bool {
        let state = lock(&self.state);
        !state.queue.is_empty() || state.missed
    }

    /// Attaches the subscription to stream `stream`, detaching it from any other.
    pub fn attach(&self, stream: u64, waker: Arc<Notify>) {
        let mut state = lock(&self.state);
        if let Some((_, old)) = state.stream.replace((stream, waker.clone())) {
            old.notify_one();
        }
        if !state.queue.is_empty() {
            waker.notify_one();
        }
    }

    /// Detaches from stream `stream` (if still attached to it); idleness starts now.
    pub fn detach(&self, stream: u64, now: Instant) {
        let mut state = lock(&self.state);
        if state.stream.as_ref().is_some_and(|(s, _)| *s == stream) {
            state.stream = None;
            state.idle_since = now;
        }
    }

    /// Whether stream `stream` still carries this subscription.
    pub fn carried_by(&self, stream: u64) -> bool {
        lock(&self.state)
            .stream
            .as_ref()
            .is_some_and(|(s, _)| *s == stream)
    }

    /// Why it is gone, if it is.
    pub fn gone(&self) -> Option<Gone> {
        lock(&self.state).gone
    }

    /// Ends the subscription; a carrying stream is woken to report it.
    pub fn end(&self, why: Gone) {
        let mut state = lock(&self.state);
        state.gone.get_or_insert(why);
        state.queue.clear();
        if let Some((_, waker)) = &state.stream {
            waker.notify_one();
        }
    }

    /// Whether it has had no stream since before `cutoff`.
    fn idle_before(&self, cutoff: Instant) -> bool {
        let state = lock(&self.state);
        state.stream.is_none() && state.gone.is_none() && state.idle_since < cutoff
    }
}

/// All live subscriptions by id, plus each mailbox's subscriptions for fan-out.
#[derive(Debug)]
pub struct Registry {
    by_id: DashMap<String, Arc<Subscription>>,
    by_mailbox: DashMap<usize, Vec<Arc<Subscription>>>,
    next: std::sync::atomic::AtomicU64,
    domain: String,
}

impl Registry {
    /// An empty registry; ids embed backend host names under `domain`.
    pub fn new(domain: &str) -> Registry {
        Registry {
            by_id: DashMap::new(),
            by_mailbox: DashMap::new(),
            next: std::sync::atomic::AtomicU64::new(1),
            domain: domain.to_owned(),
        }
    }

    /// The host name of backend `n`.
    pub fn backend_host(&self, n: usize) -> String {
        format!("mbx{:02}.{}", n + 1, self.domain)
    }

    /// Creates a subscription. Ids look like Exchange 2013+ ones: a little-endian
    /// length, the hosting server's FQDN, then opaque bytes.
    pub fn create(
        &self,
        mailbox: usize,
        backend: usize,
        owner: &str,
        kinds: Vec<EventKind>,
        now: Instant,
    ) -> Arc<Subscription> {
        let serial = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let host = self.backend_host(backend);
        let mut raw = Vec::with_capacity(host.len() + 26);
        raw.extend_from_slice(&(host.len() as u16).to_le_bytes());
        raw.extend_from_slice(host.as_bytes());
        raw.extend_from_slice(&[0x10, 0, 0, 0]);
        raw.extend_from_slice(&serial.to_le_bytes());
        raw.extend_from_slice(
            &(mailbox as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_le_bytes(),
        );
        let subscription = Arc::new(Subscription {
            id: B64.encode(raw),
            mailbox,
            backend,
            owner: owner.to_ascii_lowercase(),
            kinds,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                missed: false,
                stream: None,
                idle_since: now,
                gone: None,
            }),
        });
        self.by_id
            .insert(subscription.id.clone(), subscription.clone());
        self.by_mailbox
            .entry(mailbox)
            .or_default()
            .push(subscription.clone());
        subscription
    }

    /// The live subscription with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Subscription>> {
        self.by_id.get(id.trim()).map(|s| s.clone())
    }

    /// Every live subscription of a mailbox.
    pub fn of_mailbox(&self, mailbox: usize) -> Vec<Arc<Subscription>> {
        self.by_mailbox
            .get(&mailbox)
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// How many subscriptions are live.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Ends and forgets a subscription.
    pub fn remove(&self, subscription: &Subscription, why: Gone) {
        subscription.end(why);
        self.by_id.remove(&subscription.id);
        if let Some(mut list) = self.by_mailbox.get_mut(&subscription.mailbox) {
            list.retain(|s| s.id != subscription.id);
        }
        self.by_mailbox
            .remove_if(&subscription.mailbox, |_, list| list.is_empty());
    }

    /// Expires every subscription idle since before `cutoff`; returns how many.
    pub fn expire_idle(&self, cutoff: Instant) -> usize {
        let idle: Vec<Arc<Subscription>> = self
            .by_id
            .iter()
            .filter(|s| s.idle_before(cutoff))
            .map(|s| s.clone())
            .collect();
        for s in &idle {
            self.remove(s, Gone::Expired);
        }
        idle.len()
    }

    /// Expires the subscriptions of the given mailboxes (all when `None`).
    pub fn expire(&self, mailboxes: Option<&[usize]>) -> usize {
        let doomed: Vec<Arc<Subscription>> = match mailboxes {
            None => self.by_id.iter().map(|s| s.clone()).collect(),
            Some(list) => list.iter().flat_map(|m| self.of_mailbox(*m)).collect(),
        };
        for s in &doomed {
            self.remove(s, Gone::Expired);
        }
        doomed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> QueuedEvent {
        QueuedEvent {
            kind,
            object: EventObject::Folder,
            timestamp: Timestamp::UNIX_EPOCH,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn queues_filter_overflow_and_expire() {
        let registry = Registry::new("example.test");
        let now = Instant::now();
        let sub = registry.create(3, 1, "Svc@example.test", vec![EventKind::Modified], now);
        assert!(
            String::from_utf8_lossy(&B64.decode(&sub.id).unwrap()).contains("mbx02.example.test")
        );
        sub.push(event(EventKind::NewMail));
        assert!(!sub.has_pending(), "unsubscribed kinds are not queued");
        for _ in 0..MAX_QUEUED_EVENTS + 5 {
            sub.push(event(EventKind::Modified));
        }
        assert_eq!(sub.take(50).len(), 50);
        assert!(sub.take_missed());
        assert!(!sub.take_missed());
        assert_eq!(registry.expire_idle(now), 0);
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        let waker = Arc::new(Notify::new());
        sub.attach(9, waker);
        assert_eq!(
            registry.expire_idle(Instant::now()),
            0,
            "carried subscriptions never idle"
        );
        sub.detach(9, Instant::now());
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert_eq!(registry.expire_idle(Instant::now()), 1);
        assert!(registry.get(&sub.id).is_none());
        assert_eq!(sub.gone(), Some(Gone::Expired));
        assert!(registry.of_mailbox(3).is_empty());
    }
}
