//! The troubleshooter's steps for a `kind = "graph"` gateway: a token from the
//! identity platform (the app registration, its credential, the tenant), Graph
//! reachable and the permission to read the test mailbox's calendar (getSchedule) and
//! its mailbox settings, and a subscription created and deleted (which proves the
//! permission, the 1,000-subscription limit, and that Graph reached our notification
//! URL: it validates the URL before it answers). Inside the daemon the gateway's own
//! token and credential gate are used; from the command line a new client is built.
//! Reaching the notification URL from the outside cannot be checked from inside:
//! without a test mailbox that step says so.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hyper::Method;

use super::{Outcome, Step, Steps, timed};
use crate::config::GatewayConfig;
use crate::engine::refresh::RefreshQueue;
use crate::engine::refresh::state::{GRAPH_NAMES, Settings};
use crate::graph::error::GraphError;
use crate::graph::gateway::GraphGateway;
use crate::presence::clock::Clock;
use common::mailbox::Mailbox;
use common::percent::encode;
use graph::subscription::Subscription;

/// The steps that need a test mailbox.
const MAILBOX_STEPS: [&str; 3] = ["calendar", "mailbox settings", "subscription"];

/// What to do about a failed Graph request of `step`.
fn fix(step: &str, error: &GraphError, gateway: &GatewayConfig) -> String {
    match error {
        GraphError::AppRefused { fix, .. } => (*fix).to_owned(),
        GraphError::Transport(_) | GraphError::Timeout(_) => {
            "open HTTPS from this machine to login.microsoftonline.com and graph.microsoft.com (firewall, proxy), or fix authority / graph_url".into()
        }
        GraphError::Tls(_) => format!(
            "the server's certificate did not verify against {}: fix ca_file or the proxy that intercepts TLS",
            gateway.ca_file.as_ref().map_or("the system roots".to_owned(), |f| f.display().to_string())
        ),
        GraphError::Http { status: 403, .. } | GraphError::Http { status: 401, .. } => match step {
            "calendar" => "grant the application Calendars.Read (application permission) with admin consent; an application access policy or RBAC for Applications scope may exclude this mailbox (docs/graph.md)".into(),
            "mailbox settings" => "grant the application MailboxSettings.Read (application permission) with admin consent (docs/graph.md)".into(),
            _ => "the application may not subscribe to this mailbox's events: Calendars.Read with admin consent, and the mailbox inside its application access policy (docs/graph.md)".into(),
        },
        GraphError::Http { status: 404, .. } => "Graph does not know this mailbox in the tenant: check the address (it must be an Exchange Online mailbox)".into(),
        GraphError::Http { message, .. } if message.contains("maximum number of subscriptions") => {
            "the mailbox holds Graph's maximum of 1,000 subscriptions (across every application): remove stale ones".into()
        }
        GraphError::Http { code, .. } if code.contains("Validation") => {
            "Graph could not reach notification_url: it must be a public HTTPS URL that reaches this daemon's /graph/notifications (a reverse proxy; docs/graph.md), and the daemon must be running to answer the validation request".into()
        }
        GraphError::Throttled { .. } => "Graph throttles the application: try again later".into(),
        _ => "see the error".into(),
    }
}

