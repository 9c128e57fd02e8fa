//! The daemon with a Graph gateway beside an EWS one (hybrid), against the
//! simulator's Graph side: every mailbox agrees with the truth; changes made through
//! the Graph API show after the debounce and one getSchedule; automatic replies within
//! one sweep; lifecycle events recover; a forged notification changes nothing and is
//! counted; a refused client secret is one warning and one attempt per back-off step.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::client;
use support::daemon::{GRAPH_GATEWAY, Options, Rig, address, eventually, rig};
use support::graph::{at, call as graph, token};

const WITHIN: Duration = Duration::from_secs(20);
/// Mailboxes 1..=10 on EWS, 11..=20 on Graph.
const GRAPH: std::ops::RangeInclusive<usize> = 11..=20;

async fn hybrid(options: Options) -> Rig {
    rig(Options {
        mailboxes: 20,
        graph_mailboxes: GRAPH.collect(),
        ..options
    })
    .await
}

/// A hybrid rig with empty calendars, once every mailbox agrees with the truth and
/// every Graph mailbox is subscribed.
async fn settled(options: Options) -> Rig {
    let rig = hybrid(Options {
        sim: ews_sim::SimConfig {
            empty_calendars: true,
            ..Options::default().sim
        },
        ..options
    })
    .await;
    eventually("every mailbox agrees", WITHIN, || async {
        rig.disagreements(20).await.is_empty()
    })
    .await;
    eventually("subscribed", WITHIN, || async {
        subscriptions(&rig).await.len() == GRAPH.count()
    })
    .await;
    rig
}

