//! The HTTP API (hyper, HTTP/1.1):
//!
//! - `GET /v1/presence/{mailbox}`, `POST /v1/presence/query`, `GET /v1/presence/watch`
//!   (Server-Sent Events, resumable with `Last-Event-ID`), `GET /v1/gateways`;
//! - `GET /metrics` (Prometheus text 0.0.4), `GET /livez`, `GET /readyz`.
//!
//! With API tokens configured, `/v1/*` needs `Authorization: Bearer <token>`. Bodies
//! are bounded, headers must arrive in time, malformed requests get 400 with a JSON
//! error; nothing a client sends can stall or crash the server. Every response says in
//! `Server-Timing: app;dur=MS` how long the server took to produce it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::percent::decode as percent_decode;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth_failures::AuthFailures;
use super::calendar_presence::{self, CALENDAR_PRESENCE_SUFFIX};
use super::connections::{Connection, Connections};
use super::tls::ApiTls;
use super::tokens::{Refusal, Scope, Tokens};
use super::{json, metrics};
use crate::engine::status::StatusHandle;
use crate::presence::cache::Cache;
use crate::presence::feed::{Batch, Feed};
use crate::presence::snapshot::Snapshot;
use common::mailbox::Mailbox;

pub(super) type Body = BoxBody<Bytes, Infallible>;

/// Most mailboxes one batch query may name.
pub const MAX_QUERY_MAILBOXES: usize = 10_000;
/// Largest request body accepted.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Most of an oversized body read away (and dropped) before answering 413.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;
/// Time a client has to send its headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request body once its headers arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Comment lines keep idle SSE connections open through proxies.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);
/// Chunks buffered per SSE watcher ahead of its socket.
const SSE_BUFFER: usize = 64;
/// Events already queued are sent together up to this many bytes per chunk.
const SSE_COALESCE_BYTES: usize = 64 * 1024;
/// About the size of one rendered event, to size a chunk for what is queued.
const SSE_EVENT_BYTES: usize = 320;
/// A chunk's room: the coalescing limit and one more event.
const SSE_CHUNK_CAPACITY: usize = SSE_COALESCE_BYTES + 1024;

/// What the API serves from.
pub struct ApiState {
    /// Presence.
    pub cache: Arc<Cache>,
    /// Transitions.
    pub feed: Arc<Feed<Snapshot>>,
    /// Gateways (read only).
    pub status: StatusHandle,
    /// The source of presence, for the mailboxes opted in or out.
    pub source: Arc<dyn crate::source::Source>,
    /// Which mailboxes are served; the opt-out settings.
    pub roster: Arc<crate::roster::Roster>,
    /// The SIP presence servers published to (read only).
    pub publishers: crate::publish::Publishers,
    /// Accepted bearer tokens (digests and scopes); replaced when the file is re-read.
    pub tokens: std::sync::RwLock<Option<Tokens>>,
    /// Refused requests, counted and logged per client.
    pub auth_failures: AuthFailures,
    /// Metrics renderer.
    pub metrics: Option<PrometheusHandle>,
    /// Cancelled at shutdown.
    pub stop: CancellationToken,
    /// Client connections, bounded.
    pub connections: Connections,
    /// The configuration, for the troubleshooter's checks run from the status page.
    pub config: Arc<crate::config::Config>,
    /// Where Microsoft Graph's notifications go (`/graph/notifications`).
    pub graph: Option<Arc<crate::graph::receiver::Receiver>>,
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    full(status, "application/json", format!("{value}\n"))
}

pub(super) fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({"error": message}))
}

/// Serves the API on `listener` (over TLS with `tls`) until `state.stop`.
pub async fn serve(
    state: Arc<ApiState>,
    listener: TcpListener,
    tls: Option<Arc<ApiTls>>,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = state.stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // Full: the stalest connection makes room (or, all watchers, this one goes).
        let Some(client) = state.connections.admit() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let peer = peer.ip();
            match tls {
                None => serve_connection(&state, &client, peer, stream).await,
                Some(tls) => {
                    let handshake = tokio::select! {
                        tls = tls.accept(stream) => tls,
                        _ = state.stop.cancelled() => None,
                        _ = client.shed.cancelled() => None,
                    };
                    if let Some(stream) = handshake {
                        serve_connection(&state, &client, peer, stream).await;
                    }
                }
            }
            state.connections.close(&client);
        });
    }
}