/// Runs the steps for `gateway` with `mailbox`; with `running`, through the daemon's
/// gateway (its token and credential gate).
pub async fn check(
    gateway: &GatewayConfig,
    certs_dir: &Path,
    mailbox: Option<&Mailbox>,
    running: Option<Arc<GraphGateway>>,
) -> Vec<Step> {
    let mut steps = Steps(Vec::new());
    let Some(graph) = gateway.graph.clone() else {
        return steps.0;
    };
    let client = match running {
        Some(g) => g,
        None => {
            let tls = match ews::transport::client_tls(gateway.ca_file.as_deref(), certs_dir) {
                Ok(tls) => tls,
                Err(e) => {
                    return steps.fail(
                        "tls",
                        Instant::now(),
                        e.to_string(),
                        "fix the CA file named in the error",
                    );
                }
            };
            // The check reads nothing through the queue; it only completes the client.
            let settings = Settings {
                gateway: gateway.name.as_str().into(),
                debounce: std::time::Duration::from_secs(1),
                oof_refresh: std::time::Duration::from_secs(300),
                oof_verify: std::time::Duration::from_secs(14_400),
                mail_tips_possible: false,
                calendar_batch: graph::schedule::MAX_SCHEDULES,
                auto_replies: Some(crate::graph::reads::auto_reply_source()),
                names: GRAPH_NAMES,
            };
            let refresh = Arc::new(RefreshQueue::new(Clock::System, settings));
            match GraphGateway::new(0, gateway.clone(), graph.clone(), tls, refresh) {
                Ok(g) => Arc::new(g),
                Err(e) => {
                    return steps.fail(
                        "token",
                        Instant::now(),
                        e.to_string(),
                        "fix authority and graph_url",
                    );
                }
            }
        }
    };
    let started = Instant::now();
    match timed(client.sign_in()).await {
        Some(Ok(())) => steps.pass(
            "token",
            started,
            format!("a token for {} from {}", graph.client_id, graph.token_url()),
        ),
        Some(Err(e)) => {
            let fix = fix("token", &e, gateway);
            return steps.fail("token", started, e.to_string(), fix);
        }
        None => {
            return steps.fail(
                "token",
                started,
                "no answer in time",
                "check the way to the identity platform",
            );
        }
    }
    let Some(mailbox) = mailbox else {
        let mut all = steps.skip_mailbox_steps(&MAILBOX_STEPS);
        all.push(Step {
            step: "notification url",
            result: Outcome::Skipped,
            ok: true,
            millis: 0,
            detail: format!("whether Graph reaches {} cannot be checked from inside; a subscription's validation proves it, and that needs a test mailbox", graph.notification_url),
            fix: Some("pass --mailbox ADDRESS, or assign a mailbox to this gateway in [mailboxes]".into()),
        });
        return all;
    };
    let user = encode(mailbox.as_str());
    let now = jiff::Timestamp::now();
    let request = graph::schedule::ScheduleRequest {
        schedules: vec![mailbox.as_str().to_owned()],
        start_time: graph::time::DateTimeTimeZone::utc(now),
        end_time: graph::time::DateTimeTimeZone::utc(
            now.checked_add(jiff::SignedDuration::from_hours(1))
                .unwrap_or(now),
        ),
        availability_view_interval: graph::schedule::VIEW_INTERVAL_MINUTES,
    };
    let probes: [(&'static str, Method, String, Option<String>); 2] = [
        (
            "calendar",
            Method::POST,
            format!("/users/{user}/calendar/getSchedule"),
            Some(graph::encode(&request)),
        ),
        (
            "mailbox settings",
            Method::GET,
            format!("/users/{user}/mailboxSettings/automaticRepliesSetting"),
            None,
        ),
    ];
    for (step, method, path, body) in probes {
        let started = Instant::now();
        match timed(client.call(step, method, &path, body, &[mailbox])).await {
            Some(Ok(_)) => steps.pass(step, started, format!("read for {mailbox}")),
            Some(Err(e)) => {
                let fix = fix(step, &e, gateway);
                return steps.fail(step, started, e.to_string(), fix);
            }
            None => return steps.fail(step, started, "no answer in time", "check Graph's health"),
        }
    }
    let started = Instant::now();
    let client_state = crate::graph::subscriptions::new_client_state();
    let url = graph.notification_url.to_string();
    let body = Subscription::create(
        mailbox.as_str(),
        &url,
        &url,
        now.checked_add(jiff::SignedDuration::from_mins(10))
            .unwrap_or(now),
        &client_state,
    );
    let created = timed(client.call(
        "subscription create",
        Method::POST,
        "/subscriptions",
        Some(graph::encode(&body)),
        &[mailbox],
    ))
    .await;
    let id = match created {
        Some(Ok(answer)) => graph::decode::<Subscription>("subscription", &answer.body)
            .ok()
            .and_then(|s| s.id),
        Some(Err(e)) => {
            let fix = fix("subscription", &e, gateway);
            return steps.fail("subscription", started, e.to_string(), fix);
        }
        None => {
            return steps.fail(
                "subscription",
                started,
                "no answer in time",
                "check Graph's health",
            );
        }
    };
    let Some(id) = id else {
        return steps.fail(
            "subscription",
            started,
            "Graph answered without a subscription id",
            "see Graph's answer",
        );
    };
    let deleted = timed(client.call(
        "subscription delete",
        Method::DELETE,
        &format!("/subscriptions/{id}"),
        None,
        &[mailbox],
    ))
    .await;
    match deleted {
        Some(Ok(_)) => steps.pass(
            "subscription",
            started,
            "created (Graph validated the notification URL) and deleted",
        ),
        Some(Err(e)) => {
            return steps.fail(
                "subscription",
                started,
                format!("created, but not deleted: {e}"),
                "it lapses in 10 minutes by itself",
            );
        }
        None => {
            return steps.fail(
                "subscription",
                started,
                "created, but the delete got no answer",
                "it lapses in 10 minutes by itself",
            );
        }
    }
    steps.pass(
        "notification url",
        Instant::now(),
        format!("Graph's validation request reached {url}"),
    );
    steps.0
}
