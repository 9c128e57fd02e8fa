//! Logging in as Exchange is installed: NTLM over HTTPS with Extended Protection
//! `require`, `allow` and `none` (one login per connection, not per request), a wrong
//! NTLM password reported and tried once per back-off step, bearer tokens rotated by
//! rewriting their file, and streams that come back on a new, re-authenticated
//! connection after the old one dropped, and a login without a channel binding refused
//! where Extended Protection is required and accepted where it is allowed. The
//! troubleshooter behind the status page's button passes the same credential gate.

mod support;

use std::time::Duration;

use ews_sim::auth::{ExtendedProtection, SimAuth};
use serde_json::json;
use support::daemon::{Options, Rig, eventually, rig};

const WITHIN: Duration = Duration::from_secs(20);

fn ntlm(protection: ExtendedProtection) -> Options {
    let mut options = Options {
        mailboxes: 20,
        oof_refresh_secs: 1,
        auth: "ntlm",
        https: true,
        ..Options::default()
    };
    options.sim.auth = SimAuth::Ntlm {
        password: "sim-password".into(),
    };
    options.sim.extended_protection = protection;
    // One GetUserOofSettings per mailbox (MailTips off): a steady flow of requests.
    options.sim.mail_tips_max_recipients = None;
    options
}

fn count(stats: &serde_json::Value, map: &str, key: &str) -> u64 {
    stats[map][key].as_u64().unwrap_or(0)
}

/// Every mailbox the daemon serves agrees with the simulator's truth.
async fn all_agree(rig: &Rig, mailboxes: usize) {
    for n in 1..=mailboxes {
        eventually(&format!("user{n} agrees with the truth"), WITHIN, || {
            rig.agrees(n)
        })
        .await;
    }
}

