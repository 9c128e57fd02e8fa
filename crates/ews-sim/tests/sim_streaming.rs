//! The simulator's streaming subscriptions behave as Exchange's do where the daemon can
//! tell: heartbeats, event shapes, Closed at ConnectionTimeout, queueing while no
//! stream is open, idle expiry, and the 200-id limit.

mod support;

use std::time::Duration;

use ews::ops::get_streaming_events::{self, EventKind, StreamingResponse};
use ews::response_code::ResponseCode;
use ews::stream::Response;
use serde_json::json;
use support::client::{self, FrameStream, Next};
use support::sim::{self, config, open_stream, start, subscribe_mailbox};

fn streaming(next: Next) -> StreamingResponse {
    match next {
        Next::Frame(f) => match f.response {
            Response::GetStreamingEvents(r) => r,
            other => panic!("expected a streaming frame, got {other:?}"),
        },
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// The next frame that is not a plain heartbeat.
async fn next_news(stream: &mut FrameStream) -> StreamingResponse {
    loop {
        let frame = streaming(stream.next().await);
        if !frame.is_heartbeat() {
            return frame;
        }
    }
}

fn kinds(frame: &StreamingResponse) -> Vec<EventKind> {
    frame
        .notifications
        .iter()
        .flat_map(|n| n.events.iter().map(|e| e.kind.clone()))
        .collect()
}

#[tokio::test]
async fn events_heartbeats_and_close() {
    let (sim, target) = start(config()).await;
    let (id, _) = subscribe_mailbox(&target, 1, &[]).await;
    let mut stream = open_stream(&target, std::slice::from_ref(&id), 1, &[]).await;
    assert_eq!(stream.status, 200);
    // Nothing happens yet: a heartbeat arrives.
    assert!(streaming(stream.next().await).is_heartbeat());

    let created = client::control(
        &target,
        "POST",
        "/mailboxes/user1@example.test/items",
        Some(json!({"start": "2026-11-25T10:00:00Z", "end": "2026-11-25T11:00:00Z", "busy_type": "Busy", "subject": "Planning"})),
    )
    .await;
    assert_eq!(created.status, 201);
    let item_id = created.json()["item_id"].as_str().unwrap().to_owned();
    let news = next_news(&mut stream).await;
    assert_eq!(news.notifications.len(), 1);
    assert_eq!(news.notifications[0].subscription_id, id);
    assert_eq!(kinds(&news), [EventKind::Created, EventKind::Modified]);
    let events = &news.notifications[0].events;
    assert_eq!(events[0].item_id.as_ref().unwrap().id, item_id);
    assert!(events[1].folder_id.is_some() && events[1].item_id.is_none());

    let patched = client::control(
        &target,
        "PATCH",
        &format!("/mailboxes/user1@example.test/items/{item_id}"),
        Some(json!({"busy_type": "Tentative"})),
    )
    .await;
    assert_eq!(patched.status, 200);
    let news = next_news(&mut stream).await;
    assert_eq!(
        kinds(&news),
        [
            EventKind::Modified,
            EventKind::FreeBusyChanged,
            EventKind::Modified
        ]
    );

    let deleted = client::control(
        &target,
        "DELETE",
        &format!("/mailboxes/user1@example.test/items/{item_id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    let news = next_news(&mut stream).await;
    assert_eq!(kinds(&news), [EventKind::Deleted, EventKind::Modified]);

    // ConnectionTimeout of one protocol minute: a Closed frame, then the end.
    loop {
        let frame = streaming(stream.next().await);
        if frame.is_closed() {
            break;
        }
        assert!(frame.is_heartbeat());
    }
    assert!(matches!(stream.next().await, Next::End));
    sim.stop().await;
}

#[tokio::test]
async fn events_queue_while_no_stream_is_open() {
    let (sim, target) = start(config()).await;
    let (id, _) = subscribe_mailbox(&target, 2, &[]).await;
    for hour in 10..13 {
        let reply = client::control(
            &target,
            "POST",
            "/mailboxes/user2@example.test/items",
            Some(json!({"start": format!("2026-11-26T{hour}:00:00Z"), "end": format!("2026-11-26T{hour}:30:00Z"), "busy_type": "Busy"})),
        )
        .await;
        assert_eq!(reply.status, 201);
    }
    let mut stream = open_stream(&target, &[id], 1, &[]).await;
    let news = next_news(&mut stream).await;
    assert_eq!(
        kinds(&news)
            .iter()
            .filter(|k| **k == EventKind::Created)
            .count(),
        3
    );
    sim.stop().await;
}

#[tokio::test]
async fn at_most_fifty_events_per_notification() {
    let (sim, target) = start(config()).await;
    let (id, _) = subscribe_mailbox(&target, 3, &[]).await;
    for i in 0..30 {
        let start = format!("2026-11-27T{:02}:{:02}:00Z", 8 + i / 4, (i % 4) * 15);
        let end = format!(
            "2026-11-27T{:02}:{:02}:00Z",
            8 + (i + 1) / 4,
            ((i + 1) % 4) * 15
        );
        let reply = client::control(
            &target,
            "POST",
            "/mailboxes/user3@example.test/items",
            Some(json!({"start": start, "end": end, "busy_type": "Tentative"})),
        )
        .await;
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let mut stream = open_stream(&target, &[id], 1, &[]).await;
    let mut total = 0;
    while total < 60 {
        let news = next_news(&mut stream).await;
        for n in &news.notifications {
            assert!(
                n.events.len() <= 50,
                "{} events in one Notification",
                n.events.len()
            );
            total += n.events.len();
        }
    }
    assert_eq!(total, 60, "30 creations raise 60 events");
    sim.stop().await;
}

#[tokio::test]
async fn idle_subscriptions_expire() {
    let mut cfg = config();
    cfg.minute = Duration::from_millis(10);
    let (sim, target) = start(cfg).await;
    let (id, _) = subscribe_mailbox(&target, 4, &[]).await;
    // 30 protocol minutes = 300 ms without a stream; wait on the simulator's own count.
    let deadline = tokio::time::Instant::now() + client::DEADLINE;
    while client::control(&target, "GET", "/stats", None).await.json()["subscriptions_live"] != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscription never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stream = open_stream(&target, std::slice::from_ref(&id), 1, &[]).await;
    let frame = streaming(stream.next().await);
    assert_eq!(frame.status.code, ResponseCode::ErrorSubscriptionNotFound);
    assert_eq!(frame.error_subscription_ids, [id]);
    assert!(frame.is_closed());
    sim.stop().await;
}

#[tokio::test]
async fn several_subscriptions_share_a_frame() {
    let (sim, target) = start(config()).await;
    let (a, _) = subscribe_mailbox(&target, 5, &[]).await;
    let (b, _) = subscribe_mailbox(&target, 6, &[]).await;
    for n in [5, 6] {
        client::control(
            &target,
            "POST",
            &format!("/mailboxes/user{n}@example.test/items"),
            Some(json!({"start": "2026-11-26T15:00:00Z", "end": "2026-11-26T16:00:00Z", "busy_type": "OOF"})),
        )
        .await;
    }
    let mut stream = open_stream(&target, &[a.clone(), b.clone()], 1, &[]).await;
    let news = next_news(&mut stream).await;
    let ids: Vec<_> = news
        .notifications
        .iter()
        .map(|n| n.subscription_id.clone())
        .collect();
    assert_eq!(ids, [a, b]);
    sim.stop().await;
}

#[tokio::test]
async fn more_than_200_ids_are_refused() {
    let (sim, target) = start(config()).await;
    let ids: Vec<_> = (0..200)
        .map(|i| ews::types::SubscriptionId::new(format!("id{i}")).unwrap())
        .collect();
    let body = get_streaming_events::body(&ids, 1).unwrap().replace(
        "</m:SubscriptionIds>",
        "<t:SubscriptionId>one-too-many</t:SubscriptionId></m:SubscriptionIds>",
    );
    let reply = client::ews(&target, &[], sim::request(None, &body)).await;
    let Response::GetStreamingEvents(r) = reply.ews() else {
        panic!()
    };
    assert_eq!(r.status.code, ResponseCode::ErrorInvalidSubscriptionRequest);
    sim.stop().await;
}
