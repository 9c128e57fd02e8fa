//! End-to-end benchmarks of the daemon against the simulator over loopback. Each
//! scenario prints one JSON line.
//!
//! - `latency`: the shipped debounce (1 s) with 5 ms added to every EWS answer, 10,000
//!   mailboxes, 200 changes/s; time from the simulator committing a change to the
//!   daemon's API (its change feed) showing the new state, and GetUserAvailability
//!   mailbox-fetches per change. With `LATENCY_AFTER_SWEEP=1` the changes start only
//!   after the start-up automatic-reply sweep (to tell its effect apart).
//! - `storm`: 100,000 mailboxes, each with a meeting starting at the same instant T;
//!   time from T until the daemon's feed published every transition, until each
//!   watcher received them all (`storm MAILBOXES LEAD WATCHERS`, one watcher unless
//!   told; the figure is the slowest), and until all read `in-a-meeting` through batch
//!   queries (asked again every 50 ms).
//! - `scale`: 100,000 mailboxes over 500 streams, the simulator in its own process at
//!   1,000 changes/s; time to `/readyz`, the daemon's peak RSS per mailbox, and its CPU
//!   at steady state (after the start-up automatic-reply sweep, reported apart).
//! - `load`: EWS requests per mailbox-hour at steady state (no changes), by operation,
//!   10,000 mailboxes, the automatic-reply timing compressed 60 times, with MailTips
//!   and with the one-by-one GetUserOofSettings baseline (1,000 mailboxes) in the same
//!   run.
//!   Next to them, in the same run, the same for a `kind = "graph"` gateway: Graph
//!   requests per mailbox-hour at rest (getSchedule, automaticRepliesSetting `$batch`,
//!   token; the requests inside a batch reported apart), subscription renewals computed
//!   from their lifetime (`load-graph` runs it alone).
//! - `query`: batch queries of 1,000 of 10,000 mailboxes, the server's time (its
//!   `Server-Timing` header) and the round trip, p50 and p99; then `GET
//!   /v1/presence/{mailbox}` throughput with keep-alive (wrk) next to nginx serving the
//!   same JSON as a static file, in the same run.
//!
//! Run: `cargo bench --bench presence -- SCENARIO [MAILBOXES]` (release build).
//! Without `--bench` (as `cargo test --all-targets` runs it) a small smoke pass checks
//! correctness only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ews::ops::get_user_availability::BusyType;
use ews_presence::app::App;
use ews_presence::config::Config;
use ews_sim::model::NewItem;
use ews_sim::{Running, Sim, SimConfig};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The same allocator as the `ews-presence` binary, so memory figures match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod harness;

use harness::watch::watch_counting;
use harness::{Sender, connect, percentile, round, usage};

async fn get(sender: &mut Sender, method: &str, path: &str, body: String) -> (u16, Bytes) {
    sender.ready().await.expect("ready");
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "localhost")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    let status = response.status().as_u16();
    (status, harness::body_of(response).await)
}

fn address(n: usize) -> String {
    format!("user{n}@example.test")
}

struct Rig {
    sim: Option<Running>,
    app: App,
    dir: PathBuf,
}

/// Writes a daemon configuration for `mailboxes` against `ews_url` and starts it.
async fn start_daemon(
    ews_url: &str,
    mailboxes: usize,
    debounce_ms: u64,
    name: &str,
) -> (App, PathBuf) {
    start_daemon_with(
        ews_url,
        mailboxes,
        &format!("debounce_ms = {debounce_ms}\n"),
        name,
    )
    .await
}

/// Like [`start_daemon`], with `presence` as the `[presence]` section's lines.
async fn start_daemon_with(
    ews_url: &str,
    mailboxes: usize,
    presence: &str,
    name: &str,
) -> (App, PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("ews-presence-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list: String = (1..=mailboxes)
        .map(|n| format!("{}\n", address(n)))
        .collect();
    std::fs::write(dir.join("mailboxes.txt"), list).expect("mailboxes");
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[presence]\n{presence}[[gateway]]\nname = \"sim\"\nurl = \"{ews_url}\"\nauth = \"none\"\nmax_connections = {}\n[mailboxes]\nfile = \"mailboxes.txt\"\n",
            mailboxes.div_ceil(200)
        ),
    )
    .expect("config");
    let config = Config::load(&dir.join("c.toml"), &HashMap::new()).expect("config");
    (App::start(config).await.expect("daemon starts"), dir)
}

