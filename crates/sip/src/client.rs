//! One client connection to one SIP server, with any number of non-INVITE transactions
//! in flight over it. A single driver task owns the transactions and their timers;
//! reader tasks turn what arrives into messages; responses are matched to transactions
//! by the topmost Via's branch and the CSeq method (§17.1.3). Over UDP one socket is
//! bound for the client's life and requests are retransmitted on timer E; over TCP and
//! TLS one connection is kept, opened when a request needs it, and everything in
//! flight on a connection that is lost fails at once with [`ClientError::ConnectionLost`]
//! (the caller retries; nothing here loops). A final response delivered ends the
//! transaction here: a retransmission of it matches nothing and is dropped, which is
//! what the Completed state's absorbing comes to.
//!
//! Digest challenges (401, 407) are answered once per request when credentials are
//! configured; the challenge is kept, so later requests carry an answer with a counting
//! `nc` from the start.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::digest::{Challenge, ChallengeError};
use crate::message::{Message, Request, frame};
use crate::transaction::{Action, Timers, Transaction};
use crate::uri::{SipUri, Transport};

/// What a client is built from.
#[derive(Clone)]
pub struct ClientConfig {
    /// The server (`sip:host:port;transport=…`).
    pub server: SipUri,
    /// TLS settings, for `transport=tls`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Digest credentials, for servers that challenge.
    pub credentials: Option<Credentials>,
    /// Transaction timers.
    pub timers: Timers,
    /// The `User-Agent` header.
    pub user_agent: String,
}

/// A digest username and password.
#[derive(Clone)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a request got no final response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server's name does not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// `host:port`.
        host: String,
        /// Why.
        reason: String,
    },
    /// No connection (or socket) to the server.
    #[error("cannot connect to {addr} over {transport}: {reason}")]
    Connect {
        /// Where.
        addr: String,
        /// Over what.
        transport: Transport,
        /// Why.
        reason: String,
    },
    /// The request could not be written.
    #[error("cannot send to {addr}: {reason}")]
    Send {
        /// Where.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The TCP/TLS connection closed with the request in flight.
    #[error("the connection to {addr} was lost: {reason}")]
    ConnectionLost {
        /// Where.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server's port answered ICMP port unreachable (nothing listens there).
    #[error("nothing listens on {addr} (ICMP port unreachable)")]
    Unreachable {
        /// Where.
        addr: String,
    },
    /// No final response before timer F (64·T1).
    #[error("no response from {addr} within {secs} s")]
    TimedOut {
        /// Where.
        addr: String,
        /// Timer F in seconds.
        secs: u64,
    },
    /// The server's challenge cannot be answered.
    #[error("cannot answer the server's challenge: {0}")]
    Challenge(#[from] ChallengeError),
    /// The client was shut down.
    #[error("the SIP client has stopped")]
    Stopped,
}

/// A handle on the client; cheap to clone. The driver stops when the last is dropped.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<(Request, oneshot::Sender<Result<Message, ClientError>>)>,
    credentials: Option<Credentials>,
    challenge: Arc<Mutex<Option<(Challenge, u32)>>>,
    cnonces: Arc<Mutex<Cnonce>>,
    retransmissions: Arc<AtomicU64>,
}

/// Requests waiting for the driver, at most.
const QUEUE: usize = 4096;

impl Client {
    /// A client for `config`; nothing is opened until the first request.
    pub fn new(config: ClientConfig) -> Client {
        let (commands, receiver) = mpsc::channel(QUEUE);
        let credentials = config.credentials.clone();
        let retransmissions = Arc::new(AtomicU64::new(0));
        tokio::spawn(Driver::new(config, retransmissions.clone()).run(receiver));
        Client {
            commands,
            credentials,
            challenge: Arc::new(Mutex::new(None)),
            cnonces: Arc::new(Mutex::new(Cnonce::new())),
            retransmissions,
        }
    }

    /// Requests sent again on timer E since the start (UDP): each one a datagram, or
    /// its answer, that the network or a full socket buffer lost.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions.load(Ordering::Relaxed)
    }

    /// Sends `request` (Via, branch and Max-Forwards are added) and waits for its final
    /// response; answers one digest challenge when credentials are configured.
    pub async fn request(&self, mut request: Request) -> Result<Message, ClientError> {
        self.authorize(&mut request);
        let response = self.transact(request.clone()).await?;
        let proxy = match response.status() {
            Some(401) => false,
            Some(407) => true,
            _ => return Ok(response),
        };
        if self.credentials.is_none() {
            return Ok(response);
        }
        let header = if proxy {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let challenge = Challenge::choose(response.all(header), proxy)?;
        *lock(&self.challenge) = Some((challenge, 0));
        self.authorize(&mut request);
        bump_cseq(&mut request);
        self.transact(request).await
    }

    /// Adds the answer to the kept challenge, counting its use.
    fn authorize(&self, request: &mut Request) {
        let Some(credentials) = &self.credentials else {
            return;
        };
        let answer = {
            let mut kept = lock(&self.challenge);
            let Some((challenge, uses)) = kept.as_mut() else {
                return;
            };
            *uses += 1;
            let cnonce = lock(&self.cnonces).next();
            (
                challenge.header_name(),
                challenge.answer(
                    &credentials.username,
                    &credentials.password,
                    &request.method,
                    &request.uri,
                    *uses,
                    &cnonce,
                ),
            )
        };
        request.set(answer.0, answer.1);
    }

    async fn transact(&self, request: Request) -> Result<Message, ClientError> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send((request, reply))
            .await
            .map_err(|_| ClientError::Stopped)?;
        response.await.map_err(|_| ClientError::Stopped)?
    }
}