/// Serves HTTP/1.1 requests on one connection (plain or TLS) until it ends, the
/// daemon stops, or the connection is shed to make room.
async fn serve_connection<S>(
    state: &Arc<ApiState>,
    client: &Arc<Connection>,
    peer: std::net::IpAddr,
    stream: S,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (service_state, service_client) = (state.clone(), client.clone());
    let service = service_fn(move |req| {
        let (state, client) = (service_state.clone(), service_client.clone());
        async move { Ok::<_, Infallible>(route(&state, &client, peer, req).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = state.stop.cancelled() => {}
        _ = client.shed.cancelled() => {}
    }
}

/// The scope a `/v1/*` request needs: `admin` for the checks (they log in to
/// Exchange) and for every write; `read` for the rest.
fn needed_scope(method: &Method, path: &str) -> Scope {
    let reads = matches!(*method, Method::GET | Method::HEAD)
        || (*method == Method::POST && path == "/v1/presence/query");
    if reads { Scope::Read } else { Scope::Admin }
}

/// Whether the request may go on; the refusal's answer when not (401 without a valid
/// token, 403 with one that lacks the scope), counted and logged per client.
fn authorize(
    state: &ApiState,
    peer: std::net::IpAddr,
    req: &Request<Incoming>,
) -> Result<(), Box<Response<Body>>> {
    let tokens = common::sync::read(&state.tokens);
    let Some(tokens) = tokens.as_ref() else {
        return Ok(());
    };
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let needed = needed_scope(req.method(), req.uri().path());
    let Err(refusal) = tokens.admit(header, needed) else {
        return Ok(());
    };
    state.auth_failures.refused(peer, refusal, Instant::now());
    let mut answer = match refusal {
        Refusal::Missing | Refusal::Invalid => error(
            StatusCode::UNAUTHORIZED,
            "a valid Authorization: Bearer token is required",
        ),
        Refusal::Scope => error(
            StatusCode::FORBIDDEN,
            &format!(
                "this token may not do that: it needs the {} scope",
                needed.as_str()
            ),
        ),
    };
    answer
        .headers_mut()
        .insert("WWW-Authenticate", HeaderValue::from_static("Bearer"));
    Err(Box::new(answer))
}

/// The routes open to anyone: the status page, health, readiness, metrics.
fn open_route(
    state: &ApiState,
    method: &Method,
    uri: &hyper::Uri,
) -> (&'static str, Response<Body>) {
    match (method, uri.path()) {
        // The page holds no data: everything it shows comes from /v1/* with the token.
        (&Method::GET, "/") => (
            "status_page",
            full(
                StatusCode::OK,
                "text/html; charset=utf-8",
                super::status_page::HTML,
            ),
        ),
        (&Method::GET, "/livez") => ("livez", full(StatusCode::OK, "text/plain", "ok\n")),
        // Tells the status page whether to ask for a token before calling /v1/*.
        (&Method::GET, "/api-access") => (
            "api_access",
            json_response(
                StatusCode::OK,
                &json!({"token_required": common::sync::read(&state.tokens).is_some()}),
            ),
        ),
        (&Method::GET, "/readyz") => ("readyz", readyz(state, uri.query())),
        (&Method::GET, "/metrics") => ("metrics", render_metrics(state)),
        (_, "/" | "/livez" | "/readyz" | "/api-access" | "/metrics") => (
            "method",
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        ),
        _ => ("not_found", error(StatusCode::NOT_FOUND, "no such route")),
    }
}

/// The `/v1/*` routes, for a request whose token was accepted.
async fn v1_route(
    state: &ApiState,
    client: &Connection,
    req: Request<Incoming>,
    uri: &hyper::Uri,
) -> (&'static str, Response<Body>) {
    match (req.method().clone(), uri.path()) {
        (Method::GET, "/v1/gateways") => ("gateways", gateways(state)),
        (Method::GET, "/v1/publishers") => (
            "publishers",
            json_response(
                StatusCode::OK,
                &json!({"publishers": state.publishers.views()}),
            ),
        ),
        (Method::GET, "/v1/summary") => ("summary", summary(state)),
        (Method::POST, "/v1/checks") => ("checks", checks(state).await),
        (method, p) if p.starts_with("/v1/mailboxes/") && p.ends_with(CALENDAR_PRESENCE_SUFFIX) => {
            let address = &p["/v1/mailboxes/".len()..p.len() - CALENDAR_PRESENCE_SUFFIX.len()];
            match method {
                Method::GET => ("calendar_presence", calendar_presence::get(state, address)),
                Method::PUT => (
                    "calendar_presence_set",
                    calendar_presence::put(state, address, req).await,
                ),
                _ => (
                    "method",
                    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
                ),
            }
        }
        (Method::GET, p) if p.starts_with("/v1/presence/") && p.ends_with("/today") => (
            "today",
            today(state, &p["/v1/presence/".len()..p.len() - "/today".len()]),
        ),
        (Method::GET, "/v1/presence/watch") => {
            client.mark_watcher();
            ("watch", watch(state, &req))
        }
        (Method::POST, "/v1/presence/query") => ("query", query(state, req).await),
        (Method::GET, p) if p.starts_with("/v1/presence/") => {
            ("presence", one(state, &p["/v1/presence/".len()..]))
        }
        (
            _,
            "/v1/gateways" | "/v1/publishers" | "/v1/presence/watch" | "/v1/presence/query"
            | "/v1/summary" | "/v1/checks",
        ) => (
            "method",
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        ),
        _ => ("not_found", error(StatusCode::NOT_FOUND, "no such route")),
    }
}

async fn route(
    state: &ApiState,
    client: &Connection,
    peer: std::net::IpAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    client.request_started();
    let started = Instant::now();
    // A clone of the URI shares its bytes: no copy of the path per request.
    let uri = req.uri().clone();
    let (name, response) = if uri.path().starts_with("/v1/") {
        match authorize(state, peer, &req) {
            Err(refusal) => ("unauthorized", *refusal),
            Ok(()) => v1_route(state, client, req, &uri).await,
        }
    } else if matches!(uri.path(), "/graph/notifications" | "/graph/lifecycle") {
        // Open to anyone, as Graph needs: the receiver drops what does not carry the
        // clientState of a subscription we hold.
        ("graph_notifications", graph_notifications(state, req).await)
    } else {
        open_route(state, req.method(), &uri)
    };
    let took = started.elapsed();
    metrics::api_request(name, response.status().as_u16(), took);
    let mut response = response;
    if let Ok(timing) = HeaderValue::from_maybe_shared(Bytes::from(server_timing(took))) {
        response.headers_mut().insert(SERVER_TIMING, timing);
    }
    response
}

/// The `Server-Timing` header (W3C Server Timing): milliseconds from the request's
/// headers being parsed to its response being ready, body reading included.
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

fn server_timing(took: Duration) -> String {
    format!("app;dur={:.3}", took.as_secs_f64() * 1000.0)
}

/// Appends the presence JSON of `address` (or its not-configured error) to `out`;
/// false when it is not configured.
fn lookup_into(state: &ApiState, address: &str, now: i64, out: &mut String) -> bool {
    if let Some(key) = Mailbox::key(address)
        && let Some(snapshot) = state.cache.read_key(&key, now)
    {
        json::write_presence(&snapshot, out);
        return true;
    }
    let error = json!({"mailbox": address, "error": "not-configured"});
    out.push_str(&error.to_string());
    false
}

fn one(state: &ApiState, raw: &str) -> Response<Body> {
    let mut out = String::with_capacity(256);
    let found = lookup_into(
        state,
        &percent_decode(raw),
        state.cache.clock().now_secs(),
        &mut out,
    );
    out.push('\n');
    let status = if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    full(status, "application/json", out)
}

/// `POST /graph/notifications`: the validation handshake, or notifications handed to
/// the receiver (which answers at once, queueing the work).
async fn graph_notifications(state: &ApiState, req: Request<Incoming>) -> Response<Body> {
    let Some(receiver) = state.graph.as_ref() else {
        return error(StatusCode::NOT_FOUND, "no Graph gateway is configured");
    };
    if req.method() != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Graph notifications are POSTed",
        );
    }
    let query = req.uri().query().map(str::to_owned);
    let body = match read_body_within(req, crate::graph::receiver::MAX_BODY).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            crate::graph::metrics::rejected("too_large");
            return error(StatusCode::PAYLOAD_TOO_LARGE, "notification body too large");
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "the body could not be read"),
    };
    let reply = receiver.handle(query.as_deref(), &body);
    let content_type = if reply.content_type == "text/plain" {
        "text/plain; charset=utf-8"
    } else {
        "application/json"
    };
    full(
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::ACCEPTED),
        content_type,
        reply.body,
    )
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge,
    TooSlow,
    Broken,
}