/// With NTLM the daemon serves every mailbox, and a steady flow of requests (an
/// automatic-reply sweep of 20 mailboxes every second) reuses authenticated
/// connections instead of logging in for each.
async fn serves_with_ntlm(protection: ExtendedProtection) {
    let rig = rig(ntlm(protection)).await;
    rig.ready().await;
    all_agree(&rig, 20).await;
    let before = rig.sim_stats().await;
    let oof_before = rig.requests("GetUserOofSettings").await;
    eventually("three more sweeps", WITHIN, || async {
        rig.requests("GetUserOofSettings").await >= oof_before + 60
    })
    .await;
    let after = rig.sim_stats().await;
    let requests = count(&after, "requests", "GetUserOofSettings")
        - count(&before, "requests", "GetUserOofSettings");
    let logins = count(&after, "logins", "ntlm") - count(&before, "logins", "ntlm");
    assert!(
        logins * 4 <= requests,
        "{logins} NTLM logins for {requests} requests: connections are not kept"
    );
    assert!(count(&after, "logins", "ntlm") >= 1);
    for why in ["unauthorized", "bad_binding", "missing_binding"] {
        assert_eq!(count(&after, "rejected", why), 0, "{why}: {after}");
    }
    let gateway = rig.gateway_status().await;
    assert_eq!(gateway["auth_ok"], true, "{gateway}");
    assert_eq!(gateway["auth"], "ntlm", "{gateway}");
    assert_eq!(gateway["tls_verified"], true, "{gateway}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlm_with_extended_protection_required() {
    serves_with_ntlm(ExtendedProtection::Require).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlm_with_extended_protection_allowed() {
    serves_with_ntlm(ExtendedProtection::Allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlm_without_extended_protection() {
    serves_with_ntlm(ExtendedProtection::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ntlm_password_is_named_and_tried_once_per_back_off_step() {
    let mut options = ntlm(ExtendedProtection::Require);
    options.password = "not-the-password";
    let rig = rig(options).await;
    eventually("the refusal is reported", WITHIN, || async {
        let g = rig.gateway_status().await;
        g["auth_ok"] == false
            && g["last_error"]["message"].as_str().is_some_and(|m| {
                m.contains("svc@example.test") && m.contains("NTLM") && m.contains("401")
            })
    })
    .await;
    // Five presses of the status page's check button go through the same gate: each
    // says when the next attempt is instead of logging in.
    for _ in 0..5 {
        rig.check_is_held_back().await;
    }
    let stats = rig.sim_stats().await;
    assert_eq!(
        count(&stats, "rejected", "unauthorized"),
        1,
        "the checks sent no login: {stats}"
    );
    assert_eq!(count(&stats, "logins", "ntlm"), 0);
    assert_eq!(rig.requests("GetUserOofSettings").await, 0);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_comes_back_on_a_new_authenticated_connection_after_a_drop() {
    let rig = rig(ntlm(ExtendedProtection::Require)).await;
    rig.ready().await;
    rig.one_stream_open().await;
    let before = count(&rig.sim_stats().await, "logins", "ntlm");
    // Every connection goes, the idle authenticated ones too.
    rig.fault(json!({"kind": "drop-connections"})).await;
    rig.cover_now(7, "Busy").await;
    eventually("user7 reads in a meeting", WITHIN, || async {
        rig.presence(7).await["availability"] == "in-a-meeting"
    })
    .await;
    rig.one_stream_open().await;
    let stats = rig.sim_stats().await;
    assert!(
        count(&stats, "logins", "ntlm") > before,
        "the new stream's connection logged in: {stats}"
    );
    assert_eq!(count(&stats, "rejected", "unauthorized"), 0, "{stats}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_rotate_by_rewriting_the_file() {
    let dir = std::env::temp_dir().join(format!("ews-bearer-rotation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The issuer's view: which tokens are valid now.
    let valid = dir.join("valid-tokens");
    std::fs::write(&valid, "sim-password\n").unwrap();
    let mut options = Options {
        mailboxes: 10,
        oof_refresh_secs: 1,
        auth: "bearer",
        https: true,
        ..Options::default()
    };
    options.sim.auth = SimAuth::Bearer {
        token_file: valid.clone(),
    };
    options.sim.mail_tips_max_recipients = None;
    let rig = rig(options).await;
    rig.ready().await;
    all_agree(&rig, 10).await;
    // The agent renews: both tokens are valid for a while, the daemon's file gets the
    // new one, then the old one expires.
    std::fs::write(&valid, "sim-password\nrenewed-token-2\n").unwrap();
    std::fs::write(rig.dir.join("bearer-token"), "renewed-token-2\n").unwrap();
    let oof = rig.requests("GetUserOofSettings").await;
    eventually("a sweep after the renewal", WITHIN, || async {
        rig.requests("GetUserOofSettings").await >= oof + 10
    })
    .await;
    std::fs::write(&valid, "renewed-token-2\n").unwrap();
    rig.cover_now(4, "Busy").await;
    eventually("user4 reads in a meeting", WITHIN, || async {
        rig.presence(4).await["availability"] == "in-a-meeting"
    })
    .await;
    let oof = rig.requests("GetUserOofSettings").await;
    eventually("sweeps go on with the new token", WITHIN, || async {
        rig.requests("GetUserOofSettings").await >= oof + 10
    })
    .await;
    let stats = rig.sim_stats().await;
    assert_eq!(count(&stats, "rejected", "unauthorized"), 0, "{stats}");
    assert_eq!(rig.gateway_status().await["auth_ok"], true);
    rig.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs an NTLM login on one TLS connection to the simulator, sending the channel
/// binding only when `with_binding`; whether the AUTHENTICATE leg got past
/// authentication (anything but 401: an empty body is then refused as bad EWS).
async fn login_on_one_connection(rig: &Rig, with_binding: bool) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use ews::auth::Secret;
    use ews::auth::channel_binding::tls_server_end_point;
    use ews::auth::ntlm::NtlmHandshake;
    use http_body_util::{BodyExt, Full};

    let tcp = tokio::net::TcpStream::connect(rig.sim.addr).await.unwrap();
    let config = rig.sim_target.tls.clone().expect("HTTPS rig");
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let binding = tls_server_end_point(leaf.as_ref()).unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let (handshake, negotiate) = NtlmHandshake::start(
        "svc@example.test",
        &Secret::new("sim-password"),
        "localhost",
        with_binding.then_some(binding.as_slice()),
    )
    .unwrap();
    let request = |message: &[u8]| {
        hyper::Request::post("/EWS/Exchange.asmx")
            .header("Host", "localhost")
            .header("Authorization", format!("NTLM {}", B64.encode(message)))
            .body(Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let challenged = sender.send_request(request(&negotiate)).await.unwrap();
    assert_eq!(challenged.status(), 401);
    let header = challenged.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    challenged.into_body().collect().await.unwrap();
    let challenge = B64.decode(header.strip_prefix("NTLM ").unwrap()).unwrap();
    let authenticate = handshake.answer(&challenge).unwrap();
    sender.ready().await.unwrap();
    let answer = sender.send_request(request(&authenticate)).await.unwrap();
    answer.status() != 401
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_without_a_channel_binding_is_refused_only_where_required() {
    for (protection, accepted_without) in [
        (ExtendedProtection::Require, false),
        (ExtendedProtection::Allow, true),
    ] {
        let rig = rig(ntlm(protection)).await;
        assert!(login_on_one_connection(&rig, true).await, "{protection:?}");
        assert_eq!(
            login_on_one_connection(&rig, false).await,
            accepted_without,
            "{protection:?} without a binding"
        );
        let missing = count(&rig.sim_stats().await, "rejected", "missing_binding");
        assert_eq!(missing, u64::from(!accepted_without), "{protection:?}");
        rig.stop().await;
    }
}
