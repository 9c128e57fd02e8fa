//! Where the daemon's bytes per mailbox go: each per-mailbox structure is built for N
//! mailboxes through the crate's own types, in the order the daemon fills them, and
//! the heap it takes is counted by a counting allocator around mimalloc (the daemon's
//! allocator). These are the bytes the structures ask for; the `scale` scenario's
//! peak RSS adds what the allocator keeps around them, connection buffers, tasks and
//! the start-up transient.
//!
//! Rows: the mailbox keys (one shared address per mailbox, every index holds a
//! reference), the cache entry, the timeline (three meetings in the window), the
//! boundary scheduler's wake-up, the subscription maps of the connection groups (200
//! mailboxes per group, an id of Exchange's length per mailbox, and the engine's
//! membership of each group), the refresh queue's membership, and the change feed
//! (its replay ring is fixed; its live channel has room for every mailbox changing at
//! once). Apart, what the replay ring holds once full of single-change publications,
//! which is where a long-running daemon's memory goes on growing until it levels off.
//!
//! Run: `cargo bench --bench memory -- [MAILBOXES]` (default 1,000,000). Prints one
//! JSON line. Without `--bench` (as `cargo test --all-targets` runs it) a small pass
//! checks that every row was counted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::mailbox::Mailbox;
use ews::types::SubscriptionId;
use ews_presence::engine::backoff::Backoff;
use ews_presence::engine::group::state::{GroupState, Input};
use ews_presence::engine::refresh::RefreshQueue;
use ews_presence::engine::refresh::state::Settings;
use ews_presence::presence::cache::Cache;
use ews_presence::presence::clock::Clock;
use ews_presence::presence::feed::Feed;
use ews_presence::presence::schedule::Scheduler;
use ews_presence::presence::timeline::{CalendarState, Interval, Mapping, Timeline};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

mod harness;

#[global_allocator]
static GLOBAL: harness::counting::Counting = harness::counting::Counting;

use harness::counting::live;

/// An id as long as Exchange's (base64 of a GUID, the server's FQDN and more).
fn subscription_id(n: usize) -> SubscriptionId {
    SubscriptionId::new(format!(
        "JwBleGNoMDEuZXhhbXBsZS50ZXN0EAAAAJFK4NnstRVFlF1NQaCP{n:012}XGkYiHJpukmWTKXM27pVgQ=="
    ))
    .expect("id")
}

/// Mailboxes per connection group (Microsoft's recommended maximum per stream).
const GROUP: usize = 200;
/// The daemon's change feed: replay ring and live channel (see `app.rs`).
const FEED_REPLAY: usize = ews_presence::presence::feed::REPLAY;

