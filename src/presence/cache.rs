//! The presence cache: the only owner of the `DashMap` from mailbox to its calendar
//! timeline, automatic replies and sync status. Reads hand out owned snapshots, never
//! guards. Whenever a mailbox's availability changes (new data, staleness running out,
//! or the clock passing an edge) the change is published to the feed here, once.
//!
//! The staleness policy: a fetched timeline stays right for time-based edges, so when
//! a mailbox loses its subscription or a refresh fails, its timeline keeps being served
//! (marked `stale`, with the problem) while it is resubscribed and refreshed. It reads
//! `unknown` only when no data covers now, or once it has been stale for longer than
//! `max_stale` (then the scheduler publishes that transition at the bound itself).
//! Staleness ends with a successful refresh requested after the mailbox last
//! subscribed.
//!
//! Each mailbox's state lives in a [`Slot`] of its own, which the map points to. The
//! scheduler's wake-ups hold slots, not addresses: a storm at the top of the hour
//! re-reads a million mailboxes without hashing or looking up one of them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dashmap::DashMap;
use jiff::Timestamp;

use super::clock::Clock;
use super::feed::Feed;
use super::metrics;
use super::snapshot::Snapshot;
use super::timeline::{AutoReply, Availability, Mapping, Reading, Timeline, read};
use common::mailbox::Mailbox;

/// An optional instant in 8 bytes (an `Option<Timestamp>` takes 24, and an entry
/// holds four for each of a million mailboxes): nanoseconds since the Unix epoch,
/// `i64::MIN` for none. Covers the years 1678 to 2262; instants beyond are clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp(i64);

impl Stamp {
    const NONE: Stamp = Stamp(i64::MIN);

    fn of(t: Timestamp) -> Stamp {
        let ns = t.as_nanosecond();
        Stamp(i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN + 1 } else { i64::MAX }))
    }

    fn get(self) -> Option<Timestamp> {
        if self == Stamp::NONE {
            return None;
        }
        Timestamp::from_nanosecond(i128::from(self.0)).ok()
    }

    fn is_some(self) -> bool {
        self != Stamp::NONE
    }

    fn is_none(self) -> bool {
        self == Stamp::NONE
    }
}

#[derive(Debug, Clone)]
struct Entry {
    gateway: Arc<str>,
    timeline: Option<Timeline>,
    auto_reply: AutoReply,
    /// When the request that fetched `auto_reply` was sent.
    auto_reply_at: Stamp,
    synced_at: Stamp,
    /// When the mailbox last got a subscription (None: it has none).
    subscribed_at: Stamp,
    /// Since when it is served without a working subscription and refresh.
    stale_since: Stamp,
    /// Why the mailbox cannot be served as live.
    problem: Option<Arc<str>>,
    /// The availability last published.
    published: Availability,
    /// The next instant its availability may change, when scheduled.
    next_edge: Option<i64>,
    /// Opted out of calendar presence: nothing is read, it reads unknown.
    opted_out: bool,
}

/// One configured mailbox's place in the cache, shared by the map and the scheduler's
/// wake-ups. A slot whose mailbox was removed is no longer in the map, and its
/// wake-ups find no edge scheduled.
#[derive(Debug)]
pub struct Slot {
    mailbox: Mailbox,
    entry: Mutex<Entry>,
}

impl Slot {
    /// The mailbox it holds.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    fn lock(&self) -> MutexGuard<'_, Entry> {
        common::sync::lock(&self.entry)
    }
}

/// Every configured mailbox's presence entry (the only map of them), and the change
/// feed its transitions are published to.
#[derive(Debug)]
pub struct Cache {
    /// Keyed with foldhash, not SipHash: keys are configured addresses (no one outside
    /// chooses what is inserted), and a storm looks up a million of them at once.
    entries: DashMap<Mailbox, Arc<Slot>, foldhash::fast::RandomState>,
    mapping: Mapping,
    feed: Arc<Feed<Snapshot>>,
    clock: Clock,
    max_stale: i64,
}

/// Most changes [`Cache::reevaluate_edges`] publishes as one batch of the feed.
const PUBLISH_BATCH: usize = 1024;

