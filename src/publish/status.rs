//! What `/v1/publishers` and the status page show of each SIP server: its counts, the
//! last error and when requests go out again. The driver writes it after every step;
//! readers take a copy.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One server's state as shown.
#[derive(Debug, Clone, Serialize)]
pub struct PublisherView {
    /// The configured name.
    pub name: String,
    /// The server's URI.
    pub server: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// The last request got an answer from the server (false before the first, and
    /// after a timeout or a transport failure).
    pub connected: bool,
    /// Publications the server holds for us.
    pub publications: usize,
    /// Requests in flight.
    pub in_flight: usize,
    /// Presentities waiting for their turn.
    pub queued: usize,
    /// The last failure, until a success clears it.
    pub last_error: Option<String>,
    /// While paused after failures: when requests go out again (RFC 3339).
    pub retry_at: Option<String>,
    /// The lifetime asked for each publication, seconds.
    pub expires_secs: u32,
    /// PUBLISH requests answered 2xx since start.
    pub accepted: u64,
    /// PUBLISH requests that failed or were refused since start.
    pub failed: u64,
    /// Requests sent again over UDP since start: datagrams (or their answers) lost.
    pub retransmissions: u64,
}

/// A view shared between its driver and readers.
#[derive(Debug, Clone)]
pub struct SharedView(Arc<Mutex<PublisherView>>);

impl SharedView {
    /// A view starting as `view`.
    pub fn new(view: PublisherView) -> SharedView {
        SharedView(Arc::new(Mutex::new(view)))
    }

    /// A copy of the view now.
    pub fn get(&self) -> PublisherView {
        common::sync::lock(&self.0).clone()
    }

    /// Changes it.
    pub fn update(&self, change: impl FnOnce(&mut PublisherView)) {
        change(&mut common::sync::lock(&self.0));
    }
}
