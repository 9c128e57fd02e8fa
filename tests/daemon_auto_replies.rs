//! Automatic replies read in GetMailTips batches: the server's recipient limit is
//! honoured, the sweep costs a request per batch, each change a tip can show is
//! reflected within `oof_refresh`, what a tip cannot tell (replies on with an empty
//! message) is caught by the GetUserOofSettings verification, and a server with
//! MailTips off is read one mailbox at a time.

mod support;

use std::time::Duration;

use serde_json::json;
use support::daemon::{Options, Rig, eventually, rig};

const WITHIN: Duration = Duration::from_secs(20);

async fn reads(rig: &Rig, n: usize, availability: &str) {
    eventually(&format!("user{n} reads {availability}"), WITHIN, || async {
        rig.presence(n).await["availability"] == availability
    })
    .await;
}

fn options(mailboxes: usize) -> Options {
    let mut options = Options {
        mailboxes,
        oof_refresh_secs: 1,
        ..Options::default()
    };
    options.sim.mailboxes = mailboxes;
    options.sim.empty_calendars = true;
    options.sim.mail_tips_max_recipients = Some(40);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tips_come_in_batches_at_the_servers_limit_and_show_every_change_they_can() {
    let rig = rig(options(100)).await;
    rig.ready().await;
    // 100 mailboxes at 40 per request: 3 requests per sweep.
    rig.auto_replies_read(100).await;
    let status = rig.gateway_status().await;
    assert_eq!(
        status["auto_replies"], "GetMailTips, 40 per request",
        "{status}"
    );
    let (tips, oof) = (
        rig.requests("GetMailTips").await,
        rig.requests("GetUserOofSettings").await,
    );
    // Four more seconds: about four sweeps of three requests, and no GetUserOofSettings
    // beyond the (4-hour) verification.
    let started = tokio::time::Instant::now();
    eventually("four sweeps", WITHIN, || async {
        rig.requests("GetMailTips").await >= tips + 12
    })
    .await;
    let took = started.elapsed().as_secs_f64();
    let sweeps = (rig.requests("GetMailTips").await - tips) as f64 / 3.0;
    assert!(
        sweeps <= took + 1.5,
        "{sweeps} sweeps in {took:.1} s at one per second"
    );
    assert!(rig.requests("GetUserOofSettings").await <= oof + 1);

    // Switched on with a message: the next sweep shows it, no GetUserOofSettings needed.
    let oof = rig.requests("GetUserOofSettings").await;
    rig.set_oof(5, json!({"state": "Enabled"})).await;
    reads(&rig, 5, "away").await;
    // A window running now: the tip's Duration says when it ends.
    let now = jiff::Timestamp::now().as_second();
    let end = jiff::Timestamp::from_second(now - now % 60 + 3600).unwrap();
    let end = end.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    rig.set_oof(
        6,
        json!({"state": "Scheduled", "start": "2020-01-01T00:00:00Z", "end": end}),
    )
    .await;
    reads(&rig, 6, "away").await;
    let shown = rig.presence(6).await;
    assert_eq!(shown["until"], end.as_str(), "{shown}");
    assert!(rig.requests("GetUserOofSettings").await <= oof + 1);
    // Switched off: the empty tip contradicts "on", GetUserOofSettings settles it.
    rig.set_oof(5, json!({"state": "Disabled"})).await;
    reads(&rig, 5, "available").await;
    assert!(rig.requests("GetUserOofSettings").await > oof);
    for n in 1..=100 {
        eventually(&format!("user{n} agrees"), WITHIN, || rig.agrees(n)).await;
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_on_with_an_empty_message_are_caught_by_the_verification() {
    let mut options = options(20);
    options.oof_verify_secs = 2;
    let rig = rig(options).await;
    rig.ready().await;
    rig.auto_replies_read(20).await;
    rig.set_oof(7, json!({"state": "Enabled", "message": ""}))
        .await;
    assert_eq!(rig.truth(7).await["availability"], "away");
    // No tip says so; the verification (every mailbox once per 2 s) does.
    reads(&rig, 7, "away").await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_mailtips_off_is_read_one_mailbox_at_a_time() {
    let mut options = options(20);
    options.sim.mail_tips_max_recipients = None;
    let rig = rig(options).await;
    rig.ready().await;
    rig.auto_replies_read(20).await;
    eventually("the reason is shown", WITHIN, || async {
        rig.gateway_status().await["auto_replies"]
            == "GetUserOofSettings per mailbox (the server says MailTips are off)"
    })
    .await;
    assert_eq!(rig.requests("GetMailTips").await, 0);
    rig.set_oof(3, json!({"state": "Enabled"})).await;
    reads(&rig, 3, "away").await;
    rig.stop().await;
}
