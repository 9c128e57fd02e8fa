//! The presence cache: the only owner of the `DashMap` from mailbox to its calendar
//! timeline, automatic replies and sync status. Reads hand out owned snapshots, never
//! guards. Whenever a mailbox's availability changes (new data, a sync failure, or the
//! clock passing an edge) the change is published to the feed here, once.

use std::sync::Arc;

use dashmap::DashMap;
use jiff::Timestamp;
use serde_json::json;

use super::feed::Feed;
use super::timeline::{AutoReply, Availability, Mapping, Reading, Timeline, read};
use crate::api::metrics;
use crate::ews::types::Mailbox;

#[derive(Debug, Clone)]
struct Entry {
    gateway: Arc<str>,
    timeline: Option<Arc<Timeline>>,
    auto_reply: AutoReply,
    synced_at: Option<Timestamp>,
    /// Why the mailbox cannot be served (unsubscribable, over capacity, failing).
    problem: Option<Arc<str>>,
    /// The availability last published.
    published: Availability,
    /// The next instant its availability may change, when scheduled.
    next_edge: Option<i64>,
}

/// Presence of one mailbox at an instant, ready for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The mailbox.
    pub mailbox: Mailbox,
    /// Its gateway.
    pub gateway: Arc<str>,
    /// The reading.
    pub reading: Reading,
    /// When its calendar was last fetched.
    pub synced_at: Option<Timestamp>,
}

fn rfc3339(secs: Option<i64>) -> serde_json::Value {
    secs.and_then(|s| Timestamp::from_second(s).ok())
        .map_or(serde_json::Value::Null, |t| t.to_string().into())
}

/// Appends `value` as a JSON string.
fn push_json_str(out: &mut String, value: &str) {
    // serde_json's escaping of a plain string cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
}

fn push_time(out: &mut String, secs: Option<i64>) {
    match secs.and_then(|s| Timestamp::from_second(s).ok()) {
        Some(t) => {
            out.push('"');
            out.push_str(&t.to_string());
            out.push('"');
        }
        None => out.push_str("null"),
    }
}

impl Snapshot {
    /// Appends the API's JSON object to `out`, written directly (the hot path of batch
    /// queries and of the change feed); same fields and values as [`Snapshot::to_json`].
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"mailbox\":");
        push_json_str(out, self.mailbox.as_str());
        out.push_str(",\"availability\":\"");
        out.push_str(self.reading.availability.as_str());
        out.push_str("\",\"calendar\":");
        match self.reading.calendar {
            Some(c) => {
                out.push('"');
                out.push_str(c.as_str());
                out.push('"');
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"out_of_office\":");
        out.push_str(if self.reading.out_of_office {
            "true"
        } else {
            "false"
        });
        out.push_str(",\"since\":");
        push_time(out, self.reading.since);
        out.push_str(",\"until\":");
        push_time(out, self.reading.until);
        out.push_str(",\"synced_at\":");
        match self.synced_at {
            Some(t) => push_json_str(out, &t.to_string()),
            None => out.push_str("null"),
        }
        out.push_str(",\"gateway\":");
        push_json_str(out, &self.gateway);
        out.push('}');
    }

    /// The API's JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "mailbox": self.mailbox.as_str(),
            "availability": self.reading.availability.as_str(),
            "calendar": self.reading.calendar.map(|c| c.as_str()),
            "out_of_office": self.reading.out_of_office,
            "since": rfc3339(self.reading.since),
            "until": rfc3339(self.reading.until),
            "synced_at": self.synced_at.map(|t| t.to_string()),
            "gateway": &*self.gateway,
        })
    }
}

/// The cache.
#[derive(Debug)]
pub struct Cache {
    entries: DashMap<Mailbox, Entry>,
    mapping: Mapping,
    feed: Arc<Feed>,
}

impl Cache {
    /// An empty cache publishing to `feed`.
    pub fn new(mapping: Mapping, feed: Arc<Feed>) -> Cache {
        Cache {
            entries: DashMap::new(),
            mapping,
            feed,
        }
    }

    /// The feed changes go to.
    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// Adds a configured mailbox (unknown until synced); keeps an existing entry.
    pub fn insert(&self, mailbox: Mailbox, gateway: Arc<str>) {
        self.entries.entry(mailbox).or_insert(Entry {
            gateway,
            timeline: None,
            auto_reply: AutoReply::Off,
            synced_at: None,
            problem: None,
            published: Availability::Unknown,
            next_edge: None,
        });
    }

    /// Forgets a mailbox.
    pub fn remove(&self, mailbox: &Mailbox) {
        self.entries.remove(mailbox);
    }

    /// Whether a mailbox is configured.
    pub fn contains(&self, mailbox: &Mailbox) -> bool {
        self.entries.contains_key(mailbox)
    }

    /// Every configured mailbox.
    pub fn mailboxes(&self) -> Vec<Mailbox> {
        self.entries.iter().map(|e| e.key().clone()).collect()
    }

