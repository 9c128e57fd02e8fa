//! HTTP/1.1 to one host (Graph, or the identity platform), over TLS verified against
//! the gateway's trust: a small pool of kept-alive connections (the shared connection
//! code of the EWS client), each request with a deadline, each answer read to a
//! bounded size, `Retry-After` read.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Uri};

use super::error::GraphError;
use ews::connection::{Connection, Connector};

/// Largest answer read.
pub const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// Idle connections kept per host.
const MAX_IDLE: usize = 16;

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// `Retry-After`, when given in seconds.
    pub retry_after: Option<Duration>,
    /// Body.
    pub body: Bytes,
}

/// Connections to one host.
#[derive(Debug)]
pub struct HttpClient {
    connector: Connector,
    authority: String,
    idle: Mutex<Vec<Connection>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client for `base`'s host.
    pub fn new(
        base: &Uri,
        tls: std::sync::Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<HttpClient, GraphError> {
        Ok(HttpClient {
            connector: Connector::new(base, tls).map_err(GraphError::from_ews)?,
            authority: base
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            idle: Mutex::new(Vec::new()),
            timeout,
        })
    }

    async fn connection(&self) -> Result<Connection, GraphError> {
        loop {
            let Some(c) = common::sync::lock(&self.idle).pop() else {
                break;
            };
            if c.is_open() {
                return Ok(c);
            }
        }
        self.connector.connect().await.map_err(GraphError::from_ews)
    }

    /// Sends one request to `path` (absolute, with its query) and reads the answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<(&'static str, String)>,
    ) -> Result<Answer, GraphError> {
        let exchange = async {
            let mut connection = self.connection().await?;
            let mut request = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, self.authority.as_str());
            for (name, value) in headers {
                request = request.header(*name, value.as_str());
            }
            let body = match body {
                Some((content_type, text)) => {
                    request = request.header(hyper::header::CONTENT_TYPE, content_type);
                    Bytes::from(text)
                }
                None => Bytes::new(),
            };
            let request = request
                .body(Full::new(body))
                .map_err(|e| GraphError::Decode(format!("cannot build the request: {e}")))?;
            let response = connection
                .send(request)
                .await
                .map_err(GraphError::from_ews)?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| GraphError::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            connection.finished();
            if connection.is_open() {
                let mut idle = common::sync::lock(&self.idle);
                if idle.len() < MAX_IDLE {
                    idle.push(connection);
                }
            }
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| GraphError::Timeout(self.timeout))?
    }
}
