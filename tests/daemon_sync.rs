//! The daemon against the simulator's ground truth: initial sync, a change reflected
//! after the debounce, a meeting edge flipping presence with no EWS traffic, and
//! automatic replies.

mod support;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};
use support::client::{self, SseStream};
use support::daemon::{Options, Rig, address, eventually, rig};

const SYNC: Duration = Duration::from_secs(10);

async fn create(rig: &Rig, n: usize, start: Timestamp, end: Timestamp, busy: &str) -> String {
    let reply = client::control(
        &rig.sim_target,
        "POST",
        &format!("/mailboxes/{}/items", address(n)),
        Some(json!({"start": start.to_string(), "end": end.to_string(), "busy_type": busy})),
    )
    .await;
    assert_eq!(reply.status, 201);
    reply.json()["item_id"].as_str().unwrap().to_owned()
}

/// Reads SSE events until one for `mailbox` with `availability`.
async fn wait_event(watch: &mut SseStream, mailbox: &str, availability: &str) -> Value {
    loop {
        let event = watch.next().await.expect("the feed stays open");
        assert_eq!(event.event, "presence");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        if data["mailbox"] == mailbox && data["availability"] == availability {
            return data;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_matches_the_truth() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    for n in 1..=20 {
        eventually(&format!("user{n} agrees with the truth"), SYNC, || {
            rig.agrees(n)
        })
        .await;
        let p = rig.presence(n).await;
        assert!(p["synced_at"].is_string(), "{p}");
        assert_eq!(p["gateway"], rig.gateway.as_str());
    }
    let not_configured =
        client::request(&rig.api, "GET", "/v1/presence/user55@example.test", &[], "").await;
    assert_eq!(not_configured.status, 404);
    assert_eq!(not_configured.json()["error"], "not-configured");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_reflected_after_the_debounce() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    let n = rig.available_mailbox(1, 20).await;
    let mut watch = client::sse(&rig.api, "/v1/presence/watch", &[]).await;
    assert_eq!(watch.status, 200);
    let now = Timestamp::now();
    create(&rig, n, now - 5.minutes(), now + 1.hour(), "Busy").await;
    let event = wait_event(&mut watch, &address(n), "in-a-meeting").await;
    assert_eq!(event["calendar"], "busy");
    assert_eq!(rig.presence(n).await["availability"], "in-a-meeting");
    assert_eq!(rig.truth(n).await["availability"], "in-a-meeting");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_edge_flips_presence_without_ews_traffic() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    let n = rig.available_mailbox(1, 20).await;
    let start = Timestamp::from_second(Timestamp::now().as_second() + 3).unwrap();
    let end = start + 2.seconds();
    create(&rig, n, start, end, "Busy").await;
    // Wait until the daemon has fetched the new meeting (it announces the edge).
    eventually("the meeting is known", SYNC, || async {
        rig.presence(n).await["until"] == start.to_string()
    })
    .await;
    assert_eq!(rig.presence(n).await["availability"], "available");
    let before = rig.sim_stats().await["requests"].clone();
    let mut watch = client::sse(&rig.api, "/v1/presence/watch", &[]).await;
    let started = wait_event(&mut watch, &address(n), "in-a-meeting").await;
    assert!(
        Timestamp::now() >= start,
        "flipped before the meeting started"
    );
    assert_eq!(started["since"], start.to_string());
    assert_eq!(started["until"], end.to_string());
    let ended = wait_event(&mut watch, &address(n), "available").await;
    assert!(Timestamp::now() >= end);
    assert_eq!(ended["since"], end.to_string());
    let after = rig.sim_stats().await["requests"].clone();
    assert_eq!(
        before["GetUserAvailability"], after["GetUserAvailability"],
        "the edges came from the timeline, not from Exchange"
    );
    assert_eq!(before["Subscribe"], after["Subscribe"]);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_replies_show_as_away() {
    let rig = rig(Options {
        oof_refresh_secs: 1,
        ..Options::default()
    })
    .await;
    rig.ready().await;
    let n = rig.available_mailbox(1, 20).await;
    rig.set_oof(n, json!({"state": "Enabled"})).await;
    assert_eq!(rig.truth(n).await["availability"], "away");
    eventually("automatic replies reach the daemon", SYNC, || async {
        let p = rig.presence(n).await;
        p["availability"] == "away" && p["out_of_office"] == true
    })
    .await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_syncing_under_constant_churn() {
    // 40 changes per second over 20 mailboxes: the gateway is never quiet, but each
    // mailbox is, often enough; every one must still be synced and keep up.
    let mut options = Options {
        debounce_ms: 300,
        ..Options::default()
    };
    options.sim.mailboxes = 20;
    options.sim.churn = 40.0;
    let rig = rig(options).await;
    rig.ready().await;
    for n in 1..=20 {
        assert!(
            rig.presence(n).await["synced_at"].is_string(),
            "user{n} never synced"
        );
    }
    let first = rig.presence(1).await["synced_at"].clone();
    eventually(
        "user1 is refreshed again while churn goes on",
        SYNC,
        || async { rig.presence(1).await["synced_at"] != first },
    )
    .await;
    rig.stop().await;
}
