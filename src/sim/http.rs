//! The simulator's HTTP(S) listener: one hyper HTTP/1.1 connection task per client,
//! routing to the EWS endpoint (`POST /EWS/Exchange.asmx`) or the control API
//! (`/sim/…`), Basic authentication for the service account, the affinity headers and
//! cookie, and request-level faults (503, ErrorServerBusy, slow responses).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
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
use super::control;
use super::ews::{self, CallContext, Reply};

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
pub async fn serve(sim: Arc<Sim>, listener: TcpListener, tls: Option<TlsAcceptor>) {
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
                None => serve_connection(sim, stream).await,
                Some(acceptor) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(stream)).await
                    {
                        serve_connection(sim, stream).await;
                    }
                }
            }
        });
    }
}

async fn serve_connection<I>(sim: Arc<Sim>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = sim.shutdown.clone();
    let service = service_fn(move |req| {
        let sim = sim.clone();
        async move { Ok::<_, Infallible>(route(&sim, req).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {}
    }
}

async fn route(sim: &Arc<Sim>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/sim" || path.starts_with("/sim/") {
        return control::handle(sim, req).await;
    }
    if !path.eq_ignore_ascii_case("/EWS/Exchange.asmx") {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    }
    if req.method() != Method::POST {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "EWS takes POST\n",
        );
    }
    let account = match authenticate(sim, req.headers()) {
        Some(account) => account,
        None => {
            let mut response =
                respond(StatusCode::UNAUTHORIZED, "text/plain", "401 Unauthorized\n");
            sim.stats.rejected("unauthorized");
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ews-presence simulate\""),
            );
            return response;
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
        anchor: header(req.headers(), "X-AnchorMailbox"),
        prefer_affinity: header(req.headers(), "X-PreferServerAffinity")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        cookie_backend: cookie(req.headers(), "X-BackEndOverrideCookie")
            .and_then(|v| sim.backend_from_cookie(&v)),
    };
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                "request body too large\n",
            );
        }
    };
    match ews::handle(sim, ctx, &body).await {
        Reply::Xml {
            status,
            body,
            set_cookie,
        } => {
            let mut response = xml(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
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

fn xml(status: StatusCode, body: String) -> Response<Body> {
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

/// The account making the request: the configured one when no password is set, else
/// whoever presented it with Basic authentication.
fn authenticate(sim: &Sim, headers: &HeaderMap) -> Option<String> {
    let account = sim.config.account.to_ascii_lowercase();
    let Some(password) = &sim.config.password else {
        return Some(account);
    };
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, given) = text.split_once(':')?;
    (user.eq_ignore_ascii_case(&account) && given == password).then_some(account)
}
