//! One HTTP/1.1 connection to an EWS server that we own, rather than one a pool hands
//! out: NTLM authenticates a connection, so the handshake, and every request after it,
//! must go over the same one. A [`Connection`] is a hyper `SendRequest` over TCP or
//! TLS (rustls), with the Extended Protection channel binding of the server's
//! certificate, whether it is authenticated, and a watch for a `503` status line (a
//! server out of connection slots writes one, unasked, on an idle kept-alive
//! connection).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::auth::channel_binding;
use super::error::EwsError;

/// Time to open TCP and finish TLS.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where connections go and how.
#[derive(Clone)]
pub struct Connector {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// What the watch over a connection saw.
#[derive(Debug, Default)]
struct Watch {
    /// A read began with a `503` status line.
    saw_503: AtomicBool,
}

/// One connection.
#[derive(Debug)]
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// `tls-server-end-point` of the server's certificate (TLS only).
    pub channel_binding: Option<Vec<u8>>,
    /// An NTLM handshake succeeded on it.
    pub authenticated: bool,
    watch: Arc<Watch>,
    /// When it last finished a request.
    pub idle_since: Instant,
}

/// Classifies an error, looking for a TLS failure in its causes.
pub fn classify(e: &(dyn std::error::Error + 'static)) -> EwsError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return EwsError::Tls(tls.to_string());
        }
        if let Some(io) = err.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return EwsError::Tls(tls.to_string());
        }
        source = err.source();
    }
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    EwsError::Transport(message)
}

/// Why a TCP connection could not be made, in the words an operator searches for.
fn connect_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::AddrNotAvailable => "address not available".into(),
        // Name resolution failures come as other kinds, with the resolver's words.
        _ => e.to_string(),
    }
}

impl Connector {
    /// Connections to `url`'s host, over TLS with `tls` when the scheme is https.
    pub fn new(url: &Uri, tls: Arc<rustls::ClientConfig>) -> Result<Connector, EwsError> {
        let host = url
            .host()
            .ok_or_else(|| EwsError::Transport(format!("{url} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = url.scheme_str() == Some("https");
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| EwsError::Tls(format!("{host} is not a valid server name: {e}")))?;
            let mut config = (*tls).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Connector { host, port, tls })
    }

    /// The host (for the NTLM target name).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Opens a connection: TCP, then TLS when configured, then HTTP/1.1.
    pub async fn connect(&self) -> Result<Connection, EwsError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Err(_) => Err(EwsError::Transport(format!(
                "cannot connect to {}:{} (no answer within {} s)",
                self.host,
                self.port,
                CONNECT_TIMEOUT.as_secs()
            ))),
            Ok(result) => result,
        }
    }

    async fn open(&self) -> Result<Connection, EwsError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                EwsError::Transport(format!(
                    "cannot connect to {}:{} ({})",
                    self.host,
                    self.port,
                    connect_failure(&e)
                ))
            })?;
        let _ = tcp.set_nodelay(true);
        let watch = Arc::new(Watch::default());
        match &self.tls {
            None => handshake(Watched::new(tcp, watch.clone()), None, watch).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| classify(&e))?;
                let binding = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|leaf| channel_binding::tls_server_end_point(leaf.as_ref()))
                    .transpose()
                    .map_err(|e| EwsError::Tls(e.to_string()))?;
                handshake(Watched::new(stream, watch.clone()), binding, watch).await
            }
        }
    }
}

async fn handshake<S>(
    io: Watched<S>,
    channel_binding: Option<Vec<u8>>,
    watch: Arc<Watch>,
) -> Result<Connection, EwsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| classify(&e))?;
    tokio::spawn(async move {
        // Ends when the connection closes; its error, if any, surfaces on the
        // request that was in flight.
        let _ = connection.await;
    });
    Ok(Connection {
        sender,
        channel_binding,
        authenticated: false,
        watch,
        idle_since: Instant::now(),
    })
}

impl Connection {
    /// Sends one request and waits for its response head.
    pub async fn send(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, EwsError> {
        self.sender.ready().await.map_err(|e| classify(&e))?;
        self.sender
            .send_request(request)
            .await
            .map_err(|e| classify(&e))
    }

    /// The last answer was read to its end: the connection is idle again.
    pub fn finished(&mut self) {
        self.idle_since = Instant::now();
    }

    /// Whether it can take another request.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Whether the server wrote a `503` status line on it. On a connection that then
    /// closed, or failed a request, that 503 came unasked, while the connection was
    /// idle (a server out of connection slots): it is the server's answer.
    pub fn saw_503(&self) -> bool {
        self.watch.saw_503.load(Ordering::Acquire)
    }

    /// Waits until it can take a request; false when it closed meanwhile.
    pub async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }
}

/// An I/O stream that notices a read beginning with a `503` status line.
struct Watched<S> {
    inner: S,
    watch: Arc<Watch>,
}

impl<S> Watched<S> {
    fn new(inner: S, watch: Arc<Watch>) -> Watched<S> {
        Watched { inner, watch }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            let fresh = &buf.filled()[before..];
            if fresh.starts_with(b"HTTP/1.1 503") || fresh.starts_with(b"HTTP/1.0 503") {
                self.watch.saw_503.store(true, Ordering::Release);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
