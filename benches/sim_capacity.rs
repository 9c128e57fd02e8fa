//! Capacity of one `ews-presence simulate` process: it serves N mailboxes, each
//! subscribed (streaming, impersonated), carried by S GetStreamingEvents connections of
//! up to 200 subscriptions, while it makes C calendar changes per second.
//!
//! The simulator runs as its own process (the release binary); this program is the
//! client. It reports, as one JSON line: Subscribe throughput, events delivered per
//! second against events the simulator emitted, and the simulator's CPU use (from
//! /proc/PID/stat) and resident memory.
//!
//! Run: `cargo bench --bench sim_capacity [-- MAILBOXES STREAMS CHURN SECONDS]`
//! (defaults 100000 500 1000 30). `cargo test --all-targets` runs a small smoke pass.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ews::ops::{get_streaming_events, subscribe};
use ews::soap::{RequestHeader, envelope};
use ews::stream::{Response, StreamDecoder};
use ews::types::{Mailbox, RequestServerVersion, SubscriptionId};
use http_body_util::{BodyExt, Full};
use hyper::Request;

const SUBSCRIBE_WORKERS: usize = 32;

mod harness;

use harness::{connect, usage};

fn post(xml: String) -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri("/EWS/Exchange.asmx")
        .header("Host", "localhost")
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(Full::new(Bytes::from(xml)))
        .expect("request")
}

fn decode_one(body: &[u8]) -> Response {
    let mut decoder = StreamDecoder::default();
    decoder.push(body);
    decoder
        .next_frame()
        .expect("decodable")
        .expect("an envelope")
        .response
}

/// Subscribes mailboxes `first..last` (1-based) over one keep-alive connection.
async fn subscribe_range(addr: String, numbers: Vec<usize>) -> Vec<SubscriptionId> {
    let mut sender = connect(&addr).await;
    let body = subscribe::body();
    let mut ids = Vec::with_capacity(numbers.len());
    for n in numbers {
        let mailbox = Mailbox::parse(&format!("user{n}@example.test")).expect("address");
        let xml = envelope(
            &RequestHeader {
                server_version: RequestServerVersion::Exchange2016,
                impersonate: Some(&mailbox),
            },
            &body,
        );
        sender.ready().await.expect("connection ready");
        let response = sender.send_request(post(xml)).await.expect("Subscribe");
        let bytes = harness::body_of(response).await;
        match decode_one(&bytes) {
            Response::Subscribe(r) => ids.push(r.subscription_id.expect("subscribed")),
            other => panic!("unexpected answer to Subscribe: {other:?}"),
        }
    }
    ids
}

