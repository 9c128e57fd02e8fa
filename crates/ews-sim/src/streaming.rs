//! GetStreamingEvents as Exchange serves it: HTTP 200 with a chunked body of complete
//! envelopes, each flushed at once; queued events (at most 50 per Notification, one
//! Notification per subscription with news); a ConnectionStatus OK heartbeat when the
//! stream has been quiet for the heartbeat interval; at ConnectionTimeout a final
//! Closed envelope, then the end of the body.
//!
//! Subscriptions that are gone, hosted on another backend or owned by another account
//! are reported in ErrorSubscriptionIds (ErrorSubscriptionNotFound) with
//! ConnectionStatus Closed; events lost to queue overflow are reported as
//! ErrorMissedNotificationEvents. Stream faults (drop, cut mid-frame, malformed frame,
//! stalled heartbeats) are applied here.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::{Instant, sleep_until};

use super::StreamSlot;
use super::endpoint::{CallContext, Reply};
use super::faults::StreamFault;
use super::model::{change_key, folder_id, item_id};
use super::request::Request;
use super::soap_out::{self, Failure};
use super::subscriptions::{EventObject, QueuedEvent, Subscription};
use super::{Sim, SubscriptionOwner};
use ews::ops::get_streaming_events::{MAX_CONNECTION_TIMEOUT_MINUTES, MAX_SUBSCRIPTIONS};
use ews::xml_write::XmlWriter;

/// Events per Notification, as Exchange delivers them.
pub const MAX_EVENTS_PER_NOTIFICATION: usize = 50;
/// Notifications per frame, so one frame stays small.
const MAX_NOTIFICATIONS_PER_FRAME: usize = 64;
/// Frames buffered towards a slow reader before the stream waits for it.
const FRAME_BUFFER: usize = 8;

fn error_reply(failure: Failure) -> Reply {
    Reply::ok(soap_out::messages(
        "GetStreamingEvents",
        [Err::<(), _>(failure)],
        |_, ()| {},
    ))
}

/// `GetStreamingEvents`.
pub fn get_streaming_events(sim: &Arc<Sim>, ctx: &CallContext, req: &Request<'_, '_>) -> Reply {
    let ids: Vec<String> = req
        .operation
        .ews_child("SubscriptionIds")
        .into_iter()
        .flat_map(|e| e.ews_children("SubscriptionId"))
        .map(|e| e.text().to_owned())
        .collect();
    if ids.is_empty() || ids.len() > MAX_SUBSCRIPTIONS {
        return error_reply(Failure::new(
            "ErrorInvalidSubscriptionRequest",
            format!(
                "A request may carry 1 to {MAX_SUBSCRIPTIONS} subscription ids; it carried {}.",
                ids.len()
            ),
        ));
    }
    let timeout = req
        .operation
        .ews_child("ConnectionTimeout")
        .and_then(|e| e.text().parse::<u32>().ok())
        .filter(|t| (1..=MAX_CONNECTION_TIMEOUT_MINUTES).contains(t));
    let Some(timeout) = timeout else {
        return Reply::fault(
            "ErrorSchemaValidation",
            "ConnectionTimeout must be a whole number of minutes from 1 to 30.",
            None,
        );
    };
    let acting = req.impersonate.as_deref().unwrap_or(&ctx.account);
    let default_backend = sim
        .directory
        .lookup(acting)
        .map(|m| sim.backend_of(m))
        .unwrap_or(0);
    let backend = sim.route(ctx, default_backend);
    let identity = sim.subscription_identity(&ctx.account, req.impersonate.as_deref());
    let owner_bound = sim.config.subscription_owner == SubscriptionOwner::Impersonated;
    let mut live = Vec::new();
    let mut bad = Vec::new();
    for id in ids {
        match sim.registry.get(&id) {
            Some(s) if s.backend == backend && s.owner == identity => live.push(s),
            // gromox: another user's id on this stream is simply invalid.
            Some(_) if owner_bound => bad.push(id),
            Some(s) if s.backend == backend => {
                return error_reply(Failure::new(
                    "ErrorSubscriptionAccessDenied",
                    format!("Subscription {} belongs to another account.", s.id),
                ));
            }
            _ => bad.push(id),
        }
    }
    if !bad.is_empty() {
        if owner_bound {
            // gromox leaves the errored stream open, without an end, for a heartbeat
            // interval: the client must close it once the frame is read.
            return held_open(sim, lost_frame(&bad));
        }
        return Reply::ok(lost_frame(&bad));
    }
    if sim.faults.rejecting_subscriptions() {
        // Reported lost, yet kept: what a server that rejects fresh ids looks like.
        let ids: Vec<String> = live.iter().map(|s| s.id.clone()).collect();
        return Reply::ok(lost_frame(&ids));
    }
    // Exchange charges an impersonating stream to a copy of the impersonated
    // mailbox's budget, else to the account's.
    let budget = match &req.impersonate {
        Some(user) => format!("impersonated:{}", user.to_ascii_lowercase()),
        None => ctx.account.clone(),
    };
    let Some(slot) = sim.reserve_stream(&budget) else {
        return error_reply(Failure::new(
            "ErrorExceededConnectionCount",
            format!(
                "You have exceeded the available concurrent connections for your account ({}).",
                sim.config.connection_limit
            ),
        ));
    };
    let (tx, rx) = mpsc::channel(FRAME_BUFFER);
    let stream = Stream {
        sim: sim.clone(),
        number: sim.next_stream(),
        subscriptions: live,
        waker: Arc::new(Notify::new()),
        deadline: Instant::now() + sim.config.minute * timeout,
        tx,
        _slot: slot,
    };
    sim.tasks.spawn(stream.run());
    Reply::Stream(rx)
}