async fn rig(mailboxes: usize, debounce_ms: u64, name: &str) -> Rig {
    let sim = Sim::new(SimConfig {
        mailboxes,
        empty_calendars: true,
        connection_limit: mailboxes.div_ceil(200) + 2,
        ..SimConfig::default()
    })
    .expect("sim")
    .start()
    .await
    .expect("sim starts");
    let (app, dir) = start_daemon(&sim.ews_url(), mailboxes, debounce_ms, name).await;
    Rig {
        sim: Some(sim),
        app,
        dir,
    }
}

async fn wait_ready(api: SocketAddr, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let mut sender = connect(api).await;
        if get(&mut sender, "GET", "/readyz", String::new()).await.0 == 200 {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Streams `(mailbox, availability)` of every feed event into a channel.
async fn watch(api: SocketAddr) -> mpsc::UnboundedReceiver<(String, String, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut sender = connect(api).await;
    let req = harness::get_request("/v1/presence/watch");
    let response = sender.send_request(req).await.expect("watch");
    let mut body = response.into_body();
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let at = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&data));
            // The measuring client must not be the bottleneck: walk the complete
            // events with a cursor (one drain per chunk, not one per event) and pick
            // the two fields out of the daemon's fixed field order.
            let mut consumed = 0;
            while let Some(end) = buffer[consumed..].find("\n\n") {
                let block = &buffer[consumed..consumed + end];
                consumed += end + 2;
                if let Some(json) = block.lines().find_map(|l| l.strip_prefix("data: "))
                    && let Some(m) = field(json, "\"mailbox\":\"")
                    && let Some(a) = field(json, "\"availability\":\"")
                    && tx.send((m.to_owned(), a.to_owned(), at)).is_err()
                {
                    return;
                }
            }
            buffer.drain(..consumed);
        }
    });
    rx
}

/// The string value following `key` (which ends with the opening quote).
fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(key)? + key.len();
    let len = json[start..].find('"')?;
    Some(&json[start..start + len])
}

/// The shipped `debounce_ms`.
const DEFAULT_DEBOUNCE_MS: u64 = 1000;
/// What the simulator adds to every EWS answer in the latency scenario.
const EWS_CALL_MS: u64 = 5;

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn latency(mailboxes: usize, rate: u64, seconds: u64) -> Value {
    // The shipped configuration (debounce 1 s), and a realistic 5 ms per EWS call.
    let rig = rig(mailboxes, DEFAULT_DEBOUNCE_MS, "latency").await;
    let api = rig.app.api_addr;
    wait_ready(api, Duration::from_secs(120)).await;
    let sim = rig.sim.as_ref().expect("in-process sim").sim.clone();
    sim.faults.slow(EWS_CALL_MS);
    if std::env::var_os("LATENCY_AFTER_SWEEP").is_some() {
        // Diagnosis: start the changes only once the start-up automatic-reply sweep is over.
        startup_sweep(api, mailboxes, sim.config.mail_tips_max_recipients).await;
    }
    let fetched_before = sim.stats.availability_mailboxes();
    let mut changes = 0u64;
    let mut feed = watch(api).await;
    let mut pending: HashMap<String, (&'static str, Instant)> = HashMap::new();
    let mut meetings: HashMap<usize, u32> = HashMap::new();
    let mut samples = Vec::new();
    let mut slow = std::collections::BTreeMap::new();
    let mut next = 1usize;
    let tick = Duration::from_millis(5);
    let started = Instant::now();
    let mut owed = 0.0;
    let mut last = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        owed += rate as f64 * last.elapsed().as_secs_f64();
        last = Instant::now();
        while owed >= 1.0 {
            owed -= 1.0;
            // The next mailbox with no change in flight.
            let n = (0..mailboxes)
                .map(|k| (next + k - 1) % mailboxes + 1)
                .find(|n| !pending.contains_key(&address(*n)));
            let Some(n) = n else { break };
            next = n % mailboxes + 1;
            let now = jiff::Timestamp::now().as_second();
            let expected = match meetings.remove(&n) {
                Some(number) => {
                    sim.delete_item(n - 1, number).expect("delete");
                    "available"
                }
                None => {
                    let item = sim
                        .create_item(
                            n - 1,
                            NewItem {
                                start: now - 60,
                                end: now + 3600,
                                busy: BusyType::Busy,
                                subject: None,
                            },
                        )
                        .expect("create");
                    meetings.insert(n, item.number);
                    "in-a-meeting"
                }
            };
            pending.insert(address(n), (expected, Instant::now()));
            changes += 1;
        }
        while let Ok((m, a, at)) = feed.try_recv() {
            if let Some((expected, committed)) = pending.get(&m)
                && *expected == a
            {
                samples.push(at.duration_since(*committed));
                slow_by_second(&mut slow, started, *committed, at);
                pending.remove(&m);
            }
        }
        tokio::time::sleep(tick).await;
    }
    let drain = Instant::now();
    while !pending.is_empty() && drain.elapsed() < Duration::from_secs(10) {
        if let Ok(Some((m, a, at))) =
            tokio::time::timeout(Duration::from_millis(100), feed.recv()).await
            && let Some((expected, committed)) = pending.get(&m)
            && *expected == a
        {
            samples.push(at.duration_since(*committed));
            slow_by_second(&mut slow, started, *committed, at);
            pending.remove(&m);
        }
    }
    samples.sort();
    let fetched = sim.stats.availability_mailboxes() - fetched_before;
    let report = json!({
        "bench": "latency", "mailboxes": mailboxes, "changes_per_s": rate, "seconds": seconds,
        "debounce_ms": DEFAULT_DEBOUNCE_MS, "ews_call_ms": EWS_CALL_MS,
        "samples": samples.len(), "missing": pending.len(),
        "p50_ms": round(percentile(&samples, 0.5)), "p99_ms": round(percentile(&samples, 0.99)),
        "max_ms": round(samples.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)),
        "fetches_per_change": round3(fetched as f64 / changes.max(1) as f64),
        "slow_samples_by_second": slow,
    });
    stop(rig).await;
    report
}