/// Reads a request body into one buffer (sized from `Content-Length` within the
/// limit), within [`BODY_TIMEOUT`]: a slow or oversized body costs neither time nor
/// memory beyond the bounds.
async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, BodyError> {
    read_body_within(req, MAX_BODY).await
}

/// [`read_body`] with another limit.
async fn read_body_within(req: Request<Incoming>, limit: usize) -> Result<Vec<u8>, BodyError> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let deadline = Instant::now() + BODY_TIMEOUT;
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        // Read a moderate excess away (not kept) so that the client, still sending,
        // gets the 413 rather than a broken connection; past that, close.
        let mut discarded = 0;
        while discarded <= DRAIN_LIMIT {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => discarded += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(16 * 1024, |n| n as usize).min(limit);
    let mut buffer = Vec::with_capacity(capacity);
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::TooSlow),
            Ok(None) => return Ok(buffer),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if buffer.len() + data.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                    buffer.extend_from_slice(data);
                }
            }
        }
    }
}

/// The answer to a body that could not be read.
fn body_error(e: BodyError) -> Response<Body> {
    match e {
        BodyError::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than 2 MiB",
        ),
        BodyError::TooSlow => error(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive within 10 seconds",
        ),
        BodyError::Broken => error(StatusCode::BAD_REQUEST, "the body could not be read"),
    }
}

