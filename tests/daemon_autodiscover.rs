//! The daemon finding EWS with Autodiscover: groups formed per EWS URL and
//! GroupingInformation hold mailboxes of one backend only (none of their
//! subscriptions lands away from its mailbox's backend), the daemon agrees with the
//! truth, and mailboxes Autodiscover cannot place read `unknown` with the reason.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::daemon::{Options, eventually, rig};

const WITHIN: Duration = Duration::from_secs(60);

fn options(sim_mailboxes: usize, served: usize, autodiscover: bool) -> Options {
    let mut options = Options {
        mailboxes: served,
        https: true,
        autodiscover,
        oof_refresh_secs: 3600,
        ..Options::default()
    };
    options.sim.mailboxes = sim_mailboxes;
    options.sim.backends = 4;
    options.sim.heartbeat = Duration::from_secs(1);
    options.sim.minute = Duration::from_secs(60);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_follow_autodiscover_one_backend_each() {
    let rig = rig(options(2000, 2000, true)).await;
    eventually("2,000 subscriptions on 12 streams", WITHIN, || async {
        let stats = rig.sim_stats().await;
        stats["subscriptions_live"] == 2000 && stats["streams_open"] == 12
    })
    .await;
    let stats = rig.sim_stats().await;
    assert_eq!(
        stats["subscriptions_off_home"], 0,
        "every group holds mailboxes of one backend: {stats}"
    );
    assert_eq!(
        stats["requests"]["GetUserSettings"], 20,
        "batches of 100: {stats}"
    );
    eventually("every mailbox agrees with the truth", WITHIN, || async {
        rig.disagreements(2000).await.is_empty()
    })
    .await;
    let gateway = rig.gateway_status().await;
    assert_eq!(gateway["url"], "autodiscover", "{gateway}");
    assert_eq!(gateway["mailboxes_undiscovered"], 0, "{gateway}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_autodiscover_alphabetical_groups_mix_backends() {
    // The baseline the grouping above fixes: the same organisation with a configured
    // URL puts mailboxes of four backends in each group.
    let rig = rig(options(400, 400, false)).await;
    eventually("400 subscriptions", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 400
    })
    .await;
    let off_home = rig.sim_stats().await["subscriptions_off_home"]
        .as_u64()
        .unwrap_or(0);
    assert!(off_home >= 200, "{off_home} subscriptions away from home");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_autodiscover_cannot_place_read_unknown_with_the_reason() {
    // The daemon serves user1..user12; the organisation has only ten.
    let rig = rig(options(10, 12, true)).await;
    rig.ready().await;
    let gateway = rig.gateway_status().await;
    assert_eq!(gateway["mailboxes_undiscovered"], 2, "{gateway}");
    let listed: Vec<&str> = gateway["undiscovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["mailbox"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["user11@example.test", "user12@example.test"]);
    assert!(
        gateway["undiscovered"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("InvalidUser")),
        "{gateway}"
    );
    let unknown = rig.presence(11).await;
    assert_eq!(unknown["availability"], "unknown");
    assert!(
        unknown["problem"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{}: autodiscover:", rig.gateway))),
        "{unknown}"
    );
    eventually("the others agree", WITHIN, || async {
        rig.disagreements(10).await.is_empty()
    })
    .await;
    assert_eq!(rig.sim_stats().await["subscriptions_live"], Value::from(10));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_mailbox_follows_its_move_and_its_neighbours_stay() {
    let rig = rig(options(40, 40, true)).await;
    eventually("40 subscriptions", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 40
    })
    .await;
    rig.ready().await;
    let before = rig.sim_stats().await;
    // user5 lives on backend 0 (index 4 of 4 backends); it moves to backend 2.
    let moved = rig
        .fault(serde_json::json!({"kind": "move-mailbox", "mailbox": "user5@example.test", "to_backend": 2}))
        .await;
    assert_eq!(moved["subscriptions_expired"], 1, "{moved}");
    rig.cover_now(5, "OOF").await;
    eventually(
        "user5 reads away after its move",
        Duration::from_secs(15),
        || async { rig.presence(5).await["availability"] == "away" },
    )
    .await;
    eventually("user5 subscribed again", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 40
    })
    .await;
    let after = rig.sim_stats().await;
    let subscribes = |s: &Value| s["requests"]["Subscribe"].as_u64().unwrap_or(0);
    // One refused Subscribe on the old backend at most, then one on the new one: no
    // neighbour was subscribed again.
    let again = subscribes(&after) - subscribes(&before);
    assert!(
        (1..=3).contains(&again),
        "{again} Subscribes after the move: {after}"
    );
    assert_eq!(after["subscriptions_off_home"], 0, "{after}");
    let rediscovered = after["requests"]["GetUserSettings"].as_u64().unwrap_or(0)
        - before["requests"]["GetUserSettings"].as_u64().unwrap_or(0);
    assert!(rediscovered >= 1, "Autodiscover was asked again: {after}");
    // The neighbours kept their subscriptions and agree with the truth.
    eventually("everyone agrees", WITHIN, || async {
        rig.disagreements(40).await.is_empty()
    })
    .await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discover_command_shows_where_each_mailbox_lands() {
    let rig = rig(options(40, 8, true)).await;
    let config = rig.dir.join("ews-presence.toml");
    let output = discover(
        &config,
        &[
            "--json",
            "user1@example.test",
            "user6@legacy.example.test",
            "nobody@example.test",
        ],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "one mailbox cannot be placed"
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let by = |m: &str| lines.iter().find(|l| l["mailbox"] == m).unwrap().clone();
    let one = by("user1@example.test");
    assert_eq!(one["ok"], true);
    assert_eq!(one["grouping_information"], "EXAMPLE-DAG1");
    assert!(
        one["ews_url"]
            .as_str()
            .unwrap()
            .ends_with("/mbx01/EWS/Exchange.asmx")
    );
    assert!(
        one["endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/autodiscover/autodiscover.svc")
    );
    assert_eq!(one["group"]["number"], 1);
    let six = by("user6@legacy.example.test");
    assert_eq!(
        (six["address"].clone(), six["grouping_information"].clone()),
        (
            Value::from("user6@example.test"),
            Value::from("EXAMPLE-DAG2")
        )
    );
    let nobody = by("nobody@example.test");
    assert_eq!(nobody["ok"], false);
    assert!(
        nobody["error"].as_str().unwrap().contains("InvalidUser"),
        "{nobody}"
    );
    assert_eq!(
        nobody.get("group"),
        Some(&Value::Null),
        "not served without a url"
    );
    // Text for people, exit 0 when every mailbox is placed.
    let text = discover(&config, &[]).await;
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(text.lines().count(), 8, "{text}");
    assert!(text.contains("grouping EXAMPLE-DAG3"), "{text}");
    rig.stop().await;
}

/// Runs `ews-presence discover --config CONFIG ARGS...` off the runtime's threads (the
/// simulator it asks runs on them).
async fn discover(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ews-presence"));
    command
        .args(["discover", "--config"])
        .arg(config)
        .args(args);
    tokio::task::spawn_blocking(move || command.output().expect("runs"))
        .await
        .expect("joined")
}
