//! Every JSON body the daemon sends to Graph and the simulator answers (and every
//! notification it posts) uses only the entity types, properties and enum members of
//! Graph's own v1.0 schema (`../shared/graph-schema/cleanMetadata-v1.0.xml`). The
//! bodies are the real ones: the hybrid daemon runs against the simulator, a client
//! changes calendars and settings through the Graph API, lifecycle events are raised,
//! and the simulator's record of every exchange is checked. Error bodies (OData's error
//! format) and `$batch` envelopes (JSON batching) are not types of the schema; the
//! requests and answers inside a batch are recorded, and checked, one by one.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use support::client;
use support::csdl::Schema;
use support::daemon::{Options, address, eventually, rig};
use support::graph::{at, call as graph, token};

const WITHIN: Duration = Duration::from_secs(20);

fn schema() -> Option<Schema> {
    let Some(shared) = support::shared_dir() else {
        support::missing("../shared/graph-schema/cleanMetadata-v1.0.xml");
        return None;
    };
    Some(Schema::load(
        &shared.join("graph-schema/cleanMetadata-v1.0.xml"),
    ))
}

/// The checker finds what the schema does not allow (so that its silence means
/// something).
#[test]
fn the_checker_refuses_what_the_schema_does_not_define() {
    let Some(schema) = schema() else { return };
    let mut errors = Vec::new();
    schema.check(&json!({"subject": "x", "showAs": "busy", "start": {"dateTime": "2026-12-04T10:00:00", "timeZone": "UTC"}}), "graph.event", "event", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    schema.check(
        &json!({"subjekt": "x"}),
        "graph.event",
        "event",
        &mut errors,
    );
    schema.check(
        &json!({"showAs": "inAMeeting"}),
        "graph.event",
        "event",
        &mut errors,
    );
    schema.check(
        &json!({"status": "on"}),
        "graph.automaticRepliesSetting",
        "setting",
        &mut errors,
    );
    schema.check(
        &json!({"value": [{"subscriptionId": "not-a-guid"}]}),
        "graph.changeNotificationCollection",
        "n",
        &mut errors,
    );
    schema.check_action(
        &json!({"schedules": ["a"], "interval": 5}),
        "getSchedule",
        &mut errors,
    );
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

/// What type the body of each recorded exchange is, by method and path.
fn types_of(method: &str, path: &str) -> Option<(&'static str, &'static str)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match (method, parts.as_slice()) {
        ("POST", ["users", _, "calendar", "getSchedule"]) => (
            "action:getSchedule",
            "value:Collection(graph.scheduleInformation)",
        ),
        ("GET", ["users", _, "events"]) => ("", "value:Collection(graph.event)"),
        ("POST" | "PATCH", ["users", _, "events", ..]) => ("graph.event", "graph.event"),
        ("GET", ["users", _, "events", _]) => ("", "graph.event"),
        ("GET" | "PATCH", ["users", _, "mailboxSettings"]) => {
            ("graph.mailboxSettings", "graph.mailboxSettings")
        }
        ("GET", ["users", _, "mailboxSettings", "automaticRepliesSetting"]) => {
            ("", "graph.automaticRepliesSetting")
        }
        ("POST", ["subscriptions"])
        | ("PATCH", ["subscriptions", _])
        | ("GET", ["subscriptions", _]) => ("graph.subscription", "graph.subscription"),
        ("GET", ["subscriptions"]) => ("", "value:Collection(graph.subscription)"),
        ("POST", ["subscriptions", _, "reauthorize"]) | ("DELETE", _) => ("", ""),
        _ => return None,
    })
}

