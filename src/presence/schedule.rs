//! The boundary scheduler: wakes at the next instant any mailbox's availability may
//! change (a meeting starting or ending, automatic replies switching, the fetched
//! window running out) and re-reads those mailboxes, so transitions are published at
//! the edge itself, with no EWS call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cache::{Cache, Slot};
use common::mailbox::Mailbox;

/// Longest sleep between looks at the wake-ups.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(3600);
/// Most due mailboxes re-read on the scheduler's task; more go to a blocking thread.
const INLINE_LIMIT: usize = 16_384;
/// Wake-ups are never compacted below this many.
const COMPACT_FLOOR: usize = 4096;

/// Wake-ups ordered by (instant, arrival): mailboxes due at the same second (a storm
/// at the top of the hour) are ordered by a number, never by comparing addresses, and
/// everything due is split off at once (a million wake-ups at T cost one split, not a
/// million pops).
#[derive(Debug)]
struct WakeUps<T> {
    items: BTreeMap<(i64, u64), T>,
    arrivals: u64,
    /// Size above which superseded wake-ups are dropped next.
    compact_at: usize,
}

impl<T> Default for WakeUps<T> {
    fn default() -> Self {
        WakeUps {
            items: BTreeMap::new(),
            arrivals: 0,
            compact_at: 0,
        }
    }
}

impl<T> WakeUps<T> {
    fn push(&mut self, at: i64, what: T) {
        self.arrivals += 1;
        self.items.insert((at, self.arrivals), what);
    }

    fn earliest(&self) -> Option<i64> {
        self.items.first_key_value().map(|((at, _), _)| *at)
    }

    /// Takes every wake-up due by `now`, in order.
    fn take_due(&mut self, now: i64) -> BTreeMap<(i64, u64), T> {
        let later = match now.checked_add(1) {
            Some(after) => self.items.split_off(&(after, 0)),
            None => BTreeMap::new(),
        };
        std::mem::replace(&mut self.items, later)
    }
}

/// Pending wake-ups, each holding its mailbox's slot of the cache.
#[derive(Debug, Default)]
pub struct Scheduler {
    wake_ups: Mutex<WakeUps<Arc<Slot>>>,
    changed: Notify,
}

