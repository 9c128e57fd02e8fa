//! The driver against a fake EWS port on a paused clock: it executes the state
//! machine's outputs (calls, refreshes, cache updates, status), enforces the silence
//! watchdog on whole frames, follows membership from its `watch` channel, and drains on
//! stop.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::driver::{GroupContext, run};
use super::state::{Frame, GroupState, GroupStatus};
use crate::config::PresenceConfig;
use crate::engine::Shared;
use crate::engine::backoff::Backoff;
use crate::engine::gateway::Gateway;
use crate::engine::group::port::{FrameSource, GroupRoute, NewSubscription, Port, StreamItem};
use crate::engine::refresh::RefreshQueue;
use crate::presence::cache::Cache;
use crate::presence::clock::Clock;
use crate::presence::feed::Feed;
use crate::presence::schedule::Scheduler;
use crate::presence::timeline::{Availability, CalendarState, Interval, Mapping, Timeline};
use crate::presence::updates::Updates;
use common::mailbox::Mailbox;
use ews::error::EwsError;
use ews::types::SubscriptionId;

const HEARTBEAT: Duration = Duration::from_secs(45);
/// Deadline for anything the driver should do (virtual time: it costs nothing).
const SOON: Duration = Duration::from_secs(600);

use common::mailbox::numbered as m;

/// A stream the test feeds.
struct FakeStream(mpsc::Receiver<StreamItem>);

impl FrameSource for FakeStream {
    async fn next(&mut self) -> StreamItem {
        match self.0.recv().await {
            Some(item) => item,
            None => std::future::pending().await,
        }
    }
}

/// A stream the driver asked for: its ids and the sender that feeds it.
struct Opened {
    ids: Vec<SubscriptionId>,
    feed: mpsc::Sender<StreamItem>,
}

#[derive(Default)]
struct Calls {
    subscribed: Vec<Mailbox>,
    unsubscribed: Vec<SubscriptionId>,
}

struct FakePort {
    calls: Mutex<Calls>,
    streams: mpsc::UnboundedSender<Opened>,
}

impl Port for FakePort {
    type Stream = FakeStream;

    async fn subscribe(
        &self,
        mailbox: Mailbox,
        _route: GroupRoute,
    ) -> Result<NewSubscription, EwsError> {
        let mut calls = self.calls.lock().unwrap();
        calls.subscribed.push(mailbox.clone());
        let id = SubscriptionId::new(format!("{mailbox}#{}", calls.subscribed.len())).unwrap();
        Ok((id, None))
    }

    async fn open_stream(
        &self,
        ids: Vec<SubscriptionId>,
        _route: GroupRoute,
    ) -> Result<FakeStream, EwsError> {
        let (feed, rx) = mpsc::channel(16);
        let _ = self.streams.send(Opened { ids, feed });
        Ok(FakeStream(rx))
    }

    async fn unsubscribe(
        &self,
        id: SubscriptionId,
        _mailbox: Mailbox,
        _route: GroupRoute,
    ) -> Result<(), EwsError> {
        self.calls.lock().unwrap().unsubscribed.push(id);
        Ok(())
    }
}

