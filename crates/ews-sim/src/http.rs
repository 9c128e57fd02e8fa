//! The simulator's HTTP(S) listener: one hyper HTTP/1.1 connection task per client,
//! routing to the EWS endpoint (`POST /EWS/Exchange.asmx`) or the control API
//! (`/sim/…`), authentication per request or per connection ([`super::auth`]), the affinity headers and
//! cookie, and request-level faults (503, ErrorServerBusy, slow responses).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, HeaderValue, SET_COOKIE, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::Sim;
use super::auth::{self, ConnectionAuth, SimAuth, Verdict};
use super::autodiscover;
use super::control;
use super::endpoint::{self, CallContext, Reply};

/// A response body: complete or streamed.
pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a client has to finish the TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete body.
pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

/// A plain response with a status and content type.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Accepts connections until the simulator shuts down.
pub async fn serve(sim: Arc<Sim>, listener: TcpListener, tls: Option<(TlsAcceptor, Vec<u8>)>) {
    let tls = tls.map(|(acceptor, binding)| (acceptor, Arc::<[u8]>::from(binding)));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: back off briefly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = sim.shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let sim = sim.clone();
        let tls = tls.clone();
        sim.tasks.clone().spawn(async move {
            match tls {
                None => serve_connection(sim, stream, None).await,
                Some((acceptor, binding)) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(stream)).await
                    {
                        serve_connection(sim, stream, Some(binding)).await;
                    }
                }
            }
        });
    }
}

