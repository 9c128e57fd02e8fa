//! Calendar presence published to a real Kamailio (Debian's `kamailio` with its
//! presence modules, started by the test on loopback from `tests/kamailio/presence.cfg`)
//! and seen by a watcher subscribed through it: a meeting in the simulator becomes RPID
//! `meeting`, automatic replies `away`, the end of the meeting removes our tuple, a
//! device's own publication for the same user is kept beside ours, digest credentials
//! are answered (MD5 and SHA-256), TCP works like UDP, and shutdown removes what we
//! published. Without Kamailio a local run says so and skips; CI installs it.

mod support;

use std::time::Duration;

use ews_presence::publish::document::TUPLE_ID;
use serde_json::{Value, json};
use support::client;
use support::daemon::{Options, Rig, address, eventually, rig};
use support::kamailio::{Kamailio, PASSWORD, Profile};
use support::watcher::Watcher;

const WITHIN: Duration = Duration::from_secs(20);

fn options(kamailio: &Kamailio, transport: &str, extra: &str) -> Options {
    let defaults = Options::default();
    Options {
        sim: ews_sim::SimConfig {
            empty_calendars: true,
            churn: 0.0,
            ..defaults.sim
        },
        mailboxes: 3,
        oof_refresh_secs: 1,
        sections: format!(
            "[[sip]]\nname = \"kamailio\"\nserver = \"{}\"\n{extra}",
            kamailio.uri(transport)
        ),
        ..defaults
    }
}

fn presentity(n: usize) -> String {
    format!("sip:{}", address(n))
}

/// Whether a NOTIFY body holds our tuple with RPID `activity`.
fn ours_with(body: &str, activity: &str) -> bool {
    body.contains(&format!("id=\"{TUPLE_ID}\"")) && body.contains(&format!(":{activity}/>"))
}

/// Whether a NOTIFY body shows nothing of ours: our tuple gone, or what Kamailio's
/// presence_xml sends for a removed publication: our tuple id, closed, nothing else of
/// ours (no person element, no activities).
fn ours_gone(body: &str) -> bool {
    !body.contains(TUPLE_ID)
        || (body.contains("<basic>closed</basic>")
            && !body.contains("activities")
            && !body.contains("dm:person"))
}

async fn publishers(rig: &Rig) -> Value {
    client::request(&rig.api, "GET", "/v1/publishers", &[], "")
        .await
        .json()["publishers"][0]
        .clone()
}