impl Scheduler {
    fn lock(&self) -> std::sync::MutexGuard<'_, WakeUps<Arc<Slot>>> {
        common::sync::lock(&self.wake_ups)
    }

    /// Re-reads `mailbox` now and schedules its next edge.
    pub fn refresh(&self, cache: &Cache, mailbox: &Mailbox) {
        let Some(slot) = cache.slot(mailbox) else {
            return;
        };
        let now = cache.clock().now_secs();
        if let Some(at) = cache.reevaluate_slot(&slot, now) {
            self.at(slot, at);
            self.compact();
        }
    }

    /// Drops superseded wake-ups once they have doubled since the last compaction:
    /// every refresh schedules a new edge (often the end of a window a horizon away)
    /// and the old one would otherwise stay until its time, so a day of changes and
    /// horizon rolls would pile up millions. Amortised: after compacting, at least as
    /// many pushes again come before the next compaction, and a refresh that does not
    /// compact costs one comparison.
    fn compact(&self) {
        let mut wake_ups = self.lock();
        if wake_ups.items.len() > wake_ups.compact_at.max(COMPACT_FLOOR) {
            wake_ups
                .items
                .retain(|(at, _), slot| Cache::edge_is_current(slot, *at));
            wake_ups.compact_at = wake_ups.items.len() * 2;
        }
    }

    /// Wakes for the slot's mailbox at `at` (seconds since the epoch).
    fn at(&self, slot: Arc<Slot>, at: i64) {
        let mut wake_ups = self.lock();
        let earliest = wake_ups.earliest();
        wake_ups.push(at, slot);
        drop(wake_ups);
        if earliest.is_none_or(|e| at < e) {
            self.changed.notify_one();
        }
    }

    /// Pending wake-ups (stale ones included).
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// Runs until `stop`: sleeps to the earliest edge (by the cache's clock), re-reads
    /// the mailboxes due.
    pub async fn run(self: Arc<Self>, cache: Arc<Cache>, stop: CancellationToken) {
        let clock = cache.clock();
        loop {
            let next = self.lock().earliest();
            let wait = next.map_or(MAX_SLEEP, |at| clock.until_secs(at).min(MAX_SLEEP));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.changed.notified() => continue,
                _ = tokio::time::sleep(wait) => {}
            }
            let now = clock.now_secs();
            let due = self.lock().take_due(now);
            let next = if due.len() <= INLINE_LIMIT {
                cache.reevaluate_edges(due.into_iter().map(|((at, _), slot)| (at, slot)), now)
            } else {
                // A storm is re-read on a thread of its own. On this task it held a
                // runtime worker for over a second at a million mailboxes, so every
                // task queued behind it (API requests, streams, the feed's watchers)
                // waited; cut into slices with yields between them, it got only the
                // share of its worker those tasks left (under half a core while a
                // watcher and a client's batch queries ran). On its own thread the
                // operating system shares the cores among it and both workers.
                let cache = cache.clone();
                let pass = tokio::task::spawn_blocking(move || {
                    let due = due.into_iter().map(|((at, _), slot)| (at, slot));
                    cache.reevaluate_edges(due, now)
                });
                match pass.await {
                    Ok(next) => next,
                    Err(e) => {
                        // A bug, not an input: the mailboxes due keep their state and
                        // are scheduled again by their next refresh.
                        tracing::error!(error = %e, "the pass over a storm of edges failed");
                        Vec::new()
                    }
                }
            };
            // Scheduled again under one lock, not one per mailbox.
            let mut wake_ups = self.lock();
            for (at, slot) in next {
                wake_ups.push(at, slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::Timestamp;

    use super::*;
    use crate::presence::clock::Clock;
    use crate::presence::feed::{Changes, Feed};
    use crate::presence::timeline::{Availability, CalendarState, Interval, Mapping, Timeline};

    const T0: i64 = 1_800_000_000;

    /// A cache on a paused clock reading `T0` now, whose feed's watchers may lag `lag`
    /// publications.
    fn cache_at_t0(lag: usize) -> (Arc<Cache>, Clock) {
        let clock = Clock::following_tokio(Timestamp::from_second(T0).unwrap());
        let cache = Cache::new(
            Mapping::default(),
            Arc::new(Feed::new(16, lag)),
            clock,
            Duration::from_secs(900),
        );
        (Arc::new(cache), clock)
    }

    #[tokio::test(start_paused = true)]
    async fn transitions_are_published_at_the_meeting_edges() {
        let t0 = T0;
        let (cache, clock) = cache_at_t0(16);
        let m = Mailbox::parse("a@example.test").unwrap();
        cache.insert(m.clone(), "gw".into());
        cache.subscribed(&m);
        let meeting = Interval {
            start: t0 + 600,
            end: t0 + 1800,
            state: CalendarState::Busy,
        };
        cache.set_timeline(
            &m,
            Timeline::new(t0 - 3600, t0 + 86_400, [meeting]),
            clock.now(),
        );
        let mut feed = Changes::new(cache.feed().watch(None).unwrap().1);
        let scheduler = Arc::new(Scheduler::default());
        scheduler.refresh(&cache, &m);
        let (_, first) = feed.next().await;
        assert_eq!(first.reading.availability, Availability::Available);
        let stop = CancellationToken::new();
        tokio::spawn(scheduler.clone().run(cache.clone(), stop.clone()));
        let started = clock.now_secs();
        let (_, busy) = feed.next().await;
        assert_eq!(busy.reading.availability, Availability::InAMeeting);
        assert_eq!(
            clock.now_secs(),
            started + 600,
            "published at the start itself"
        );
        let (_, free) = feed.next().await;
        assert_eq!(free.reading.availability, Availability::Available);
        assert_eq!(clock.now_secs(), t0 + 1800, "and at the end");
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_storm_is_published_whole() {
        let t0 = T0;
        let mailboxes = 20_001;
        let (cache, clock) = cache_at_t0(crate::presence::feed::lag_for(mailboxes));
        let scheduler = Arc::new(Scheduler::default());
        let mut feed = Changes::new(cache.feed().watch(None).unwrap().1);
        let meeting = Interval {
            start: t0 + 60,
            end: t0 + 3600,
            state: CalendarState::Busy,
        };
        for n in 0..mailboxes {
            let m = Mailbox::parse(&format!("user{n}@example.test")).unwrap();
            cache.insert(m.clone(), "gw".into());
            cache.subscribed(&m);
            cache.set_timeline(
                &m,
                Timeline::new(t0 - 3600, t0 + 86_400, [meeting]),
                clock.now(),
            );
            scheduler.refresh(&cache, &m);
        }
        let stop = CancellationToken::new();
        tokio::spawn(scheduler.clone().run(cache.clone(), stop.clone()));
        let mut in_meeting = std::collections::HashSet::new();
        // Paused clock: a transition that never comes fails at the deadline.
        let deadline = Duration::from_secs(7200);
        while in_meeting.len() < mailboxes {
            let (_, change) = tokio::time::timeout(deadline, feed.next()).await.unwrap();
            if change.reading.availability == Availability::InAMeeting {
                assert_eq!(clock.now_secs(), t0 + 60, "at the start itself");
                in_meeting.insert(change.mailbox.clone());
            }
        }
        // The pass (on its own thread: more than INLINE_LIMIT were due) scheduled every
        // mailbox again: each is free at the end.
        let mut free = 0;
        while free < mailboxes {
            let (_, change) = tokio::time::timeout(deadline, feed.next()).await.unwrap();
            if change.reading.availability == Availability::Available {
                free += 1;
            }
        }
        assert_eq!(clock.now_secs(), t0 + 3600);
        stop.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_removed_mailbox_is_not_woken() {
        let t0 = T0;
        let (cache, clock) = cache_at_t0(16);
        let meeting = Interval {
            start: t0 + 60,
            end: t0 + 3600,
            state: CalendarState::Busy,
        };
        let scheduler = Arc::new(Scheduler::default());
        let [gone, kept] =
            ["gone@example.test", "kept@example.test"].map(|a| Mailbox::parse(a).unwrap());
        for m in [&gone, &kept] {
            cache.insert(m.clone(), "gw".into());
            cache.subscribed(m);
            cache.set_timeline(
                m,
                Timeline::new(t0 - 3600, t0 + 86_400, [meeting]),
                clock.now(),
            );
            scheduler.refresh(&cache, m);
        }
        // Removed, then configured again (a reload): its old wake-up holds the old
        // slot, and the new entry has no calendar yet.
        cache.remove(&gone);
        cache.insert(gone.clone(), "gw".into());
        let mut feed = Changes::new(cache.feed().watch(None).unwrap().1);
        let stop = CancellationToken::new();
        tokio::spawn(scheduler.clone().run(cache.clone(), stop.clone()));
        // Both were due in the same pass: whatever it published for `gone` comes
        // before `kept`'s change or with it.
        loop {
            let (_, change) = feed.next().await;
            assert_ne!(change.mailbox, gone, "woken after its removal: {change:?}");
            if change.mailbox == kept {
                assert_eq!(change.reading.availability, Availability::InAMeeting);
                break;
            }
        }
        assert_eq!(
            cache.read(&gone, t0 + 60).unwrap().reading.availability,
            Availability::Unknown
        );
        stop.cancel();
    }

    #[test]
    fn everything_due_is_taken_at_once_in_arrival_order() {
        let m = |n: u32| Mailbox::parse(&format!("user{n}@example.test")).unwrap();
        let mut wake_ups = WakeUps::default();
        wake_ups.push(7, m(1));
        wake_ups.push(5, m(3));
        wake_ups.push(5, m(2));
        wake_ups.push(i64::MAX, m(4));
        let due: Vec<Mailbox> = wake_ups.take_due(5).into_values().collect();
        assert_eq!(due, [m(3), m(2)], "same second: first come, first out");
        assert_eq!(wake_ups.earliest(), Some(7));
        assert_eq!(wake_ups.take_due(i64::MAX).len(), 2, "the last instant too");
        assert_eq!(wake_ups.earliest(), None);
    }

    #[test]
    fn superseded_wake_ups_do_not_pile_up() {
        let clock = Clock::System;
        let t0 = clock.now_secs();
        let cache = Cache::new(
            Mapping::default(),
            Arc::new(Feed::new(16, 16)),
            clock,
            Duration::from_secs(900),
        );
        let mailboxes: Vec<Mailbox> = (0..10)
            .map(|n| Mailbox::parse(&format!("user{n}@example.test")).unwrap())
            .collect();
        for m in &mailboxes {
            cache.insert(m.clone(), "gw".into());
            cache.subscribed(m);
        }
        let scheduler = Scheduler::default();
        // Every refresh moves each mailbox's window end (its next edge) a second on.
        for round in 0..2 * COMPACT_FLOOR as i64 {
            let m = &mailboxes[round as usize % mailboxes.len()];
            cache.set_timeline(
                m,
                Timeline::new(t0 - 3600, t0 + 86_400 + round, []),
                clock.now(),
            );
            scheduler.refresh(&cache, m);
        }
        assert!(
            scheduler.len() <= COMPACT_FLOOR,
            "{} wake-ups kept for {} mailboxes",
            scheduler.len(),
            mailboxes.len()
        );
        // What is kept is every mailbox's current edge.
        for m in &mailboxes {
            let wake_ups = scheduler.lock();
            assert!(
                wake_ups
                    .items
                    .iter()
                    .any(|((at, _), who)| who.mailbox() == m && Cache::edge_is_current(who, *at))
            );
        }
    }
}