/// Counts a sample slower than [`SLOW_MS`] under the second (since the changes
/// started) in which its change was committed: where the tail comes from.
fn slow_by_second(
    slow: &mut std::collections::BTreeMap<String, u32>,
    started: Instant,
    committed: Instant,
    at: Instant,
) {
    if at.duration_since(committed) > Duration::from_millis(SLOW_MS) {
        let second = committed.duration_since(started).as_secs();
        *slow.entry(format!("{second:02}")).or_default() += 1;
    }
}

/// A sample above this is counted in `slow_samples_by_second`.
const SLOW_MS: u64 = 20;

/// Waits until the daemon's start-up automatic-reply reads of `mailboxes` went out:
/// GetMailTips batches of `max_recipients` (capped at 100 as the daemon does), or with
/// MailTips off (`None`) one GetUserOofSettings each; returns how long that took.
async fn startup_sweep(api: SocketAddr, mailboxes: usize, max_recipients: Option<u32>) -> Duration {
    let (operation, count) = match max_recipients {
        Some(max) => ("GetMailTips", mailboxes.div_ceil(max.min(100) as usize)),
        None => ("GetUserOofSettings", mailboxes),
    };
    wait_for_requests(api, operation, count, Duration::from_secs(600)).await
}

/// Most mailboxes of the one-by-one baseline of `load`.
const BASELINE_MAILBOXES: usize = 1_000;

/// The shipped `oof_refresh_secs` and `oof_verify_secs`.
const OOF_REFRESH_SECS: u64 = 300;
const OOF_VERIFY_SECS: u64 = 14_400;

/// EWS requests per mailbox-hour at steady state (no changes), by operation: the
/// daemon's automatic-reply timing compressed `compression` times (one hour in
/// `3600 / compression` seconds), counted by the simulator after the start-up reads.
/// With `mail_tips` false the simulator says MailTips are off: the one-by-one
/// GetUserOofSettings baseline. Stream renewals (one GetStreamingEvents per stream per
/// ConnectionTimeout, 30 min) cannot be compressed; they are computed from the streams
/// open and reported apart.
async fn load(mailboxes: usize, compression: u64, mail_tips: bool) -> Value {
    let sim = Sim::new(SimConfig {
        mailboxes,
        empty_calendars: true,
        connection_limit: mailboxes.div_ceil(200) + 2,
        mail_tips_max_recipients: mail_tips.then_some(ews_sim::DEFAULT_MAIL_TIPS_RECIPIENTS),
        ..SimConfig::default()
    })
    .expect("sim")
    .start()
    .await
    .expect("sim starts");
    let presence = format!(
        "oof_refresh_secs = {}\noof_verify_secs = {}\n",
        OOF_REFRESH_SECS / compression,
        OOF_VERIFY_SECS / compression
    );
    let (app, dir) = start_daemon_with(&sim.ews_url(), mailboxes, &presence, "load").await;
    let rig = Rig {
        sim: Some(sim),
        app,
        dir,
    };
    wait_ready(rig.app.api_addr, Duration::from_secs(300)).await;
    let sim = rig.sim.as_ref().expect("in-process sim").sim.clone();
    startup_sweep(
        rig.app.api_addr,
        mailboxes,
        sim.config.mail_tips_max_recipients,
    )
    .await;
    let window = Duration::from_secs(3600 / compression);
    let rates = rates_at_rest(&sim, window, compression, mailboxes).await;
    let mut by_operation = serde_json::Map::new();
    let mut total = 0.0;
    for (op, per) in rates {
        total += per;
        by_operation.insert(op, round3(per).into());
    }
    let streams = mailboxes.div_ceil(200) as f64;
    let renewals = streams * 2.0 / mailboxes as f64;
    stop(rig).await;
    json!({
        "bench": "load", "mailboxes": mailboxes, "mail_tips": mail_tips,
        "compression": compression, "window_s": window.as_secs(),
        "requests_per_mailbox_hour": by_operation,
        "measured_total": round3(total),
        "stream_renewals_per_mailbox_hour_computed": round3(renewals),
        "total": round3(total + renewals),
    })
}