/// Deletes every calendar item of mailbox `n` in the simulator.
async fn clear_calendar(rig: &Rig, n: usize) {
    let path = format!("/mailboxes/{}/items", address(n));
    let items = client::control(&rig.sim_target, "GET", &path, None)
        .await
        .json();
    for item in items.as_array().expect("a list of items") {
        let id = item["item_id"].as_str().expect("an item id");
        let reply = client::control(&rig.sim_target, "DELETE", &format!("{path}/{id}"), None).await;
        assert_eq!(reply.status, 204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_the_calendar_composed_with_the_users_device() {
    let Some(kamailio) = Kamailio::start(Profile::Open).await else {
        return;
    };
    let rig = rig(options(&kamailio, "udp", "")).await;
    rig.ready().await;
    let user = presentity(1);
    let mut watcher = Watcher::subscribe(kamailio.addr, &user).await;
    // The user's phone publishes its own tuple.
    watcher.publish_device(&user, "phone-1", "").await;
    watcher
        .until("with the phone's tuple", WITHIN, |b| {
            b.contains("\"phone-1\"")
        })
        .await;

    rig.cover_now(1, "Busy").await;
    let body = watcher
        .until("with our meeting", WITHIN, |b| ours_with(b, "meeting"))
        .await;
    assert!(
        body.contains("\"phone-1\""),
        "the phone's tuple is kept:\n{body}"
    );
    assert!(body.contains("In a meeting until "), "the note:\n{body}");
    assert!(body.contains("until=\""), "the end of the meeting:\n{body}");
    eventually("one publication held", WITHIN, || async {
        publishers(&rig).await["publications"] == 1
    })
    .await;
    let view = publishers(&rig).await;
    assert_eq!(view["connected"], true, "{view}");
    assert_eq!(view["last_error"], Value::Null, "{view}");

    // Meeting over: our tuple goes, the phone's stays.
    clear_calendar(&rig, 1).await;
    let body = watcher.until("without ours", WITHIN, ours_gone).await;
    assert!(body.contains("\"phone-1\""), "{body}");

    // Automatic replies on: away.
    rig.set_oof(1, json!({"state": "Enabled"})).await;
    let body = watcher
        .until("with away", WITHIN, |b| ours_with(b, "away"))
        .await;
    assert!(body.contains("\"phone-1\""), "{body}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_removes_the_publications() {
    let Some(kamailio) = Kamailio::start(Profile::Open).await else {
        return;
    };
    let rig = rig(options(&kamailio, "tcp", "")).await;
    rig.ready().await;
    let mut watchers = Vec::new();
    for n in 1..=2 {
        watchers.push(Watcher::subscribe(kamailio.addr, &presentity(n)).await);
        rig.cover_now(n, if n == 1 { "Busy" } else { "OOF" }).await;
    }
    watchers[0]
        .until("with our meeting over TCP", WITHIN, |b| {
            ours_with(b, "meeting")
        })
        .await;
    watchers[1]
        .until("with away (an OOF item)", WITHIN, |b| ours_with(b, "away"))
        .await;
    eventually("two publications held", WITHIN, || async {
        publishers(&rig).await["publications"] == 2
    })
    .await;
    assert_eq!(publishers(&rig).await["transport"], "tcp");
    rig.stop().await;
    for watcher in &mut watchers {
        watcher
            .until("without ours after shutdown", WITHIN, ours_gone)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_credentials_are_answered_and_a_wrong_password_is_said() {
    for algorithm in ["MD5", "SHA-256"] {
        let Some(kamailio) = Kamailio::start(Profile::Digest(algorithm)).await else {
            return;
        };
        let dir = std::env::temp_dir().join(format!(
            "ews-presence-sip-{}-{algorithm}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let right = dir.join("right");
        let wrong = dir.join("wrong");
        std::fs::write(&right, format!("{PASSWORD}\n")).unwrap();
        std::fs::write(&wrong, "not-the-password\n").unwrap();
        let credentials = |file: &std::path::Path| {
            format!(
                "username = \"presence-gw\"\npassword_file = \"{}\"\n",
                file.display()
            )
        };
        let rig = rig(options(&kamailio, "udp", &credentials(&right))).await;
        rig.ready().await;
        let mut watcher = Watcher::subscribe(kamailio.addr, &presentity(2)).await;
        rig.cover_now(2, "Busy").await;
        watcher
            .until(
                &format!("with our meeting, {algorithm} digest"),
                WITHIN,
                |b| ours_with(b, "meeting"),
            )
            .await;
        rig.stop().await;

        let rig = support::daemon::rig(options(&kamailio, "udp", &credentials(&wrong))).await;
        rig.cover_now(3, "Busy").await;
        eventually("the refused credentials are said", WITHIN, || async {
            let view = publishers(&rig).await;
            view["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused our digest credentials"))
                && view["retry_at"].is_string()
                && view["publications"] == 0
        })
        .await;
        rig.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
        drop(kamailio);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_against_the_configured_ca() {
    let Some(kamailio) = Kamailio::start(Profile::Tls).await else {
        return;
    };
    let (_, cert) = kamailio.tls.clone().expect("a TLS listener");
    let trusted = format!("ca_file = \"{}\"\n", cert.display());
    let rig = rig(options(&kamailio, "tls", &trusted)).await;
    rig.ready().await;
    let mut watcher = Watcher::subscribe(kamailio.addr, &presentity(1)).await;
    rig.cover_now(1, "Busy").await;
    watcher
        .until("with our meeting, over TLS", WITHIN, |b| {
            ours_with(b, "meeting")
        })
        .await;
    assert_eq!(publishers(&rig).await["transport"], "tls");
    rig.stop().await;

    // Without the CA the server's certificate is not trusted, and the view says so.
    let rig = support::daemon::rig(options(&kamailio, "tls", "")).await;
    rig.cover_now(2, "Busy").await;
    eventually("the untrusted certificate is said", WITHIN, || async {
        let view = publishers(&rig).await;
        view["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("TLS handshake") && e.contains("certificate"))
            && view["publications"] == 0
    })
    .await;
    rig.stop().await;
}

/// A presence server that restarted has lost every publication and knows none of our
/// ETags: the next change for a user meets 412 and is published afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gets_the_publication_again() {
    let Some(kamailio) = Kamailio::start(Profile::Open).await else {
        return;
    };
    let rig = rig(options(&kamailio, "udp", "")).await;
    rig.ready().await;
    let mut watcher = Watcher::subscribe(kamailio.addr, &presentity(1)).await;
    rig.cover_now(1, "Busy").await;
    watcher
        .until("with our meeting", WITHIN, |b| ours_with(b, "meeting"))
        .await;
    let kamailio = kamailio.restart().await;
    let mut watcher = Watcher::subscribe(kamailio.addr, &presentity(1)).await;
    // Automatic replies on: away, a modify with the old ETag, refused with 412.
    rig.set_oof(1, json!({"state": "Enabled"})).await;
    watcher
        .until("with away, published afresh", WITHIN, |b| {
            ours_with(b, "away")
        })
        .await;
    let refused = rig
        .metric(
            "ews_presence_sip_publish_total",
            "server=\"kamailio\",kind=\"modify\",outcome=\"unknown_etag\"",
        )
        .await;
    assert!(refused.is_some_and(|n| n >= 1.0), "{refused:?}");
    rig.stop().await;
}

/// `POST /v1/checks` (and `ews-presence check`) check each SIP server: OPTIONS, a
/// PUBLISH for the test mailbox's presentity and its removal; a server that wants
/// credentials we do not have fails with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_troubleshooter_checks_the_presence_server() {
    let steps_of = |checks: &Value| -> Vec<(String, String, String)> {
        checks["gateways"][1]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("the SIP server's steps: {checks}"))
            .iter()
            .map(|s| {
                (
                    s["step"].as_str().unwrap_or_default().to_owned(),
                    s["result"].as_str().unwrap_or_default().to_owned(),
                    format!("{} {}", s["detail"], s["fix"]),
                )
            })
            .collect()
    };
    let Some(kamailio) = Kamailio::start(Profile::Open).await else {
        return;
    };
    let rig = rig(options(&kamailio, "udp", "")).await;
    let checks = client::request(&rig.api, "POST", "/v1/checks", &[], "")
        .await
        .json();
    assert_eq!(checks["gateways"][1]["gateway"], "kamailio", "{checks}");
    let steps = steps_of(&checks);
    let names: Vec<&str> = steps.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["sip options", "sip publish", "sip remove"],
        "{checks}"
    );
    assert!(steps.iter().all(|(_, r, _)| r == "pass"), "{checks}");
    assert!(
        steps[0].2.contains("kamailio"),
        "the server's software: {checks}"
    );
    rig.stop().await;

    let Some(guarded) = Kamailio::start(Profile::Digest("MD5")).await else {
        return;
    };
    let rig = support::daemon::rig(options(&guarded, "udp", "")).await;
    let checks = client::request(&rig.api, "POST", "/v1/checks", &[], "")
        .await
        .json();
    let steps = steps_of(&checks);
    assert_eq!(steps[1].0, "sip publish");
    assert_eq!(steps[1].1, "fail", "{checks}");
    assert!(
        steps[1].2.contains("401") && steps[1].2.contains("password_file"),
        "{checks}"
    );
    rig.stop().await;
}

/// What this Kamailio does that the publisher is designed around (the issue's facts):
/// every 200 a new SIP-ETag, an unknown ETag 412, an Expires above the maximum capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_behaves_as_the_publisher_expects() {
    let Some(kamailio) = Kamailio::start(Profile::Open).await else {
        return;
    };
    let client = sip::client::Client::new(sip::client::ClientConfig {
        server: sip::uri::SipUri::parse(&kamailio.uri("udp")).unwrap(),
        tls: None,
        credentials: None,
        timers: sip::transaction::Timers::default(),
        user_agent: "test".into(),
    });
    let publish = |etag: Option<&str>, expires: u32, body: bool| {
        let mut r = sip::message::Request::new("PUBLISH", "sip:facts@example.test")
            .header("From", "<sip:facts@example.test>;tag=f")
            .header("To", "<sip:facts@example.test>")
            .header(
                "Call-ID",
                format!("facts-{expires}-{}", etag.unwrap_or("none")),
            )
            .header("CSeq", "1 PUBLISH")
            .header("Event", "presence")
            .header("Expires", expires.to_string());
        if let Some(etag) = etag {
            r = r.header("SIP-If-Match", etag);
        }
        if body {
            let doc = r#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:facts@example.test"><tuple id="t"><status><basic>open</basic></status></tuple></presence>"#;
            r = r.body("application/pidf+xml", doc.as_bytes().to_vec());
        }
        r
    };
    let first = client.request(publish(None, 7200, true)).await.unwrap();
    assert_eq!(first.status(), Some(200));
    assert_eq!(
        first.seconds("Expires"),
        Some(3600),
        "capped at max_expires"
    );
    let etag = first.get("SIP-ETag").unwrap().to_owned();
    let refreshed = client
        .request(publish(Some(&etag), 600, false))
        .await
        .unwrap();
    assert_eq!(refreshed.status(), Some(200));
    assert_ne!(
        refreshed.get("SIP-ETag"),
        Some(etag.as_str()),
        "a new ETag on every 200"
    );
    let unknown = client
        .request(publish(Some("a.1.2.3.4"), 600, false))
        .await
        .unwrap();
    assert_eq!(unknown.status(), Some(412), "{}", kamailio.log());
}
