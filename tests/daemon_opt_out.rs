//! Per-user opt-out of calendar presence: `PUT /v1/mailboxes/{address}/calendar-presence`
//! unsubscribes the mailbox, drops what was read and never reads it again; it reads
//! `unknown` with `calendar_presence: false`, and the change is on the feed. The choice
//! survives a restart; administrators opt mailboxes out in the mailbox list; a corrupt
//! store stops start-up with a clear error instead of being emptied.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use ews_presence::app::App;
use ews_presence::config::Config;
use serde_json::Value;
use support::client::{self, Target};
use support::daemon::{Options, address, eventually, rig};

const WITHIN: Duration = Duration::from_secs(15);

fn path(n: usize) -> String {
    format!("/v1/mailboxes/{}/calendar-presence", address(n))
}

async fn put(api: &Target, n: usize, body: &str) -> (u16, Value) {
    let reply = client::request(api, "PUT", &path(n), &[], body.to_owned()).await;
    (reply.status, reply.json())
}

async fn presence(api: &Target, n: usize) -> Value {
    client::request(api, "GET", &format!("/v1/presence/{}", address(n)), &[], "")
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_opts_out_and_back_in_and_the_choice_survives_a_restart() {
    let rig = rig(Options {
        mailboxes: 3,
        ..Options::default()
    })
    .await;
    rig.ready().await;
    eventually("three subscriptions", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 3
    })
    .await;
    let mut feed = client::sse(&rig.api, "/v1/presence/watch", &[]).await;

    let (status, setting) = put(&rig.api, 2, r#"{"enabled": false}"#).await;
    assert_eq!(status, 200, "{setting}");
    assert_eq!(setting["enabled"], false);
    assert_eq!(setting["set_by"], "user");
    let p = presence(&rig.api, 2).await;
    assert_eq!(p["availability"], "unknown", "{p}");
    assert_eq!(p["calendar_presence"], false, "{p}");
    assert_eq!(
        (p.get("synced_at"), p.get("problem")),
        (Some(&Value::Null), Some(&Value::Null)),
        "{p}"
    );
    loop {
        let event = feed.next().await.expect("the change is on the feed");
        let data: Value = serde_json::from_str(&event.data).expect("feed data is JSON");
        if data["mailbox"] == address(2) && data["calendar_presence"] == false {
            break;
        }
    }
    eventually("its subscription is gone", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 2
    })
    .await;
    let got = client::request(&rig.api, "GET", &path(2), &[], "")
        .await
        .json();
    assert_eq!(got["enabled"], false, "{got}");

    // Nothing of it is read again: a change to it and one to user1; only user1's is
    // read.
    let read_before = rig.sim_stats().await["availability_mailboxes"]
        .as_u64()
        .unwrap_or(0);
    rig.cover_now(2, "Busy").await;
    rig.cover_now(1, "Busy").await;
    eventually("user1 reads in a meeting", WITHIN, || async {
        presence(&rig.api, 1).await["availability"] == "in-a-meeting"
    })
    .await;
    let read_after = rig.sim_stats().await["availability_mailboxes"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(read_after - read_before, 1, "only user1 was read");
    assert_eq!(presence(&rig.api, 2).await["availability"], "unknown");

    // A restart keeps the choice.
    drop(feed);
    let rig = rig.restart().await;
    let p = presence(&rig.api, 2).await;
    assert_eq!(p["calendar_presence"], false, "after a restart: {p}");

    // Back in: subscribed and served again.
    let (status, setting) = put(&rig.api, 2, r#"{"enabled": true}"#).await;
    assert_eq!(status, 200, "{setting}");
    assert_eq!(setting["set_by"], "default");
    eventually("user2 reads in a meeting again", WITHIN, || async {
        let p = presence(&rig.api, 2).await;
        p["availability"] == "in-a-meeting" && p["calendar_presence"] == true
    })
    .await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_the_administrators_flag() {
    let rig = rig(Options {
        mailboxes: 3,
        ..Options::default()
    })
    .await;
    rig.ready().await;
    for body in ["", "{}", r#"{"enabled": "no"}"#, "[true]"] {
        let (status, answer) = put(&rig.api, 1, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].is_string());
    }
    let (status, _) = put(&rig.api, 99, r#"{"enabled": false}"#).await;
    assert_eq!(status, 404);
    let unknown = client::request(&rig.api, "GET", &path(99), &[], "").await;
    assert_eq!(unknown.status, 404);

    // The administrators opt user3 out in the list; a reload applies it.
    std::fs::write(
        rig.dir.join("mailboxes.txt"),
        format!("{}\n{}\n{} opt-out\n", address(1), address(2), address(3)),
    )
    .unwrap();
    rig.app.reload().expect("the list reloads");
    let got = client::request(&rig.api, "GET", &path(3), &[], "")
        .await
        .json();
    assert_eq!(got["enabled"], false, "{got}");
    assert_eq!(got["set_by"], "administrator", "{got}");
    assert_eq!(presence(&rig.api, 3).await["calendar_presence"], false);
    let (status, answer) = put(&rig.api, 3, r#"{"enabled": true}"#).await;
    assert_eq!(status, 409, "only the administrators can undo it: {answer}");
    eventually("user3's subscription is gone", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 2
    })
    .await;
    // Removing the flag brings it back.
    std::fs::write(
        rig.dir.join("mailboxes.txt"),
        format!("{}\n{}\n{}\n", address(1), address(2), address(3)),
    )
    .unwrap();
    rig.app.reload().expect("the list reloads");
    eventually("user3 is served again", WITHIN, || async {
        rig.agrees(3).await
    })
    .await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_stops_start_up_and_is_left_alone() {
    let rig = rig(Options {
        mailboxes: 1,
        ..Options::default()
    })
    .await;
    let config_file = rig.dir.join("ews-presence.toml");
    let store = rig.dir.join("state").join("opt-out.redb");
    assert!(
        store.exists(),
        "the default state directory is beside the configuration"
    );
    let garbage = vec![0x42_u8; 4096];
    let dir = rig.dir.clone();
    let (sim, app) = (rig.sim, rig.app);
    app.shutdown(Duration::from_secs(5)).await;
    std::fs::write(&store, &garbage).unwrap();
    let config = Config::load(&config_file, &HashMap::new()).expect("valid config");
    let error = match App::start(config).await {
        Ok(_) => panic!("a corrupt store must stop start-up"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("opt-out.redb"), "{error}");
    assert_eq!(std::fs::read(&store).unwrap(), garbage, "never emptied");
    sim.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
