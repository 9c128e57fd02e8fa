//! A minimal HTTP/1.1 client for tests: one request per connection, optional TLS,
//! streaming bodies decoded frame by frame with the crate's own StreamDecoder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ews::decode_error::DecodeError;
use ews::stream::{Frame, Response as EwsResponse, StreamDecoder};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// Every test step is bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A complete response.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        self.typed()
    }

    /// The body deserialised into `T`; a body that is not JSON, or lacks a field `T`
    /// requires, fails the test with the status and the body.
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: the body is not what was expected ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The single envelope of an EWS reply, decoded.
    pub fn ews(&self) -> EwsResponse {
        let mut decoder = StreamDecoder::default();
        decoder.push(&self.body);
        let frame = decoder
            .next_frame()
            .expect("decodable reply")
            .expect("one envelope");
        decoder.finish().expect("nothing after the envelope");
        frame.response
    }
}

async fn send(target: &Target, req: Request<Full<Bytes>>) -> hyper::Response<Incoming> {
    let tcp = TcpStream::connect(target.addr).await.expect("connect");
    match &target.tls {
        None => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("request")
        }
        Some(config) => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
            let tls = connector.connect(name, tcp).await.expect("TLS handshake");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("request")
        }
    }
}

fn build(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Full::new(body.into())).expect("request")
}

/// Sends a request and reads the whole response.
pub async fn request(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let fut = async {
        let response = send(target, build(method, path, headers, body)).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(DEADLINE, fut)
        .await
        .expect("request within the deadline")
}

/// A JSON control-API call.
pub async fn control(target: &Target, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    request(
        target,
        method,
        &format!("/sim{path}"),
        &[("Content-Type", "application/json")],
        body,
    )
    .await
}

/// An open streaming response, decoded frame by frame.
pub struct FrameStream {
    pub status: u16,
    body: Incoming,
    decoder: StreamDecoder,
    ended: bool,
}

/// What the stream did next.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    Error(DecodeError),
    End,
}

impl FrameStream {
    /// The next frame, decode error, or the end of the body; within the deadline.
    pub async fn next(&mut self) -> Next {
        tokio::time::timeout(DEADLINE, self.next_inner())
            .await
            .expect("stream progressed within the deadline")
    }

    async fn next_inner(&mut self) -> Next {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => return Next::Frame(frame),
                Err(e) => return Next::Error(e),
                Ok(None) if self.ended => return Next::End,
                Ok(None) => {}
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.push(&data);
                    }
                }
                Some(Err(_)) | None => {
                    self.ended = true;
                    if let Err(e) = self.decoder.finish() {
                        return Next::Error(e);
                    }
                }
            }
        }
    }
}

/// Posts an EWS request and returns the body as a frame stream.
pub async fn stream(target: &Target, headers: &[(&str, &str)], xml: String) -> FrameStream {
    let mut all = vec![("Content-Type", "text/xml; charset=utf-8")];
    all.extend_from_slice(headers);
    let req = build("POST", "/EWS/Exchange.asmx", &all, xml);
    let response = tokio::time::timeout(DEADLINE, send(target, req))
        .await
        .expect("response headers in time");
    FrameStream {
        status: response.status().as_u16(),
        body: response.into_body(),
        decoder: StreamDecoder::default(),
        ended: false,
    }
}

/// Posts an EWS request and reads the whole reply.
pub async fn ews(target: &Target, headers: &[(&str, &str)], xml: String) -> Reply {
    let mut all = vec![("Content-Type", "text/xml; charset=utf-8")];
    all.extend_from_slice(headers);
    request(target, "POST", "/EWS/Exchange.asmx", &all, xml).await
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sse {
    pub id: Option<u64>,
    pub event: String,
    pub data: String,
}

/// An open SSE response.
pub struct SseStream {
    pub status: u16,
    body: Incoming,
    buffer: String,
}

impl SseStream {
    /// The next event (comments skipped), `None` at the end; within the deadline.
    pub async fn next(&mut self) -> Option<Sse> {
        tokio::time::timeout(DEADLINE, self.next_inner())
            .await
            .expect("an SSE event within the deadline")
    }

    async fn next_inner(&mut self) -> Option<Sse> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Sse {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = v.to_owned();
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => return None,
            }
        }
    }
}

/// Opens `GET path` as an event stream.
pub async fn sse(target: &Target, path: &str, headers: &[(&str, &str)]) -> SseStream {
    let response = tokio::time::timeout(
        DEADLINE,
        send(target, build("GET", path, headers, Bytes::new())),
    )
    .await
    .expect("SSE headers in time");
    SseStream {
        status: response.status().as_u16(),
        body: response.into_body(),
        buffer: String::new(),
    }
}
