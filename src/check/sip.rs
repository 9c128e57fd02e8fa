//! The troubleshooter's steps for a SIP presence server (`[[sip]]`): OPTIONS to the
//! server (reachable over its transport, TLS trusted, what it runs), then for the test
//! mailbox's presentity a PUBLISH and its removal. The test publication has a tuple of
//! its own (`ews-presence-check`), no activity and a one-minute lifetime, and is
//! removed at once: watchers may see it for that moment, never a meeting.

use std::path::Path;
use std::time::Instant;

use common::mailbox::Mailbox;
use jiff::Timestamp;
use sip::client::{Client, ClientConfig, ClientError};
use sip::message::{Message, Request, StartLine};
use sip::pidf::{self, Activity, Document};
use sip::transaction::Timers;

use super::{Step, Steps, timed};
use crate::config::SipConfig;

/// The steps that need a test mailbox.
const MAILBOX_STEPS: [&str; 2] = ["sip publish", "sip remove"];

/// Checks one SIP server.
pub async fn check(config: &SipConfig, certs_dir: &Path, mailbox: Option<&Mailbox>) -> Vec<Step> {
    let mut steps = Steps(Vec::new());
    let started = Instant::now();
    let tls = if config.uses_tls() {
        match ews::transport::client_tls(config.ca_file.as_deref(), certs_dir) {
            Ok(tls) => Some(tls),
            Err(e) => {
                return steps.fail(
                    "sip options",
                    started,
                    format!("TLS settings: {e}"),
                    "fix ca_file or the certificates in certs/",
                );
            }
        }
    } else {
        None
    };
    let client = Client::new(ClientConfig {
        server: config.server.clone(),
        tls,
        credentials: config.credentials.clone(),
        timers: Timers::default(),
        user_agent: format!("ews-presence/{} check", env!("CARGO_PKG_VERSION")),
    });
    let server = config.server.to_string();
    let host = format!("sip:{}", config.server.host_port());
    let options =
        base(Request::new("OPTIONS", &host), &host, "options").header("Accept", "application/sdp");
    match timed(client.request(options)).await {
        None => {
            return steps.fail(
                "sip options",
                started,
                "no answer within the step's time",
                reach_fix(config),
            );
        }
        Some(Err(e)) => {
            return steps.fail("sip options", started, e.to_string(), error_fix(&e, config));
        }
        Some(Ok(r)) => {
            let says = said(&r);
            let software = r
                .get("Server")
                .or_else(|| r.get("User-Agent"))
                .unwrap_or("no Server header");
            // Any answer proves the server is there; 200 is the usual one.
            steps.pass(
                "sip options",
                started,
                format!("{server} answered {says} ({software})"),
            );
        }
    }
    let Some(mailbox) = mailbox else {
        return steps.skip_mailbox_steps(&MAILBOX_STEPS);
    };
    let presentity = config.presentity.apply(mailbox);
    let started = Instant::now();
    let body = Document {
        entity: &presentity,
        tuple_id: "ews-presence-check",
        activity: Activity::None,
        until: None,
        note: "ews-presence check",
        timestamp: Timestamp::now(),
    }
    .to_xml();
    let publish = base(Request::new("PUBLISH", &presentity), &presentity, "publish")
        .header("Event", "presence")
        .header("Expires", "60")
        .body(pidf::CONTENT_TYPE, body.into_bytes());
    let etag = match timed(client.request(publish)).await {
        None => {
            return steps.fail(
                "sip publish",
                started,
                "no answer within the step's time",
                reach_fix(config),
            );
        }
        Some(Err(e)) => {
            return steps.fail("sip publish", started, e.to_string(), error_fix(&e, config));
        }
        Some(Ok(r)) => match (r.status(), r.get("SIP-ETag")) {
            (Some(200..=299), Some(etag)) => {
                let granted = r.get("Expires").unwrap_or("no Expires");
                steps.pass(
                    "sip publish",
                    started,
                    format!(
                        "{presentity}: {} (SIP-ETag {etag}, Expires {granted})",
                        said(&r)
                    ),
                );
                etag.to_owned()
            }
            (status, _) => {
                return steps.fail(
                    "sip publish",
                    started,
                    format!("{presentity}: {}", said(&r)),
                    status_fix(status.unwrap_or(0), config),
                );
            }
        },
    };
    let started = Instant::now();
    let remove = base(Request::new("PUBLISH", &presentity), &presentity, "remove")
        .header("Event", "presence")
        .header("Expires", "0")
        .header("SIP-If-Match", etag);
    match timed(client.request(remove)).await {
        None => steps.fail(
            "sip remove",
            started,
            "no answer within the step's time",
            reach_fix(config),
        ),
        Some(Err(e)) => steps.fail("sip remove", started, e.to_string(), error_fix(&e, config)),
        Some(Ok(r)) if r.status().is_some_and(|s| (200..300).contains(&s)) => {
            steps.pass("sip remove", started, format!("{presentity}: {}", said(&r)));
            steps.0
        }
        Some(Ok(r)) => steps.fail(
            "sip remove",
            started,
            format!("{presentity}: {}", said(&r)),
            "the test publication expires by itself within a minute; see the server's log",
        ),
    }
}

/// From, To, Call-ID and CSeq for a one-off request.
fn base(request: Request, to: &str, what: &str) -> Request {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    request
        .header("From", format!("<{to}>;tag=check{unique:x}"))
        .header("To", format!("<{to}>"))
        .header("Call-ID", format!("check-{what}-{unique:x}@ews-presence"))
        .header(
            "CSeq",
            format!(
                "1 {}",
                if what == "options" {
                    "OPTIONS"
                } else {
                    "PUBLISH"
                }
            ),
        )
}

fn said(response: &Message) -> String {
    match &response.start {
        StartLine::Response { status, reason } => format!("{status} {reason}"),
        StartLine::Request { method, .. } => format!("a {method} request"),
    }
}

fn reach_fix(config: &SipConfig) -> String {
    format!(
        "check that the server listens on {} over {} and that no firewall drops the packets",
        config.server.host_port(),
        config.server.effective_transport()
    )
}

fn error_fix(error: &ClientError, config: &SipConfig) -> String {
    match error {
        ClientError::Connect { reason, .. } if reason.contains("TLS") => {
            "trust the server's CA: set ca_file, or put the CA in certs/".into()
        }
        ClientError::Challenge(_) => "the server asks for an authentication we cannot answer; accept the daemon by source address (docs/sip.md)".into(),
        _ => reach_fix(config),
    }
}

fn status_fix(status: u16, config: &SipConfig) -> String {
    match status {
        401 | 407 if config.credentials.is_none() => {
            "the server asks for digest credentials: set username and password_file".into()
        }
        401 | 407 => "the server refuses the credentials: check username and password_file".into(),
        403 => "the server forbids publishing for this presentity: allow the daemon's address or account (docs/sip.md)".into(),
        404 => "the server does not know this presentity: check the presentity template and the server's domains".into(),
        489 => "the server does not serve the presence event: load its presence modules (Kamailio: presence, presence_xml)".into(),
        _ => "see the server's answer and its log".into(),
    }
}
