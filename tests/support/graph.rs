//! A client of the simulator's Graph side, as any Graph client talks to it: a token by
//! client credentials with the simulator's default application, then requests under
//! `/v1.0` with it.

use serde_json::Value;

use super::client::{self, Reply, Target};

/// A token from the simulator's identity platform.
pub async fn token(sim: &Target) -> String {
    let d = ews_sim::graph::GraphConfig::default();
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        d.client_id,
        d.client_secret.unwrap_or_default()
    );
    let reply = client::request(
        sim,
        "POST",
        &format!("/{}/oauth2/v2.0/token", d.tenant),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body,
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// One Graph request to `path` (under `/v1.0`) with `token`.
pub async fn call(
    sim: &Target,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let auth = format!("Bearer {token}");
    client::request(
        sim,
        method,
        &format!("/v1.0{path}"),
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        body.map(|b| b.to_string()).unwrap_or_default(),
    )
    .await
}

/// `t` as Graph's `dateTimeTimeZone` in UTC.
pub fn at(t: jiff::Timestamp) -> Value {
    serde_json::json!({"dateTime": t.strftime("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"})
}
