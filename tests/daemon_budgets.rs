//! Connection budgets as Exchange counts them, and whose subscription it is: with
//! impersonation every stream is charged to its group's anchor, so a default
//! configuration serves 5,000 mailboxes on a server that allows 3 streams per budget;
//! and on a server that ties a subscription to the impersonated user (gromox), the
//! gateway falls back to one mailbox per stream by itself and says so.

mod support;

use std::time::Duration;

use ews_sim::SubscriptionOwner;
use serde_json::{Value, json};
use support::client;
use support::daemon::{Options, Rig, eventually, rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_mailboxes_fit_three_streams_per_budget() {
    let mut options = Options {
        mailboxes: 5000,
        oof_refresh_secs: 3600,
        ..Options::default()
    };
    options.sim.mailboxes = 5000;
    options.sim.connection_limit = 3;
    options.sim.heartbeat = Duration::from_secs(1);
    options.sim.minute = Duration::from_secs(60);
    let rig = rig(options).await;
    eventually(
        "5,000 subscriptions on 25 streams",
        Duration::from_secs(90),
        || async {
            let stats = rig.sim_stats().await;
            stats["subscriptions_live"] == 5000 && stats["streams_open"] == 25
        },
    )
    .await;
    let stats = rig.sim_stats().await;
    assert_eq!(
        stats["stream_budgets"],
        json!({"in_use": 25, "most_streams_on_one": 1}),
        "each stream is charged to its own anchor: {stats}"
    );
    assert_eq!(stats["rejected"], json!({}), "{stats}");
    eventually(
        "every mailbox agrees with the truth",
        Duration::from_secs(60),
        || async { rig.disagreements(5000).await.is_empty() },
    )
    .await;
    let gateway = rig.gateway_status().await;
    assert_eq!(gateway["mailboxes_over_capacity"], 0, "{gateway}");
    assert_eq!(gateway["mailboxes_unknown"], 0, "{gateway}");
    assert_eq!(
        gateway.get("max_connections"),
        Some(&Value::Null),
        "no cap by default"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ties_subscriptions_to_their_user_gets_one_mailbox_per_stream() {
    let mut options = Options {
        mailboxes: 12,
        ..Options::default()
    };
    options.sim.subscription_owner = SubscriptionOwner::Impersonated;
    let rig = rig(options).await;
    eventually(
        "twelve streams, one per mailbox",
        Duration::from_secs(30),
        || async {
            let stats = rig.sim_stats().await;
            stats["streams_open"] == 12 && stats["subscriptions_live"] == 12
        },
    )
    .await;
    eventually("every mailbox agrees", Duration::from_secs(20), || async {
        rig.disagreements(12).await.is_empty()
    })
    .await;
    let gateway = rig.gateway_status().await;
    assert_eq!(gateway["one_mailbox_per_stream"], true, "{gateway}");
    // Changes flow on the single-mailbox streams.
    rig.cover_now(9, "OOF").await;
    eventually("user9 reads away", Duration::from_secs(20), || async {
        rig.presence(9).await["availability"] == "away"
    })
    .await;
    // Unsubscribe acts for each subscription's user: shutdown releases them all.
    let Rig { sim, app, dir, .. } = rig;
    app.shutdown(Duration::from_secs(5)).await;
    let stats = client::control(
        &support::client::Target {
            addr: sim.addr,
            tls: None,
        },
        "GET",
        "/stats",
        None,
    )
    .await
    .json();
    assert_eq!(stats["subscriptions_live"], 0, "{stats}");
    sim.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
