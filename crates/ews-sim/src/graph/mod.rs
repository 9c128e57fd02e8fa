//! Microsoft Graph on the simulator's listener (`simulate --graph`), over the same
//! ground truth as EWS, so a mailbox's truth is one whichever protocol reads or
//! changes it:
//!
//! - [`token`]: the identity platform's token endpoint (client credentials with a
//!   secret or an RS256 client assertion, checked against the app's certificate).
//! - [`calendar`]: `users/{id}/events` (list, get, create, update, delete) and
//!   `calendar/getSchedule`; [`settings`]: `mailboxSettings` and its
//!   `automaticRepliesSetting`.
//! - [`subscriptions`]: change-notification subscriptions (create with the validation
//!   handshake, renew, reauthorize, delete), the notifications a change raises and the
//!   lifecycle events a test asks for, delivered by [`delivery`].
//! - [`batch`]: JSON `$batch`; [`faults`]: what a test can make Graph do (throttle,
//!   refuse tokens, drop or delay notifications).
//!
//! Every request but the token's needs a bearer token this simulator issued. At most
//! [`MAILBOX_CONCURRENCY`] requests may be in flight per mailbox, as Graph's Outlook
//! limit; more are answered 429. Graph itself only delivers to `https://`
//! notification URLs; this one also delivers to `http://` ones, for tests.

pub mod batch;
pub mod calendar;
pub mod delivery;
pub mod faults;
pub mod settings;
pub mod subscriptions;
pub mod token;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::percent::decode as percent_decode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::Sim;
use super::http::{Body, MAX_REQUEST_BYTES, respond};

/// Requests in flight per mailbox that Graph serves (Outlook's concurrency limit).
pub const MAILBOX_CONCURRENCY: usize = 4;

/// How the Graph side is set up.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// The tenant in the token URL (a domain or an id).
    pub tenant: String,
    /// The application's client id.
    pub client_id: String,
    /// Its client secret, when it may use one.
    pub client_secret: Option<String>,
    /// Its certificate (PEM), when it may sign client assertions.
    pub certificate: Option<PathBuf>,
    /// How long a token lives.
    pub token_lifetime: Duration,
    /// CA file to trust when delivering to `https://` notification URLs (else the
    /// system roots).
    pub notify_ca: Option<PathBuf>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            tenant: "example.test".into(),
            client_id: "00000000-0000-0000-0000-0000000a0001".into(),
            client_secret: Some("graph-simulator-secret".into()),
            certificate: None,
            token_lifetime: Duration::from_secs(3600),
            notify_ca: None,
        }
    }
}

/// The Graph side's state.
#[derive(Debug)]
pub struct GraphSide {
    /// Its configuration.
    pub config: GraphConfig,
    /// Tokens issued.
    pub tokens: token::Tokens,
    /// Subscriptions.
    pub subscriptions: subscriptions::Registry,
    /// What a test asked Graph to do wrong.
    pub faults: faults::GraphFaults,
    /// Outbound POSTs (validation and notifications).
    pub delivery: delivery::Delivery,
    /// Requests in flight per mailbox.
    in_flight: Mutex<HashMap<usize, usize>>,
    /// The last exchanges, for inspection (`GET /sim/graph/exchanges`).
    pub recorded: Mutex<std::collections::VecDeque<Exchange>>,
}

/// Exchanges kept for inspection.
pub const RECORDED: usize = 1000;

/// One request and its answer (or one notification sent), as recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exchange {
    /// `GET`, `POST`, … (`NOTIFY` for a notification we sent).
    pub method: String,
    /// The path after `/v1.0` (the URL for a notification).
    pub path: String,
    /// The JSON body sent, if any.
    pub request: Option<Value>,
    /// The answer's status.
    pub status: u16,
    /// The JSON body answered, if any.
    pub response: Option<Value>,
}

impl GraphSide {
    /// Keeps `exchange` (the oldest goes when full).
    pub fn record(&self, exchange: Exchange) {
        let mut recorded = common::sync::lock(&self.recorded);
        if recorded.len() >= RECORDED {
            recorded.pop_front();
        }
        recorded.push_back(exchange);
    }
}