fn measure(mailboxes: usize) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let mut rows = Map::new();
    let per = |bytes: isize, count: usize| {
        json!((bytes as f64 / count.max(1) as f64 * 10.0).round() / 10.0)
    };
    let mut row = |name: &str, bytes: isize| {
        rows.insert(name.to_owned(), per(bytes, mailboxes));
    };

    // The change feed first: its size does not depend on the mailbox count.
    let before = live();
    let feed = Arc::new(Feed::new(
        FEED_REPLAY,
        ews_presence::presence::feed::lag_for(mailboxes),
    ));
    let clock = Clock::System;
    let now = clock.now_secs();
    let cache = Cache::new(
        Mapping::default(),
        feed.clone(),
        clock,
        Duration::from_secs(900),
    );
    let feed_fixed = live() - before;

    let before = live();
    let keys: Vec<Mailbox> = (0..mailboxes)
        .map(|n| Mailbox::parse(&format!("user{n}@example.test")).expect("address"))
        .collect();
    row(
        "mailbox_key",
        live() - before - (keys.capacity() * size_of::<Mailbox>()) as isize,
    );

    let before = live();
    let gateway: Arc<str> = "exchange".into();
    for m in &keys {
        cache.insert(m.clone(), gateway.clone());
        cache.subscribed(m);
    }
    row("cache_entry", live() - before);

    let before = live();
    let requested = clock.now();
    for m in &keys {
        let meetings = (0..3).map(|k| Interval {
            start: now + 3600 * (1 + 2 * k),
            end: now + 3600 * (2 + 2 * k),
            state: CalendarState::Busy,
        });
        cache.set_timeline(
            m,
            Timeline::new(now - 3600, now + 86_400, meetings),
            requested,
        );
    }
    row("timeline_3_meetings", live() - before);

    // Fill the feed's ring as a running daemon's is; then the scheduler's wake-ups
    // (each first read publishes, and a full ring only replaces what it evicts).
    let (_, live_changes) = feed.watch(None).expect("watch");
    drop(live_changes);
    let scheduler = Scheduler::default();
    for m in keys.iter().take(FEED_REPLAY) {
        scheduler.refresh(&cache, m);
    }
    let before = live();
    for m in keys.iter().skip(FEED_REPLAY) {
        scheduler.refresh(&cache, m);
    }
    let scheduled = keys.len().saturating_sub(FEED_REPLAY);
    let scheduler_bytes = live() - before;

    let before = live();
    let t0 = Instant::now();
    let mut groups = Vec::new();
    let mut memberships = Vec::new();
    for (g, chunk) in keys.chunks(GROUP).enumerate() {
        let backoff = || Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut state = GroupState::new(
            chunk.iter().cloned(),
            backoff().expect("backoff"),
            backoff().expect("backoff"),
        )
        .expect("a group");
        state.on(t0, Input::Start);
        for (i, m) in chunk.iter().enumerate() {
            state.on(
                t0,
                Input::Subscribed {
                    mailbox: m.clone(),
                    result: Ok((subscription_id(g * GROUP + i), None)),
                },
            );
        }
        groups.push(state);
        memberships.push(chunk.iter().cloned().collect::<BTreeSet<Mailbox>>());
    }
    row("subscription_maps", live() - before);

    let before = live();
    let queue = RefreshQueue::new(
        clock,
        Settings {
            gateway: "memory".into(),
            debounce: Duration::from_secs(1),
            oof_refresh: Duration::from_secs(300),
            oof_verify: Duration::from_secs(14_400),
            mail_tips_possible: true,
            calendar_batch: ews_presence::engine::refresh::state::MAX_MAILBOXES,
            auto_replies: None,
            names: ews_presence::engine::refresh::state::EWS_NAMES,
        },
    );
    for m in &keys {
        queue.add_member(m);
    }
    row("refresh_queue", live() - before);
    rows.insert("scheduler_wake_up".into(), per(scheduler_bytes, scheduled));

    // A storm with a watcher connected: every mailbox changes once, published in
    // batches of 1,024 as the scheduler does. The live channel keeps each batch in its
    // slot until the channel comes round to it again, `feed_lag` publications later.
    let (_, watcher) = feed.watch(None).expect("watch");
    let before = live();
    for chunk in keys.chunks(1024) {
        feed.publish_all(chunk.iter().filter_map(|m| cache.read(m, now)).collect());
    }
    let storm_bytes = live() - before;
    drop(watcher);

    // The replay ring of a daemon that has run long enough: every change kept is a
    // batch of its own (edges and refreshes publish one change at a time), until the
    // ring holds FEED_REPLAY of them. No watcher: nothing stays in the live channel.
    let ring = Feed::new(
        FEED_REPLAY,
        ews_presence::presence::feed::lag_for(mailboxes),
    );
    let before = live();
    for m in keys.iter().cycle().take(FEED_REPLAY) {
        if let Some(snapshot) = cache.read(m, now) {
            ring.publish(snapshot);
        }
    }
    let ring_full = live() - before;
    drop(ring);

    let total: f64 = rows.values().filter_map(Value::as_f64).sum();
    let report = json!({
        "bench": "memory", "mailboxes": mailboxes, "group": GROUP,
        "bytes_per_mailbox": rows,
        "sum_per_mailbox": (total * 10.0).round() / 10.0,
        "feed_mib": (feed_fixed as f64 / 1048576.0 * 10.0).round() / 10.0,
        "feed_per_mailbox": (feed_fixed as f64 / mailboxes as f64 * 10.0).round() / 10.0,
        "feed_after_storm_per_mailbox": per(storm_bytes, mailboxes),
        "feed_replay_full_mib": (ring_full as f64 / 1048576.0 * 100.0).round() / 100.0,
        "feed_replay_bytes_per_change": per(ring_full, FEED_REPLAY),
    });
    drop((groups, memberships, queue, scheduler, cache, keys));
    report
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mailboxes = if measuring {
        args.first()
            .and_then(|a| a.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        50_000
    };
    let report = measure(mailboxes);
    println!("{report}");
    if !measuring {
        // Smoke: every structure took room for each mailbox, within reason.
        for (name, bytes) in report["bytes_per_mailbox"].as_object().expect("rows") {
            let bytes = bytes.as_f64().unwrap_or(0.0);
            assert!(
                (1.0..2000.0).contains(&bytes),
                "{name}: {bytes} bytes per mailbox"
            );
        }
    }
}
