//! Misbehaviour on command: the faults the control API injects and what is left of
//! each. Request-level faults are consumed here; stream-level faults are read by the
//! streams through a broadcast of [`StreamFault`]s.

use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::{Duration, Instant};

/// An answer no EWS server should give, for the `hostile-answers` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// XML with a DOCTYPE and an entity declaration.
    Doctype,
    /// Text that is not XML.
    Garbage,
    /// 20 MiB of white space (past any sane answer limit).
    Whitespace,
}

impl Hostile {
    /// Parses a kind name.
    pub fn parse(name: &str) -> Option<Hostile> {
        match name {
            "doctype" => Some(Hostile::Doctype),
            "garbage" => Some(Hostile::Garbage),
            "whitespace" => Some(Hostile::Whitespace),
            _ => None,
        }
    }

    /// The body sent.
    pub fn body(self) -> String {
        match self {
            Hostile::Doctype => concat!(
                "<?xml version=\"1.0\"?><!DOCTYPE lol [<!ENTITY lol \"lol\">]>",
                "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">",
                "<s:Body>&lol;</s:Body></s:Envelope>"
            )
            .to_owned(),
            Hostile::Garbage => "HTTP/1.1 200 OK? no: this is not XML at all\n".to_owned(),
            Hostile::Whitespace => " ".repeat(20 * 1024 * 1024),
        }
    }
}

/// A fault for open streams to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFault {
    /// Close every open stream now.
    Drop,
    /// End the next frame halfway and close.
    CutMidFrame,
    /// Send one malformed frame.
    MalformedFrame,
    /// Subscriptions were expired: report them.
    Expired,
}

#[derive(Debug, Default)]
struct Counters {
    server_busy: u64,
    back_off_ms: u64,
    /// The operation server-busy applies to (all when None).
    busy_operation: Option<String>,
    reject_until: Option<Instant>,
    /// Hostile answers still to give, of which kind, to which operation.
    hostile: Option<(u64, Hostile, String)>,
    /// Until when streams trickle, and the time between two bytes.
    trickle: Option<(Instant, Duration)>,
    http_503: u64,
    retry_after_s: Option<u64>,
    slow_ms: u64,
    stall_until: Option<Instant>,
    pending_cut: bool,
    pending_malformed: bool,
}

/// The active faults.
#[derive(Debug)]
pub struct Faults {
    counters: Mutex<Counters>,
    streams: broadcast::Sender<StreamFault>,
    /// Bumped to close every client connection (idle ones too).
    connections: tokio::sync::watch::Sender<u64>,
}