    /// How many mailboxes are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn reading(&self, entry: &Entry, now: i64) -> Reading {
        match (&entry.timeline, &entry.problem) {
            (Some(timeline), None) => read(timeline, &entry.auto_reply, &self.mapping, now),
            (Some(timeline), Some(_)) if timeline.state_at(now).is_some() => {
                // Failing, but what we have still covers now: serve it.
                read(timeline, &entry.auto_reply, &self.mapping, now)
            }
            _ => Reading {
                availability: Availability::Unknown,
                calendar: None,
                out_of_office: false,
                since: None,
                until: None,
            },
        }
    }

    /// Presence of `mailbox` at `now` (seconds), if configured.
    pub fn read(&self, mailbox: &Mailbox, now: i64) -> Option<Snapshot> {
        let entry = self.entries.get(mailbox)?;
        let reading = self.reading(&entry, now);
        Some(Snapshot {
            mailbox: mailbox.clone(),
            gateway: entry.gateway.clone(),
            reading,
            synced_at: entry.synced_at,
        })
    }

    /// Re-reads `mailbox` at `now`; publishes if its availability changed. Returns the
    /// next instant to look again (the next change, or the end of the fetched window).
    pub fn reevaluate(&self, mailbox: &Mailbox, now: i64) -> Option<i64> {
        let (snapshot, changed, next_edge) = {
            let mut entry = self.entries.get_mut(mailbox)?;
            let reading = self.reading(&entry, now);
            let changed = reading.availability != entry.published;
            entry.published = reading.availability;
            // Wake at the next change, or where the fetched window runs out (unknown
            // from then on unless a refresh extends it).
            let window_end = entry
                .timeline
                .as_ref()
                .map(|t| t.window().1)
                .filter(|end| *end > now);
            entry.next_edge = match (reading.until, window_end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let next_edge = entry.next_edge;
            let snapshot = Snapshot {
                mailbox: mailbox.clone(),
                gateway: entry.gateway.clone(),
                reading,
                synced_at: entry.synced_at,
            };
            (snapshot, changed, next_edge)
        };
        if changed {
            metrics::transition(snapshot.reading.availability);
            let mut json = String::with_capacity(240);
            snapshot.write_json(&mut json);
            self.feed.publish(json);
        }
        next_edge
    }

    /// Whether `at` is still the next edge scheduled for `mailbox`.
    pub fn edge_is_current(&self, mailbox: &Mailbox, at: i64) -> bool {
        self.entries
            .get(mailbox)
            .is_some_and(|e| e.next_edge == Some(at))
    }

    /// Stores freshly fetched calendar data.
    pub fn set_timeline(&self, mailbox: &Mailbox, timeline: Timeline, at: Timestamp) {
        if let Some(mut entry) = self.entries.get_mut(mailbox) {
            entry.timeline = Some(Arc::new(timeline));
            entry.synced_at = Some(at);
            entry.problem = None;
        }
    }

    /// Stores freshly fetched automatic-reply settings.
    pub fn set_auto_reply(&self, mailbox: &Mailbox, auto_reply: AutoReply) {
        if let Some(mut entry) = self.entries.get_mut(mailbox) {
            entry.auto_reply = auto_reply;
        }
    }

    /// Records why a mailbox cannot be served; with no usable data it reads unknown.
    pub fn set_problem(&self, mailbox: &Mailbox, problem: Option<Arc<str>>) {
        if let Some(mut entry) = self.entries.get_mut(mailbox) {
            entry.problem = problem;
        }
    }

    /// Drops a mailbox's data so it reads unknown until its next sync.
    pub fn forget_data(&self, mailbox: &Mailbox) {
        if let Some(mut entry) = self.entries.get_mut(mailbox) {
            entry.timeline = None;
            entry.synced_at = None;
        }
    }

    /// Mailboxes by current availability, for metrics.
    pub fn counts(&self, now: i64) -> [(Availability, usize); 4] {
        let mut counts = Availability::ALL.map(|a| (a, 0));
        for entry in self.entries.iter() {
            let a = self.reading(&entry, now).availability;
            if let Some(slot) = counts.iter_mut().find(|(k, _)| *k == a) {
                slot.1 += 1;
            }
        }
        counts
    }

    /// Mailboxes never synced and with no recorded problem (readiness).
    pub fn pending(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.synced_at.is_none() && e.problem.is_none())
            .count()
    }

    /// Mailboxes of `gateway` currently unknown.
    pub fn unknown_in(&self, gateway: &str, now: i64) -> usize {
        self.entries
            .iter()
            .filter(|e| {
                &*e.gateway == gateway && self.reading(e, now).availability == Availability::Unknown
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::timeline::{CalendarState, Interval};

    #[test]
    fn direct_json_equals_the_value_form() {
        let feed = Arc::new(Feed::new(8, 8));
        let cache = Cache::new(Mapping::default(), feed);
        let m = Mailbox::parse("a\\b@example.test").unwrap();
        cache.insert(m.clone(), "gw\\1".into());
        let read = |cache: &Cache| {
            let s = cache.read(&m, 150).unwrap();
            let mut out = String::new();
            s.write_json(&mut out);
            (
                serde_json::from_str::<serde_json::Value>(&out).unwrap(),
                s.to_json(),
            )
        };
        let (direct, value) = read(&cache);
        assert_eq!(direct, value, "unsynced");
        let tl = Timeline::new(
            0,
            1000,
            [Interval {
                start: 100,
                end: 200,
                state: CalendarState::Busy,
            }],
        );
        cache.set_timeline(&m, tl, Timestamp::from_second(50).unwrap());
        let (direct, value) = read(&cache);
        assert_eq!(direct, value, "synced");
        assert_eq!(direct["availability"], "in-a-meeting");
    }
}