async fn gateway(rig: &Rig, name: &str) -> Value {
    let all = client::request(&rig.api, "GET", "/v1/gateways", &[], "")
        .await
        .json();
    all["gateways"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no gateway {name} in {all}"))
}

async fn subscriptions(rig: &Rig) -> Vec<Value> {
    let reply = client::control(&rig.sim_target, "GET", "/graph/subscriptions", None).await;
    reply.json()["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every mailbox on both gateways agrees with the truth, each Graph mailbox holds one
/// subscription, and /v1/gateways shows the Graph gateway as it shows an EWS one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_mailboxes_agree_with_the_truth() {
    let rig = hybrid(Options::default()).await;
    eventually("every mailbox agrees with the truth", WITHIN, || async {
        rig.disagreements(20).await.is_empty()
    })
    .await;
    eventually("a subscription per Graph mailbox", WITHIN, || async {
        subscriptions(&rig).await.len() == GRAPH.count()
    })
    .await;
    let online = gateway(&rig, GRAPH_GATEWAY).await;
    assert_eq!(online["kind"], "graph");
    assert_eq!(online["auth"], "client-secret");
    assert_eq!(online["reachable"], true);
    assert_eq!(online["auth_ok"], true);
    assert_eq!(online["mailboxes"], 10);
    assert_eq!(online["subscriptions_live"], 10);
    assert_eq!(online["mailboxes_unknown"], 0);
    assert!(
        online["auto_replies"]
            .as_str()
            .is_some_and(|s| s.contains("$batch")),
        "{online}"
    );
    assert_eq!(gateway(&rig, &rig.gateway).await["kind"], "ews");
    for s in subscriptions(&rig).await {
        let mailbox = s["mailbox"].as_str().unwrap_or_default();
        let n: usize = mailbox
            .trim_start_matches("user")
            .split('@')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a simulated user");
        assert!(
            GRAPH.contains(&n),
            "only Graph mailboxes are subscribed through Graph: {mailbox}"
        );
    }
    // Automatic replies are swept through $batch, calendars read with getSchedule.
    assert!(rig.requests("graph $batch").await >= 1);
    assert!(rig.requests("graph getSchedule").await >= 1);
    assert_eq!(
        rig.sim_stats().await["rejections"]["graph_mailbox_concurrency"],
        Value::Null
    );
    rig.stop().await;
}

/// A meeting created through the Graph API shows as in-a-meeting; deleting it makes
/// the user available again; each after one getSchedule per change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_graph_shows_after_one_get_schedule() {
    let rig = settled(Options::default()).await;
    let token = token(&rig.sim_target).await;
    let before = rig.requests("graph getSchedule").await;
    let now = jiff::Timestamp::now();
    let created = graph(
        &rig.sim_target,
        &token,
        "POST",
        &format!("/users/{}/events", address(12)),
        Some(json!({"subject": "Review", "start": at(now - jiff::SignedDuration::from_secs(60)), "end": at(now + jiff::SignedDuration::from_secs(3600)), "showAs": "busy"})),
    )
    .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let id = created.json()["id"]
        .as_str()
        .expect("an event id")
        .to_owned();
    eventually("user12 in a meeting", WITHIN, || async {
        rig.presence(12).await["availability"] == "in-a-meeting"
    })
    .await;
    assert_eq!(
        rig.requests("graph getSchedule").await - before,
        1,
        "one change, one getSchedule"
    );
    let deleted = graph(
        &rig.sim_target,
        &token,
        "DELETE",
        &format!("/users/{}/events/{id}", address(12)),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    eventually("user12 available again", WITHIN, || async {
        rig.presence(12).await["availability"] == "available"
    })
    .await;
    rig.stop().await;
}

/// Automatic replies turned on through Graph (no notification exists for them) show
/// within one sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_replies_show_within_one_sweep() {
    let rig = settled(Options {
        oof_refresh_secs: 2,
        ..Options::default()
    })
    .await;
    let token = token(&rig.sim_target).await;
    let patched = graph(
        &rig.sim_target,
        &token,
        "PATCH",
        &format!("/users/{}/mailboxSettings", address(15)),
        Some(json!({"automaticRepliesSetting": {"status": "alwaysEnabled", "internalReplyMessage": "Away"}})),
    )
    .await;
    assert_eq!(
        patched.status,
        200,
        "{}",
        String::from_utf8_lossy(&patched.body)
    );
    let started = std::time::Instant::now();
    eventually("user15 away", Duration::from_secs(10), || async {
        rig.presence(15).await["availability"] == "away"
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2) * 3,
        "within about one sweep"
    );
    rig.stop().await;
}

/// `missed` re-reads the mailbox; `subscriptionRemoved` creates the subscription again
/// and re-reads; `reauthorizationRequired` reauthorizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_recover() {
    let rig = settled(Options::default()).await;
    let lifecycle = |event: &'static str| {
        let sim = rig.sim_target.clone();
        async move {
            let reply = client::control(
                &sim,
                "POST",
                "/graph/lifecycle",
                Some(json!({"mailbox": address(13), "event": event})),
            )
            .await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json()["subscriptions"], 1);
        }
    };
    let reads = rig.requests("graph getSchedule").await;
    lifecycle("missed").await;
    eventually("missed re-reads the mailbox", WITHIN, || async {
        rig.requests("graph getSchedule").await > reads
    })
    .await;
    let old: Vec<String> = subscriptions(&rig)
        .await
        .iter()
        .filter(|s| s["mailbox"] == address(13))
        .map(|s| s["id"].to_string())
        .collect();
    let reads = rig.requests("graph getSchedule").await;
    lifecycle("subscriptionRemoved").await;
    eventually("subscriptionRemoved: created again", WITHIN, || async {
        let now: Vec<String> = subscriptions(&rig)
            .await
            .iter()
            .filter(|s| s["mailbox"] == address(13))
            .map(|s| s["id"].to_string())
            .collect();
        now.len() == 1 && now != old
    })
    .await;
    eventually("and the mailbox read again", WITHIN, || async {
        rig.requests("graph getSchedule").await > reads
    })
    .await;
    let reauthorized = rig.requests("graph subscriptions").await;
    lifecycle("reauthorizationRequired").await;
    eventually("reauthorized", WITHIN, || async {
        rig.requests("graph subscriptions").await > reauthorized
    })
    .await;
    assert!(rig.agrees(13).await);
    rig.stop().await;
}

