//! Nothing lost, nothing silent: failed refreshes are retried until the change shows,
//! a wrong password costs one login per back-off step, HTTP 503 honours Retry-After,
//! a stream that trickles bytes without completing a frame is replaced, and shutdown
//! releases hundreds of subscriptions on a slow server within the grace period.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::client;
use support::daemon::{Options, Rig, eventually, rig};

const WITHIN: Duration = Duration::from_secs(20);

async fn reads(rig: &Rig, n: usize, availability: &str) {
    eventually(&format!("user{n} reads {availability}"), WITHIN, || async {
        rig.presence(n).await["availability"] == availability
    })
    .await;
}

async fn startup_reads_done(rig: &Rig, mailboxes: u64) {
    rig.ready().await;
    rig.auto_replies_read(mailboxes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_refresh_stays_queued_until_the_change_shows() {
    let rig = rig(Options {
        mailboxes: 10,
        ..Options::default()
    })
    .await;
    startup_reads_done(&rig, 10).await;
    rig.fault(json!({"kind": "server-busy", "count": 50, "back_off_ms": 100, "operation": "GetUserAvailability"}),
    )
    .await;
    rig.cover_now(1, "OOF").await;
    assert_eq!(rig.truth(1).await["availability"], "away");
    // While the reads fail, the mailbox says so.
    eventually("the failure is visible on the mailbox", WITHIN, || async {
        let p = rig.presence(1).await;
        p["stale"] == true
            && p["problem"]
                .as_str()
                .is_some_and(|m| m.contains("ErrorServerBusy"))
    })
    .await;
    reads(&rig, 1, "away").await;
    let p = rig.presence(1).await;
    assert_eq!(
        (p.get("stale"), p.get("problem")),
        (Some(&json!(false)), Some(&Value::Null))
    );
    assert_eq!(rig.sim_stats().await["rejected"]["server_busy"], 50);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_are_refused_and_the_read_retried() {
    let rig = rig(Options {
        mailboxes: 10,
        ..Options::default()
    })
    .await;
    startup_reads_done(&rig, 10).await;
    for (n, answer) in [(4, "doctype"), (5, "garbage"), (6, "whitespace")] {
        // More hostile answers than one read's attempts.
        rig.fault(json!({"kind": "hostile-answers", "count": 4, "answer": answer, "operation": "GetUserAvailability"}),
        )
        .await;
        rig.cover_now(n, "OOF").await;
        reads(&rig, n, "away").await;
    }
    assert_eq!(rig.sim_stats().await["rejected"]["hostile"], 12);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_costs_one_login_per_back_off_step() {
    let mut options = Options {
        mailboxes: 50,
        oof_refresh_secs: 1,
        password: "not-the-password",
        ..Options::default()
    };
    options.sim.mailboxes = 50;
    let rig = rig(options).await;
    eventually("the refusal is reported", WITHIN, || async {
        let g = rig.gateway_status().await;
        g["auth_ok"] == false
            && g["last_error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("401"))
    })
    .await;
    // Five presses of the check button, each a login if nothing held it back: none
    // reaches the server.
    for _ in 0..5 {
        rig.check_is_held_back().await;
    }
    let refused = rig.sim_stats().await["rejected"]["unauthorized"].as_u64();
    assert_eq!(
        refused,
        Some(1),
        "one failed login: the account would not lock"
    );
    assert_eq!(rig.requests("GetUserOofSettings").await, 0);
    assert_eq!(rig.requests("GetMailTips").await, 0);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_waits_what_retry_after_says_else_backs_off_briefly() {
    let rig = rig(Options::default()).await;
    startup_reads_done(&rig, 20).await;
    // No Retry-After: a short backoff, not a fixed 30 s.
    rig.fault(json!({"kind": "http-503", "count": 2})).await;
    rig.cover_now(3, "OOF").await;
    eventually("user3 reads away soon", Duration::from_secs(5), || async {
        rig.presence(3).await["availability"] == "away"
    })
    .await;
    // Retry-After: 2 s is waited.
    rig.fault(json!({"kind": "http-503", "count": 1, "retry_after_s": 2}))
        .await;
    let started = tokio::time::Instant::now();
    rig.cover_now(4, "OOF").await;
    reads(&rig, 4, "away").await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retried before Retry-After ran out"
    );
    assert_eq!(rig.sim_stats().await["rejected"]["unavailable"], 3);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_trickles_without_a_whole_frame_is_replaced() {
    let rig = rig(Options::default()).await;
    rig.ready().await;
    rig.one_stream_open().await;
    let streams = rig.requests("GetStreamingEvents").await;
    rig.auto_replies_read(20).await;
    let reads_before = rig.requests("GetUserAvailability").await;
    // One byte every 50 ms, for longer than the silence bound (2 x 1 s heartbeat).
    rig.fault(json!({"kind": "trickle", "duration_ms": 6000, "interval_ms": 50}))
        .await;
    eventually(
        "the trickling stream is dropped and reopened",
        Duration::from_secs(8),
        || async { rig.requests("GetStreamingEvents").await > streams },
    )
    .await;
    // Whatever the cut frame carried is lost: the group is read again.
    eventually("the group is refreshed", WITHIN, || async {
        rig.requests("GetUserAvailability").await > reads_before
    })
    .await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_hundreds_of_subscriptions_on_a_slow_server() {
    let mut options = Options {
        mailboxes: 400,
        ..Options::default()
    };
    options.sim.mailboxes = 400;
    let rig = rig(options).await;
    rig.ready().await;
    eventually("400 subscriptions", WITHIN, || async {
        rig.sim_stats().await["subscriptions_live"] == 400
    })
    .await;
    rig.fault(json!({"kind": "slow", "delay_ms": 200})).await;
    let support::daemon::Rig {
        sim,
        sim_target,
        app,
        dir,
        ..
    } = rig;
    // One at a time per group this took 40 s; the grace period is 10 s.
    app.shutdown(Duration::from_secs(10)).await;
    let live = client::control(&sim_target, "GET", "/stats", None)
        .await
        .json()["subscriptions_live"]
        .clone();
    assert_eq!(live, 0, "every subscription released within the grace");
    sim.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