/// Requests per mailbox-hour by operation, as the simulator counts them over `window`
/// (which stands for an hour divided by `compression`); operations not asked are left
/// out.
async fn rates_at_rest(
    sim: &Sim,
    window: Duration,
    compression: u64,
    mailboxes: usize,
) -> Vec<(String, f64)> {
    let before = sim.stats.requests();
    tokio::time::sleep(window).await;
    let after = sim.stats.requests();
    let hours = window.as_secs_f64() * compression as f64 / 3600.0;
    after
        .into_iter()
        .filter_map(|(op, n)| {
            let delta = n - before.get(&op).copied().unwrap_or(0);
            (delta > 0).then(|| (op, delta as f64 / mailboxes as f64 / hours))
        })
        .collect()
}

/// How often, on average, a Graph subscription is renewed: at a random point between
/// half and nine tenths of its lifetime (Graph's longest for events less an hour).
fn graph_renewal_hours() -> f64 {
    let lifetime_h = (graph::subscription::MAX_LIFETIME_MINUTES as f64 - 60.0) / 60.0;
    lifetime_h * (0.5 + ews_presence::graph::subscriptions::RENEW_LATEST) / 2.0
}

/// Graph requests per mailbox-hour at rest, by operation: every mailbox on a Graph
/// gateway against the simulator's Graph side, the automatic-reply timing compressed
/// `compression` times, counted by the simulator after the start-up reads.
async fn load_graph(mailboxes: usize, compression: u64) -> Value {
    let sim = Sim::new(SimConfig {
        mailboxes,
        empty_calendars: true,
        graph: Some(ews_sim::graph::GraphConfig::default()),
        ..SimConfig::default()
    })
    .expect("sim")
    .start()
    .await
    .expect("sim starts");
    let dir = std::env::temp_dir().join(format!(
        "ews-presence-bench-load-graph-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list: String = (1..=mailboxes)
        .map(|n| format!("{}\n", address(n)))
        .collect();
    std::fs::write(dir.join("mailboxes.txt"), list).expect("mailboxes");
    let defaults = ews_sim::graph::GraphConfig::default();
    std::fs::write(
        dir.join("secret"),
        format!("{}\n", defaults.client_secret.clone().unwrap_or_default()),
    )
    .expect("secret");
    let port = harness::free_port();
    let base = sim.base_url();
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:{port}\"\n[presence]\noof_refresh_secs = {}\noof_verify_secs = {}\n[[gateway]]\nname = \"online\"\nkind = \"graph\"\ntenant = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"secret\"\nnotification_url = \"http://127.0.0.1:{port}/graph/notifications\"\nauthority = \"{base}\"\ngraph_url = \"{base}\"\n[mailboxes]\nfile = \"mailboxes.txt\"\n",
            OOF_REFRESH_SECS / compression,
            OOF_VERIFY_SECS / compression,
            defaults.tenant,
            defaults.client_id,
        ),
    )
    .expect("config");
    let config = Config::load(&dir.join("c.toml"), &HashMap::new()).expect("config");
    let app = App::start(config).await.expect("daemon starts");
    let rig = Rig {
        sim: Some(sim),
        app,
        dir,
    };
    wait_ready(rig.app.api_addr, Duration::from_secs(300)).await;
    let sim = rig.sim.as_ref().expect("in-process sim").sim.clone();
    let count = |op: &str| sim.stats.requests().get(op).copied().unwrap_or(0);
    let started = Instant::now();
    while count("graph subscription create") < mailboxes as u64
        || count("graph $batch") < mailboxes.div_ceil(graph::batch::MAX_REQUESTS) as u64
    {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the start-up reads did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let window = Duration::from_secs(3600 / compression);
    let rates = rates_at_rest(&sim, window, compression, mailboxes).await;
    let mut by_operation = serde_json::Map::new();
    let (mut total, mut items) = (0.0, 0.0);
    // What the daemon sent: Graph and the identity platform (not what the simulator
    // sent it, nor its discovery document).
    for (op, per) in rates {
        if !op.starts_with("graph ") || op == "graph notification delivered" {
            continue;
        }
        if op == "graph $batch item" {
            items += per;
        } else {
            total += per;
            by_operation.insert(op, round3(per).into());
        }
    }
    let renewals = 1.0 / graph_renewal_hours();
    stop(rig).await;
    json!({
        "bench": "load-graph", "mailboxes": mailboxes,
        "compression": compression, "window_s": window.as_secs(),
        "requests_per_mailbox_hour": by_operation,
        "measured_total": round3(total),
        "subscription_renewals_per_mailbox_hour_computed": round3(renewals),
        "total": round3(total + renewals),
        // Graph's throttling counts each request of a batch on its own.
        "batch_items_per_mailbox_hour": round3(items),
    })
}

async fn stop(rig: Rig) {
    rig.app.shutdown(Duration::from_secs(10)).await;
    if let Some(sim) = rig.sim {
        sim.stop().await;
    }
    let _ = std::fs::remove_dir_all(rig.dir);
}

/// How often the storm's read-back asks again while not every mailbox reads
/// in-a-meeting.
const READ_BACK_POLL: Duration = Duration::from_millis(50);

/// The storm scenario: `watchers` clients watch the change feed (a presence server
/// pair watches with two).
async fn storm(mailboxes: usize, lead: u64, watchers: usize) -> Value {
    let rig = rig(mailboxes, 1000, "storm").await;
    let api = rig.app.api_addr;
    let ready = wait_ready(api, Duration::from_secs(300)).await;
    let sim = rig.sim.as_ref().expect("in-process sim").sim.clone();
    let t = jiff::Timestamp::now().as_second() + lead as i64;
    // Setup (not measured): every mailbox knows its meeting before T.
    harness::storm::meetings_at(&sim, &rig.app.cache, mailboxes, t).await;
    // The daemon's side: when its feed has published every transition.
    let daemon_feed = rig.app.cache.feed().clone();
    eprintln!("storm: every meeting starts at T = {t} (Unix seconds)");
    let base = daemon_feed.last_seq();
    let t_instant = harness::storm::instant_of(t);
    // Received: every mailbox's in-a-meeting event on each watcher's stream.
    let mut publish = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        publish.push(
            watch_counting(
                api,
                "\"availability\":\"in-a-meeting\"",
                mailboxes,
                t_instant + Duration::from_secs(60),
            )
            .await,
        );
    }
    // When the first and the last transition were on the daemon's feed: the first
    // tells a late wake-up apart from a slow pass.
    let published_by_daemon = tokio::spawn(async move {
        let mut first = None;
        while daemon_feed.last_seq() < base + mailboxes as u64 {
            if t_instant.elapsed() > Duration::from_secs(60) {
                return (first, None);
            }
            if first.is_none() && daemon_feed.last_seq() > base {
                first = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (first.or(Some(Instant::now())), Some(Instant::now()))
    });
    // Read: batch queries of every mailbox until all read in-a-meeting. The queries
    // are written before T: the client must not take the daemon's CPU.
    let queries: Vec<(usize, String)> = (1..=mailboxes)
        .collect::<Vec<_>>()
        .chunks(10_000)
        .map(|chunk| {
            let body = json!({"mailboxes": chunk.iter().map(|n| address(*n)).collect::<Vec<_>>()});
            (chunk.len(), body.to_string())
        })
        .collect();
    tokio::time::sleep_until(tokio::time::Instant::from_std(t_instant)).await;
    let mut sender = connect(api).await;
    // A query whose every mailbox read in-a-meeting is not asked again: the meeting
    // lasts an hour. Asking again re-read every finished part of the storm on every
    // poll, and took a third of the daemon's CPU from the pass at a million.
    let mut confirmed = 0;
    let api_all = loop {
        while let Some((chunk, body)) = queries.get(confirmed) {
            let (_, bytes) = get(&mut sender, "POST", "/v1/presence/query", body.clone()).await;
            // Counted, not parsed: the client must not take the daemon's CPU.
            let in_meeting =
                memchr::memmem::find_iter(&bytes, b"\"availability\":\"in-a-meeting\"").count();
            let answered = memchr::memmem::find_iter(&bytes, b"\"mailbox\":").count();
            if in_meeting != *chunk || answered != *chunk {
                break;
            }
            confirmed += 1;
        }
        if confirmed == queries.len() {
            break Instant::now().duration_since(t_instant);
        }
        assert!(
            t_instant.elapsed() < Duration::from_secs(60),
            "not all in a meeting a minute after T"
        );
        // A client polls; it does not spin. Spinning took a whole core from the
        // daemon while it published.
        tokio::time::sleep(READ_BACK_POLL).await;
    };
    // Each watcher's time to its last event; the slowest is the scenario's figure.
    let mut seen = usize::MAX;
    let mut received_ms = Vec::with_capacity(publish.len());
    for watcher in publish {
        let (count, last) = watcher.await.expect("watcher");
        seen = seen.min(count);
        received_ms.push(round(
            last.unwrap_or(t_instant)
                .duration_since(t_instant)
                .as_secs_f64()
                * 1000.0,
        ));
    }
    let slowest = received_ms.iter().copied().fold(0.0, f64::max);
    let (daemon_first, daemon_published) = published_by_daemon.await.expect("feed watcher");
    let report = json!({
        "bench": "storm", "mailboxes": mailboxes, "ready_s": round(ready.as_secs_f64()),
        "daemon_feed_published_first_after_t_ms": daemon_first.map(|at| round(at.saturating_duration_since(t_instant).as_secs_f64() * 1000.0)),
        "daemon_feed_published_all_after_t_ms": daemon_published.map(|at| round(at.saturating_duration_since(t_instant).as_secs_f64() * 1000.0)),
        "watchers": received_ms.len(), "published": seen, "all_published_after_t_ms": slowest,
        "each_watcher_all_received_after_t_ms": received_ms,
        "all_read_in_a_meeting_after_t_ms": round(api_all.as_secs_f64() * 1000.0),
    });
    stop(rig).await;
    report
}

async fn scale(mailboxes: usize, churn: u64, seconds: u64) -> Value {
    let streams = mailboxes.div_ceil(200);
    let args: Vec<String> = [
        "--mailboxes".to_owned(),
        mailboxes.to_string(),
        "--churn".to_owned(),
        churn.to_string(),
        "--connection-limit".to_owned(),
        (streams + 10).to_string(),
    ]
    .into();
    let (mut child, sim) = harness::spawn_simulator("127.0.0.1:0", &args, Stdio::inherit());
    let baseline_rss = usage("self").rss;
    let started = Instant::now();
    let (app, dir) = start_daemon(
        &format!("http://{sim}/EWS/Exchange.asmx"),
        mailboxes,
        1000,
        "scale",
    )
    .await;
    let ready = started.elapsed() + wait_ready(app.api_addr, Duration::from_secs(600)).await;
    // Right after ready: the start-up automatic-reply sweep (one GetMailTips per 50
    // mailboxes) still runs next to the changes.
    let cpu_since = |from: (f64, Instant)| {
        (usage("self").cpu_seconds - from.0) / from.1.elapsed().as_secs_f64() * 100.0
    };
    let first = (usage("self").cpu_seconds, Instant::now());
    let swept = startup_sweep(
        app.api_addr,
        mailboxes,
        Some(ews_sim::DEFAULT_MAIL_TIPS_RECIPIENTS),
    )
    .await;
    let first_cpu = cpu_since(first);
    // Steady state: the changes, the paced sweeps, stream heartbeats.
    let steady = (usage("self").cpu_seconds, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu = cpu_since(steady);
    let after = usage("self");
    let (rss, peak) = (after.rss, after.peak_rss);
    let report = json!({
        "bench": "scale", "mailboxes": mailboxes, "streams": streams, "changes_per_s": churn,
        "ready_s": round(ready.as_secs_f64()),
        "daemon_peak_rss_mib": round((peak - baseline_rss.min(peak)) as f64 / 1048576.0),
        "daemon_rss_mib": round((rss - baseline_rss.min(rss)) as f64 / 1048576.0),
        "bytes_per_mailbox": (peak - baseline_rss.min(peak)) / mailboxes as u64,
        "startup_sweep_s": round(swept.as_secs_f64()),
        "cpu_percent_during_startup_sweep": round(first_cpu),
        "cpu_percent_of_one_core": round(cpu),
        "window_s": seconds,
    });
    app.shutdown(Duration::from_secs(20)).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
    report
}

/// Waits until the daemon's `/metrics` count at least `count` successful `operation`
/// requests; returns how long that took.
async fn wait_for_requests(
    api: SocketAddr,
    operation: &str,
    count: usize,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    let needle = format!("operation=\"{operation}\",outcome=\"ok\"}} ");
    let mut sender = connect(api).await;
    loop {
        let (_, body) = get(&mut sender, "GET", "/metrics", String::new()).await;
        let text = String::from_utf8_lossy(&body);
        let sent: f64 = text
            .lines()
            .filter(|l| l.starts_with("ews_presence_ews_requests_total{") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if sent >= count as f64 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "only {sent} of {count} {operation} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn wrk(url: &str, seconds: u64) -> Option<f64> {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{seconds}s"), url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Mailboxes in the rig the batch queries read from, and per batch query.
const QUERY_MAILBOXES: usize = 10_000;
const QUERY_BATCH: usize = 1_000;

/// `queries` batch queries of `batch` distinct mailboxes each (a different pseudo-random
/// choice out of `mailboxes` every time) on one keep-alive connection, after a warm-up:
/// the server's own time (its `Server-Timing` header) and the round trip seen here,
/// p50 and p99. Checks every answer: 200, one entry per mailbox asked, in order.
async fn query_batches(api: SocketAddr, mailboxes: usize, batch: usize, queries: usize) -> Value {
    let mut sender = connect(api).await;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut pick = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) % n as u64) as usize
    };
    let warm_up = queries / 10;
    let (mut server, mut round_trip) = (Vec::new(), Vec::new());
    for q in 0..warm_up + queries {
        // A random window of the shuffled-enough list: distinct mailboxes.
        let step = [7, 11, 13, 17, 19][q % 5];
        let first = pick(mailboxes);
        let names: Vec<String> = (0..batch)
            .map(|i| address((first + i * step) % mailboxes + 1))
            .collect();
        let body = json!({ "mailboxes": names }).to_string();
        sender.ready().await.expect("ready");
        let req = Request::builder()
            .method("POST")
            .uri("/v1/presence/query")
            .header("Host", "localhost")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let sent = Instant::now();
        let response = sender.send_request(req).await.expect("response");
        let status = response.status().as_u16();
        let timing = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("app;dur="))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("a Server-Timing header");
        let bytes = harness::body_of(response).await;
        let took = sent.elapsed();
        assert_eq!(status, 200);
        // Checked without a JSON parse: this client shares the two cores with the
        // server it measures, and must stay light.
        let text = std::str::from_utf8(&bytes).expect("UTF-8");
        let answered: Vec<&str> = text
            .match_indices("{\"mailbox\":\"")
            .filter_map(|(at, key)| field(&text[at..], key))
            .collect();
        assert!(
            text.starts_with("{\"presence\":[") && !text.contains("\"error\""),
            "not a list of presences: {}",
            &text[..text.len().min(200)]
        );
        assert_eq!(answered, names, "one entry per mailbox asked, in order");
        if q >= warm_up {
            server.push(Duration::from_secs_f64(timing / 1000.0));
            round_trip.push(took);
        }
    }
    server.sort();
    round_trip.sort();
    json!({
        "batch": batch, "out_of": mailboxes, "queries": queries,
        "server_p50_ms": round3(percentile(&server, 0.5)),
        "server_p99_ms": round3(percentile(&server, 0.99)),
        "round_trip_p50_ms": round3(percentile(&round_trip, 0.5)),
        "round_trip_p99_ms": round3(percentile(&round_trip, 0.99)),
    })
}

async fn query(seconds: u64) -> Value {
    let rig = rig(QUERY_MAILBOXES, 1000, "query").await;
    let api = rig.app.api_addr;
    wait_ready(api, Duration::from_secs(120)).await;
    let batches = query_batches(api, QUERY_MAILBOXES, QUERY_BATCH, 2000).await;
    let single = query_single(&rig, seconds).await;
    stop(rig).await;
    json!({"bench": "query", "batch_query": batches, "single_get": single})
}

/// `GET /v1/presence/{mailbox}` with wrk next to nginx serving the same JSON statically.
async fn query_single(rig: &Rig, seconds: u64) -> Value {
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("wrk") || !have("nginx") {
        return json!({"skipped": "needs wrk and nginx: apt-get install -y wrk nginx-light"});
    }
    let api = rig.app.api_addr;
    let mut sender = connect(api).await;
    let (_, body) = get(
        &mut sender,
        "GET",
        "/v1/presence/user1@example.test",
        String::new(),
    )
    .await;
    let root = rig.dir.join("www");
    std::fs::create_dir_all(&root).expect("www");
    std::fs::write(root.join("presence.json"), &body).expect("static copy");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let conf = rig.dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes auto; pid {dir}/nginx.pid; error_log stderr;\nevents {{ worker_connections 1024; }}\nhttp {{ access_log off; types {{ application/json json; }}\n server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}\n client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir}; }}\n",
            dir = rig.dir.display(),
            root = root.display()
        ),
    )
    .expect("nginx.conf");
    let mut nginx = Command::new("nginx")
        .args(["-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ours = wrk(
        &format!("http://{api}/v1/presence/user1@example.test"),
        seconds,
    );
    let theirs = wrk(&format!("http://127.0.0.1:{port}/presence.json"), seconds);
    // SIGTERM lets the master stop its workers (SIGKILL would orphan them).
    let _ = Command::new("kill")
        .args(["-TERM", &nginx.id().to_string()])
        .status();
    let _ = nginx.wait();
    json!({
        "tool": "wrk -t1 -c32", "seconds": seconds,
        "daemon_requests_per_s": ours.map(round), "nginx_static_requests_per_s": theirs.map(round),
        "ratio": ours.zip(theirs).map(|(a, b)| round(a / b)),
    })
}

