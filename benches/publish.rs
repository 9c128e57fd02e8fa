//! Benchmarks of publishing presence to a real Kamailio on loopback (Debian's
//! `kamailio` with its presence modules, `tests/kamailio/presence.cfg`). Each scenario
//! prints one JSON line.
//!
//! - `storm USERS CHANGING`: the daemon serves USERS mailboxes of the simulator and
//!   publishes to Kamailio; CHANGING of them get a meeting starting at the same
//!   instant T. Measured: from T to the last 200 OK, our rate of accepted PUBLISH
//!   requests, and Kamailio's own capacity for the same requests measured with SIPp
//!   (`sip-tester`, `benches/sipp/publish.xml`, the same window of requests in flight)
//!   on the same server just before and just after ours; every request must be
//!   accepted. The change feed's time to a watcher is measured in the same run
//!   without and with the publisher (it must not change).
//! - `latency USERS CHANGES ROUNDS`: a watcher subscribed through Kamailio to each user;
//!   one calendar change at a time in the simulator; the time from the change to the
//!   NOTIFY showing it, p50 and p99 per round, with the daemon's default configuration,
//!   beside the EWS round trip the daemon measured.
//! - `refresh USERS SECONDS`: USERS publications held with the shortest lifetime (60 s)
//!   for SECONDS; refreshes per second (are they spread?) and requests per user-hour,
//!   measured and scaled to the default lifetime (600 s).
//!
//! Run: `cargo bench --bench publish -- SCENARIO …` (release build). Without `--bench`
//! (as `cargo test --all-targets` runs it) a small smoke pass checks correctness only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ews::ops::get_user_availability::BusyType;
use ews_presence::app::App;
use ews_presence::config::Config;
use ews_sim::model::NewItem;
use ews_sim::{Running, Sim, SimConfig};
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod harness;
#[path = "../tests/support/kamailio.rs"]
#[allow(dead_code)]
mod kamailio;
#[path = "../tests/support/watcher.rs"]
#[allow(dead_code)]
mod watcher;

use harness::watch::watch_counting;
use harness::{connect, percentile, round};
use kamailio::{Kamailio, Profile, Storage};

/// What the Kamailio helper calls when Kamailio is not installed: the smoke pass skips
/// (fails under CI, which installs it); a measurement cannot go on.
pub fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("{what} is missing, and CI must run this check");
    }
    eprintln!("{what} is missing: the publish benchmark is NOT run");
}

/// The window of PUBLISH requests in flight, ours (the default) and SIPp's.
const WINDOW: usize = 64;
/// Kamailio's shared memory for the storms: a hundred thousand publications.
const SHM_MB: u32 = 1024;

/// A fresh Kamailio for one measurement, publications in memory only (its fastest
/// mode), so that each measurement meets the same empty server.
async fn fresh_kamailio() -> Option<Kamailio> {
    Kamailio::start_with(Profile::Open, Storage::Memory, Some(SHM_MB)).await
}

fn address(n: usize) -> String {
    format!("user{n}@example.test")
}

struct Rig {
    sim: Running,
    app: App,
    dir: PathBuf,
}

/// The simulator with `users` empty calendars and the daemon against it, publishing to
/// `sip` (a `[[sip]]` section, or nothing).
async fn rig(users: usize, name: &str, presence: &str, sip: &str) -> Rig {
    let sim = Sim::new(SimConfig {
        mailboxes: users,
        empty_calendars: true,
        churn: 0.0,
        connection_limit: users.div_ceil(200) + 2,
        ..SimConfig::default()
    })
    .expect("sim")
    .start()
    .await
    .expect("sim starts");
    let dir = std::env::temp_dir().join(format!(
        "ews-presence-bench-publish-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list: String = (1..=users).map(|n| format!("{}\n", address(n))).collect();
    std::fs::write(dir.join("mailboxes.txt"), list).expect("mailboxes");
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[presence]\n{presence}[[gateway]]\nname = \"sim\"\nurl = \"{}\"\nauth = \"none\"\nmax_connections = {}\n[mailboxes]\nfile = \"mailboxes.txt\"\n{sip}",
            sim.ews_url(),
            users.div_ceil(200)
        ),
    )
    .expect("config");
    let config = Config::load(&dir.join("c.toml"), &HashMap::new()).expect("config");
    let app = App::start(config).await.expect("daemon starts");
    Rig { sim, app, dir }
}