/// A notification with a subscription's id but not its clientState changes nothing
/// and is counted; the real one then is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_notification_changes_nothing_and_is_counted() {
    let rig = settled(Options::default()).await;
    let id = subscriptions(&rig)
        .await
        .iter()
        .find(|s| s["mailbox"] == address(14))
        .and_then(|s| s["id"].as_str().map(str::to_owned))
        .expect("user14's subscription");
    // The meeting is made without telling anyone (the notification is dropped).
    client::control(
        &rig.sim_target,
        "POST",
        "/graph/faults",
        Some(json!({"kind": "drop_notifications", "count": 1})),
    )
    .await;
    rig.cover_now(14, "Busy").await;
    let reads = rig.requests("graph getSchedule").await;
    let forged = json!({"value": [{
        "subscriptionId": id,
        "clientState": "not-the-secret",
        "changeType": "updated",
        "resource": format!("Users/{}/Events/AAMk", address(14)),
    }]});
    let reply = client::request(
        &rig.api,
        "POST",
        "/graph/notifications",
        &[("Content-Type", "application/json")],
        forged.to_string(),
    )
    .await;
    assert_eq!(
        reply.status, 202,
        "answered as Graph expects, whatever it holds"
    );
    eventually("the forgery is counted", WITHIN, || async {
        rig.metric(
            "ews_presence_graph_notifications_rejected_total",
            "reason=\"client_state\"",
        )
        .await
            == Some(1.0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rig.requests("graph getSchedule").await,
        reads,
        "nothing was read for it"
    );
    assert_eq!(
        rig.presence(14).await["availability"],
        "available",
        "and nothing changed"
    );
    // A validation request is echoed as text/plain.
    let echo = client::request(
        &rig.api,
        "POST",
        "/graph/notifications?validationToken=a%20b%2Bc",
        &[],
        "",
    )
    .await;
    assert_eq!(echo.status, 200);
    assert_eq!(&echo.body[..], b"a b+c");
    assert!(
        echo.headers["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    rig.stop().await;
}

/// A wrong client secret: one warning, one token request per back-off step, the
/// mailboxes unknown with the reason and the fix on /v1/gateways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_one_attempt_per_step() {
    let rig = hybrid(Options {
        graph_credential: Some("not-the-secret"),
        ..Options::default()
    })
    .await;
    eventually("the refusal shows", WITHIN, || async {
        gateway(&rig, GRAPH_GATEWAY).await["auth_ok"] == false
    })
    .await;
    let online = gateway(&rig, GRAPH_GATEWAY).await;
    let error = online["last_error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("AADSTS7000215") && error.contains("client_secret_file"),
        "{error}"
    );
    eventually("the EWS mailboxes still agree", WITHIN, || async {
        let mut ok = true;
        for n in 1..=10 {
            ok &= rig.agrees(n).await;
        }
        ok
    })
    .await;
    // Every Graph mailbox reads unknown and says why.
    for n in GRAPH {
        let p = rig.presence(n).await;
        assert_eq!(p["availability"], "unknown", "{p}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rig.requests("graph token").await,
        1,
        "one attempt until the next back-off step"
    );
    rig.stop().await;
}

/// The certificate: a signed client assertion gets the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_credential_signs_in() {
    let rig = hybrid(Options {
        graph_credential: Some("certificate"),
        ..Options::default()
    })
    .await;
    eventually("every mailbox agrees", WITHIN, || async {
        rig.disagreements(20).await.is_empty()
    })
    .await;
    assert_eq!(
        gateway(&rig, GRAPH_GATEWAY).await["auth"],
        "client-certificate"
    );
    assert_eq!(
        rig.sim_stats().await["rejections"]["graph_token_refused"],
        Value::Null
    );
    rig.stop().await;
}

/// The troubleshooter treats a Graph gateway as it treats an EWS one: token, calendar,
/// mailbox settings, subscription create + delete (Graph's validation reached our
/// endpoint), each passing; with a refused secret, the token step fails with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_troubleshooter_checks_a_graph_gateway() {
    let rig = hybrid(Options::default()).await;
    eventually("subscribed", WITHIN, || async {
        subscriptions(&rig).await.len() == 10
    })
    .await;
    let reply = client::request(&rig.api, "POST", "/v1/checks", &[], "").await;
    assert_eq!(reply.status, 200);
    let all = reply.json();
    let online = all["gateways"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["gateway"] == GRAPH_GATEWAY).cloned())
        .expect("the Graph gateway is checked");
    let steps: Vec<(String, String)> = online["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or_default().to_owned(),
                s["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        "token",
        "calendar",
        "mailbox settings",
        "subscription",
        "notification url",
    ]
    .iter()
    .map(|s| (s.to_string(), "pass".to_string()))
    .collect();
    assert_eq!(steps, expected, "{online}");
    assert_eq!(
        subscriptions(&rig).await.len(),
        10,
        "the check's subscription was deleted"
    );
    rig.stop().await;

    let rig = hybrid(Options {
        graph_credential: Some("not-the-secret"),
        ..Options::default()
    })
    .await;
    let reply = client::request(&rig.api, "POST", "/v1/checks", &[], "").await;
    let all = reply.json();
    let online = all["gateways"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["gateway"] == GRAPH_GATEWAY).cloned())
        .expect("the Graph gateway is checked");
    let token = &online["steps"][0];
    assert_eq!(token["step"], "token");
    assert_eq!(token["result"], "fail", "{online}");
    rig.stop().await;
}