/// One client connection; `binding` is the `tls-server-end-point` token of our
/// certificate when it is TLS. NTLM state lives as long as the connection.
async fn serve_connection<I>(sim: Arc<Sim>, io: I, binding: Option<Arc<[u8]>>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = sim.shutdown.clone();
    let mut dropped = sim.faults.connection_drops();
    let login = Arc::new(Mutex::new(ConnectionAuth::default()));
    let service = service_fn(move |req| {
        let sim = sim.clone();
        let connection = Connection {
            binding: binding.clone(),
            login: login.clone(),
        };
        async move { Ok::<_, Infallible>(route(&sim, &connection, req).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.cancelled() => return,
        _ = dropped.changed() => {}
    }
    // Dropped: an idle connection closes now, a request in flight finishes first
    // (streams end through their own fault).
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Which service a path names.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// EWS, at the shared path or a backend's own.
    Ews(Option<usize>),
    /// SOAP Autodiscover.
    AutodiscoverSoap,
    /// POX Autodiscover.
    AutodiscoverPox,
}

/// Answers an Autodiscover request (already authenticated).
fn autodiscover(sim: &Sim, endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    let scheme = if sim.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = header(headers, "Host").unwrap_or_else(|| "localhost".into());
    let base = format!("{scheme}://{host}");
    let text = String::from_utf8_lossy(body);
    let operation = match endpoint {
        Endpoint::AutodiscoverPox => "Autodiscover(POX)",
        _ => "GetUserSettings",
    };
    if let Some(hostile) = sim.faults.take_hostile(operation) {
        sim.stats.rejected("hostile");
        return respond(StatusCode::OK, "text/xml", hostile.body());
    }
    let (status, xml) = match endpoint {
        Endpoint::AutodiscoverPox => {
            sim.stats.request("Autodiscover(POX)");
            autodiscover::pox(sim, &base, &text)
        }
        _ => {
            if sim.config.pox_only {
                return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
            }
            sim.stats.request("GetUserSettings");
            autodiscover::soap(sim, &base, &text)
        }
    };
    xml_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), xml)
}

/// What a request knows of its connection.
struct Connection {
    binding: Option<Arc<[u8]>>,
    login: Arc<Mutex<ConnectionAuth>>,
}

async fn route(sim: &Arc<Sim>, connection: &Connection, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/sim" || path.starts_with("/sim/") {
        return control::handle(sim, req).await;
    }
    if let Some(graph) = sim.graph.as_ref() {
        if super::graph::is_graph_path(path) {
            return super::graph::handle(sim, graph, req).await;
        }
        if req.method() == Method::POST && super::graph::token::is_token_path(path) {
            return super::graph::token::handle(sim, graph, req).await;
        }
        if req.method() == Method::GET && super::graph::token::is_discovery_path(path) {
            return super::graph::token::discovery(sim, &req);
        }
    }
    let endpoint = if path.eq_ignore_ascii_case("/EWS/Exchange.asmx") {
        Endpoint::Ews(None)
    } else if let Some(n) = sim.backend_of_path(path) {
        Endpoint::Ews(Some(n))
    } else if path.eq_ignore_ascii_case("/autodiscover/autodiscover.svc") {
        Endpoint::AutodiscoverSoap
    } else if path.eq_ignore_ascii_case("/autodiscover/autodiscover.xml") {
        Endpoint::AutodiscoverPox
    } else {
        sim.stats.rejected("not_found");
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    };
    if req.method() != Method::POST {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "EWS and Autodiscover take POST\n",
        );
    }
    let (parts, body) = req.into_parts();
    // Read first: an authentication leg answered 401 leaves the connection usable.
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                "request body too large\n",
            );
        }
    };
    let verdict = {
        let mut login = common::sync::lock(&connection.login);
        auth::check(
            &sim.config.auth,
            &sim.config.account,
            sim.config.extended_protection,
            connection.binding.as_deref(),
            &mut login,
            &parts.headers,
        )
    };
    match verdict {
        Verdict::Pass => {}
        Verdict::Challenge(challenge) => {
            sim.stats.login("ntlm_challenge");
            return unauthorized(&[challenge.as_str()]);
        }
        Verdict::Refuse { why } => {
            sim.stats.rejected(why);
            return unauthorized(auth::offers(&sim.config.auth));
        }
    }
    if matches!(sim.config.auth, SimAuth::Ntlm { .. }) && parts.headers.contains_key(AUTHORIZATION)
    {
        sim.stats.login("ntlm");
    }
    let account = sim.config.account.to_ascii_lowercase();
    let path_backend = match endpoint {
        Endpoint::Ews(backend) => backend,
        Endpoint::AutodiscoverSoap | Endpoint::AutodiscoverPox => {
            return autodiscover(sim, endpoint, &parts.headers, &body);
        }
    };
    if let Some(delay) = sim.faults.delay() {
        tokio::time::sleep(delay).await;
    }
    if let Some(retry_after) = sim.faults.take_unavailable() {
        sim.stats.rejected("unavailable");
        let mut response = respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/html",
            "<html><body>Service Unavailable</body></html>",
        );
        if let Some(secs) = retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, value);
        }
        return response;
    }
    let ctx = CallContext {
        account,
        anchor: header(&parts.headers, "X-AnchorMailbox"),
        prefer_affinity: header(&parts.headers, "X-PreferServerAffinity")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        cookie_backend: cookie(&parts.headers, "X-BackEndOverrideCookie")
            .and_then(|v| sim.backend_from_cookie(&v)),
        path_backend,
    };
    match endpoint::handle(sim, ctx, &body).await {
        Reply::Xml {
            status,
            body,
            set_cookie,
        } => {
            let mut response =
                xml_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
            if let Some(value) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(SET_COOKIE, value);
            }
            response
        }
        Reply::Stream(frames) => {
            let stream = ReceiverStream::new(frames).map(|b| Ok::<_, Infallible>(Frame::data(b)));
            let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=utf-8"),
            );
            response
                .headers_mut()
                .insert("X-NoBuffering", HeaderValue::from_static("1"));
            response
        }
    }
}

fn xml_response(status: StatusCode, body: String) -> Response<Body> {
    respond(status, "text/xml; charset=utf-8", body)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// The value of cookie `name` in the `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// A 401 with these `WWW-Authenticate` values.
fn unauthorized(challenges: &[&str]) -> Response<Body> {
    let mut response = respond(StatusCode::UNAUTHORIZED, "text/plain", "401 Unauthorized\n");
    for value in challenges {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(WWW_AUTHENTICATE, value);
        }
    }
    response
}