/// A stream that sends `frame` and then nothing, ending only after a heartbeat
/// interval.
fn held_open(sim: &Arc<Sim>, frame: String) -> Reply {
    let (tx, rx) = mpsc::channel(1);
    let (hold, shutdown) = (sim.config.heartbeat, sim.shutdown.clone());
    sim.tasks.spawn(async move {
        if tx.send(Bytes::from(frame)).await.is_ok() {
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                _ = tx.closed() => {}
                _ = shutdown.cancelled() => {}
            }
        }
    });
    Reply::Stream(rx)
}

fn lost_frame(ids: &[String]) -> String {
    soap_out::streaming_frame("Error", |w| {
        soap_out::status(
            w,
            "ErrorSubscriptionNotFound",
            Some("The specified subscription was not found."),
        );
        w.open("m:ErrorSubscriptionIds", &[]);
        for id in ids {
            w.leaf("m:SubscriptionId", id);
        }
        w.close("m:ErrorSubscriptionIds");
        w.leaf("m:ConnectionStatus", "Closed");
    })
}

fn status_frame(status: &str) -> String {
    soap_out::streaming_frame("Success", |w| {
        soap_out::status(w, "NoError", None);
        w.leaf("m:ConnectionStatus", status);
    })
}

/// A heartbeat that also carries a Notification per subscription holding only a
/// `StatusEvent`, as some servers send.
fn status_event_frame(subscriptions: &[Arc<Subscription>]) -> String {
    soap_out::streaming_frame("Success", |w| {
        soap_out::status(w, "NoError", None);
        w.open("m:Notifications", &[]);
        for s in subscriptions {
            w.open("m:Notification", &[]);
            w.leaf("t:SubscriptionId", &s.id);
            w.empty("t:StatusEvent", &[]);
            w.close("m:Notification");
        }
        w.close("m:Notifications");
        w.leaf("m:ConnectionStatus", "OK");
    })
}

fn write_event(w: &mut XmlWriter, mailbox: usize, event: &QueuedEvent) {
    let name = format!("t:{}", event.kind.as_str());
    w.open(&name, &[]);
    w.leaf("t:TimeStamp", &soap_out::utc_time(event.timestamp));
    let calendar = folder_id(mailbox, "calendar");
    match event.object {
        EventObject::Item(number, version) => {
            w.empty(
                "t:ItemId",
                &[
                    ("Id", &item_id(mailbox, number)),
                    ("ChangeKey", &change_key(version)),
                ],
            );
            w.empty(
                "t:ParentFolderId",
                &[("Id", &calendar), ("ChangeKey", "AQAAAA==")],
            );
        }
        EventObject::Folder => {
            w.empty(
                "t:FolderId",
                &[("Id", &calendar), ("ChangeKey", "AgAAAA==")],
            );
            w.empty(
                "t:ParentFolderId",
                &[
                    ("Id", &folder_id(mailbox, "root")),
                    ("ChangeKey", "AQAAAA=="),
                ],
            );
        }
    }
    w.close(&name);
}

/// The stream ended early: the client went away, a fault cut it, or shutdown.
struct Aborted;

struct Stream {
    sim: Arc<Sim>,
    number: u64,
    subscriptions: Vec<Arc<Subscription>>,
    waker: Arc<Notify>,
    deadline: Instant,
    tx: mpsc::Sender<Bytes>,
    _slot: StreamSlot,
}

impl Stream {
    async fn run(mut self) {
        for s in &self.subscriptions {
            s.attach(self.number, self.waker.clone());
        }
        let mut faults = self.sim.faults.stream_faults();
        let _ = self.serve(&mut faults).await;
        let now = Instant::now();
        for s in &self.subscriptions {
            s.detach(self.number, now);
        }
    }

    async fn send(&self, frame: String) -> Result<(), Aborted> {
        if let Some(interval) = self.sim.faults.trickling() {
            return self.trickle(frame.as_bytes(), interval).await;
        }
        tokio::select! {
            sent = self.tx.send(Bytes::from(frame)) => sent.map_err(|_| Aborted),
            _ = self.sim.shutdown.cancelled() => Err(Aborted),
        }
    }

