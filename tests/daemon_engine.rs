//! The engine's behaviour against the simulator where real servers showed it wrong:
//! lost subscriptions keep presence (stale, not unknown), a closed stream is no
//! transport failure, failed automatic-reply reads are retried, membership survives
//! bursts of reloads, fresh ids rejected by the server are backed off and reported
//! (not a hot loop), and StatusEvent heartbeats are not changes.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::client::{self, SseStream};
use support::daemon::{Options, Rig, address, eventually, rig, write_mailboxes};

const WITHIN: Duration = Duration::from_secs(15);

async fn all_agree(rig: &Rig, mailboxes: impl IntoIterator<Item = usize>) {
    for n in mailboxes {
        eventually(&format!("user{n} agrees"), WITHIN, || rig.agrees(n)).await;
    }
}

/// Every presence event the feed has sent, until it stays quiet for `quiet`.
async fn drain(watch: &mut SseStream, quiet: Duration) -> Vec<Value> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(quiet, watch.next()).await {
        if event.event == "presence" {
            events.push(serde_json::from_str(&event.data).expect("JSON data"));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_subscriptions_keep_presence_instead_of_flapping_to_unknown() {
    let rig = rig(Options {
        mailboxes: 10,
        ..Options::default()
    })
    .await;
    rig.ready().await;
    all_agree(&rig, 1..=10).await;
    let mut watch = client::sse(&rig.api, "/v1/presence/watch", &[]).await;
    let (subscribes, reads) = (
        rig.requests("Subscribe").await,
        rig.requests("GetUserAvailability").await,
    );
    assert_eq!(
        rig.fault(json!({"kind": "expire-subscriptions"})).await["expired"],
        10
    );
    eventually("resubscribed and refreshed", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 10
            && rig.requests("Subscribe").await >= subscribes + 10
            && rig.requests("GetUserAvailability").await > reads
    })
    .await;
    eventually("no mailbox stale any more", WITHIN, || async {
        for n in 1..=10 {
            if rig.presence(n).await["stale"] != false {
                return false;
            }
        }
        true
    })
    .await;
    let events = drain(&mut watch, Duration::from_millis(500)).await;
    let unknown: Vec<&Value> = events
        .iter()
        .filter(|e| e["availability"] == "unknown")
        .collect();
    assert!(
        unknown.is_empty(),
        "a lost subscription must not flip presence: {unknown:?}"
    );
    all_agree(&rig, 1..=10).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_server_ends_leaves_the_gateway_reachable() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    rig.one_stream_open().await;
    let streams = rig.requests("GetStreamingEvents").await;
    rig.fault(json!({"kind": "drop-streams"})).await;
    // Sample the status until the stream is replaced: never "unreachable".
    eventually(
        "the stream is reopened",
        Duration::from_secs(10),
        || async {
            let status = rig.gateway_status().await;
            assert_eq!(status["reachable"], true, "{status}");
            rig.requests("GetStreamingEvents").await > streams
        },
    )
    .await;
    // One more look once the new stream is open.
    let status = rig.gateway_status().await;
    assert_eq!(status["reachable"], true, "{status}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_automatic_reply_read_is_retried_until_it_works() {
    // GetUserOofSettings one by one (MailTips off), the path the fault hits.
    let mut options = Options::default();
    options.sim.mail_tips_max_recipients = None;
    let rig = rig(options).await;
    rig.ready().await;
    rig.auto_replies_read(20).await;
    rig.set_oof(5, json!({"state": "Enabled"})).await;
    assert_eq!(rig.truth(5).await["availability"], "away");
    // Seven refusals in a row: each is one failed read, retried by the refresh queue
    // (the one retry layer of reads) after what the server asked, until one works.
    rig.fault(json!({"kind": "server-busy", "count": 7, "back_off_ms": 50, "operation": "GetUserOofSettings"}),
    )
    .await;
    // A resubscription re-reads automatic replies.
    rig.fault(json!({"kind": "expire-subscriptions", "mailboxes": [address(5)]}))
        .await;
    eventually("user5 reads away", WITHIN, || async {
        rig.presence(5).await["availability"] == "away"
    })
    .await;
    let failures = rig
        .metric(
            "ews_presence_refresh_failures_total",
            &format!("{},operation=\"GetUserOofSettings\"", rig.gateway_label()),
        )
        .await;
    assert_eq!(
        failures,
        Some(7.0),
        "each refusal is one failed read, retried"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_reloads_leave_exactly_the_wanted_subscriptions() {
    let mut options = Options {
        mailboxes: 120,
        ..Options::default()
    };
    options.sim.mailboxes = 240;
    let rig = rig(options).await;
    rig.ready().await;
    rig.fault(json!({"kind": "slow", "delay_ms": 5})).await;
    // Ten swaps of 120 mailboxes each way: 2,400 membership changes in a burst.
    for round in 0..10 {
        let range = if round % 2 == 1 { 121..=240 } else { 1..=120 };
        write_mailboxes(&rig.dir, range);
        rig.app.reload().expect("a valid list");
    }
    let cleared = client::control(&rig.sim_target, "DELETE", "/faults", None).await;
    assert!(cleared.status < 300);
    eventually(
        "exactly the last list is subscribed",
        Duration::from_secs(30),
        || async {
            let status = rig.gateway_status().await;
            rig.sim_stats().await["subscriptions_live"] == 120
                && status["subscriptions_live"] == 120
                && status["mailboxes"] == 120
                && status["connections_open"] == 1
        },
    )
    .await;
    let gone = client::request(
        &rig.api,
        "GET",
        &format!("/v1/presence/{}", address(1)),
        &[],
        "",
    )
    .await;
    assert_eq!(gone.status, 404);
    all_agree(&rig, [121, 150, 200, 240]).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_ids_rejected_by_the_server_are_backed_off_reported_and_not_leaked() {
    let rig = rig(Options {
        mailboxes: 2,
        ..Options::default()
    })
    .await;
    rig.ready().await;
    rig.one_stream_open().await;
    let subscribes = rig.requests("Subscribe").await;
    rig.fault(json!({"kind": "reject-subscriptions", "duration_ms": 3000}))
        .await;
    rig.fault(json!({"kind": "expire-subscriptions"})).await;
    eventually("the rejection is reported", WITHIN, || async {
        rig.gateway_status().await["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("just created"))
    })
    .await;
    // Wait out the fault, then count what it cost.
    eventually("the fault is over", WITHIN, || async {
        client::control(&rig.sim_target, "GET", "/faults", None)
            .await
            .json()
            .to_string()
            .contains("reject-subscriptions")
            .eq(&false)
    })
    .await;
    let during = rig.requests("Subscribe").await - subscribes;
    // Backoff from 250 ms doubling: about four cycles of two Subscribes in 3 s; a hot
    // loop made thousands.
    assert!(
        (2..=12).contains(&during),
        "{during} Subscribes while the server rejected fresh ids"
    );
    let rejected = rig
        .metric(
            "ews_presence_ews_requests_total",
            &format!(
                "{},operation=\"GetStreamingEvents\",outcome=\"error\"",
                rig.gateway_label()
            ),
        )
        .await
        .unwrap_or(0.0);
    assert!(
        rejected >= 2.0,
        "rejected streams count as errors: {rejected}"
    );
    eventually("recovered with no subscription leaked", WITHIN, || async {
        let status = rig.gateway_status().await;
        rig.sim_stats().await["subscriptions_live"] == 2
            && status["subscriptions_live"] == 2
            && status["connections_open"] == 1
    })
    .await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_event_heartbeats_are_not_changes() {
    let mut options = Options::default();
    options.sim.status_event_heartbeats = true;
    let rig = rig(options).await;
    rig.ready().await;
    all_agree(&rig, 1..=20).await;
    rig.auto_replies_read(20).await;
    let reads = rig.requests("GetUserAvailability").await;
    let events = rig.gateway_status().await["events_received"]
        .as_u64()
        .unwrap();
    // Five heartbeats, each with a StatusEvent for every one of the 20 subscriptions.
    eventually("five StatusEvent heartbeats", WITHIN, || async {
        rig.gateway_status().await["events_received"]
            .as_u64()
            .unwrap()
            >= events + 100
    })
    .await;
    assert_eq!(
        rig.requests("GetUserAvailability").await,
        reads,
        "a StatusEvent is a heartbeat, not a change"
    );
    rig.stop().await;
}