/// Reads a request body within the bounds, or the answer saying why it could not be.
pub(super) async fn body_of(req: Request<Incoming>) -> Result<Vec<u8>, Box<Response<Body>>> {
    read_body(req).await.map_err(|e| Box::new(body_error(e)))
}

async fn query(state: &ApiState, req: Request<Incoming>) -> Response<Body> {
    let body = match body_of(req).await {
        Ok(body) => body,
        Err(answer) => return *answer,
    };
    // The usual body, read without building a value tree; anything else goes the
    // slower way below, which says what is wrong with it.
    if let Ok(QueryBody { mailboxes }) = serde_json::from_slice::<QueryBody<'_>>(&body)
        && mailboxes.len() <= MAX_QUERY_MAILBOXES
    {
        return presence_list(state, mailboxes.iter().map(|m| m.0.as_ref()));
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    let Some(list) = value.get("mailboxes").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"mailboxes\": [\"address\", ...]}",
        );
    };
    if list.len() > MAX_QUERY_MAILBOXES {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("at most {MAX_QUERY_MAILBOXES} mailboxes per query"),
        );
    }
    if list.iter().any(|item| !item.is_string()) {
        return error(
            StatusCode::BAD_REQUEST,
            "every entry of mailboxes must be a string",
        );
    }
    presence_list(
        state,
        list.iter().map(|item| item.as_str().unwrap_or_default()),
    )
}

/// A batch query's body: `{"mailboxes": ["address", ...]}` (other fields ignored).
#[derive(serde::Deserialize)]
struct QueryBody<'a> {
    #[serde(borrow)]
    mailboxes: Vec<Address<'a>>,
}

/// One address of a query, borrowed from the body unless it holds escapes.
#[derive(serde::Deserialize)]
struct Address<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);

/// The answer to a batch query: each address's presence (or its error), in order.
fn presence_list<'a>(
    state: &ApiState,
    addresses: impl ExactSizeIterator<Item = &'a str>,
) -> Response<Body> {
    let at = state.cache.clock().now_secs();
    let mut out = String::with_capacity(64 + addresses.len() * 240);
    out.push_str("{\"presence\":[");
    for (i, address) in addresses.enumerate() {
        if i > 0 {
            out.push(',');
        }
        lookup_into(state, address, at, &mut out);
    }
    out.push_str("]}\n");
    full(StatusCode::OK, "application/json", out)
}

/// Ready once start-up has ended: every mailbox synced or failing with a reason (the
/// failing ones carry their problem; a load balancer keeps sending to a daemon that
/// serves what it can). `?strict` also wants no mailbox failing (503 while any does).
fn readyz(state: &ApiState, query: Option<&str>) -> Response<Body> {
    let strict = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| matches!(pair, "strict" | "strict=1" | "strict=true"))
    });
    let r = state.cache.readiness();
    let ready = r.ready() && !(strict && r.failing > 0);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(
        status,
        &json!({
            "ready": ready,
            "strict": strict,
            "synced": r.synced,
            "failing": r.failing,
            "syncing": r.syncing,
            "opted_out": r.opted_out,
        }),
    )
}