struct Harness {
    port: Arc<FakePort>,
    streams: mpsc::UnboundedReceiver<Opened>,
    members: watch::Sender<BTreeSet<Mailbox>>,
    status: watch::Receiver<GroupStatus>,
    refresh: Arc<RefreshQueue>,
    cache: Arc<Cache>,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

fn start(members: &[usize]) -> Harness {
    let clock = Clock::following_tokio(Timestamp::from_second(1_800_000_000).unwrap());
    let cache = Arc::new(Cache::new(
        Mapping::default(),
        Arc::new(Feed::new(64, 64)),
        clock,
        Duration::from_secs(900),
    ));
    let presence = PresenceConfig {
        horizon: Duration::from_secs(86_400),
        debounce: Duration::from_millis(100),
        oof_refresh: Duration::from_secs(300),
        oof_verify: Duration::from_secs(14_400),
        heartbeat: HEARTBEAT,
        max_stale: Duration::from_secs(900),
        mapping: Mapping::default(),
    };
    let shared = Arc::new(Shared {
        updates: Updates::new(cache.clone(), Arc::new(Scheduler::default())),
        presence,
    });
    let config = crate::config::tests::gateway_config("gw", "http://127.0.0.1:9/EWS");
    let tls = ews::transport::client_tls(None, std::path::Path::new("certs")).unwrap();
    let gateway = Arc::new(Gateway::new(
        config.clone(),
        crate::engine::gateway::endpoints::Endpoints::new(&config, tls).expect("endpoints"),
    ));
    let refresh = Arc::new(RefreshQueue::new(
        clock,
        crate::engine::refresh::state::Settings::of(&config, &shared.presence),
    ));
    let set: BTreeSet<Mailbox> = members.iter().map(|n| m(*n)).collect();
    for mailbox in &set {
        cache.insert(mailbox.clone(), "gw".into());
        refresh.add_member(mailbox);
    }
    let (streams_tx, streams) = mpsc::unbounded_channel();
    let port = Arc::new(FakePort {
        calls: Mutex::new(Calls::default()),
        streams: streams_tx,
    });
    let state = GroupState::new(
        set.iter().cloned(),
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30)).unwrap(),
        Backoff::new(Duration::from_secs(60), Duration::from_secs(900)).unwrap(),
    )
    .unwrap();
    let (members_tx, members_rx) = watch::channel(set);
    let (status_tx, status) = watch::channel(state.status());
    let stop = CancellationToken::new();
    let context = GroupContext {
        port: port.clone(),
        gateway,
        shared,
        refresh: refresh.clone(),
        tracker: TaskTracker::new(),
    };
    let done = tokio::spawn(run(state, context, members_rx, status_tx, stop.clone()));
    Harness {
        port,
        streams,
        members: members_tx,
        status,
        refresh,
        cache,
        stop,
        done,
    }
}

impl Harness {
    async fn next_stream(&mut self) -> Opened {
        tokio::time::timeout(SOON, self.streams.recv())
            .await
            .expect("a stream is opened")
            .expect("the port lives")
    }

    /// The next stream, once it has delivered a healthy frame and reads open.
    async fn open_healthy(&mut self) -> Opened {
        let opened = self.next_stream().await;
        opened
            .feed
            .send(StreamItem::Frame(Frame::default()))
            .await
            .unwrap();
        self.status_until("open", |s| s.stream_open).await;
        opened
    }

    async fn status_until(&mut self, what: &str, check: impl Fn(&GroupStatus) -> bool) {
        tokio::time::timeout(SOON, self.status.wait_for(|s| check(s)))
            .await
            .unwrap_or_else(|_| panic!("status never became {what}"))
            .expect("the driver publishes");
    }
}

