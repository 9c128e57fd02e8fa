//! The Grafana dashboard (`deploy/grafana/ews-presence.json`): every panel's PromQL
//! parses (`promtool check rules`, each expression as a recording rule) and names only
//! metrics the daemon exports, and the panels cover what operators watch.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn expressions() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/ews-presence.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard file"))
            .expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title").to_owned();
        for target in panel["targets"].as_array().expect("targets") {
            out.push((
                title.clone(),
                target["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    out
}

/// The metric names an expression mentions (ours and the process ones).
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("ews_presence_") || t.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_panel_names_only_exported_metrics_and_covers_the_essentials() {
    let exported: BTreeSet<&str> = ews_presence::api::metrics::exported_names()
        .into_iter()
        .collect();
    let mut used = BTreeSet::new();
    for (title, expr) in expressions() {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{title}: {expr} names no metric");
        for name in names {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|base| exported.contains(base)))
                .unwrap_or(&name)
                .to_owned();
            assert!(
                exported.contains(family.as_str()),
                "{title}: {name} is not a metric the daemon exports"
            );
            used.insert(family);
        }
    }
    for essential in [
        "ews_presence_mailboxes",
        "ews_presence_transitions_total",
        "ews_presence_event_to_state_seconds",
        "ews_presence_ews_requests_total",
        "ews_presence_ews_request_duration_seconds",
        "ews_presence_reconnects_total",
        "ews_presence_resubscribes_total",
        "ews_presence_throttle_wait_seconds",
        "ews_presence_streaming_connections_open",
        "ews_presence_subscriptions_live",
    ] {
        assert!(used.contains(essential), "no panel shows {essential}");
    }
}

#[test]
fn every_panel_query_parses_with_promtool() {
    if Command::new("promtool").arg("--version").output().is_err() {
        support::missing("promtool (Debian package prometheus)");
        return;
    }
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, (_, expr)) in expressions().iter().enumerate() {
        let quoted = serde_json::to_string(expr).expect("string");
        rules.push_str(&format!(
            "      - record: dashboard:panel_{n}\n        expr: {quoted}\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("ews-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "promtool refused a panel query:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