fn render_metrics(state: &ApiState) -> Response<Body> {
    let Some(handle) = &state.metrics else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder installed",
        );
    };
    state.cache.record_gauges();
    crate::api::metrics::collect_process();
    handle.run_upkeep();
    full(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        handle.render(),
    )
}

/// Mailboxes per availability now.
fn summary(state: &ApiState) -> Response<Body> {
    let now = state.cache.now().as_second();
    let counts: serde_json::Map<String, Value> = state
        .cache
        .counts(now)
        .iter()
        .map(|(a, n)| (a.as_str().to_owned(), Value::from(*n)))
        .collect();
    let body = serde_json::json!({"mailboxes": state.cache.len(), "availability": counts});
    full(StatusCode::OK, "application/json", body.to_string())
}

/// One mailbox's availability today (UTC) as segments, for the status page's bar.
fn today(state: &ApiState, raw: &str) -> Response<Body> {
    let address = percent_decode(raw);
    let address = address.as_ref();
    let not_configured = || {
        full(
            StatusCode::NOT_FOUND,
            "application/json",
            serde_json::json!({"mailbox": address, "error": "not-configured"}).to_string(),
        )
    };
    let Ok(mailbox) = Mailbox::parse(address) else {
        return not_configured();
    };
    let now = state.cache.now().as_second();
    let from = now - now.rem_euclid(86_400);
    match crate::presence::day::segments(&state.cache, &mailbox, from, from + 86_400) {
        None => not_configured(),
        Some(segments) => full(
            StatusCode::OK,
            "application/json",
            json::day(&mailbox, from, from + 86_400, &segments).to_string(),
        ),
    }
}

/// Runs the troubleshooter's checks for every gateway now.
async fn checks(state: &ApiState) -> Response<Body> {
    // Through the running gateways' credential gates: no login the daemon would not send.
    let mut gates = state.status.gates();
    if let Some(receiver) = &state.graph {
        gates.graph = receiver
            .gateways()
            .into_iter()
            .map(|g| (g.name().to_owned(), g))
            .collect();
    }
    let results = crate::check::check_all(&state.config, None, &gates).await;
    let body = serde_json::json!({
        "ok": results.iter().all(crate::check::GatewayCheck::ok),
        "gateways": results.iter().map(|c| serde_json::json!({
            "gateway": c.gateway, "ok": c.ok(), "steps": c.steps,
        })).collect::<Vec<_>>(),
    });
    full(StatusCode::OK, "application/json", body.to_string())
}

/// Distinct mailbox problems listed per gateway on `/v1/gateways`, the most common first.
const MAX_PROBLEMS_LISTED: usize = 10;

fn gateways(state: &ApiState) -> Response<Body> {
    let now = state.cache.now();
    let list: Vec<Value> = state
        .status
        .gateways()
        .iter()
        .map(|report| {
            let unknown = state.cache.unknown_in(&report.name, now.as_second());
            let problems = state.cache.problems_in(&report.name, MAX_PROBLEMS_LISTED);
            json::gateway(report, unknown, &problems, now)
        })
        .collect();
    json_response(StatusCode::OK, &json!({"gateways": list}))
}

/// Appends change `seq` as one SSE event to `out`.
fn push_sse(out: &mut String, seq: u64, snapshot: &Snapshot) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    let _ = write!(out, "id: {seq}\nevent: presence\ndata: ");
    json::write_presence(snapshot, out);
    out.push_str("\n\n");
}

fn watch(state: &ApiState, req: &Request<Incoming>) -> Response<Body> {
    let header = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .map(str::to_owned);
    let after = match header {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Last-Event-ID must be a sequence number",
                );
            }
        },
    };
    let (tx, rx) = mpsc::channel::<Bytes>(SSE_BUFFER);
    match state.feed.watch(after) {
        Err(_) => {
            let _ = tx.try_send(Bytes::from_static(b"event: reset\ndata: {}\n\n"));
            drop(tx);
        }
        Ok((backlog, live)) => {
            let stop = state.stop.clone();
            tokio::spawn(pump(backlog, live, after, tx, stop));
        }
    }
    let stream = ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Sends a watcher the changes it missed (after sequence number `seen`), then live