fn main() {
    let (args, measuring) = harness::arguments();
    let runtime = harness::runtime();
    let number = |i: usize, default: usize| harness::number(&args, i, default);
    if !measuring {
        // Smoke pass for `cargo test --all-targets`: small, correctness only.
        let l = runtime.block_on(latency(200, 50, 2));
        println!("{l}");
        assert_eq!(l["missing"], 0, "changes never reached the feed");
        let s = runtime.block_on(storm(300, 8, 2));
        println!("{s}");
        assert_eq!(s["published"], 300, "a watcher missed transitions");
        assert_eq!(s["watchers"], 2);
        // Load: 200 mailboxes, one hour in 12 s; the sweep goes in batches.
        let load_report = runtime.block_on(load(200, 300, true));
        println!("{load_report}");
        let tips = load_report["requests_per_mailbox_hour"]["GetMailTips"]
            .as_f64()
            .unwrap_or(0.0);
        assert!(tips > 0.0, "no GetMailTips sweep: {load_report}");
        let total = load_report["total"].as_f64().unwrap_or(f64::MAX);
        assert!(
            total <= 1.0,
            "more than one request per mailbox-hour: {load_report}"
        );
        // Graph: 200 mailboxes, one hour in 12 s; automatic replies in $batch.
        let graph_report = runtime.block_on(load_graph(200, 300));
        println!("{graph_report}");
        assert!(
            graph_report["requests_per_mailbox_hour"]["graph $batch"]
                .as_f64()
                .unwrap_or(0.0)
                > 0.0,
            "no $batch sweep: {graph_report}"
        );
        assert!(
            graph_report["total"].as_f64().unwrap_or(f64::MAX) <= 1.0,
            "more than one Graph request per mailbox-hour: {graph_report}"
        );
        // Batch queries: every answer complete and in order, with the server's time.
        let rig = runtime.block_on(rig(1000, 1000, "query-smoke"));
        let batches = runtime.block_on(async {
            wait_ready(rig.app.api_addr, Duration::from_secs(60)).await;
            query_batches(rig.app.api_addr, 1000, 200, 20).await
        });
        runtime.block_on(stop(rig));
        println!("{batches}");
        assert!(batches["server_p99_ms"].as_f64().is_some_and(|ms| ms > 0.0));
        return;
    }
    let scenario = args.first().map(String::as_str).unwrap_or("latency");
    let report = runtime.block_on(async {
        match scenario {
            "latency" => latency(number(1, 10_000), number(2, 200) as u64, number(3, 20) as u64).await,
            "storm" => storm(number(1, 100_000), number(2, 120) as u64, number(3, 1).max(1)).await,
            "scale" => scale(number(1, 100_000), number(2, 1000) as u64, number(3, 30) as u64).await,
            "query" => query(number(1, 10) as u64).await,
            "load-graph" => load_graph(number(1, 10_000), number(2, 60) as u64).await,
            "load" => {
                let (n, k) = (number(1, 10_000), number(2, 60) as u64);
                // One by one, the compressed hour asks n / (300 s / k) reads a second,
                // more than 8 reads in flight can make at 10,000 mailboxes (2,000 a
                // second); the rate per mailbox does not depend on n, so the baseline
                // runs with at most 1,000.
                json!({
                    "mail_tips": load(n, k, true).await,
                    "one_by_one_baseline": load(n.min(BASELINE_MAILBOXES), k, false).await,
                    "graph": load_graph(n, k).await,
                })
            }
            other => json!({"error": format!("unknown scenario {other}: latency, storm, scale, query, load or load-graph")}),
        }
    });
    println!("{report}");
}