impl GraphSide {
    /// The Graph side for `config`; fails when the certificate or CA cannot be read.
    pub fn new(config: GraphConfig) -> Result<GraphSide, String> {
        Ok(GraphSide {
            tokens: token::Tokens::new(&config)?,
            subscriptions: subscriptions::Registry::default(),
            faults: faults::GraphFaults::default(),
            delivery: delivery::Delivery::new(config.notify_ca.as_deref())?,
            in_flight: Mutex::new(HashMap::new()),
            recorded: Mutex::new(std::collections::VecDeque::new()),
            config,
        })
    }
}

/// One Graph request, from the wire or from a `$batch`.
#[derive(Debug, Clone)]
pub struct Call {
    /// Its method.
    pub method: Method,
    /// Its path after `/v1.0`, percent-decoded segments.
    pub segments: Vec<String>,
    /// Its query.
    pub query: Option<String>,
    /// Its body.
    pub body: bytes::Bytes,
    /// It is one request of a `$batch` (counted apart in `/sim/stats`, as
    /// `graph $batch item`: one HTTP request carried it, though Graph's throttling
    /// counts it on its own).
    pub batched: bool,
}

/// One Graph answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Seconds to wait (429, 503).
    pub retry_after: Option<u64>,
    /// JSON body (none for 204).
    pub body: Option<Value>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: Some(body),
        }
    }

    /// A JSON answer of a wire type.
    pub fn of<T: serde::Serialize>(status: u16, body: &T) -> Reply {
        Reply::json(status, serde_json::to_value(body).unwrap_or(Value::Null))
    }

    /// An empty answer.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            body: None,
        }
    }

    /// Graph's error body.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::of(status, &graph::error::ErrorBody::new(code, message))
    }

    /// A 429 asking to wait `secs`.
    pub fn throttled(secs: u64, code: &str, message: &str) -> Reply {
        Reply {
            retry_after: Some(secs),
            ..Reply::error(429, code, message)
        }
    }
}

/// Whether `path` is Graph's (`/v1.0/…`).
pub fn is_graph_path(path: &str) -> bool {
    path.starts_with("/v1.0/")
}

/// Serves one request under `/v1.0/`.
pub async fn handle(sim: &Arc<Sim>, graph: &GraphSide, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return to_response(Reply::error(
                413,
                "RequestEntityTooLarge",
                "the body is too large",
            ));
        }
    };
    let token = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| graph.tokens.valid(t)) {
        sim.stats.rejected("graph_token");
        return to_response(Reply::error(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty, expired or not issued by this simulator.",
        ));
    }
    let call = Call {
        method: parts.method,
        segments: segments(parts.uri.path()),
        query: parts.uri.query().map(str::to_owned),
        body,
        batched: false,
    };
    to_response(answer(sim, graph, call).await)
}

/// The percent-decoded segments of a path after `/v1.0`.
pub fn segments(path: &str) -> Vec<String> {
    path.trim_start_matches("/v1.0")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s).into_owned())
        .collect()
}

/// Answers one call (also each request of a `$batch`), and records it.
pub async fn answer(sim: &Arc<Sim>, graph: &GraphSide, call: Call) -> Reply {
    let method = call.method.to_string();
    let path = format!("/{}", call.segments.join("/"));
    let request = serde_json::from_slice::<Value>(&call.body).ok();
    let reply = Box::pin(answer_unrecorded(sim, graph, call)).await;
    graph.record(Exchange {
        method,
        path,
        request,
        status: reply.status,
        response: reply.body.clone(),
    });
    reply
}