/// A mailbox that holds Graph's 1,000 subscriptions (across every application) cannot
/// be subscribed again: it is served stale with the reason in words (and reads unknown
/// after `max_stale_secs`, as any mailbox that lost its subscription).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_at_graphs_subscription_limit_says_so() {
    let rig = settled(Options::default()).await;
    let token = token(&rig.sim_target).await;
    let url = subscriptions(&rig).await[0]["notification_url"]
        .as_str()
        .expect("our notification URL")
        .to_owned();
    let ours = subscriptions(&rig)
        .await
        .iter()
        .find(|s| s["mailbox"] == address(11))
        .and_then(|s| s["id"].as_str().map(str::to_owned))
        .expect("the daemon's subscription");
    // Another application fills user11's quota (the daemon holds the 1,000th).
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    for _ in 0..999 {
        let reply = graph(
            &rig.sim_target,
            &token,
            "POST",
            "/subscriptions",
            Some(json!({"changeType": "updated", "notificationUrl": url, "resource": format!("users/{}/events", address(11)), "expirationDateTime": expires, "clientState": "another-app"})),
        )
        .await;
        assert_eq!(
            reply.status,
            201,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    // Graph removes the daemon's subscription and, before the daemon hears of it (the
    // notification waits 2 s), the other application takes the place it freed.
    client::control(
        &rig.sim_target,
        "POST",
        "/graph/faults",
        Some(json!({"kind": "delay_notifications", "ms": 2000})),
    )
    .await;
    let reply = client::control(
        &rig.sim_target,
        "POST",
        "/graph/lifecycle",
        Some(json!({"mailbox": address(11), "event": "subscriptionRemoved", "subscription": ours})),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = graph(
        &rig.sim_target,
        &token,
        "POST",
        "/subscriptions",
        Some(json!({"changeType": "updated", "notificationUrl": url, "resource": format!("users/{}/events", address(11)), "expirationDateTime": expires, "clientState": "another-app"})),
    )
    .await;
    assert_eq!(reply.status, 201, "the freed place is taken");
    // Stale (served from the last read, as a lost EWS subscription is) with the reason.
    eventually("user11 says it is at the limit", WITHIN, || async {
        let p = rig.presence(11).await;
        p["stale"] == true
            && p["problem"]
                .as_str()
                .is_some_and(|s| s.contains("maximum of 1,000 subscriptions"))
    })
    .await;
    assert!(rig.agrees(12).await, "the other mailboxes are not affected");
    rig.stop().await;
}