const UNKNOWN: Reading = Reading {
    availability: Availability::Unknown,
    calendar: None,
    out_of_office: false,
    since: None,
    until: None,
};

impl Cache {
    /// An empty cache publishing to `feed`, reading time from `clock`; stale data is
    /// served for at most `max_stale`.
    pub fn new(
        mapping: Mapping,
        feed: Arc<Feed<Snapshot>>,
        clock: Clock,
        max_stale: Duration,
    ) -> Cache {
        Cache {
            entries: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            mapping,
            feed,
            clock,
            max_stale: i64::try_from(max_stale.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// The feed changes go to.
    pub fn feed(&self) -> &Arc<Feed<Snapshot>> {
        &self.feed
    }

    /// The clock presence is computed against.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Now, by that clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Adds a configured mailbox (unknown until synced); keeps an existing entry.
    pub fn insert(&self, mailbox: Mailbox, gateway: Arc<str>) {
        self.entries.entry(mailbox.clone()).or_insert_with(|| {
            Arc::new(Slot {
                mailbox,
                entry: Mutex::new(Entry {
                    gateway,
                    timeline: None,
                    auto_reply: AutoReply::Off,
                    auto_reply_at: Stamp::NONE,
                    synced_at: Stamp::NONE,
                    subscribed_at: Stamp::NONE,
                    stale_since: Stamp::NONE,
                    problem: None,
                    published: Availability::Unknown,
                    next_edge: None,
                    opted_out: false,
                }),
            })
        });
    }

    /// Forgets a mailbox; wake-ups still holding its slot find nothing to do.
    pub fn remove(&self, mailbox: &Mailbox) {
        if let Some((_, slot)) = self.entries.remove(mailbox) {
            slot.lock().next_edge = None;
        }
    }

    /// The slot of `mailbox`, if configured.
    pub fn slot(&self, mailbox: &Mailbox) -> Option<Arc<Slot>> {
        self.entries.get(mailbox).map(|slot| slot.clone())
    }

    /// Runs `f` on the entry of the mailbox keyed `key`, if configured.
    fn with_entry<R>(&self, key: &str, f: impl FnOnce(&Mailbox, &mut Entry) -> R) -> Option<R> {
        let slot = self.entries.get(key)?;
        let mut entry = slot.lock();
        Some(f(&slot.mailbox, &mut entry))
    }

    /// Whether a mailbox is configured.
    pub fn contains(&self, mailbox: &Mailbox) -> bool {
        self.entries.contains_key(mailbox)
    }

    /// Every configured mailbox.
    pub fn mailboxes(&self) -> Vec<Mailbox> {
        self.entries.iter().map(|e| e.key().clone()).collect()
    }

    /// Runs `f` on every entry.
    fn each_entry(&self, mut f: impl FnMut(&Entry)) {
        for slot in self.entries.iter() {
            f(&slot.lock());
        }
    }

    /// How many entries `matches`.
    fn count_where(&self, mut matches: impl FnMut(&Entry) -> bool) -> usize {
        let mut count = 0;
        self.each_entry(|e| count += usize::from(matches(e)));
        count
    }

    /// How many mailboxes are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When stale data stops being served, if it is stale.
    fn stale_until(&self, entry: &Entry) -> Option<i64> {
        entry
            .stale_since
            .get()
            .map(|since| since.as_second().saturating_add(self.max_stale))
    }

    fn reading(&self, entry: &Entry, now: i64) -> Reading {
        let Some(timeline) = &entry.timeline else {
            return UNKNOWN;
        };
        if self.stale_until(entry).is_some_and(|until| now >= until)
            || timeline.state_at(now).is_none()
        {
            return UNKNOWN;
        }
        let mut reading = read(timeline, &entry.auto_reply, &self.mapping, now);
        if let Some(until) = self.stale_until(entry) {
            // Stale data turns unknown at the bound: that is a change too.
            reading.until = Some(reading.until.map_or(until, |u| u.min(until)));
        }
        reading
    }

    fn snapshot(&self, mailbox: &Mailbox, entry: &Entry, reading: Reading) -> Snapshot {
        Snapshot {
            mailbox: mailbox.clone(),
            gateway: entry.gateway.clone(),
            reading,
            synced_at: entry.synced_at.get(),
            stale: entry.stale_since.is_some() && entry.timeline.is_some(),
            problem: entry.problem.clone(),
            calendar_presence: !entry.opted_out,
            previous: None,
        }
    }

    /// `mailbox`'s automatic-reply settings as last read (off if never read).
    pub fn auto_reply(&self, mailbox: &Mailbox) -> Option<AutoReply> {
        self.with_entry(mailbox.as_str(), |_, e| e.auto_reply)
    }

    /// The span `mailbox`'s fetched timeline covers, once one was fetched.
    pub fn window(&self, mailbox: &Mailbox) -> Option<(i64, i64)> {
        self.with_entry(mailbox.as_str(), |_, e| {
            e.timeline.as_ref().map(|t| t.window())
        })
        .flatten()
    }

    /// Presence of `mailbox` at `now` (seconds), if configured.
    pub fn read(&self, mailbox: &Mailbox, now: i64) -> Option<Snapshot> {
        self.read_key(mailbox.as_str(), now)
    }

    /// Presence at `now` of the mailbox whose key (normalised address, see
    /// [`Mailbox::key`]) is `key`, if configured; looks up without allocating.
    pub fn read_key(&self, key: &str, now: i64) -> Option<Snapshot> {
        self.with_entry(key, |mailbox, entry| {
            let reading = self.reading(entry, now);
            self.snapshot(mailbox, entry, reading)
        })
    }

    /// Re-reads `mailbox` at `now`; publishes if its availability changed. Returns the
    /// next instant to look again (the next change, the end of the fetched window, or
    /// the end of serving stale data).
    pub fn reevaluate(&self, mailbox: &Mailbox, now: i64) -> Option<i64> {
        self.reevaluate_slot(&*self.slot(mailbox)?, now)
    }

    /// [`Cache::reevaluate`] for a slot already at hand.
    pub fn reevaluate_slot(&self, slot: &Slot, now: i64) -> Option<i64> {
        let (changed, next_edge) = self.reevaluate_entry(slot, now, |_| true)?;
        if let Some(snapshot) = changed {
            self.publish(vec![snapshot]);
        }
        next_edge
    }

    /// For the scheduler's wake-ups due by `now`, `(at, slot)` in order: re-reads each
    /// mailbox whose next edge `at` still is (a later refresh supersedes a wake-up, and
    /// a removed mailbox has none) and returns the next edges to schedule. Changes go
    /// to the feed in batches, one feed lock and one metrics update per batch: a storm
    /// at the top of the hour publishes a million transitions here.
    pub fn reevaluate_edges(
        &self,
        due: impl IntoIterator<Item = (i64, Arc<Slot>)>,
        now: i64,
    ) -> Vec<(i64, Arc<Slot>)> {
        let due = due.into_iter();
        let expected = due.size_hint().0;
        let mut next = Vec::with_capacity(expected);
        let batch_size = expected.clamp(1, PUBLISH_BATCH);
        // Allocated at the first change it takes: most wake-ups change nothing.
        let mut batch = Vec::new();
        for (at, slot) in due {
            let Some((changed, edge)) =
                self.reevaluate_entry(&slot, now, |entry| entry.next_edge == Some(at))
            else {
                continue;
            };
            if let Some(snapshot) = changed {
                if batch.capacity() == 0 {
                    batch.reserve_exact(batch_size);
                }
                batch.push(snapshot);
                if batch.len() == batch_size {
                    self.publish(std::mem::take(&mut batch));
                }
            }
            if let Some(edge) = edge {
                next.push((edge, slot));
            }
        }
        self.publish(batch);
        next
    }

    /// Re-reads one slot when `current` holds: the snapshot to publish if its
    /// availability changed, and its next edge. None when it is not current.
    fn reevaluate_entry(
        &self,
        slot: &Slot,
        now: i64,
        current: impl FnOnce(&Entry) -> bool,
    ) -> Option<(Option<Snapshot>, Option<i64>)> {
        let mut entry = slot.lock();
        if !current(&entry) {
            return None;
        }
        let reading = self.reading(&entry, now);
        let previous = entry.published;
        let changed = reading.availability != previous;
        entry.published = reading.availability;
        // Wake at the next change, or where the fetched window runs out (unknown from
        // then on unless a refresh extends it).
        let window_end = entry
            .timeline
            .as_ref()
            .map(|t| t.window().1)
            .filter(|end| *end > now);
        entry.next_edge = match (reading.until, window_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let snapshot = changed.then(|| Snapshot {
            previous: Some(previous),
            ..self.snapshot(&slot.mailbox, &entry, reading)
        });
        Some((snapshot, entry.next_edge))
    }

    /// Publishes `changes` as one batch, counted by target availability.
    fn publish(&self, changes: Vec<Snapshot>) {
        if changes.is_empty() {
            return;
        }
        metrics::transitions(changes.iter().map(|s| s.reading.availability));
        self.feed.publish_all(changes);
    }

    /// Whether `at` is still the next edge scheduled for the slot's mailbox (never,
    /// once it was removed).
    pub fn edge_is_current(slot: &Slot, at: i64) -> bool {
        slot.lock().next_edge == Some(at)
    }

    /// Stores a calendar fetched by a request sent at `requested_at`, unless what is
    /// stored came from a later request (answers can arrive out of order). It ends
    /// staleness if the mailbox had its subscription when the request was sent.
    pub fn set_timeline(&self, mailbox: &Mailbox, timeline: Timeline, requested_at: Timestamp) {
        self.with_entry(mailbox.as_str(), |_, entry| {
            // A read that was in flight when the user opted out is dropped.
            if entry.opted_out
                || entry
                    .synced_at
                    .get()
                    .is_some_and(|newer| newer > requested_at)
            {
                return;
            }
            entry.timeline = Some(timeline);
            entry.synced_at = Stamp::of(requested_at);
            if entry.subscribed_at.get().is_some_and(|s| s <= requested_at) {
                entry.stale_since = Stamp::NONE;
                entry.problem = None;
            }
        });
    }

    /// Stores automatic-reply settings fetched by a request sent at `requested_at`,
    /// unless what is stored came from a later request.
    pub fn set_auto_reply(
        &self,
        mailbox: &Mailbox,
        auto_reply: AutoReply,
        requested_at: Timestamp,
    ) {
        self.with_entry(mailbox.as_str(), |_, entry| {
            if entry.opted_out
                || entry
                    .auto_reply_at
                    .get()
                    .is_some_and(|newer| newer > requested_at)
            {
                return;
            }
            entry.auto_reply = auto_reply;
            entry.auto_reply_at = Stamp::of(requested_at);
        });
    }

    /// Records why a mailbox cannot be served as live (from now on its data is
    /// stale), or clears the reason (`None`; staleness ends only with a refresh).
    pub fn set_problem(&self, mailbox: &Mailbox, problem: Option<Arc<str>>) {
        let now = self.clock.now();
        self.with_entry(mailbox.as_str(), |_, entry| {
            if entry.opted_out {
                return;
            }
            if problem.is_some() && entry.stale_since.is_none() {
                entry.stale_since = Stamp::of(now);
            }
            entry.problem = problem;
        });
    }

    /// Opts `mailbox` out of calendar presence (`enabled` false): what was read is
    /// dropped and it reads unknown with `calendar_presence` false; or back in (it
    /// reads unknown until synced again). A change is published on the feed. `false`
    /// when the mailbox is not configured.
    pub fn set_calendar_presence(&self, mailbox: &Mailbox, enabled: bool) -> bool {
        let changed = self.with_entry(mailbox.as_str(), |mailbox, entry| {
            if entry.opted_out != enabled {
                return None;
            }
            entry.opted_out = !enabled;
            let previous = entry.published;
            entry.timeline = None;
            entry.auto_reply = AutoReply::Off;
            entry.auto_reply_at = Stamp::NONE;
            entry.synced_at = Stamp::NONE;
            entry.subscribed_at = Stamp::NONE;
            entry.stale_since = Stamp::NONE;
            entry.problem = None;
            entry.next_edge = None;
            entry.published = Availability::Unknown;
            Some(Snapshot {
                previous: Some(previous),
                ..self.snapshot(mailbox, entry, UNKNOWN)
            })
        });
        match changed {
            None => false,
            Some(Some(snapshot)) => {
                self.publish(vec![snapshot]);
                true
            }
            Some(None) => true,
        }
    }

    /// The mailbox holds a subscription (again) from now.
    pub fn subscribed(&self, mailbox: &Mailbox) {
        let now = self.clock.now();
        self.with_entry(mailbox.as_str(), |_, entry| {
            entry.subscribed_at = Stamp::of(now)
        });
    }

    /// The mailbox lost its subscription: its data is stale from now until it is
    /// resubscribed and refreshed.
    pub fn subscription_lost(&self, mailbox: &Mailbox) {
        let now = self.clock.now();
        self.with_entry(mailbox.as_str(), |_, entry| {
            entry.subscribed_at = Stamp::NONE;
            if entry.stale_since.is_none() {
                entry.stale_since = Stamp::of(now);
            }
        });
    }

    /// Mailboxes by current availability, for metrics.
    pub fn counts(&self, now: i64) -> [(Availability, usize); 4] {
        let mut counts = Availability::ALL.map(|a| (a, 0));
        self.each_entry(|entry| {
            let a = self.reading(entry, now).availability;
            if let Some(count) = counts.iter_mut().find(|(k, _)| *k == a) {
                count.1 += 1;
            }
        });
        counts
    }

    /// Sets the mailbox gauges from the current counts (before metrics are rendered).
    pub fn record_gauges(&self) {
        metrics::mailbox_counts(&self.counts(self.clock.now_secs()));
    }

    /// Every mailbox counted once: opted out, served, failing (with a problem), or
    /// not yet synced without a problem.
    pub fn readiness(&self) -> Readiness {
        let mut r = Readiness::default();
        self.each_entry(|e| {
            if e.opted_out {
                r.opted_out += 1;
            } else if e.problem.is_some() {
                r.failing += 1;
            } else if e.synced_at.is_none() {
                r.syncing += 1;
            } else {
                r.synced += 1;
            }
        });
        r
    }

    /// The distinct problems of `gateway`'s mailboxes with how many carry each, the
    /// most common first (at most `limit`).
    pub fn problems_in(&self, gateway: &str, limit: usize) -> Vec<(Arc<str>, usize)> {
        let mut counts: std::collections::HashMap<Arc<str>, usize> =
            std::collections::HashMap::new();
        self.each_entry(|e| {
            if &*e.gateway == gateway
                && let Some(problem) = &e.problem
            {
                *counts.entry(problem.clone()).or_default() += 1;
            }
        });
        let mut counts: Vec<(Arc<str>, usize)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(limit);
        counts
    }

    /// Mailboxes of `gateway` currently unknown.
    pub fn unknown_in(&self, gateway: &str, now: i64) -> usize {
        self.count_where(|e| {
            &*e.gateway == gateway && self.reading(e, now).availability == Availability::Unknown
        })
    }
}

/// Where start-up stands: every mailbox is in exactly one count.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// Served with data read since its subscription, and no problem.
    pub synced: usize,
    /// Carrying a problem that says why it is not served fresh.
    pub failing: usize,
    /// Neither yet: its first attempt has not ended.
    pub syncing: usize,
    /// Opted out of calendar presence: never read, nothing to wait for.
    pub opted_out: usize,
}

impl Readiness {
    /// Start-up has ended: every mailbox was synced or failed with a reason.
    pub fn ready(&self) -> bool {
        self.syncing == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_keeps_the_instant_and_its_order() {
        let t = Timestamp::from_nanosecond(1_800_000_000_123_456_789).unwrap();
        assert_eq!(Stamp::of(t).get(), Some(t));
        assert_eq!(Stamp::NONE.get(), None);
        assert!(Stamp::of(t).is_some() && Stamp::NONE.is_none());
        let later = Timestamp::from_nanosecond(1_800_000_000_123_456_790).unwrap();
        assert!(Stamp::of(later).get() > Stamp::of(t).get());
        // Out of range is clamped, never taken for "none".
        assert!(Stamp::of(Timestamp::MIN).is_some());
        assert!(Stamp::of(Timestamp::MAX).is_some());
    }
    use crate::presence::timeline::{CalendarState, Interval};

    fn cache(origin: i64, max_stale: u64) -> Cache {
        Cache::new(
            Mapping::default(),
            Arc::new(Feed::new(64, 64)),
            Clock::following_tokio(Timestamp::from_second(origin).unwrap()),
            Duration::from_secs(max_stale),
        )
    }

    fn busy(from: i64, to: i64, start: i64, end: i64) -> Timeline {
        Timeline::new(
            from,
            to,
            [Interval {
                start,
                end,
                state: CalendarState::Busy,
            }],
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_subscription_keeps_serving_until_the_bound() {
        let cache = cache(1000, 600);
        let m = Mailbox::parse("a@example.test").unwrap();
        cache.insert(m.clone(), "gw".into());
        cache.subscribed(&m);
        cache.set_timeline(&m, busy(0, 100_000, 900, 5000), cache.now());
        assert_eq!(cache.reevaluate(&m, 1000), Some(5000));
        let (_, mut feed) = cache.feed().watch(None).unwrap();

        tokio::time::advance(Duration::from_secs(10)).await;
        cache.subscription_lost(&m);
        let s = cache.read(&m, 1010).unwrap();
        assert_eq!(s.reading.availability, Availability::InAMeeting);
        assert!(s.stale, "{s:?}");
        // The scheduler is told to look again when stale data stops being served.
        assert_eq!(cache.reevaluate(&m, 1010), Some(1610));
        assert!(
            feed.try_recv().is_err(),
            "no transition on a lost subscription"
        );
        assert_eq!(
            cache.read(&m, 1610).unwrap().reading.availability,
            Availability::Unknown
        );

        // Resubscribed, then a refresh requested before that does not end staleness...
        let before = cache.now();
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.subscribed(&m);
        cache.set_timeline(&m, busy(0, 100_000, 900, 5000), before);
        assert!(cache.read(&m, 1011).unwrap().stale);
        // ...one requested after it does.
        cache.set_timeline(&m, busy(0, 100_000, 900, 5000), cache.now());
        let s = cache.read(&m, 1700).unwrap();
        assert!(!s.stale);
        assert_eq!(s.reading.availability, Availability::InAMeeting);
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_answer_arriving_late_does_not_overwrite_a_newer_one() {
        let cache = cache(1000, 600);
        let m = Mailbox::parse("c@example.test").unwrap();
        cache.insert(m.clone(), "gw".into());
        let early = cache.now();
        tokio::time::advance(Duration::from_secs(5)).await;
        cache.set_timeline(&m, busy(0, 100_000, 900, 5000), cache.now());
        cache.set_timeline(&m, Timeline::new(0, 100_000, []), early);
        assert_eq!(
            cache.read(&m, 1005).unwrap().reading.availability,
            Availability::InAMeeting,
            "the answer to the earlier request came last and was ignored"
        );
        cache.set_auto_reply(&m, AutoReply::On, cache.now());
        cache.set_auto_reply(&m, AutoReply::Off, early);
        assert_eq!(
            cache.read(&m, 1005).unwrap().reading.availability,
            Availability::Away
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_with_no_data_covering_now_reads_unknown() {
        let cache = cache(1000, 600);
        let m = Mailbox::parse("b@example.test").unwrap();
        cache.insert(m.clone(), "gw".into());
        cache.subscribed(&m);
        cache.set_timeline(&m, busy(0, 2000, 900, 5000), cache.now());
        cache.set_problem(&m, Some("GetUserAvailability failed".into()));
        let s = cache.read(&m, 1500).unwrap();
        assert_eq!(s.reading.availability, Availability::InAMeeting);
        assert_eq!(s.problem.as_deref(), Some("GetUserAvailability failed"));
        assert_eq!(
            cache.read(&m, 2500).unwrap().reading.availability,
            Availability::Unknown,
            "past the fetched window"
        );
    }
}