fn bump_cseq(request: &mut Request) {
    if let Some(cseq) = request.get("CSeq") {
        let mut parts = cseq.split_whitespace();
        if let (Some(n), Some(method)) = (
            parts.next().and_then(|n| n.parse::<u32>().ok()),
            parts.next(),
        ) {
            let next = format!("{} {method}", n.wrapping_add(1));
            request.set("CSeq", next);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Client nonces: random per client, counting per request.
struct Cnonce {
    prefix: String,
    count: u64,
}

impl Cnonce {
    fn new() -> Cnonce {
        Cnonce {
            prefix: random_hex(),
            count: 0,
        }
    }

    fn next(&mut self) -> String {
        self.count += 1;
        format!("{}{:x}", self.prefix, self.count)
    }
}

/// 16 random hex digits.
fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // On failure (no entropy source) the clock stands in: a branch must be unique, not
    // secret.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = nanos.to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The magic cookie every RFC 3261 branch starts with (§8.1.1.7).
const COOKIE: &str = "z9hG4bK";

/// What the reader tasks hand the driver.
enum Incoming {
    Message(u64, Message),
    Closed(u64, String),
    Unreachable(u64),
}

type Writer = Box<dyn AsyncWrite + Unpin + Send>;

enum Link {
    Udp(Arc<UdpSocket>),
    Stream(Writer),
}

struct Connection {
    generation: u64,
    link: Link,
    local: SocketAddr,
    peer: SocketAddr,
    reader: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Pending {
    transaction: Transaction,
    bytes: Arc<[u8]>,
    method: String,
    reply: oneshot::Sender<Result<Message, ClientError>>,
}

struct Driver {
    config: ClientConfig,
    transport: Transport,
    prefix: String,
    next_id: u64,
    generation: u64,
    connection: Option<Connection>,
    pending: HashMap<u64, Pending>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    incoming: mpsc::Sender<Incoming>,
    arrivals: mpsc::Receiver<Incoming>,
    retransmissions: Arc<AtomicU64>,
}

impl Driver {
    fn new(config: ClientConfig, retransmissions: Arc<AtomicU64>) -> Driver {
        let (incoming, arrivals) = mpsc::channel(1024);
        Driver {
            transport: config.server.effective_transport(),
            config,
            prefix: random_hex(),
            next_id: 0,
            generation: 0,
            connection: None,
            pending: HashMap::new(),
            timers: BinaryHeap::new(),
            incoming,
            arrivals,
            retransmissions,
        }
    }

    fn addr(&self) -> String {
        self.connection
            .as_ref()
            .map_or_else(|| self.config.server.host_port(), |c| c.peer.to_string())
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<(Request, oneshot::Sender<Result<Message, ClientError>>)>,
    ) {
        loop {
            let next = self.timers.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                command = commands.recv() => match command {
                    Some((request, reply)) => self.start(request, reply).await,
                    None => return,
                },
                Some(incoming) = self.arrivals.recv() => self.arrived(incoming),
                _ = sleep_until(next) => self.fire(Instant::now()).await,
            }
        }
    }

    async fn start(
        &mut self,
        mut request: Request,
        reply: oneshot::Sender<Result<Message, ClientError>>,
    ) {
        if let Err(e) = self.connect().await {
            let _ = reply.send(Err(e));
            return;
        }
        let Some(connection) = &self.connection else {
            return;
        };
        self.next_id += 1;
        let id = self.next_id;
        let via = format!(
            "SIP/2.0/{} {};branch={COOKIE}{}{id:x};rport",
            self.transport.via_name(),
            connection.local,
            self.prefix
        );
        request.set_first("Via", via);
        if request.get("Max-Forwards").is_none() {
            request.set("Max-Forwards", "70");
        }
        if request.get("User-Agent").is_none() && !self.config.user_agent.is_empty() {
            request.set("User-Agent", self.config.user_agent.clone());
        }
        let bytes: Arc<[u8]> = request.encode().into();
        let now = Instant::now();
        if let Err(reason) = self.write(&bytes).await {
            let addr = self.addr();
            let _ = reply.send(Err(ClientError::Send { addr, reason }));
            if self.transport.is_reliable() {
                self.lost("write failed".into());
            }
            return;
        }
        let transaction = Transaction::start(now, self.transport.is_reliable(), self.config.timers);
        if let Some(at) = transaction.next_timer() {
            self.timers.push(Reverse((at, id)));
        }
        self.pending.insert(
            id,
            Pending {
                transaction,
                bytes,
                method: request.method,
                reply,
            },
        );
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(connection) = &mut self.connection else {
            return Err("not connected".into());
        };
        match &mut connection.link {
            Link::Udp(socket) => socket.send(bytes).await.map(drop),
            Link::Stream(writer) => writer.write_all(bytes).await,
        }
        .map_err(|e| e.to_string())
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        if self.connection.is_some() {
            return Ok(());
        }
        let host = self.config.server.host_port();
        let peer = tokio::net::lookup_host(&host)
            .await
            .map_err(|e| ClientError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| ClientError::Resolve {
                host: host.clone(),
                reason: "no address".into(),
            })?;
        let transport = self.transport;
        let fail = |reason: String| ClientError::Connect {
            addr: peer.to_string(),
            transport,
            reason,
        };
        self.generation += 1;
        let generation = self.generation;
        let incoming = self.incoming.clone();
        let connection = match transport {
            Transport::Udp => {
                let any: SocketAddr = if peer.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(any)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                socket
                    .connect(peer)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let local = socket.local_addr().map_err(|e| fail(e.to_string()))?;
                let socket = Arc::new(socket);
                let reader = tokio::spawn(read_datagrams(socket.clone(), generation, incoming));
                Connection {
                    generation,
                    link: Link::Udp(socket),
                    local,
                    peer,
                    reader,
                }
            }
            Transport::Tcp | Transport::Tls => {
                let stream = TcpStream::connect(peer)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().map_err(|e| fail(e.to_string()))?;
                let (reader, link) = if transport == Transport::Tls {
                    let config = self
                        .config
                        .tls
                        .clone()
                        .ok_or_else(|| fail("no TLS settings".into()))?;
                    let name =
                        rustls_pki_types::ServerName::try_from(self.config.server.host.clone())
                            .map_err(|e| fail(format!("server name: {e}")))?;
                    let tls = tokio_rustls::TlsConnector::from(config)
                        .connect(name, stream)
                        .await
                        .map_err(|e| fail(format!("TLS handshake: {e}")))?;
                    let (read, write) = tokio::io::split(tls);
                    (
                        tokio::spawn(read_stream(read, generation, incoming)),
                        Link::Stream(Box::new(write)),
                    )
                } else {
                    let (read, write) = stream.into_split();
                    (
                        tokio::spawn(read_stream(read, generation, incoming)),
                        Link::Stream(Box::new(write)),
                    )
                };
                Connection {
                    generation,
                    link,
                    local,
                    peer,
                    reader,
                }
            }
        };
        tracing::debug!(server = %peer, %transport, "SIP connection open");
        self.connection = Some(connection);
        Ok(())
    }

    fn current(&self, generation: u64) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|c| c.generation == generation)
    }

    fn arrived(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Message(generation, message) => {
                if self.current(generation) {
                    self.matched(message);
                }
            }
            Incoming::Closed(generation, reason) => {
                if self.current(generation) {
                    self.lost(reason);
                }
            }
            Incoming::Unreachable(generation) => {
                if self.current(generation) {
                    let addr = self.addr();
                    for (_, pending) in self.pending.drain() {
                        let _ = pending
                            .reply
                            .send(Err(ClientError::Unreachable { addr: addr.clone() }));
                    }
                    self.timers.clear();
                }
            }
        }
    }

    /// The connection is gone: everything in flight on it fails.
    fn lost(&mut self, reason: String) {
        let addr = self.addr();
        tracing::debug!(server = %addr, %reason, "SIP connection lost");
        self.connection = None;
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(ClientError::ConnectionLost {
                addr: addr.clone(),
                reason: reason.clone(),
            }));
        }
        self.timers.clear();
    }

    fn matched(&mut self, message: Message) {
        let Some(status) = message.status() else {
            // A request from the server (a keep-alive OPTIONS, a stray NOTIFY): a
            // publisher has nothing to say to it.
            return;
        };
        let Some(id) = message
            .top_branch()
            .and_then(|b| b.strip_prefix(COOKIE))
            .and_then(|b| b.strip_prefix(self.prefix.as_str()))
            .and_then(|n| u64::from_str_radix(n, 16).ok())
        else {
            return;
        };
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        if message.cseq_method() != Some(pending.method.as_str()) {
            return;
        }
        if pending.transaction.on_response(status, Instant::now()) == Some(Action::Deliver)
            && let Some(pending) = self.pending.remove(&id)
        {
            let _ = pending.reply.send(Ok(message));
        }
    }

    async fn fire(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(pending) = self.pending.get_mut(&id) else {
                continue;
            };
            if pending.transaction.next_timer() != Some(at) {
                continue;
            }
            let action = pending.transaction.on_timer(now);
            let next = pending.transaction.next_timer();
            match action {
                Some(Action::Retransmit) => {
                    self.retransmissions.fetch_add(1, Ordering::Relaxed);
                    let bytes = pending.bytes.clone();
                    if let Some(next) = next {
                        self.timers.push(Reverse((next, id)));
                    }
                    // A lost datagram is what retransmission is for: a failed send is
                    // retried on the next timer E like any other.
                    let _ = self.write(&bytes).await;
                }
                Some(Action::TimedOut) => {
                    let secs = (self.config.timers.t1 * 64).as_secs();
                    let addr = self.addr();
                    if let Some(pending) = self.pending.remove(&id) {
                        let _ = pending
                            .reply
                            .send(Err(ClientError::TimedOut { addr, secs }));
                    }
                }
                Some(Action::Terminate) | Some(Action::Deliver) => {
                    self.pending.remove(&id);
                }
                None => {
                    if let Some(next) = next {
                        self.timers.push(Reverse((next, id)));
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn read_datagrams(socket: Arc<UdpSocket>, generation: u64, incoming: mpsc::Sender<Incoming>) {
    let mut buffer = vec![0u8; crate::message::MAX_MESSAGE + 1];
    loop {
        let event = match socket.recv(&mut buffer).await {
            Ok(n) => match Message::parse(&buffer[..n]) {
                Ok(message) => Incoming::Message(generation, message),
                Err(e) => {
                    tracing::debug!(error = %e, "unreadable SIP datagram dropped");
                    continue;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Incoming::Unreachable(generation)
            }
            Err(e) => {
                tracing::debug!(error = %e, "SIP socket receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if incoming.send(event).await.is_err() {
            return;
        }
    }
}

async fn read_stream(
    mut read: impl AsyncRead + Unpin,
    generation: u64,
    incoming: mpsc::Sender<Incoming>,
) {
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    let reason = loop {
        match frame(&buffer) {
            Ok(Some(len)) => {
                let event = match Message::parse(&buffer[..len]) {
                    Ok(message) => Incoming::Message(generation, message),
                    Err(e) => Incoming::Closed(generation, format!("unreadable message: {e}")),
                };
                let closing = matches!(event, Incoming::Closed(..));
                buffer.advance(len);
                if incoming.send(event).await.is_err() || closing {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break format!("unreadable stream: {e}"),
        }
        match read.read_buf(&mut buffer).await {
            Ok(0) => break "closed by the server".to_owned(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    let _ = incoming.send(Incoming::Closed(generation, reason)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::StartLine;
    use std::time::Duration;

    fn config(server: &str) -> ClientConfig {
        ClientConfig {
            server: SipUri::parse(server).unwrap(),
            tls: None,
            credentials: None,
            timers: Timers::default(),
            user_agent: "test".into(),
        }
    }

    fn options(uri: &str) -> Request {
        Request::new("OPTIONS", uri)
            .header("From", "<sip:gw@example.test>;tag=1")
            .header("To", "<sip:gw@example.test>")
            .header("Call-ID", "c1")
            .header("CSeq", "1 OPTIONS")
    }

    /// The response to `request` with `status` and extra header lines.
    fn answer(request: &Message, status: u16, extra: &str) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {status} X\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            out.push_str(&format!("{name}: {}\r\n", request.get(name).unwrap()));
        }
        out.push_str(extra);
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }

    #[tokio::test(start_paused = true)]
    async fn udp_retransmits_until_answered() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("sip:{};transport=udp", server.local_addr().unwrap());
        let client = Client::new(config(&uri));
        let call = tokio::spawn({
            let client = client.clone();
            let uri = uri.clone();
            async move { client.request(options(&uri)).await }
        });
        let mut buffer = vec![0u8; 65536];
        // The first send and two retransmissions (timer E: 500 ms, 1 s) are seen; the
        // third copy is answered.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (n, from) = server.recv_from(&mut buffer).await.unwrap();
            seen.push((Message::parse(&buffer[..n]).unwrap(), from, Instant::now()));
        }
        let branches: Vec<_> = seen
            .iter()
            .map(|(m, _, _)| m.top_branch().unwrap().to_owned())
            .collect();
        assert!(
            branches
                .iter()
                .all(|b| b == &branches[0] && b.starts_with(COOKIE))
        );
        assert_eq!(seen[1].2 - seen[0].2, Duration::from_millis(500));
        assert_eq!(seen[2].2 - seen[1].2, Duration::from_millis(1000));
        let (request, from, _) = &seen[2];
        server
            .send_to(&answer(request, 200, ""), from)
            .await
            .unwrap();
        let response = call.await.unwrap().unwrap();
        assert_eq!(response.status(), Some(200));
        assert_eq!(request.get("Max-Forwards"), Some("70"));
        assert_eq!(client.retransmissions(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn udp_without_an_answer_times_out_after_timer_f() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("sip:{};transport=udp", server.local_addr().unwrap());
        let client = Client::new(config(&uri));
        let started = Instant::now();
        let error = client.request(options(&uri)).await.unwrap_err();
        assert!(
            matches!(error, ClientError::TimedOut { secs: 32, .. }),
            "{error}"
        );
        assert_eq!(Instant::now() - started, Duration::from_secs(32));
        drop(server);
    }

    #[tokio::test]
    async fn tcp_frames_answers_and_reports_a_lost_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("sip:{};transport=tcp", listener.local_addr().unwrap());
        let client = Client::new(config(&uri));
        let call = tokio::spawn({
            let (client, uri) = (client.clone(), uri.clone());
            async move { client.request(options(&uri)).await }
        });
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = BytesMut::new();
        let len = loop {
            if let Some(len) = frame(&buffer).unwrap() {
                break len;
            }
            stream.read_buf(&mut buffer).await.unwrap();
        };
        let request = Message::parse(&buffer[..len]).unwrap();
        assert!(request.get("Via").unwrap().starts_with("SIP/2.0/TCP "));
        // A provisional then the final, in one write, behind a keep-alive CRLF.
        let mut reply = b"\r\n\r\n".to_vec();
        reply.extend(answer(&request, 100, ""));
        reply.extend(answer(&request, 202, ""));
        stream.write_all(&reply).await.unwrap();
        assert_eq!(call.await.unwrap().unwrap().status(), Some(202));
        // The next request goes over the same connection; the server closes it.
        let call = tokio::spawn({
            let (client, uri) = (client.clone(), uri.clone());
            async move { client.request(options(&uri)).await }
        });
        buffer.clear();
        while frame(&buffer).unwrap().is_none() {
            stream.read_buf(&mut buffer).await.unwrap();
        }
        drop(stream);
        let error = call.await.unwrap().unwrap_err();
        assert!(
            matches!(error, ClientError::ConnectionLost { .. }),
            "{error}"
        );
        // And the one after opens a new connection.
        let call = tokio::spawn(async move { client.request(options(&uri)).await });
        let (_again, _) = listener.accept().await.unwrap();
        call.abort();
    }

    #[tokio::test]
    async fn a_digest_challenge_is_answered_and_kept() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("sip:{};transport=udp", server.local_addr().unwrap());
        let mut cfg = config(&uri);
        cfg.credentials = Some(Credentials {
            username: "gw".into(),
            password: "secret".into(),
        });
        let client = Client::new(cfg);
        let call = tokio::spawn({
            let (client, uri) = (client.clone(), uri.clone());
            async move { client.request(options(&uri)).await }
        });
        let mut buffer = vec![0u8; 65536];
        let (n, from) = server.recv_from(&mut buffer).await.unwrap();
        let first = Message::parse(&buffer[..n]).unwrap();
        assert_eq!(first.get("Authorization"), None);
        let challenge = "WWW-Authenticate: Digest realm=\"example.test\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256\r\n";
        server
            .send_to(&answer(&first, 401, challenge), from)
            .await
            .unwrap();
        let (n, _) = server.recv_from(&mut buffer).await.unwrap();
        let second = Message::parse(&buffer[..n]).unwrap();
        let authorization = second.get("Authorization").unwrap().to_owned();
        assert!(
            authorization.contains("algorithm=SHA-256") && authorization.contains("nc=00000001")
        );
        assert_eq!(second.get("CSeq"), Some("2 OPTIONS"));
        assert_ne!(second.top_branch(), first.top_branch(), "a new transaction");
        server
            .send_to(&answer(&second, 200, ""), from)
            .await
            .unwrap();
        assert_eq!(call.await.unwrap().unwrap().status(), Some(200));
        // The next request answers the kept challenge at once, nc counting on.
        let call = tokio::spawn(async move { client.request(options(&uri)).await });
        let (n, _) = server.recv_from(&mut buffer).await.unwrap();
        let third = Message::parse(&buffer[..n]).unwrap();
        assert!(third.get("Authorization").unwrap().contains("nc=00000002"));
        assert!(matches!(third.start, StartLine::Request { .. }));
        server
            .send_to(&answer(&third, 200, ""), from)
            .await
            .unwrap();
        assert_eq!(call.await.unwrap().unwrap().status(), Some(200));
    }

    #[tokio::test]
    async fn nothing_listening_fails_fast() {
        let port = {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.local_addr().unwrap().port()
        };
        let uri = format!("sip:127.0.0.1:{port};transport=udp");
        let client = Client::new(config(&uri));
        let error = tokio::time::timeout(Duration::from_secs(20), client.request(options(&uri)))
            .await
            .expect("ICMP port unreachable ends it before timer F");
        assert!(
            matches!(error, Err(ClientError::Unreachable { .. })),
            "{error:?}"
        );
        let tcp = Client::new(config(&format!("sip:127.0.0.1:{port};transport=tcp")));
        let error = tcp.request(options(&uri)).await.unwrap_err();
        assert!(
            matches!(
                error,
                ClientError::Connect {
                    transport: Transport::Tcp,
                    ..
                }
            ),
            "{error}"
        );
    }
}