    /// Sends `frame` one byte per `interval`: the connection is never silent, yet no
    /// frame completes.
    async fn trickle(&self, frame: &[u8], interval: std::time::Duration) -> Result<(), Aborted> {
        for byte in frame {
            tokio::select! {
                sent = self.tx.send(Bytes::copy_from_slice(std::slice::from_ref(byte))) => {
                    sent.map_err(|_| Aborted)?;
                }
                _ = self.sim.shutdown.cancelled() => return Err(Aborted),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.sim.shutdown.cancelled() => return Err(Aborted),
                _ = self.tx.closed() => return Err(Aborted),
            }
        }
        Ok(())
    }

    async fn serve(
        &mut self,
        faults: &mut broadcast::Receiver<StreamFault>,
    ) -> Result<(), Aborted> {
        let heartbeat = self.sim.config.heartbeat;
        let mut quiet_since = Instant::now();
        loop {
            if self.sim.faults.take_cut() {
                let frame = status_frame("OK");
                let half = frame.len() / 2;
                let _ = self.send(frame[..half].to_owned()).await;
                return Err(Aborted);
            }
            if self.sim.faults.take_malformed() {
                self.send(status_frame("OK").replace("</m:ResponseMessages>", ""))
                    .await?;
            }
            if let Some(until) = self.sim.faults.stalled_until() {
                tokio::select! {
                    _ = sleep_until(until.min(self.deadline)) => {}
                    _ = self.sim.shutdown.cancelled() => return Err(Aborted),
                    _ = self.tx.closed() => return Err(Aborted),
                }
                quiet_since = Instant::now();
                if Instant::now() >= self.deadline {
                    self.send(status_frame("Closed")).await?;
                    return Ok(());
                }
                continue;
            }
            if let Some(frame) = self.next_frame() {
                let closing = frame.1;
                self.send(frame.0).await?;
                quiet_since = Instant::now();
                if closing {
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                _ = self.waker.notified() => {}
                _ = sleep_until(quiet_since + heartbeat) => {
                    let frame = if self.sim.config.status_event_heartbeats {
                        status_event_frame(&self.subscriptions)
                    } else {
                        status_frame("OK")
                    };
                    self.send(frame).await?;
                    quiet_since = Instant::now();
                }
                _ = sleep_until(self.deadline) => {
                    self.send(status_frame("Closed")).await?;
                    return Ok(());
                }
                fault = faults.recv() => {
                    if let Ok(StreamFault::Drop) = fault {
                        return Err(Aborted);
                    }
                }
                _ = self.sim.shutdown.cancelled() => return Err(Aborted),
                _ = self.tx.closed() => return Err(Aborted),
            }
        }
    }

    /// The next frame to send, and whether it closes the stream.
    fn next_frame(&mut self) -> Option<(String, bool)> {
        let gone: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| s.gone().is_some())
            .map(|s| s.id.clone())
            .collect();
        if !gone.is_empty() {
            return Some((lost_frame(&gone), true));
        }
        // Subscriptions another stream took over are no longer ours.
        let number = self.number;
        self.subscriptions.retain(|s| s.carried_by(number));
        if self.subscriptions.is_empty() {
            return Some((status_frame("Closed"), true));
        }
        let missed: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| s.take_missed())
            .map(|s| s.id.clone())
            .collect();
        if !missed.is_empty() {
            self.waker.notify_one();
            let frame = soap_out::streaming_frame("Error", |w| {
                soap_out::status(
                    w,
                    "ErrorMissedNotificationEvents",
                    Some("Events were lost because the subscription's queue overflowed."),
                );
                w.open("m:ErrorSubscriptionIds", &[]);
                for id in &missed {
                    w.leaf("m:SubscriptionId", id);
                }
                w.close("m:ErrorSubscriptionIds");
                w.leaf("m:ConnectionStatus", "OK");
            });
            return Some((frame, false));
        }
        let mut notifications = Vec::new();
        for s in &self.subscriptions {
            if notifications.len() >= MAX_NOTIFICATIONS_PER_FRAME {
                self.waker.notify_one();
                break;
            }
            let events = s.take(MAX_EVENTS_PER_NOTIFICATION);
            if !events.is_empty() {
                notifications.push((s.clone(), events));
            }
            if s.has_pending() {
                self.waker.notify_one();
            }
        }
        if notifications.is_empty() {
            return None;
        }
        let frame = soap_out::streaming_frame("Success", |w| {
            soap_out::status(w, "NoError", None);
            w.open("m:Notifications", &[]);
            for (s, events) in &notifications {
                w.open("m:Notification", &[]);
                w.leaf("t:SubscriptionId", &s.id);
                for event in events {
                    write_event(w, s.mailbox, event);
                }
                w.close("m:Notification");
            }
            w.close("m:Notifications");
        });
        Some((frame, false))
    }
}
