//! The daemon survives what real servers do: dropped streams (reconnect, no resync),
//! lost subscriptions (resubscribe and resync), throttling (wait as asked), affinity
//! across backend servers, and a connection limit it must not exceed.

mod support;

use std::time::Duration;

use serde_json::json;
use support::client;
use support::daemon::{Options, Rig, address, eventually, rig};

const WITHIN: Duration = Duration::from_secs(10);

/// Adds an hour-long OOF item now to mailbox `n`: the truth becomes away.
async fn make_away(rig: &Rig, n: usize) {
    rig.cover_now(n, "OOF").await;
    assert_eq!(rig.truth(n).await["availability"], "away");
}

async fn away(rig: &Rig, n: usize) {
    eventually(&format!("user{n} reads away"), WITHIN, || async {
        rig.presence(n).await["availability"] == "away"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_dropped_streams_without_resync() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    rig.one_stream_open().await;
    let (availability, subscribes, streams) = (
        rig.requests("GetUserAvailability").await,
        rig.requests("Subscribe").await,
        rig.requests("GetStreamingEvents").await,
    );
    rig.fault(json!({"kind": "drop-streams"})).await;
    eventually("the stream is reopened", WITHIN, || async {
        rig.requests("GetStreamingEvents").await > streams
            && rig.sim_stats().await["streams_open"] == 1
    })
    .await;
    assert_eq!(
        rig.requests("Subscribe").await,
        subscribes,
        "no resubscription for a dropped connection"
    );
    assert_eq!(
        rig.requests("GetUserAvailability").await,
        availability,
        "no resync for a dropped connection"
    );
    make_away(&rig, 4).await;
    away(&rig, 4).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribes_and_resyncs_after_lost_subscriptions() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    let (availability, subscribes) = (
        rig.requests("GetUserAvailability").await,
        rig.requests("Subscribe").await,
    );
    // The change lands while the subscriptions are gone: only a resync can find it.
    let reply = client::control(
        &rig.sim_target,
        "POST",
        "/faults",
        Some(json!({"kind": "expire-subscriptions"})),
    )
    .await;
    assert_eq!(reply.json()["expired"], 20);
    make_away(&rig, 6).await;
    eventually("every mailbox subscribed again", WITHIN, || async {
        rig.requests("Subscribe").await >= subscribes + 20
            && rig.sim_stats().await["subscriptions_live"] == 20
    })
    .await;
    away(&rig, 6).await;
    assert!(
        rig.requests("GetUserAvailability").await > availability,
        "lost subscriptions are resynced"
    );
    for n in 1..=20 {
        eventually(&format!("user{n} agrees"), WITHIN, || rig.agrees(n)).await;
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_server_busy_back_off() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    rig.one_stream_open().await;
    // Let the start-up reads finish, so the fault hits the refresh of our change.
    rig.auto_replies_read(20).await;
    rig.fault(json!({"kind": "server-busy", "count": 1, "back_off_ms": 1500}))
        .await;
    let started = tokio::time::Instant::now();
    make_away(&rig, 7).await;
    away(&rig, 7).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "retried before the server's back-off ran out"
    );
    let gateways = client::request(&rig.api, "GET", "/v1/gateways", &[], "")
        .await
        .json();
    let last_error = gateways["gateways"][0]["last_error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(last_error.contains("ErrorServerBusy"), "{gateways}");
    let throttled = rig
        .metric(
            "ews_presence_throttle_wait_seconds_sum",
            &rig.gateway_label(),
        )
        .await;
    assert_eq!(
        throttled,
        Some(1.5),
        "the server's 1.5 s is counted exactly"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_affinity_across_three_backends() {
    let mut options = Options {
        mailboxes: 30,
        ..Options::default()
    };
    options.sim.backends = 3;
    let rig = rig(options).await;
    rig.ready().await;
    eventually("all subscribed on one stream", WITHIN, || async {
        let stats = rig.sim_stats().await;
        stats["subscriptions_live"] == 30 && stats["streams_open"] == 1
    })
    .await;
    // user1, user2 and user3 live on three different backends.
    for n in 1..=3 {
        make_away(&rig, n).await;
    }
    for n in 1..=3 {
        away(&rig, n).await;
    }
    let gateways = client::request(&rig.api, "GET", "/v1/gateways", &[], "")
        .await
        .json();
    assert_eq!(gateways["gateways"][0]["subscriptions_live"], 30);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_exceeds_the_connection_limit() {
    let mut options = Options {
        mailboxes: 15,
        per_connection: 5,
        max_connections: Some(2),
        ..Options::default()
    };
    options.sim.connection_limit = 2;
    let rig = rig(options).await;
    rig.ready().await;
    eventually("two streams carry ten subscriptions", WITHIN, || async {
        let stats = rig.sim_stats().await;
        stats["streams_open"] == 2 && stats["subscriptions_live"] == 10
    })
    .await;
    // Groups are packed in address order; the last five addresses do not fit.
    let mut order: Vec<usize> = (1..=15).collect();
    order.sort_by_key(|n| address(*n));
    let (served, unserved) = order.split_at(10);
    for n in unserved {
        let p = rig.presence(*n).await;
        assert_eq!(
            p["availability"], "unknown",
            "user{n} cannot be served: {p}"
        );
    }
    for n in served {
        eventually(&format!("user{n} agrees"), WITHIN, || rig.agrees(*n)).await;
    }
    let gateway = &client::request(&rig.api, "GET", "/v1/gateways", &[], "")
        .await
        .json()["gateways"][0];
    assert_eq!(gateway["mailboxes_over_capacity"], 5);
    assert_eq!(gateway["mailboxes_unknown"], 5);
    assert_eq!(gateway["connections_open"], 2);
    let stats = rig.sim_stats().await;
    assert_eq!(stats["streams_open"], 2);
    rig.stop().await;
}