/// changes, as SSE events. Each watcher renders into its own chunks: whatever is
/// already queued goes out together, up to [`SSE_COALESCE_BYTES`] a chunk, so a storm
/// of transitions leaves in few large writes, not a million small ones.
async fn pump(
    backlog: Vec<Arc<Batch<Snapshot>>>,
    mut live: broadcast::Receiver<Arc<Batch<Snapshot>>>,
    seen: Option<u64>,
    tx: mpsc::Sender<Bytes>,
    stop: CancellationToken,
) {
    let mut sender = SseSender {
        tx,
        chunk: String::new(),
        // The backlog's first batch may start before what the client saw last.
        last: seen.unwrap_or(0),
    };
    for batch in backlog {
        if sender.push(&batch).await.is_err() {
            return;
        }
    }
    if sender.flush().await.is_err()
        || sender
            .tx
            .send(Bytes::from_static(b": watching\n\n"))
            .await
            .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SSE_KEEPALIVE) => {
                if sender.tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return;
                }
            }
            received = live.recv() => {
                let mut next = received;
                loop {
                    match next {
                        Ok(batch) => {
                            if sender.push(&batch).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let _ = sender.flush().await;
                            let _ = sender.tx.send(Bytes::from_static(b"event: reset\ndata: {}\n\n")).await;
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => {
                            let _ = sender.flush().await;
                            return;
                        }
                    }
                    // Whatever else is already queued joins the chunk.
                    next = match live.try_recv() {
                        Ok(batch) => Ok(batch),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            Err(broadcast::error::RecvError::Lagged(n))
                        }
                        Err(broadcast::error::TryRecvError::Closed) => {
                            Err(broadcast::error::RecvError::Closed)
                        }
                        Err(broadcast::error::TryRecvError::Empty) => break,
                    };
                }
                if sender.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One watcher's rendering: the chunk being filled and the last sequence number sent.
struct SseSender {
    tx: mpsc::Sender<Bytes>,
    chunk: String,
    last: u64,
}

/// The watcher's connection is gone.
struct Gone;

impl SseSender {
    /// Renders the changes of `batch` not sent yet, sending each full chunk.
    async fn push(&mut self, batch: &Batch<Snapshot>) -> Result<(), Gone> {
        for (seq, snapshot) in batch.changes_after(self.last) {
            if self.chunk.is_empty() {
                let events = usize::try_from(batch.last_seq() - seq + 1).unwrap_or(usize::MAX);
                self.chunk.reserve(
                    events
                        .saturating_mul(SSE_EVENT_BYTES)
                        .min(SSE_CHUNK_CAPACITY),
                );
            }
            push_sse(&mut self.chunk, seq, snapshot);
            self.last = seq;
            if self.chunk.len() >= SSE_COALESCE_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Sends what the chunk holds.
    async fn flush(&mut self) -> Result<(), Gone> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.tx
            .send(Bytes::from(chunk.into_bytes()))
            .await
            .map_err(|_| Gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::timeline::Availability;

    fn snapshot(address: &str) -> Snapshot {
        Snapshot::bare(address, "gw", Availability::InAMeeting)
    }

    /// The SSE ids received until `until` appears in the stream.
    async fn ids_until(rx: &mut mpsc::Receiver<Bytes>, until: &str) -> Vec<u64> {
        let mut text = String::new();
        while !text.contains(until) {
            let chunk = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a chunk in time")
                .expect("the pump is running");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        text.lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|id| id.parse().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_resumed_watcher_gets_only_what_it_missed_of_a_batch() {
        let feed = Feed::new(64, 64);
        feed.publish_all(vec![
            snapshot("a@example.test"),
            snapshot("b@example.test"),
            snapshot("c@example.test"),
        ]);
        let (backlog, live) = feed.watch(Some(1)).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let stop = CancellationToken::new();
        tokio::spawn(pump(backlog, live, Some(1), tx, stop.clone()));
        assert_eq!(ids_until(&mut rx, ": watching").await, [2, 3]);
        feed.publish_all(vec![snapshot("d@example.test"), snapshot("e@example.test")]);
        assert_eq!(ids_until(&mut rx, "id: 5").await, [4, 5]);
        stop.cancel();
    }
}
