//! Counters `GET /sim/stats` reports.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Request, event and fault counters.
#[derive(Debug, Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<BTreeMap<String, u64>>,
    rejected: Mutex<BTreeMap<String, u64>>,
    logins: Mutex<BTreeMap<String, u64>>,
    events: AtomicU64,
    streams_open: AtomicU64,
    off_home: AtomicU64,
    availability_mailboxes: AtomicU64,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut map = common::sync::lock(map);
    *map.entry(key.to_owned()).or_default() += 1;
}

fn snapshot(map: &Mutex<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    common::sync::lock(map).clone()
}

impl Stats {
    /// Counts one EWS request of `operation` (bounded: only names we route).
    pub fn request(&self, operation: &str) {
        bump(&self.requests, operation);
    }

    /// Counts one injected fault of `kind`.
    pub fn fault(&self, kind: &str) {
        bump(&self.faults, kind);
    }

    /// Counts one request refused with `why` (`unauthorized`, `unavailable`,
    /// `server_busy`).
    pub fn rejected(&self, why: &str) {
        bump(&self.rejected, why);
    }

    /// Counts one step of a connection login (`ntlm_challenge`: a CHALLENGE sent;
    /// `ntlm`: a connection authenticated by an AUTHENTICATE message).
    pub fn login(&self, step: &str) {
        bump(&self.logins, step);
    }

    /// Login steps so far.
    pub fn logins(&self) -> BTreeMap<String, u64> {
        snapshot(&self.logins)
    }

    /// Refused requests by reason.
    pub fn rejections(&self) -> BTreeMap<String, u64> {
        snapshot(&self.rejected)
    }

    /// Counts `n` events queued for delivery.
    pub fn events(&self, n: u64) {
        self.events.fetch_add(n, Ordering::Relaxed);
    }

    /// A subscription was created on a backend other than its mailbox's own (its
    /// group mixes backends and relies on the cookie to drag it to the anchor's).
    pub fn subscribed_off_home(&self) {
        self.off_home.fetch_add(1, Ordering::Relaxed);
    }

    /// Subscriptions created away from their mailbox's backend so far.
    pub fn subscriptions_off_home(&self) -> u64 {
        self.off_home.load(Ordering::Relaxed)
    }

    /// A GetUserAvailability request asked for `n` mailboxes.
    pub fn availability_fetched(&self, n: usize) {
        self.availability_mailboxes
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Mailboxes read with GetUserAvailability so far (one request counts each).
    pub fn availability_mailboxes(&self) -> u64 {
        self.availability_mailboxes.load(Ordering::Relaxed)
    }

    /// A stream opened.
    pub fn stream_opened(&self) {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
    }

    /// A stream closed.
    pub fn stream_closed(&self) {
        self.streams_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Streams open now.
    pub fn streams_open(&self) -> u64 {
        self.streams_open.load(Ordering::Relaxed)
    }

    /// Events emitted so far.
    pub fn events_emitted(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Requests by operation.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        snapshot(&self.requests)
    }

    /// Faults injected by kind.
    pub fn faults(&self) -> BTreeMap<String, u64> {
        snapshot(&self.faults)
    }
}