fn check(schema: &Schema, body: &Value, ty: &str, at: &str, errors: &mut Vec<String>) {
    if ty.is_empty() {
        if !body.is_null() {
            errors.push(format!("{at}: a body where none is expected: {body}"));
        }
    } else if let Some(action) = ty.strip_prefix("action:") {
        schema.check_action(body, action, errors);
    } else if let Some(inner) = ty.strip_prefix("value:") {
        match body.as_object() {
            Some(map) => {
                for (k, v) in map {
                    if k == "value" {
                        schema.check(v, inner, &format!("{at}.value"), errors);
                    } else if !k.starts_with("@odata.") {
                        errors.push(format!(
                            "{at}.{k}: a collection answer holds value and @odata annotations only"
                        ));
                    }
                }
            }
            None => errors.push(format!("{at}: must be an object")),
        }
    } else {
        schema.check(body, ty, at, errors);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_sent_and_answered_is_in_graphs_schema() {
    let Some(schema) = schema() else { return };
    let rig = rig(Options {
        mailboxes: 8,
        graph_mailboxes: (3..=8).collect(),
        oof_refresh_secs: 1,
        ..Options::default()
    })
    .await;
    eventually("every mailbox agrees", WITHIN, || async {
        rig.disagreements(8).await.is_empty()
    })
    .await;
    let t = token(&rig.sim_target).await;
    let now = jiff::Timestamp::now();
    let user = address(4);
    let created = graph(&rig.sim_target, &t, "POST", &format!("/users/{user}/events"), Some(json!({"subject": "Plan", "start": at(now), "end": at(now + jiff::SignedDuration::from_mins(30)), "showAs": "oof"}))).await;
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    graph(
        &rig.sim_target,
        &t,
        "PATCH",
        &format!("/users/{user}/events/{id}"),
        Some(json!({"showAs": "tentative"})),
    )
    .await;
    graph(
        &rig.sim_target,
        &t,
        "GET",
        &format!("/users/{user}/events"),
        None,
    )
    .await;
    graph(
        &rig.sim_target,
        &t,
        "GET",
        &format!("/users/{user}/events/{id}"),
        None,
    )
    .await;
    graph(&rig.sim_target, &t, "PATCH", &format!("/users/{}/mailboxSettings", address(5)), Some(json!({"automaticRepliesSetting": {"status": "scheduled", "scheduledStartDateTime": at(now), "scheduledEndDateTime": at(now + jiff::SignedDuration::from_hours(2))}}))).await;
    graph(
        &rig.sim_target,
        &t,
        "GET",
        &format!("/users/{}/mailboxSettings", address(5)),
        None,
    )
    .await;
    graph(&rig.sim_target, &t, "GET", "/subscriptions", None).await;
    for event in ["missed", "reauthorizationRequired", "subscriptionRemoved"] {
        client::control(
            &rig.sim_target,
            "POST",
            "/graph/lifecycle",
            Some(json!({"mailbox": address(6), "event": event})),
        )
        .await;
    }
    graph(
        &rig.sim_target,
        &t,
        "DELETE",
        &format!("/users/{user}/events/{id}"),
        None,
    )
    .await;
    eventually("user5 away (read through $batch)", WITHIN, || async {
        rig.presence(5).await["availability"] == "away"
    })
    .await;
    eventually("the subscription made again", WITHIN, || async {
        rig.requests("graph subscription create").await >= 7
    })
    .await;
    let exchanges = client::control(&rig.sim_target, "GET", "/graph/exchanges", None)
        .await
        .json();
    let mut errors = Vec::new();
    let mut checked = BTreeSet::new();
    for (i, x) in exchanges["exchanges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let method = x["method"].as_str().unwrap_or_default();
        let path = x["path"].as_str().unwrap_or_default();
        let at = format!("#{i} {method} {path}");
        if method == "NOTIFY" {
            schema.check(
                &x["request"],
                "graph.changeNotificationCollection",
                &at,
                &mut errors,
            );
            let kind = if x["request"]["value"][0]["lifecycleEvent"].is_string() {
                "lifecycle notification"
            } else {
                "change notification"
            };
            checked.insert(kind.to_owned());
            continue;
        }
        if path == "/$batch" {
            continue;
        }
        let Some((request, response)) = types_of(method, path) else {
            errors.push(format!("{at}: no schema type is known for it"));
            continue;
        };
        check(
            &schema,
            &x["request"],
            request,
            &format!("{at} request"),
            &mut errors,
        );
        if x["status"].as_u64().is_some_and(|s| s < 400) {
            check(
                &schema,
                &x["response"],
                response,
                &format!("{at} answer"),
                &mut errors,
            );
        }
        let kind = path
            .trim_start_matches('/')
            .split('/')
            .filter(|p| !p.contains('@') && p.len() < 30)
            .collect::<Vec<_>>()
            .join("/");
        checked.insert(format!("{method} {kind}"));
    }
    assert!(
        errors.is_empty(),
        "bodies outside Graph's schema:\n{}",
        errors.join("\n")
    );
    for expected in [
        "POST users/calendar/getSchedule",
        "GET users/mailboxSettings/automaticRepliesSetting",
        "POST subscriptions",
        "POST users/events",
        "PATCH users/events",
        "GET users/events",
        "PATCH users/mailboxSettings",
        "GET users/mailboxSettings",
        "GET subscriptions",
        "change notification",
        "lifecycle notification",
    ] {
        assert!(
            checked.contains(expected),
            "{expected} was not among the bodies checked: {checked:?}"
        );
    }
    rig.stop().await;
}
