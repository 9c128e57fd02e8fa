//! Outbound POSTs of the Graph side: the validation handshake of a new subscription
//! (`POST {url}?validationToken=…`, the receiver must echo the token as `text/plain`
//! with 200 within 10 s) and change and lifecycle notifications (a JSON
//! `changeNotificationCollection`; the receiver must answer 2xx within 3 s, else the
//! delivery is tried once more after a second and then given up, counted in
//! `/sim/stats`). At most [`MAX_DELIVERIES`] notifications are in flight; more wait.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use std::sync::Mutex;

use tokio::sync::{Semaphore, mpsc};

use crate::Sim;
use ews::connection::Connector;
use graph::notification::ChangeNotificationCollection;

/// Notifications in flight at once.
pub const MAX_DELIVERIES: usize = 64;
/// How long the receiver has to answer a validation request (Graph: 10 s).
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it has to answer a notification (Graph: 3 s).
pub const NOTIFICATION_TIMEOUT: Duration = Duration::from_secs(3);

/// Notifications waiting to be sent; more are dropped and counted.
pub const MAX_QUEUED: usize = 100_000;

/// A notification to send: where, and what.
type Outbound = (String, ChangeNotificationCollection);

/// The client side of the Graph simulator.
#[derive(Debug)]
pub struct Delivery {
    tls: Arc<rustls::ClientConfig>,
    slots: Arc<Semaphore>,
    queue: mpsc::Sender<Outbound>,
    waiting: Mutex<Option<mpsc::Receiver<Outbound>>>,
}

impl Delivery {
    /// Trusting `ca` (else the system roots) for `https://` URLs.
    pub fn new(ca: Option<&std::path::Path>) -> Result<Delivery, String> {
        let tls = ews::transport::client_tls(ca, std::path::Path::new("certs"))
            .map_err(|e| e.to_string())?;
        let (queue, waiting) = mpsc::channel(MAX_QUEUED);
        Ok(Delivery {
            tls,
            slots: Arc::new(Semaphore::new(MAX_DELIVERIES)),
            queue,
            waiting: Mutex::new(Some(waiting)),
        })
    }

    /// POSTs `body` to `url` and returns the status and body of the answer.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: String,
        timeout: Duration,
    ) -> Result<(u16, Bytes), String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let exchange = async {
            let connector = Connector::new(&uri, self.tls.clone()).map_err(|e| e.to_string())?;
            let mut connection = connector.connect().await.map_err(|e| e.to_string())?;
            let authority = uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default();
            let request = hyper::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
                .header(hyper::header::HOST, authority)
                .header(hyper::header::CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            let response = connection.send(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no answer from {url} within {} s", timeout.as_secs()))?
    }

    /// Runs the validation handshake against `url`; why it failed.
    pub async fn validate(&self, url: &str) -> Result<(), String> {
        let token = format!(
            "Validation: Testing client application reachability for subscription Request-Id: {}",
            super::subscriptions::new_guid()
        );
        let separator = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{separator}validationToken={}",
            common::percent::encode(&token)
        );
        let (status, body) = self
            .post(
                &target,
                "text/plain; charset=utf-8",
                String::new(),
                VALIDATION_TIMEOUT,
            )
            .await?;
        if status != 200 {
            return Err(format!(
                "{url} answered the validation request with {status}"
            ));
        }
        if body.as_ref() != token.as_bytes() {
            return Err(format!("{url} did not echo the validation token"));
        }
        Ok(())
    }

    /// Queues `collection` for `url`; false when the queue is full (it is dropped).
    pub fn notify(&self, url: String, collection: ChangeNotificationCollection) -> bool {
        self.queue.try_send((url, collection)).is_ok()
    }
}

/// Sends what is queued until the simulator stops.
pub async fn run(sim: Arc<Sim>) {
    let Some(graph) = sim.graph.as_ref() else {
        return;
    };
    let Some(mut waiting) = common::sync::lock(&graph.delivery.waiting).take() else {
        return;
    };
    loop {
        let next = tokio::select! {
            next = waiting.recv() => next,
            _ = sim.shutdown.cancelled() => return,
        };
        let Some((url, collection)) = next else {
            return;
        };
        let Ok(slot) = graph.delivery.slots.clone().acquire_owned().await else {
            return;
        };
        let sim = sim.clone();
        sim.tasks.clone().spawn(async move {
            let _slot = slot;
            deliver(&sim, url, collection).await;
        });
    }
}

async fn deliver(sim: &Sim, url: String, collection: ChangeNotificationCollection) {
    let Some(graph) = sim.graph.as_ref() else {
        return;
    };
    if let Some(delay) = graph.faults.notification_delay() {
        tokio::time::sleep(delay).await;
    }
    // The fault drops change notifications; lifecycle events (among them the
    // `missed` that tells of a dropped change) are delivered.
    let is_change = collection.value.iter().all(|n| n.lifecycle_event.is_none());
    if is_change && graph.faults.take_drop() {
        sim.stats.fault("graph_notification_dropped");
        if graph.faults.missed_after_drop() {
            for n in &collection.value {
                if let Some(s) = graph.subscriptions.get(&n.subscription_id) {
                    sim.graph_lifecycle_one(&s, graph::notification::LifecycleEvent::Missed);
                }
            }
        }
        return;
    }
    let body = graph::encode(&collection);
    graph.record(super::Exchange {
        method: "NOTIFY".to_owned(),
        path: url.clone(),
        request: serde_json::to_value(&collection).ok(),
        status: 0,
        response: None,
    });
    for attempt in 0..2 {
        match graph
            .delivery
            .post(&url, "application/json", body.clone(), NOTIFICATION_TIMEOUT)
            .await
        {
            Ok((status, _)) if (200..300).contains(&status) => {
                sim.stats.request("graph notification delivered");
                return;
            }
            _ if attempt == 0 => tokio::time::sleep(Duration::from_secs(1)).await,
            _ => {}
        }
    }
    sim.stats.rejected("graph_notification_undelivered");
}