#[tokio::test(start_paused = true)]
async fn subscribes_streams_and_refreshes_what_changed() {
    let mut h = start(&[1, 2]);
    let opened = h.next_stream().await;
    assert_eq!(opened.ids.len(), 2);
    assert_eq!(h.port.calls.lock().unwrap().subscribed, [m(1), m(2)]);
    // Both were refreshed in full after subscribing.
    assert!(h.refresh.is_queued(&m(1)) && h.refresh.is_queued(&m(2)));
    opened
        .feed
        .send(StreamItem::Frame(Frame::default()))
        .await
        .unwrap();
    h.status_until("streaming", |s| s.stream_open && s.subscribed == 2)
        .await;
    h.refresh.clear_for_test();
    let changed = opened.ids[1].clone();
    opened
        .feed
        .send(StreamItem::Frame(Frame {
            changed: vec![changed],
            ..Frame::default()
        }))
        .await
        .unwrap();
    tokio::time::timeout(SOON, async {
        while !h.refresh.is_queued(&m(2)) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the changed mailbox is queued for a refresh");
    assert!(!h.refresh.is_queued(&m(1)), "only the changed one");
    h.stop.cancel();
    h.done.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stream_without_a_whole_frame_for_twice_the_heartbeat_is_replaced() {
    let mut h = start(&[1]);
    let first = h.open_healthy().await;
    let opened_at = tokio::time::Instant::now();
    // Nothing more: after 2 x heartbeat the driver drops it and, after a backoff,
    // opens another with the same ids.
    let second = h.next_stream().await;
    let waited = opened_at.elapsed();
    assert!(
        waited >= HEARTBEAT * 2 && waited <= HEARTBEAT * 2 + Duration::from_secs(1),
        "{waited:?}"
    );
    assert_eq!(second.ids, first.ids);
    assert!(first.feed.is_closed(), "the silent stream was dropped");
    assert_eq!(
        h.port.calls.lock().unwrap().subscribed.len(),
        1,
        "no resubscribe"
    );
    h.stop.cancel();
    h.done.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn membership_follows_the_watch_channel() {
    let mut h = start(&[1, 2]);
    h.open_healthy().await;
    h.members.send_modify(|set| {
        set.remove(&m(1));
        set.insert(m(3));
    });
    let second = h.next_stream().await;
    assert_eq!(second.ids.len(), 2);
    assert!(
        second
            .ids
            .iter()
            .any(|id| id.as_str().starts_with("user3@"))
    );
    assert!(
        !second
            .ids
            .iter()
            .any(|id| id.as_str().starts_with("user1@"))
    );
    tokio::time::timeout(SOON, async {
        while h.port.calls.lock().unwrap().unsubscribed.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the removed mailbox is unsubscribed");
    let unsubscribed = h.port.calls.lock().unwrap().unsubscribed.clone();
    assert_eq!(unsubscribed.len(), 1);
    assert!(unsubscribed[0].as_str().starts_with("user1@"));
    h.stop.cancel();
    h.done.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_lost_subscription_marks_the_mailbox_stale_not_unknown() {
    let mut h = start(&[1]);
    let opened = h.open_healthy().await;
    let now = h.cache.clock().now_secs();
    let busy = Timeline::new(
        now - 3600,
        now + 86_400,
        [Interval {
            start: now - 60,
            end: now + 3600,
            state: CalendarState::Busy,
        }],
    );
    h.cache.set_timeline(&m(1), busy, h.cache.now());
    assert!(!h.cache.read(&m(1), now).unwrap().stale);
    opened
        .feed
        .send(StreamItem::Frame(Frame {
            error_ids: opened.ids.clone(),
            closed: true,
            ..Frame::default()
        }))
        .await
        .unwrap();
    h.status_until("resubscribing", |s| s.waiting.is_some())
        .await;
    let now = h.cache.clock().now_secs();
    let snapshot = h.cache.read(&m(1), now).unwrap();
    assert!(snapshot.stale, "{snapshot:?}");
    assert_eq!(snapshot.reading.availability, Availability::InAMeeting);
    // Resubscribed after the backoff, with the old id unsubscribed.
    let again = h.next_stream().await;
    assert_ne!(again.ids, opened.ids);
    assert_eq!(h.port.calls.lock().unwrap().unsubscribed, opened.ids);
    h.stop.cancel();
    h.done.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stop_unsubscribes_everything_then_ends() {
    let mut h = start(&[1, 2, 3]);
    let opened = h.next_stream().await;
    h.stop.cancel();
    tokio::time::timeout(SOON, &mut h.done)
        .await
        .expect("the driver ends")
        .unwrap();
    let mut unsubscribed = h.port.calls.lock().unwrap().unsubscribed.clone();
    unsubscribed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(unsubscribed, opened.ids);
    assert_eq!(h.status.borrow().phase, "stopped");
}