/// Holds one stream open, counting events and frames until `stop`.
async fn hold_stream(
    addr: String,
    ids: Vec<SubscriptionId>,
    events: Arc<AtomicU64>,
    frames: Arc<AtomicU64>,
) {
    let mut sender = connect(&addr).await;
    let xml = envelope(
        &RequestHeader {
            server_version: RequestServerVersion::Exchange2016,
            impersonate: None,
        },
        &get_streaming_events::body(&ids, 30).expect("valid request"),
    );
    let response = sender
        .send_request(post(xml))
        .await
        .expect("GetStreamingEvents");
    let mut body = response.into_body();
    let mut decoder = StreamDecoder::default();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        decoder.push(&data);
        while let Ok(Some(frame)) = decoder.next_frame() {
            frames.fetch_add(1, Ordering::Relaxed);
            if let Response::GetStreamingEvents(r) = frame.response {
                assert!(r.status.code.is_success(), "stream error: {:?}", r.status);
                let n: usize = r.notifications.iter().map(|n| n.events.len()).sum();
                events.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

async fn stats(addr: &str) -> serde_json::Value {
    let mut sender = connect(addr).await;
    let req = harness::get_request("/sim/stats");
    let response = sender.send_request(req).await.expect("stats");
    serde_json::from_slice(&harness::body_of(response).await).expect("stats JSON")
}

fn main() {
    let (args, measuring) = harness::arguments();
    let number = |i: usize, default: usize| harness::number(&args, i, default);
    let (mailboxes, streams, churn, seconds) = if measuring {
        (
            number(0, 100_000),
            number(1, 500),
            number(2, 1000),
            number(3, 30),
        )
    } else {
        (2_000, 10, 200, 2)
    };
    assert!(
        streams * 200 >= mailboxes,
        "{streams} streams cannot carry {mailboxes} subscriptions"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-ms",
            "45000",
        ])
        .args([
            "--mailboxes",
            &mailboxes.to_string(),
            "--churn",
            &churn.to_string(),
        ])
        .args(["--connection-limit", &(streams + 10).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the simulator");
    let pid = child.id();
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let started = Instant::now();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("simulator output");
    let startup = started.elapsed();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("listening address")
        .to_owned();

    let runtime = harness::runtime();
    let report = runtime.block_on(async move {
        let subscribing = Instant::now();
        let mut workers = Vec::new();
        for w in 0..SUBSCRIBE_WORKERS {
            let numbers: Vec<usize> = (1..=mailboxes).filter(|n| n % SUBSCRIBE_WORKERS == w).collect();
            workers.push(tokio::spawn(subscribe_range(addr.clone(), numbers)));
        }
        let mut ids = Vec::with_capacity(mailboxes);
        for w in workers {
            ids.extend(w.await.expect("subscriber"));
        }
        let subscribe_secs = subscribing.elapsed().as_secs_f64();
        let events = Arc::new(AtomicU64::new(0));
        let frames = Arc::new(AtomicU64::new(0));
        let per_stream = ids.len().div_ceil(streams);
        for chunk in ids.chunks(per_stream) {
            tokio::spawn(hold_stream(addr.clone(), chunk.to_vec(), events.clone(), frames.clone()));
        }
        // Let every stream open, then measure a steady window.
        let deadline = Instant::now() + Duration::from_secs(30);
        while stats(&addr).await["streams_open"].as_u64() != Some(ids.chunks(per_stream).len() as u64) {
            assert!(Instant::now() < deadline, "streams did not all open");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let emitted_before = stats(&addr).await["events_emitted"].as_u64().unwrap_or(0);
        let received_before = events.load(Ordering::Relaxed);
        let cpu_before = usage(&pid.to_string()).cpu_seconds;
        let window = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds as u64)).await;
        let elapsed = window.elapsed().as_secs_f64();
        let after = usage(&pid.to_string());
        let (cpu_after, rss) = (after.cpu_seconds, after.rss);
        let emitted = stats(&addr).await["events_emitted"].as_u64().unwrap_or(0) - emitted_before;
        // Give in-flight frames a moment, bounded, to arrive before counting.
        let settle = Instant::now();
        while events.load(Ordering::Relaxed) - received_before < emitted && settle.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let received = events.load(Ordering::Relaxed) - received_before;
        serde_json::json!({
            "bench": "sim_capacity",
            "mailboxes": mailboxes,
            "streams": ids.chunks(per_stream).len(),
            "churn_per_s": churn,
            "startup_s": (startup.as_secs_f64() * 100.0).round() / 100.0,
            "subscribe_per_s": (mailboxes as f64 / subscribe_secs).round(),
            "window_s": (elapsed * 10.0).round() / 10.0,
            "events_emitted_per_s": (emitted as f64 / elapsed).round(),
            "events_received_per_s": (received as f64 / elapsed).round(),
            "events_received_of_emitted": if emitted == 0 { 1.0 } else { ((received as f64 / emitted as f64) * 1000.0).round() / 1000.0 },
            "sim_cpu_percent_of_one_core": (((cpu_after - cpu_before) / elapsed) * 1000.0).round() / 10.0,
            "sim_rss_mib": rss / (1024 * 1024),
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    println!("{report}");
    if !measuring {
        assert!(
            report["events_received_of_emitted"].as_f64().unwrap_or(0.0) > 0.9,
            "events were lost: {report}"
        );
    }
}