async fn answer_unrecorded(sim: &Arc<Sim>, graph: &GraphSide, call: Call) -> Reply {
    if let Some(secs) = graph.faults.take_throttle() {
        sim.stats.rejected("graph_throttled");
        return Reply::throttled(
            secs,
            "TooManyRequests",
            "Application is over its resource limit.",
        );
    }
    let path: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let user = match path.as_slice() {
        ["users", id, ..] => match sim.directory.lookup(id) {
            Some(m) => Some(m),
            None => {
                return Reply::error(
                    404,
                    "ErrorInvalidUser",
                    &format!("The requested user '{id}' is invalid."),
                );
            }
        },
        _ => None,
    };
    let _slot = match user {
        Some(m) => match InFlight::take(graph, m) {
            Some(slot) => Some(slot),
            None => {
                sim.stats.rejected("graph_mailbox_concurrency");
                return Reply::throttled(
                    1,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                );
            }
        },
        None => None,
    };
    if let Some(delay) = sim.faults.delay() {
        tokio::time::sleep(delay).await;
    }
    let operation = if call.batched {
        "graph $batch item"
    } else {
        operation_of(&call.method, &path)
    };
    sim.stats.request(operation);
    match (call.method.clone(), path.as_slice(), user) {
        (Method::POST, ["$batch"], _) => Box::pin(batch::answer(sim, graph, &call.body)).await,
        (_, ["users", _, rest @ ..], Some(m)) => match rest {
            ["events", ..] | ["calendar", "events", ..] | ["calendar", "getSchedule"] => {
                calendar::answer(
                    sim,
                    m,
                    &call.method,
                    rest,
                    call.query.as_deref(),
                    &call.body,
                )
            }
            ["mailboxSettings", ..] => settings::answer(sim, m, &call.method, rest, &call.body),
            _ => not_found(&call),
        },
        (_, ["subscriptions", ..], _) => subscriptions::answer(sim, graph, &call).await,
        _ => not_found(&call),
    }
}

/// The operation a call is counted as in `/sim/stats`.
fn operation_of(method: &Method, path: &[&str]) -> &'static str {
    match (method, path) {
        (&Method::POST, ["$batch"]) => "graph $batch",
        (_, ["users", _, "calendar", "getSchedule"]) => "graph getSchedule",
        (_, ["users", _, "mailboxSettings", ..]) => "graph mailboxSettings",
        (_, ["users", _, "events", ..] | ["users", _, "calendar", "events", ..]) => "graph events",
        (&Method::POST, ["subscriptions"]) => "graph subscription create",
        (&Method::PATCH, ["subscriptions", _]) => "graph subscription renew",
        (&Method::DELETE, ["subscriptions", _]) => "graph subscription delete",
        (_, ["subscriptions", ..]) => "graph subscriptions",
        _ => "graph other",
    }
}

fn not_found(call: &Call) -> Reply {
    Reply::error(
        400,
        "BadRequest",
        &format!(
            "Resource not found for the segment '{}' ({}).",
            call.segments.join("/"),
            call.method
        ),
    )
}

/// One request's place among a mailbox's requests in flight.
struct InFlight<'a> {
    graph: &'a GraphSide,
    mailbox: usize,
}

impl<'a> InFlight<'a> {
    fn take(graph: &'a GraphSide, mailbox: usize) -> Option<InFlight<'a>> {
        let mut map = common::sync::lock(&graph.in_flight);
        let n = map.entry(mailbox).or_default();
        if *n >= MAILBOX_CONCURRENCY {
            return None;
        }
        *n += 1;
        Some(InFlight { graph, mailbox })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = common::sync::lock(&self.graph.in_flight);
        if let Some(n) = map.get_mut(&self.mailbox) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.mailbox);
            }
        }
    }
}

/// The HTTP response for a reply.
pub fn to_response(reply: Reply) -> Response<Body> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &reply.body {
        Some(body) => respond(
            status,
            "application/json; odata.metadata=minimal",
            body.to_string(),
        ),
        None => respond(status, "text/plain", ""),
    };
    if let Some(secs) = reply.retry_after
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// The instant `t` names (the field `name`), or the 400 Graph answers.
pub fn instant_of(t: &graph::time::DateTimeTimeZone, name: &str) -> Result<jiff::Timestamp, Reply> {
    t.instant()
        .map_err(|e| Reply::error(400, "ErrorInvalidRequest", &format!("{name}: {e}")))
}

/// Reads a JSON body as `T`, or the 400 Graph answers.
pub fn body_of<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        Reply::error(
            400,
            "BadRequest",
            &format!("Unable to read JSON request payload: {e}"),
        )
    })
}
