//! API tokens with scopes: which routes each scope opens, the refusals counted by
//! reason, and the token file reloaded. Alone in its test binary, so the process-wide
//! metrics hold this test's refusals only and are compared exactly.

mod support;

use support::client;
use support::daemon::{Options, rig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_scopes_decide_per_route_and_the_file_is_reloaded() {
    let rig = rig(Options {
        token: Some("first-reader-token"),
        ..Options::default()
    })
    .await;
    rig.ready().await;
    std::fs::write(
        rig.dir.join("tokens"),
        "# presence servers read\nreader-token-0001 read\n# operators\nadmin-token-0001 admin\n",
    )
    .unwrap();
    rig.app.reload_tokens().expect("the token file reloads");
    let bearer = |t: &str| format!("Bearer {t}");
    let status = |method: &'static str, path: &'static str, token: Option<&'static str>| {
        let rig = &rig;
        async move {
            let header = token.map(bearer);
            let headers: Vec<(&str, &str)> = header
                .as_deref()
                .map(|h| vec![("Authorization", h)])
                .unwrap_or_default();
            let body = if method == "PUT" {
                r#"{"enabled": true}"#
            } else {
                ""
            };
            client::request(&rig.api, method, path, &headers, body)
                .await
                .status
        }
    };
    let opt_out = "/v1/mailboxes/user1@example.test/calendar-presence";
    // The old token is gone with the reload.
    assert_eq!(
        status("GET", "/v1/gateways", Some("first-reader-token")).await,
        401
    );
    for (method, path) in [
        ("GET", "/v1/presence/user1@example.test"),
        ("GET", "/v1/gateways"),
        ("GET", "/v1/summary"),
        ("GET", opt_out),
    ] {
        assert_eq!(
            status(method, path, Some("reader-token-0001")).await,
            200,
            "{path}"
        );
        assert_eq!(
            status(method, path, Some("admin-token-0001")).await,
            200,
            "{path}"
        );
        assert_eq!(status(method, path, None).await, 401, "{path}");
    }
    let query = client::request(
        &rig.api,
        "POST",
        "/v1/presence/query",
        &[("Authorization", "Bearer reader-token-0001")],
        r#"{"mailboxes": ["user1@example.test"]}"#,
    )
    .await;
    assert_eq!(query.status, 200, "a batch query is a read");
    for (method, path) in [("POST", "/v1/checks"), ("PUT", opt_out)] {
        assert_eq!(
            status(method, path, Some("reader-token-0001")).await,
            403,
            "{method} {path} needs admin"
        );
        assert_eq!(
            status(method, path, Some("admin-token-0001")).await,
            200,
            "{method} {path}"
        );
    }
    // Every refusal is counted by reason.
    let missing = rig
        .metric("ews_presence_api_auth_failures_total", "reason=\"missing\"")
        .await
        .unwrap_or(0.0);
    let scope = rig
        .metric("ews_presence_api_auth_failures_total", "reason=\"scope\"")
        .await
        .unwrap_or(0.0);
    let invalid = rig
        .metric("ews_presence_api_auth_failures_total", "reason=\"invalid\"")
        .await
        .unwrap_or(0.0);
    // Alone in its test binary, this test sees only its own refusals.
    assert_eq!(
        (missing, scope, invalid),
        (4.0, 2.0, 1.0),
        "refusals counted by reason"
    );
    // A broken file keeps the tokens in use, and says where.
    std::fs::write(rig.dir.join("tokens"), "reader-token-0001 owner\n").unwrap();
    let error = rig
        .app
        .reload_tokens()
        .expect_err("an unknown scope")
        .to_string();
    assert!(
        error.contains("tokens:1") && !error.contains("reader-token-0001"),
        "{error}"
    );
    assert_eq!(
        status("GET", "/v1/gateways", Some("reader-token-0001")).await,
        200
    );
    rig.stop().await;
}
