//! Every fault the control API can inject does what it says, and the active faults can
//! be listed and cleared.

mod support;

use std::time::Duration;

use ews::decode_error::Problem;
use ews::ops::get_user_oof_settings;
use ews::response_code::ResponseCode;
use ews::stream::Response;
use serde_json::json;
use support::client::{self, Next, Target};
use support::sim::{self, config, mailbox, open_stream, start, subscribe_mailbox};

async fn fault(target: &Target, body: serde_json::Value) {
    let reply = client::control(target, "POST", "/faults", Some(body)).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

fn oof_request() -> String {
    sim::request(Some(&mailbox(1)), &get_user_oof_settings::body(&mailbox(1)))
}

/// Skips heartbeats; returns the first other outcome.
async fn after_heartbeats(stream: &mut client::FrameStream) -> Next {
    loop {
        match stream.next().await {
            Next::Frame(f) if matches!(&f.response, Response::GetStreamingEvents(r) if r.is_heartbeat()) =>
                {}
            other => return other,
        }
    }
}

#[tokio::test]
async fn drop_streams_ends_the_body_without_closed() {
    let (sim, target) = start(config()).await;
    let (id, _) = subscribe_mailbox(&target, 1, &[]).await;
    let mut stream = open_stream(&target, &[id], 30, &[]).await;
    assert!(matches!(stream.next().await, Next::Frame(_)));
    fault(&target, json!({"kind": "drop-streams"})).await;
    assert!(matches!(after_heartbeats(&mut stream).await, Next::End));
    sim.stop().await;
}

#[tokio::test]
async fn cut_mid_frame_leaves_a_truncated_envelope() {
    let (sim, target) = start(config()).await;
    let (id, _) = subscribe_mailbox(&target, 1, &[]).await;
    let mut stream = open_stream(&target, &[id], 30, &[]).await;
    assert!(matches!(stream.next().await, Next::Frame(_)));
    fault(&target, json!({"kind": "cut-mid-frame"})).await;
    match after_heartbeats(&mut stream).await {
        Next::Error(e) => assert_eq!(e.problem, Problem::Truncated),
        other => panic!("expected a truncated frame, got {other:?}"),
    }
    sim.stop().await;
}

#[tokio::test]
async fn malformed_frame_is_undecodable() {
    let (sim, target) = start(config()).await;
    let (id, _) = subscribe_mailbox(&target, 1, &[]).await;
    let mut stream = open_stream(&target, &[id], 30, &[]).await;
    assert!(matches!(stream.next().await, Next::Frame(_)));
    fault(&target, json!({"kind": "malformed-frame"})).await;
    match after_heartbeats(&mut stream).await {
        Next::Error(e) => assert!(matches!(e.problem, Problem::Syntax(_)), "{e}"),
        other => panic!("expected a malformed frame, got {other:?}"),
    }
    sim.stop().await;
}

#[tokio::test]
async fn expire_subscriptions_reports_them_lost() {
    let (sim, target) = start(config()).await;
    let (kept, _) = subscribe_mailbox(&target, 1, &[]).await;
    let (lost, _) = subscribe_mailbox(&target, 2, &[]).await;
    let mut stream = open_stream(&target, std::slice::from_ref(&lost), 30, &[]).await;
    assert!(matches!(stream.next().await, Next::Frame(_)));
    let reply = client::control(
        &target,
        "POST",
        "/faults",
        Some(json!({"kind": "expire-subscriptions", "mailboxes": ["user2@example.test"]})),
    )
    .await;
    assert_eq!(reply.json()["expired"], 1);
    let Next::Frame(frame) = after_heartbeats(&mut stream).await else {
        panic!()
    };
    let Response::GetStreamingEvents(r) = frame.response else {
        panic!()
    };
    assert_eq!(r.status.code, ResponseCode::ErrorSubscriptionNotFound);
    assert_eq!(r.error_subscription_ids, std::slice::from_ref(&lost));
    assert!(r.is_closed());
    // The other mailbox's subscription is untouched; the lost one stays lost.
    let mut ok = open_stream(&target, &[kept], 1, &[]).await;
    let Next::Frame(f) = ok.next().await else {
        panic!()
    };
    assert!(matches!(f.response, Response::GetStreamingEvents(r) if r.is_heartbeat()));
    let mut again = open_stream(&target, &[lost], 1, &[]).await;
    let Next::Frame(f) = again.next().await else {
        panic!()
    };
    assert!(
        matches!(f.response, Response::GetStreamingEvents(r) if r.status.code == ResponseCode::ErrorSubscriptionNotFound)
    );
    sim.stop().await;
}

#[tokio::test]
async fn server_busy_counts_down() {
    let (sim, target) = start(config()).await;
    fault(
        &target,
        json!({"kind": "server-busy", "count": 2, "back_off_ms": 1234}),
    )
    .await;
    for _ in 0..2 {
        let reply = client::ews(&target, &[], oof_request()).await;
        assert_eq!(reply.status, 500);
        let Response::Fault(f) = reply.ews() else {
            panic!()
        };
        assert_eq!(f.status.code, ResponseCode::ErrorServerBusy);
        assert_eq!(f.status.back_off_ms, Some(1234));
    }
    let reply = client::ews(&target, &[], oof_request()).await;
    assert_eq!(reply.status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn http_503_counts_down() {
    let (sim, target) = start(config()).await;
    fault(&target, json!({"kind": "http-503", "count": 1})).await;
    assert_eq!(client::ews(&target, &[], oof_request()).await.status, 503);
    assert_eq!(client::ews(&target, &[], oof_request()).await.status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn stall_heartbeats_keeps_streams_silent() {
    let (sim, target) = start(config()).await;
    let (id, _) = subscribe_mailbox(&target, 1, &[]).await;
    let mut stream = open_stream(&target, &[id], 30, &[]).await;
    assert!(matches!(stream.next().await, Next::Frame(_)));
    let stall = Duration::from_millis(600);
    // Measured from before the fault is sent: the stall starts after that at the
    // server and lasts its full length, so nothing it holds back can arrive sooner.
    let sent_at = tokio::time::Instant::now();
    fault(
        &target,
        json!({"kind": "stall-heartbeats", "duration_ms": 600}),
    )
    .await;
    // A change during the stall is not delivered until the stall ends either.
    client::control(
        &target,
        "POST",
        "/mailboxes/user1@example.test/items",
        Some(json!({"start": "2026-11-26T09:00:00Z", "end": "2026-11-26T10:00:00Z", "busy_type": "Busy"})),
    )
    .await;
    // Heartbeats sent before the stall took hold may still be on their way: the frame
    // that matters is the one carrying the change.
    loop {
        let Next::Frame(frame) = stream.next().await else {
            panic!("the stream ended")
        };
        let Response::GetStreamingEvents(r) = &frame.response else {
            panic!("not a streaming frame: {frame:?}")
        };
        if !r.notifications.is_empty() {
            break;
        }
    }
    assert!(
        sent_at.elapsed() >= stall,
        "the change arrived during the stall"
    );
    sim.stop().await;
}

#[tokio::test]
async fn slow_delays_every_response() {
    let (sim, target) = start(config()).await;
    fault(&target, json!({"kind": "slow", "delay_ms": 300})).await;
    let started = tokio::time::Instant::now();
    assert_eq!(client::ews(&target, &[], oof_request()).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.stop().await;
}

#[tokio::test]
async fn faults_are_listed_counted_and_cleared() {
    let (sim, target) = start(config()).await;
    fault(
        &target,
        json!({"kind": "server-busy", "count": 3, "back_off_ms": 50}),
    )
    .await;
    fault(&target, json!({"kind": "slow", "delay_ms": 10})).await;
    let active = client::control(&target, "GET", "/faults", None)
        .await
        .json();
    let kinds: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["server-busy", "slow"]);
    assert_eq!(active[0]["remaining"], 3);
    assert_eq!(
        client::control(&target, "DELETE", "/faults", None)
            .await
            .status,
        204
    );
    assert_eq!(
        client::control(&target, "GET", "/faults", None)
            .await
            .json(),
        json!([])
    );
    let stats = client::control(&target, "GET", "/stats", None).await.json();
    assert_eq!(
        stats["faults_injected"],
        json!({"server-busy": 1, "slow": 1})
    );
    assert_eq!(client::ews(&target, &[], oof_request()).await.status, 200);
    sim.stop().await;
}