impl Rig {
    async fn stop(self) {
        self.app.shutdown(Duration::from_secs(10)).await;
        self.sim.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn get(&self, path: &str) -> Value {
        let mut sender = connect(self.app.api_addr).await;
        let response = sender
            .send_request(harness::get_request(path))
            .await
            .expect("response");
        serde_json::from_slice(&harness::body_of(response).await).expect("JSON")
    }

    async fn ready(&self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let mut sender = connect(self.app.api_addr).await;
            let response = sender
                .send_request(harness::get_request("/readyz"))
                .await
                .expect("readyz");
            if response.status() == 200 {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "not ready within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The publisher's view.
    async fn publisher(&self) -> Value {
        self.get("/v1/publishers").await["publishers"][0].clone()
    }

    /// Every sample of `name` in `/metrics` whose labels contain `labels`, summed.
    async fn metric(&self, name: &str, labels: &str) -> f64 {
        let mut sender = connect(self.app.api_addr).await;
        let response = sender
            .send_request(harness::get_request("/metrics"))
            .await
            .expect("metrics");
        let text = String::from_utf8(harness::body_of(response).await.to_vec()).expect("text");
        text.lines()
            .filter(|l| {
                l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn sip_section(kamailio: &Kamailio, extra: &str) -> String {
    format!(
        "[[sip]]\nname = \"kamailio\"\nserver = \"{}\"\nmax_in_flight = {}\n{extra}",
        kamailio.uri("udp"),
        window()
    )
}

/// [`WINDOW`], or `PUBLISH_WINDOW` from the environment (to see what the window does).
fn window() -> usize {
    std::env::var("PUBLISH_WINDOW")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(WINDOW)
}

/// Kamailio's capacity for `calls` initial PUBLISH requests with SIPp: the rate over
/// the whole run, and whether every one was accepted.
fn sipp_capacity(kamailio: &Kamailio, calls: usize, run: &str) -> Value {
    let dir = std::env::temp_dir().join(format!("ews-presence-sipp-{run}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("sipp dir");
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/sipp/publish.xml");
    let started = Instant::now();
    let status = Command::new("sipp")
        .current_dir(&dir)
        .arg("-sf")
        .arg(&scenario)
        .args([
            "-m",
            &calls.to_string(),
            "-r",
            "1000000",
            "-l",
            &WINDOW.to_string(),
        ])
        .args(["-nostdin", "-trace_stat", "-fd", "60", "-i", "127.0.0.1"])
        .arg(kamailio.addr.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sipp runs (apt install sip-tester)");
    let took = started.elapsed();
    // The last line of SIPp's statistics file: successes, failures, retransmissions.
    let stats = std::fs::read_dir(&dir)
        .expect("sipp dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let mut lines = stats.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    let last: Vec<&str> = lines.last().unwrap_or_default().split(';').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| last.get(i))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let _ = std::fs::remove_dir_all(&dir);
    json!({
        "calls": calls,
        "all_accepted": status.success(),
        "successful": column("SuccessfulCall(C)"),
        "failed": column("FailedCall(C)"),
        "retransmissions": column("Retransmissions(C)"),
        "seconds": round(took.as_secs_f64()),
        "rate_per_s": round(calls as f64 / took.as_secs_f64()),
    })
}

/// One storm: the watcher's time to every transition, and with a publisher the times
/// to the first and the last accepted PUBLISH.
async fn one_storm(users: usize, changing: usize, sip: &str, name: &str) -> Value {
    let rig = rig(users, name, "", sip).await;
    let ready = rig.ready(Duration::from_secs(600)).await;
    let lead = 20 + (changing / 5_000) as i64;
    let t = jiff::Timestamp::now().as_second() + lead;
    harness::storm::meetings_at(&rig.sim.sim, &rig.app.cache, changing, t).await;
    let t_instant = harness::storm::instant_of(t);
    let watcher = watch_counting(
        rig.app.api_addr,
        "\"availability\":\"in-a-meeting\"",
        changing,
        t_instant + Duration::from_secs(120),
    )
    .await;
    // Accepted PUBLISH requests, from the counter (the view is refreshed every 100 ms).
    let accepted = async || {
        rig.metric("ews_presence_sip_publish_total", "outcome=\"ok\"")
            .await as u64
    };
    let base = accepted().await;
    tokio::time::sleep_until(tokio::time::Instant::from_std(t_instant)).await;
    let (mut first, mut last) = (None, None);
    if !sip.is_empty() {
        loop {
            let accepted = accepted().await - base;
            if accepted > 0 && first.is_none() {
                first = Some(Instant::now());
            }
            if accepted >= changing as u64 {
                last = Some(Instant::now());
                break;
            }
            assert!(
                t_instant.elapsed() < Duration::from_secs(120),
                "not all accepted two minutes after T: {}",
                rig.publisher().await
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let (seen, received) = watcher.await.expect("watcher");
    // The view once it has caught up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = if sip.is_empty() {
        Value::Null
    } else {
        rig.publisher().await
    };
    let ms = |at: Option<Instant>| {
        at.map(|at| round(at.saturating_duration_since(t_instant).as_secs_f64() * 1000.0))
    };
    let rate = match (first, last) {
        (Some(a), Some(b)) if b > a => Some(round(changing as f64 / (b - a).as_secs_f64())),
        _ => None,
    };
    let report = json!({
        "ready_s": round(ready.as_secs_f64()),
        "watcher_received": seen,
        "watcher_all_received_after_t_ms": ms(received),
        "first_accepted_after_t_ms": ms(first),
        "all_accepted_after_t_ms": ms(last),
        "accepted_rate_per_s": rate,
        "failed": after["failed"],
        "publisher_after": after,
    });
    rig.stop().await;
    report
}

async fn storm(users: usize, changing: usize) -> Value {
    // Kamailio's capacity on a fresh server, before and after ours on another.
    let Some(kamailio) = fresh_kamailio().await else {
        return json!({"skipped": "no Kamailio"});
    };
    let sipp_before = sipp_capacity(&kamailio, changing, "before");
    drop(kamailio);
    let without = one_storm(users, changing, "", "storm-without").await;
    let Some(kamailio) = fresh_kamailio().await else {
        return json!({"skipped": "no Kamailio"});
    };
    let with = one_storm(users, changing, &sip_section(&kamailio, ""), "storm-with").await;
    drop(kamailio);
    let Some(kamailio) = fresh_kamailio().await else {
        return json!({"skipped": "no Kamailio"});
    };
    let sipp_after = sipp_capacity(&kamailio, changing, "after");
    drop(kamailio);
    let best = sipp_before["rate_per_s"]
        .as_f64()
        .unwrap_or(0.0)
        .max(sipp_after["rate_per_s"].as_f64().unwrap_or(0.0));
    json!({
        "bench": "publish-storm", "users": users, "changing": changing, "window": window(),
        "kamailio_storage": "memory (publ_cache = 2), a fresh server for each measurement",
        "ours": with,
        "without_publisher": without,
        "sipp_before": sipp_before, "sipp_after": sipp_after,
        "ours_vs_best_sipp": with["accepted_rate_per_s"].as_f64().map(|r| round(r / best)),
    })
}

async fn latency(users: usize, changes: usize, rounds: usize) -> Value {
    let Some(kamailio) = Kamailio::start(Profile::Open).await else {
        return json!({"skipped": "no Kamailio"});
    };
    // The default configuration: no [presence] lines, no [[sip]] settings but the server.
    let rig = rig(
        users,
        "latency",
        "",
        &format!(
            "[[sip]]\nname = \"kamailio\"\nserver = \"{}\"\n",
            kamailio.uri("udp")
        ),
    )
    .await;
    rig.ready(Duration::from_secs(60)).await;
    let mut watchers = Vec::with_capacity(users);
    for n in 1..=users {
        watchers
            .push(watcher::Watcher::subscribe(kamailio.addr, &format!("sip:{}", address(n))).await);
    }
    let mut per_round = Vec::with_capacity(rounds);
    for round_number in 0..rounds {
        let mut took = Vec::with_capacity(changes);
        for c in 0..changes {
            let n = c % users;
            let now = jiff::Timestamp::now().as_second();
            let changed = Instant::now();
            let item = rig
                .sim
                .sim
                .create_item(
                    n,
                    NewItem {
                        start: now - 60,
                        end: now + 3600,
                        busy: BusyType::Busy,
                        subject: None,
                    },
                )
                .expect("create");
            watchers[n]
                .until("with the meeting", Duration::from_secs(10), |b| {
                    b.contains(":meeting/>")
                })
                .await;
            took.push(changed.elapsed());
            rig.sim.sim.delete_item(n, item.number).expect("delete");
            watchers[n]
                .until("without the meeting", Duration::from_secs(10), |b| {
                    !b.contains(":meeting/>")
                })
                .await;
        }
        took.sort();
        per_round.push(json!({
            "round": round_number + 1,
            "p50_ms": round(percentile(&took, 0.5)),
            "p99_ms": round(percentile(&took, 0.99)),
        }));
    }
    let sum = rig
        .metric(
            "ews_presence_ews_request_duration_seconds_sum",
            "operation=\"GetUserAvailability\"",
        )
        .await;
    let count = rig
        .metric(
            "ews_presence_ews_request_duration_seconds_count",
            "operation=\"GetUserAvailability\"",
        )
        .await;
    let report = json!({
        "bench": "publish-latency", "users": users, "changes_per_round": changes,
        "rounds": per_round,
        "ews_get_user_availability_mean_ms": round(sum / count.max(1.0) * 1000.0),
    });
    rig.stop().await;
    report
}

async fn refresh(users: usize, seconds: u64) -> Value {
    let Some(kamailio) = fresh_kamailio().await else {
        return json!({"skipped": "no Kamailio"});
    };
    let rig = rig(
        users,
        "refresh",
        "",
        &sip_section(&kamailio, "expires_secs = 60\n"),
    )
    .await;
    rig.ready(Duration::from_secs(300)).await;
    // Every user in a meeting for the whole run.
    let now = jiff::Timestamp::now().as_second();
    for m in 0..users {
        rig.sim
            .sim
            .create_item(
                m,
                NewItem {
                    start: now - 60,
                    end: now + 86_400,
                    busy: BusyType::Busy,
                    subject: None,
                },
            )
            .expect("create");
    }
    loop {
        if rig.publisher().await["publications"].as_u64() == Some(users as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refreshes = async || {
        rig.metric("ews_presence_sip_publish_total", "kind=\"refresh\"")
            .await
    };
    let mut per_second = Vec::with_capacity(seconds as usize);
    let mut previous = refreshes().await;
    let start = refreshes().await;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    for _ in 0..seconds {
        tick.tick().await;
        let now = refreshes().await;
        per_second.push(now - previous);
        previous = now;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = previous - start;
    // The first lifetime holds the start-up's first refreshes; the spread is judged after.
    let steady: Vec<f64> = per_second.iter().copied().skip(60).collect();
    let mean = steady.iter().sum::<f64>() / steady.len().max(1) as f64;
    let max = steady.iter().copied().fold(0.0, f64::max);
    let per_user_hour = total / users as f64 / (elapsed / 3600.0);
    let view = rig.publisher().await;
    let report = json!({
        "bench": "publish-refresh", "users": users, "seconds": seconds, "expires_secs": 60,
        "refreshes": total,
        "refreshes_per_user_hour": round(per_user_hour),
        "refreshes_per_user_hour_at_600_s": round(per_user_hour * 60.0 / 600.0),
        "steady_per_second_mean": round(mean), "steady_per_second_max": max,
        "steady_max_over_mean": round(max / mean.max(f64::MIN_POSITIVE)),
        "failed": view["failed"],
    });
    rig.stop().await;
    report
}

fn main() {
    let (args, measuring) = harness::arguments();
    let runtime = harness::runtime();
    let number = |i: usize, default: usize| harness::number(&args, i, default);
    if !measuring {
        // Smoke pass for `cargo test --all-targets`: small, correctness only.
        let s = runtime.block_on(storm(300, 200));
        println!("{s}");
        if s.get("skipped").is_some() {
            return;
        }
        assert_eq!(s["ours"]["watcher_received"], 200, "{s}");
        assert_eq!(s["ours"]["failed"], 0, "{s}");
        assert_eq!(s["sipp_before"]["all_accepted"], true, "{s}");
        let l = runtime.block_on(latency(3, 3, 1));
        println!("{l}");
        assert!(
            l["rounds"][0]["p99_ms"].as_f64().is_some_and(|ms| ms > 0.0),
            "{l}"
        );
        return;
    }
    let scenario = args.first().map(String::as_str).unwrap_or("storm");
    let report = runtime.block_on(async {
        match scenario {
            "storm" => storm(number(1, 100_000), number(2, 100_000)).await,
            "latency" => latency(number(1, 20), number(2, 40), number(3, 5)).await,
            "refresh" => refresh(number(1, 10_000), number(2, 180) as u64).await,
            other => {
                json!({"error": format!("unknown scenario {other}: storm, latency or refresh")})
            }
        }
    });
    println!("{report}");
}
