//! Starting an in-process simulator and talking EWS to it with the crate's own
//! request writers.

use std::time::Duration;

use ews::ops::{get_streaming_events, subscribe};
use ews::soap::{RequestHeader, envelope};
use ews::stream::Response;
use ews::types::{Mailbox, RequestServerVersion, SubscriptionId};
use ews_sim::{Running, Sim, SimConfig};

use super::client::{self, Target};

/// A simulator config fit for tests: small, fast protocol minutes and heartbeats.
pub fn config() -> SimConfig {
    SimConfig {
        mailboxes: 20,
        heartbeat: Duration::from_millis(100),
        minute: Duration::from_millis(400),
        ..SimConfig::default()
    }
}

/// Starts a simulator on 127.0.0.1:0.
pub async fn start(config: SimConfig) -> (Running, Target) {
    let running = Sim::new(config)
        .expect("valid config")
        .start()
        .await
        .expect("simulator starts");
    let target = Target {
        addr: running.addr,
        tls: None,
    };
    (running, target)
}

pub fn mailbox(n: usize) -> Mailbox {
    Mailbox::parse(&format!("user{n}@example.test")).expect("address")
}

/// A request envelope, impersonating `as_user` when given.
pub fn request(as_user: Option<&Mailbox>, body: &str) -> String {
    envelope(
        &RequestHeader {
            server_version: RequestServerVersion::Exchange2016,
            impersonate: as_user,
        },
        body,
    )
}

/// Subscribes mailbox `n`'s calendar; returns the id.
pub async fn subscribe_mailbox(
    target: &Target,
    n: usize,
    headers: &[(&str, &str)],
) -> (SubscriptionId, client::Reply) {
    let reply = client::ews(
        target,
        headers,
        request(Some(&mailbox(n)), &subscribe::body()),
    )
    .await;
    let Response::Subscribe(r) = reply.ews() else {
        panic!("not a SubscribeResponse")
    };
    (r.subscription_id.expect("subscribed"), reply)
}

/// Opens a GetStreamingEvents connection for `ids`.
pub async fn open_stream(
    target: &Target,
    ids: &[SubscriptionId],
    minutes: u32,
    headers: &[(&str, &str)],
) -> client::FrameStream {
    let body = get_streaming_events::body(ids, minutes).expect("valid request");
    client::stream(target, headers, request(None, &body)).await
}