/// One active fault as `GET /sim/faults` lists it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ActiveFault {
    /// Fault kind.
    pub kind: &'static str,
    /// Requests still to be affected, where counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Back-off hint or delay in milliseconds, where it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            counters: Mutex::new(Counters::default()),
            streams: broadcast::channel(64).0,
            connections: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        common::sync::lock(&self.counters)
    }

    /// Streams subscribe to stream faults here.
    pub fn stream_faults(&self) -> broadcast::Receiver<StreamFault> {
        self.streams.subscribe()
    }

    /// Connections watch this to close when every connection is dropped.
    pub fn connection_drops(&self) -> tokio::sync::watch::Receiver<u64> {
        self.connections.subscribe()
    }

    /// Closes every client connection now, idle or busy (a load balancer restarting).
    pub fn drop_connections(&self) {
        self.connections.send_modify(|generation| *generation += 1);
    }

    /// Tells every open stream.
    pub fn broadcast(&self, fault: StreamFault) {
        let _ = self.streams.send(fault);
    }

    /// The next `count` requests (of `operation` only, when given) get
    /// ErrorServerBusy.
    pub fn server_busy(&self, count: u64, back_off_ms: u64, operation: Option<String>) {
        let mut c = self.lock();
        c.server_busy = count;
        c.back_off_ms = back_off_ms;
        c.busy_operation = operation;
    }

    /// Until `duration` has passed, streams report every subscription they are asked
    /// for as not found, while the server keeps them (a server that rejects what it
    /// just created).
    pub fn reject_subscriptions(&self, duration: Duration) {
        self.lock().reject_until = Some(Instant::now() + duration);
    }

    /// The next `count` requests of `operation` get a `kind` answer with HTTP 200.
    pub fn hostile_answers(&self, count: u64, kind: Hostile, operation: String) {
        self.lock().hostile = Some((count, kind, operation));
    }

    /// Consumes one hostile answer for a request of `operation`, if one applies.
    pub fn take_hostile(&self, operation: &str) -> Option<Hostile> {
        let mut c = self.lock();
        let (count, kind, op) = c.hostile.as_mut()?;
        if op != operation || *count == 0 {
            return None;
        }
        *count -= 1;
        let kind = *kind;
        if *count == 0 {
            c.hostile = None;
        }
        Some(kind)
    }

    /// Until `duration` has passed, streams send one byte per `interval`.
    pub fn trickle(&self, duration: Duration, interval: Duration) {
        self.lock().trickle = Some((Instant::now() + duration, interval));
    }

    /// The time between two bytes while streams trickle.
    pub fn trickling(&self) -> Option<Duration> {
        let mut c = self.lock();
        match c.trickle {
            Some((until, interval)) if until > Instant::now() => Some(interval),
            _ => {
                c.trickle = None;
                None
            }
        }
    }

    /// Whether streams reject their subscriptions now.
    pub fn rejecting_subscriptions(&self) -> bool {
        let mut c = self.lock();
        match c.reject_until {
            Some(t) if t > Instant::now() => true,
            _ => {
                c.reject_until = None;
                false
            }
        }
    }

    /// Consumes one ErrorServerBusy for a request of `operation`, if one applies;
    /// returns its back-off hint.
    pub fn take_server_busy(&self, operation: &str) -> Option<u64> {
        let mut c = self.lock();
        let applies =
            c.server_busy > 0 && c.busy_operation.as_deref().is_none_or(|op| op == operation);
        if !applies {
            return None;
        }
        c.server_busy -= 1;
        Some(c.back_off_ms)
    }

    /// The next `count` requests get HTTP 503, with `Retry-After` when given.
    pub fn http_503(&self, count: u64, retry_after_s: Option<u64>) {
        let mut c = self.lock();
        c.http_503 = count;
        c.retry_after_s = retry_after_s;
    }

    /// Every response is delayed by `ms`.
    pub fn slow(&self, ms: u64) {
        self.lock().slow_ms = ms;
    }

    /// Streams stay open and silent until `duration` has passed.
    pub fn stall(&self, duration: Duration) {
        self.lock().stall_until = Some(Instant::now() + duration);
    }

    /// The next frame of some stream is cut halfway.
    pub fn cut_next_frame(&self) {
        self.lock().pending_cut = true;
        self.broadcast(StreamFault::CutMidFrame);
    }

    /// The next frame of some stream is malformed.
    pub fn malform_next_frame(&self) {
        self.lock().pending_malformed = true;
        self.broadcast(StreamFault::MalformedFrame);
    }

    /// Claims the pending cut (only one stream gets it).
    pub fn take_cut(&self) -> bool {
        std::mem::take(&mut self.lock().pending_cut)
    }

    /// Claims the pending malformed frame (only one stream gets it).
    pub fn take_malformed(&self) -> bool {
        std::mem::take(&mut self.lock().pending_malformed)
    }

    /// Until when streams are stalled, if they are.
    pub fn stalled_until(&self) -> Option<Instant> {
        let mut c = self.lock();
        match c.stall_until {
            Some(t) if t > Instant::now() => Some(t),
            _ => {
                c.stall_until = None;
                None
            }
        }
    }

    /// The delay every response gets.
    pub fn delay(&self) -> Option<Duration> {
        let ms = self.lock().slow_ms;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// Consumes one HTTP 503, if one is pending: `Some(Retry-After seconds, if any)`
    /// (ErrorServerBusy is decided per operation, once the request is read:
    /// [`Faults::take_server_busy`]).
    pub fn take_unavailable(&self) -> Option<Option<u64>> {
        let mut c = self.lock();
        if c.http_503 > 0 {
            c.http_503 -= 1;
            return Some(c.retry_after_s);
        }
        None
    }

    /// Clears every fault.
    pub fn clear(&self) {
        *self.lock() = Counters::default();
    }

    /// What is active now.
    pub fn active(&self) -> Vec<ActiveFault> {
        let stalled = self.stalled_until().is_some();
        let rejecting = self.rejecting_subscriptions();
        let trickling = self.trickling();
        let c = self.lock();
        let mut out = Vec::new();
        if c.server_busy > 0 {
            out.push(ActiveFault {
                kind: "server-busy",
                remaining: Some(c.server_busy),
                ms: Some(c.back_off_ms),
            });
        }
        if c.http_503 > 0 {
            out.push(ActiveFault {
                kind: "http-503",
                remaining: Some(c.http_503),
                ms: None,
            });
        }
        if c.slow_ms > 0 {
            out.push(ActiveFault {
                kind: "slow",
                remaining: None,
                ms: Some(c.slow_ms),
            });
        }
        if stalled {
            out.push(ActiveFault {
                kind: "stall-heartbeats",
                remaining: None,
                ms: None,
            });
        }
        if let Some((count, _, _)) = &c.hostile {
            out.push(ActiveFault {
                kind: "hostile-answers",
                remaining: Some(*count),
                ms: None,
            });
        }
        if let Some(interval) = trickling {
            out.push(ActiveFault {
                kind: "trickle",
                remaining: None,
                ms: Some(interval.as_millis() as u64),
            });
        }
        if rejecting {
            out.push(ActiveFault {
                kind: "reject-subscriptions",
                remaining: None,
                ms: None,
            });
        }
        if c.pending_cut {
            out.push(ActiveFault {
                kind: "cut-mid-frame",
                remaining: Some(1),
                ms: None,
            });
        }
        if c.pending_malformed {
            out.push(ActiveFault {
                kind: "malformed-frame",
                remaining: Some(1),
                ms: None,
            });
        }
        out
    }
}
