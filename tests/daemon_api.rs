//! The daemon's HTTP surface and lifecycle: mailbox-list reload (what SIGHUP runs),
//! bearer tokens, the SSE feed's resume and reset, metrics, and malformed requests.

mod support;

use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};
use support::client;
use support::daemon::{Options, Rig, address, eventually, rig, write_mailboxes};

const WITHIN: Duration = Duration::from_secs(10);

async fn flip(rig: &Rig, n: usize, busy: &str) {
    let now = Timestamp::now();
    let reply = client::control(
        &rig.sim_target,
        "POST",
        &format!("/mailboxes/{}/items", address(n)),
        Some(json!({"start": (now - 1.minute()).to_string(), "end": (now + 1.hour()).to_string(), "busy_type": busy})),
    )
    .await;
    assert_eq!(reply.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_mailboxes() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    let subscribes = rig.requests("Subscribe").await;
    write_mailboxes(&rig.dir, (6..=25).collect::<Vec<_>>());
    let summary = rig.app.reload().expect("the new list is valid");
    assert_eq!((summary.added, summary.removed), (5, 5));
    for n in 21..=25 {
        eventually(&format!("user{n} is served"), WITHIN, || rig.agrees(n)).await;
    }
    for n in 1..=5 {
        let reply = client::request(
            &rig.api,
            "GET",
            &format!("/v1/presence/{}", address(n)),
            &[],
            "",
        )
        .await;
        assert_eq!(reply.status, 404, "user{n} was removed");
    }
    eventually("removed mailboxes are unsubscribed", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 20
    })
    .await;
    assert_eq!(
        rig.requests("Subscribe").await,
        subscribes + 5,
        "the others were left alone"
    );
    // A broken list is refused and the current one kept.
    std::fs::write(
        rig.dir.join("mailboxes.txt"),
        "user1@example.test\nuser1@example.test\n",
    )
    .unwrap();
    let e = rig.app.reload().unwrap_err();
    assert!(e.to_string().contains("mailboxes.txt:2"), "{e}");
    assert_eq!(
        client::request(&rig.api, "GET", "/v1/presence/user25@example.test", &[], "")
            .await
            .status,
        200
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_needs_a_bearer_token_when_configured() {
    let rig = rig(Options {
        token: Some("s3cret-token"),
        ..Options::default()
    })
    .await;
    rig.ready().await;
    for (method, path) in [
        ("GET", "/v1/presence/user1@example.test"),
        ("GET", "/v1/gateways"),
        ("GET", "/v1/presence/watch"),
        // The checks log in to Exchange; the opt-out changes a user's setting.
        ("POST", "/v1/checks"),
        ("GET", "/v1/mailboxes/user1@example.test/calendar-presence"),
        ("PUT", "/v1/mailboxes/user1@example.test/calendar-presence"),
    ] {
        let reply = client::request(&rig.api, method, path, &[], "").await;
        assert_eq!(reply.status, 401, "{method} {path}");
        let wrong = client::request(
            &rig.api,
            method,
            path,
            &[("Authorization", "Bearer nope")],
            "",
        )
        .await;
        assert_eq!(wrong.status, 401, "{method} {path}");
    }

    let ok = client::request(
        &rig.api,
        "GET",
        "/v1/presence/user1@example.test",
        &[("Authorization", "Bearer s3cret-token")],
        "",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        client::request(&rig.api, "GET", "/livez", &[], "")
            .await
            .status,
        200
    );
    assert_eq!(
        client::request(&rig.api, "GET", "/metrics", &[], "")
            .await
            .status,
        200
    );
    rig.stop().await;
}

/// The next presence event about one of `mailboxes` (others are skipped).
async fn next_about(watch: &mut client::SseStream, mailboxes: &[String]) -> client::Sse {
    loop {
        let event = watch.next().await.expect("the feed stays open");
        assert_eq!(event.event, "presence", "{event:?}");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        if mailboxes.iter().any(|m| data["mailbox"] == m.as_str()) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_resumes_from_last_event_id() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    let mut watch = client::sse(&rig.api, "/v1/presence/watch", &[]).await;
    flip(&rig, 3, "OOF").await;
    // Generated meetings and scheduled automatic replies flip other users too: look
    // at the mailboxes this test changes only.
    let first = next_about(&mut watch, &[address(3)]).await;
    let seen = first.id.expect("events carry ids");
    drop(watch);
    // Changes while disconnected.
    flip(&rig, 4, "OOF").await;
    flip(&rig, 5, "OOF").await;
    for n in [4, 5] {
        eventually(&format!("user{n} away"), WITHIN, || async {
            rig.presence(n).await["availability"] == "away"
        })
        .await;
    }
    let last = seen.to_string();
    let mut resumed =
        client::sse(&rig.api, "/v1/presence/watch", &[("Last-Event-ID", &last)]).await;
    let mut missed = Vec::new();
    for _ in 0..2 {
        let wanted: Vec<String> = [address(4), address(5)]
            .into_iter()
            .filter(|a| !missed.contains(a))
            .collect();
        let event = next_about(&mut resumed, &wanted).await;
        assert!(event.id.unwrap() > seen);
        let data: Value = serde_json::from_str(&event.data).unwrap();
        missed.push(data["mailbox"].as_str().unwrap().to_owned());
    }
    missed.sort();
    assert_eq!(missed, [address(4), address(5)]);
    // An id the feed never issued: start over.
    let mut reset = client::sse(
        &rig.api,
        "/v1/presence/watch",
        &[("Last-Event-ID", "999999999")],
    )
    .await;
    assert_eq!(reset.next().await.unwrap().event, "reset");
    let bad = client::request(
        &rig.api,
        "GET",
        "/v1/presence/watch",
        &[("Last-Event-ID", "yesterday")],
        "",
    )
    .await;
    assert_eq!(bad.status, 400);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_queries_and_bad_requests() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    let metrics = client::request(&rig.api, "GET", "/metrics", &[], "").await;
    assert_eq!(
        metrics.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    let label = rig.gateway_label();
    assert_eq!(
        rig.metric("ews_presence_subscriptions_live", &label).await,
        Some(20.0)
    );
    assert_eq!(
        rig.metric("ews_presence_streaming_connections_open", &label)
            .await,
        Some(1.0)
    );
    assert_eq!(
        rig.metric("ews_presence_subscriptions_failed", &label)
            .await,
        None,
        "no refused mailbox: the gauge was never moved"
    );
    for name in [
        "ews_presence_mailboxes{availability=",
        "ews_presence_ews_requests_total{",
        "ews_presence_ews_request_duration_seconds_bucket{",
        "ews_presence_transitions_total{",
        "ews_presence_refresh_batch_size_bucket{",
        "# HELP ews_presence_mailboxes ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert!(!text.contains("user1@"), "no per-mailbox labels");
    // Every family served is in the list dashboards are checked against.
    let exported = ews_presence::api::metrics::exported_names();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split_whitespace().nth(2).unwrap_or_default();
        assert!(
            exported.contains(&family),
            "{family} is served but not listed"
        );
    }

    let body =
        json!({"mailboxes": [address(2), "nobody@example.test", "not an address"]}).to_string();
    let reply = client::request(&rig.api, "POST", "/v1/presence/query", &[], body).await;
    assert_eq!(reply.status, 200);
    let presence = reply.json()["presence"].as_array().unwrap().clone();
    assert_eq!(presence.len(), 3);
    assert_eq!(presence[0]["mailbox"], address(2));
    assert!(presence[0]["availability"].is_string());
    assert_eq!(presence[1]["error"], "not-configured");
    assert_eq!(presence[2]["error"], "not-configured");
    // The server says how long it took.
    let timing = reply.headers["server-timing"].to_str().unwrap();
    let ms: f64 = timing.strip_prefix("app;dur=").unwrap().parse().unwrap();
    assert!(ms >= 0.0, "{timing}");
    // Addresses in another case, or written with JSON escapes, name the same mailbox.
    let upper = address(2).to_uppercase();
    let escaped = address(2).replace('@', "\\u0040");
    let body = format!("{{\"mailboxes\": [\"{upper}\", \"{escaped}\"], \"extra\": 1}}");
    let reply = client::request(&rig.api, "POST", "/v1/presence/query", &[], body).await;
    assert_eq!(reply.status, 200);
    for entry in reply.json()["presence"].as_array().unwrap() {
        assert_eq!(entry["mailbox"], address(2), "{entry}");
    }

    let too_many: Vec<String> = (0..10_001).map(|i| format!("u{i}@example.test")).collect();
    let reply = client::request(
        &rig.api,
        "POST",
        "/v1/presence/query",
        &[],
        json!({"mailboxes": too_many}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 400);
    for bad in [
        "{",
        "[]",
        "{\"mailboxes\": [1]}",
        "{\"mailboxes\": \"a@b\"}",
        "{\"mailbox\": []}",
    ] {
        let reply = client::request(&rig.api, "POST", "/v1/presence/query", &[], bad).await;
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.json()["error"].is_string());
    }
    let huge = vec![b'x'; 3 * 1024 * 1024];
    assert_eq!(
        client::request(&rig.api, "POST", "/v1/presence/query", &[], huge)
            .await
            .status,
        413
    );
    assert_eq!(
        client::request(&rig.api, "GET", "/nowhere", &[], "")
            .await
            .status,
        404
    );
    assert_eq!(
        client::request(&rig.api, "DELETE", "/v1/gateways", &[], "")
            .await
            .status,
        405
    );
    let encoded = client::request(
        &rig.api,
        "GET",
        "/v1/presence/user2%40example.test",
        &[],
        "",
    )
    .await;
    assert_eq!(encoded.status, 200);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_crowd_out_health_checks_and_queries() {
    use tokio::io::AsyncWriteExt;
    let rig = rig(Options {
        api_connections: Some(16),
        ..Options::default()
    })
    .await;
    rig.ready().await;
    // Forty clients each announce a 2 MB body and send it a byte every 50 ms.
    let stop = tokio_util::sync::CancellationToken::new();
    let (connected_tx, mut connected) = tokio::sync::mpsc::channel(40);
    let mut abusers = Vec::new();
    for _ in 0..40 {
        let (addr, stop, connected) = (rig.api.addr, stop.clone(), connected_tx.clone());
        abusers.push(tokio::spawn(async move {
            let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
                return;
            };
            let head = "POST /v1/presence/query HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let _ = connected.send(()).await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                if socket.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }));
    }
    // Once they are all connected (the flood is under way), health checks and
    // queries are answered, each within the client's deadline.
    drop(connected_tx);
    for _ in 0..40 {
        connected.recv().await.expect("every abuser connects");
    }
    for i in 0..20 {
        let live = client::request(&rig.api, "GET", "/livez", &[], "").await;
        assert_eq!(live.status, 200, "round {i}");
        let body = json!({"mailboxes": [address(1)]}).to_string();
        let reply = client::request(&rig.api, "POST", "/v1/presence/query", &[], body).await;
        assert_eq!(reply.status, 200, "round {i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    for abuser in abusers {
        let _ = abuser.await;
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_subject_is_shown_by_the_api_or_the_status_page() {
    const TOKEN: &str = "api-token-never-shown-0001";
    const SUBJECT: &str = "Confidential merger call";
    let rig = rig(Options {
        token: Some(TOKEN),
        mailboxes: 5,
        ..Options::default()
    })
    .await;
    rig.ready().await;
    // A meeting with a subject, read by the daemon.
    let now = jiff::Timestamp::now();
    let made = client::control(
        &rig.sim_target,
        "POST",
        "/mailboxes/user2@example.test/items",
        Some(serde_json::json!({
            "start": (now - jiff::SignedDuration::from_mins(1)).to_string(),
            "end": (now + jiff::SignedDuration::from_hours(1)).to_string(),
            "busy_type": "Busy",
            "subject": SUBJECT,
        })),
    )
    .await;
    assert_eq!(made.status, 201);
    let auth = format!("Bearer {TOKEN}");
    let headers = [("Authorization", auth.as_str())];
    eventually("the meeting is read", Duration::from_secs(15), || async {
        client::request(
            &rig.api,
            "GET",
            "/v1/presence/user2@example.test",
            &headers,
            "",
        )
        .await
        .json()["availability"]
            == "in-a-meeting"
    })
    .await;
    let mut shown = String::new();
    for path in [
        "/",
        "/v1/gateways",
        "/v1/summary",
        "/v1/presence/user2@example.test",
        "/v1/presence/user2@example.test/today",
        "/metrics",
        "/readyz",
        "/api-access",
    ] {
        let reply = client::request(&rig.api, "GET", path, &headers, "").await;
        assert_eq!(reply.status, 200, "{path}");
        shown.push_str(&String::from_utf8_lossy(&reply.body));
    }
    let checks = client::request(&rig.api, "POST", "/v1/checks", &headers, "").await;
    shown.push_str(&String::from_utf8_lossy(&checks.body));
    for secret in [
        TOKEN,
        "sim-password",
        SUBJECT,
        "Authorization:",
        "Basic c3Zj",
    ] {
        assert!(!shown.contains(secret), "{secret:?} is shown");
    }
    let metrics = client::request(&rig.api, "GET", "/metrics", &[], "").await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        !metrics
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("@example.test")),
        "no per-mailbox label"
    );
    rig.stop().await;
}
