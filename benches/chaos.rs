//! Chaos: the simulator in its own process and the daemon over loopback, churn through
//! the control API (a share of it changing the present), and a seeded random schedule
//! of every fault the simulator has, mailbox-list reloads, and one `kill -9` and
//! restart of the simulator. Then the faults stop, and every mailbox must agree with
//! the simulator's ground truth within the bound the daemon promises.
//!
//! It prints one JSON line: faults by kind, reloads, restarts, staleness while faults
//! ran (how long a sampled mailbox disagreed with the truth: p50, p99, max), the time
//! to converge after the faults, the bound, and the final mismatches (must be 0). The
//! bound is what the daemon promises: the debounce, one request's timeout, the longest
//! stream and refresh backoffs, and one automatic-reply sweep (automatic-reply changes
//! raise no events, on Exchange as in the simulator).
//!
//! With `graph` as the fourth argument, half the mailboxes (the even ones) are served
//! by a `kind = "graph"` gateway against the simulator's Graph side, and the Graph
//! faults join the schedule: 429 bursts with `Retry-After`, notifications delayed,
//! notifications dropped (each followed by `missed`, as Graph tells of what it could
//! not deliver), and the lifecycle events `missed`, `subscriptionRemoved` and
//! `reauthorizationRequired` on random mailboxes. The `kill -9` of the simulator is
//! left out of that mode: Graph's subscriptions live in Microsoft's service, which
//! tells of a removed one (`subscriptionRemoved`) rather than forgetting it silently.
//!
//! Run: `cargo bench --bench chaos -- [MAILBOXES] [SECONDS] [SEED] [graph]` (default
//! 10,000, 600, 1). Without `--bench` (as `cargo test --all-targets` runs it) two small
//! smoke runs, EWS alone and hybrid, check that they converge with no mismatch.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ews_presence::app::App;
use ews_presence::config::Config;
use ews_sim::rng::Rng;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

mod harness;

/// mimalloc, as the daemon runs, counting the heap bytes live (reported each minute).
#[global_allocator]
static GLOBAL: harness::counting::Counting = harness::counting::Counting;

/// Daemon settings of the run (also what the convergence bound is made of).
const DEBOUNCE_MS: u64 = 200;
/// Longest wait a group's stream retries reach (the engine's cap).
const STREAM_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest wait a mailbox's failed reads reach (the refresh queue's cap).
const REFRESH_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// One refresh round: a request's timeout in this run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for one HTTP call of the harness.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// One HTTP request; None when the other side is down or too slow.
async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .ok()?;
        tokio::spawn(conn);
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "localhost")
            .header("Content-Type", "application/json")
            .body(Full::new(body))
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        if bytes.is_empty() {
            return Some(Value::Null);
        }
        serde_json::from_slice(&bytes).ok()
    };
    tokio::time::timeout(CALL_TIMEOUT, attempt).await.ok()?
}

fn address(n: usize) -> String {
    format!("user{n}@example.test")
}

/// The simulator process.
struct Simulator {
    child: Child,
    addr: SocketAddr,
    args: Vec<String>,
}

impl Simulator {
    fn spawn(listen: &str, args: &[String]) -> Simulator {
        let (child, addr) = harness::spawn_simulator(listen, args, Stdio::null());
        Simulator {
            child,
            addr,
            args: args.to_vec(),
        }
    }

    /// `kill -9`, then a new process on the same address (a fresh model: every
    /// subscription gone, changes made so far lost).
    async fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let listen = self.addr.to_string();
        let mut tries = 0;
        loop {
            let attempt = std::panic::catch_unwind(|| Simulator::spawn(&listen, &self.args));
            match attempt {
                Ok(new) => {
                    *self = new;
                    return;
                }
                Err(_) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(_) => panic!("the simulator could not restart on {listen}"),
            }
        }
    }

    async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        call(self.addr, method, &format!("/sim{path}"), body).await
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Graph gateway's name in graph mode; it serves the even mailboxes.
const GRAPH_GATEWAY: &str = "online";
/// The simulator's application secret in graph mode.
const GRAPH_SECRET: &str = "chaos-graph-secret";

fn write_list(dir: &Path, mailboxes: impl Iterator<Item = usize>, graph: bool) {
    let list: String = mailboxes
        .map(|n| {
            if graph && n % 2 == 0 {
                format!("{} {GRAPH_GATEWAY}\n", address(n))
            } else {
                format!("{}\n", address(n))
            }
        })
        .collect();
    std::fs::write(dir.join("mailboxes.txt"), list).expect("mailbox file");
}

async fn start_daemon(
    sim: SocketAddr,
    mailboxes: usize,
    dir: &Path,
    oof_refresh: Duration,
    graph: bool,
) -> App {
    write_list(dir, 1..=mailboxes, graph);
    let (listen, graph_gateway) = if graph {
        let port = harness::free_port();
        std::fs::write(dir.join("graph-secret"), format!("{GRAPH_SECRET}\n")).expect("secret");
        (
            format!("127.0.0.1:{port}"),
            format!(
                "[[gateway]]\nname = \"{GRAPH_GATEWAY}\"\nkind = \"graph\"\ntenant = \"example.test\"\nclient_id = \"{}\"\nclient_secret_file = \"graph-secret\"\nnotification_url = \"http://127.0.0.1:{port}/graph/notifications\"\nauthority = \"http://{sim}\"\ngraph_url = \"http://{sim}\"\nrequest_timeout_secs = {}\n",
                ews_sim::graph::GraphConfig::default().client_id,
                REQUEST_TIMEOUT.as_secs(),
            ),
        )
    } else {
        ("127.0.0.1:0".to_owned(), String::new())
    };
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "[api]\nlisten = \"{listen}\"\n[presence]\ndebounce_ms = {DEBOUNCE_MS}\nheartbeat_secs = 1\noof_refresh_secs = {}\n[[gateway]]\nname = \"chaos\"\nurl = \"http://{sim}/EWS/Exchange.asmx\"\nauth = \"none\"\nmax_connections = {}\nrequest_timeout_secs = {}\n{graph_gateway}[mailboxes]\nfile = \"mailboxes.txt\"\n",
            oof_refresh.as_secs(),
            mailboxes.div_ceil(200) + 2,
            REQUEST_TIMEOUT.as_secs(),
        ),
    )
    .expect("config");
    let config = Config::load(&dir.join("c.toml"), &HashMap::new()).expect("config");
    App::start(config).await.expect("daemon starts")
}

/// The daemon's availability for `mailboxes`.
async fn ours(api: SocketAddr, mailboxes: &[String]) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in mailboxes.chunks(10_000) {
        let reply = call(
            api,
            "POST",
            "/v1/presence/query",
            Some(json!({ "mailboxes": chunk })),
        )
        .await?;
        for p in reply["presence"].as_array()? {
            out.insert(
                p["mailbox"].as_str()?.to_owned(),
                p["availability"]
                    .as_str()
                    .unwrap_or("not-configured")
                    .to_owned(),
            );
        }
    }
    Some(out)
}

/// The truth of one mailbox, or of all.
async fn truth_of(sim: &Simulator, mailbox: &str) -> Option<String> {
    let t = sim
        .control("GET", &format!("/mailboxes/{mailbox}/truth"), None)
        .await?;
    Some(t["availability"].as_str()?.to_owned())
}

async fn all_truth(sim: &Simulator) -> Option<HashMap<String, String>> {
    let t = sim.control("GET", "/truth", None).await?;
    t["truth"]
        .as_array()?
        .iter()
        .map(|e| {
            Some((
                e["mailbox"].as_str()?.to_owned(),
                e["availability"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Fault kinds the simulator has on EWS.
const FAULT_KINDS: u64 = 10;
/// Fault kinds of its Graph side the run draws (graph mode).
const GRAPH_FAULT_KINDS: u64 = 6;

/// The `index`th Graph fault: (the control path, its body, its name).
fn pick_graph_fault(
    rng: &mut Rng,
    mailboxes: usize,
    kind: u64,
) -> (&'static str, Value, &'static str) {
    let between = |rng: &mut Rng, lo: u64, hi: u64| lo + rng.below(hi - lo + 1);
    let even = |rng: &mut Rng| address(2 * (1 + rng.below((mailboxes / 2).max(1) as u64) as usize));
    match kind {
        0 => (
            "/graph/faults",
            json!({"kind": "throttle", "count": between(rng, 1, 30), "retry_after_s": between(rng, 1, 3)}),
            "graph-throttle",
        ),
        1 => (
            "/graph/faults",
            json!({"kind": "delay_notifications", "ms": between(rng, 100, 2000)}),
            "graph-delay-notifications",
        ),
        2 => (
            "/graph/faults",
            json!({"kind": "drop_notifications", "count": between(rng, 1, 20), "then_missed": true}),
            "graph-drop-notifications",
        ),
        3 => (
            "/graph/lifecycle",
            json!({"mailbox": even(rng), "event": "missed"}),
            "graph-missed",
        ),
        4 => (
            "/graph/lifecycle",
            json!({"mailbox": even(rng), "event": "subscriptionRemoved"}),
            "graph-subscription-removed",
        ),
        _ => (
            "/graph/lifecycle",
            json!({"mailbox": even(rng), "event": "reauthorizationRequired"}),
            "graph-reauthorization-required",
        ),
    }
}

/// The `index`th fault of the run, with its parameters: the first ten are every kind
/// once (in a seeded order), the rest drawn at random.
fn pick_fault(rng: &mut Rng, mailboxes: usize, index: u64, order: &[u64]) -> Value {
    let between = |rng: &mut Rng, lo: u64, hi: u64| lo + rng.below(hi - lo + 1);
    let kind = match order.get(index as usize) {
        Some(kind) => *kind,
        None => rng.below(FAULT_KINDS),
    };
    match kind {
        0 => json!({"kind": "drop-streams"}),
        1 => json!({"kind": "cut-mid-frame"}),
        2 => json!({"kind": "malformed-frame"}),
        3 => {
            if rng.below(2) == 0 {
                json!({"kind": "expire-subscriptions"})
            } else {
                let some: Vec<String> = (0..(mailboxes / 100).max(1))
                    .map(|_| address(1 + rng.below(mailboxes as u64) as usize))
                    .collect();
                json!({"kind": "expire-subscriptions", "mailboxes": some})
            }
        }
        4 => {
            json!({"kind": "server-busy", "count": between(rng, 5, 60), "back_off_ms": between(rng, 100, 2000)})
        }
        5 => {
            if rng.below(2) == 0 {
                json!({"kind": "http-503", "count": between(rng, 1, 20)})
            } else {
                json!({"kind": "http-503", "count": between(rng, 1, 20), "retry_after_s": 1})
            }
        }
        6 => json!({"kind": "stall-heartbeats", "duration_ms": between(rng, 1000, 4000)}),
        7 => json!({"kind": "slow", "delay_ms": between(rng, 5, 150)}),
        8 => {
            json!({"kind": "trickle", "duration_ms": between(rng, 2000, 4000), "interval_ms": 100})
        }
        _ => json!({"kind": "reject-subscriptions", "duration_ms": between(rng, 500, 2500)}),
    }
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i].as_secs_f64() * 1000.0).round()
}

/// How a run is set up.
struct Plan {
    mailboxes: usize,
    seconds: u64,
    seed: u64,
    /// Mean time between two faults.
    step: Duration,
    /// `oof_refresh_secs`: automatic-reply changes raise no events (as on Exchange), so
    /// they show at the next sweep; it is part of the bound.
    oof_refresh: Duration,
    /// Half the mailboxes on a Graph gateway, and the Graph faults.
    graph: bool,
}

async fn chaos(plan: Plan) -> Value {
    let Plan {
        mailboxes,
        seconds,
        seed,
        step,
        oof_refresh,
        graph,
    } = plan;
    let dir: PathBuf =
        std::env::temp_dir().join(format!("ews-presence-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sim_args: Vec<String> = [
        "--mailboxes",
        &mailboxes.to_string(),
        "--seed",
        &seed.to_string(),
        "--heartbeat-ms",
        "1000",
        "--connection-limit",
        &(mailboxes.div_ceil(200) + 10).to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut sim_args = sim_args;
    if graph {
        let secret = dir.join("sim-graph-secret");
        std::fs::write(&secret, format!("{GRAPH_SECRET}\n")).expect("secret");
        sim_args.extend([
            "--graph".to_owned(),
            "--graph-secret-file".to_owned(),
            secret.display().to_string(),
        ]);
    }
    let mut sim = Simulator::spawn("127.0.0.1:0", &sim_args);
    let app = start_daemon(sim.addr, mailboxes, &dir, oof_refresh, graph).await;
    let api = app.api_addr;
    let started = Instant::now();
    while call(api, "GET", "/readyz", None)
        .await
        .map(|r| r["ready"] == true)
        != Some(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not ready in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_s = started.elapsed().as_secs_f64();
    let churn =
        json!({"per_second": (mailboxes as f64 / 100.0).clamp(5.0, 200.0), "now_share": 0.3});
    sim.control("PUT", "/churn", Some(churn.clone())).await;

    let mut rng = Rng::new(seed);
    let mut order: Vec<u64> = (0..FAULT_KINDS).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut rejected_before_restart = Value::Null;
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let (mut reloads, mut restarts) = (0u64, 0u64);
    let mut removed: Vec<usize> = Vec::new();
    let all: Vec<String> = (1..=mailboxes).map(address).collect();
    // Staleness: how long a sampled mailbox disagrees with the truth.
    let mut open_episodes: HashMap<String, Instant> = HashMap::new();
    let mut episodes: Vec<Duration> = Vec::new();
    let mut samples = 0u64;
    let run = Instant::now();
    let mut next_fault = Instant::now();
    let mut next_reload = Instant::now() + step * 5;
    let mut restarted = false;
    // Resources once a minute: they must level off over a long run.
    let mut resources: Vec<Value> = Vec::new();
    let mut next_sample = Instant::now();
    while run.elapsed() < Duration::from_secs(seconds) {
        let now = Instant::now();
        if now >= next_sample {
            let sample = resources_now(&app, run.elapsed());
            eprintln!("{sample}");
            resources.push(sample);
            next_sample += Duration::from_secs(60);
        }
        if now >= next_fault {
            sim.control("DELETE", "/faults", None).await;
            if graph {
                sim.control("DELETE", "/graph/faults", None).await;
            }
            let drawn: u64 = faults.values().sum();
            // In graph mode every other fault is a Graph one (each kind once first).
            if graph && drawn % 2 == 1 {
                let n = drawn / 2;
                let kind = if n < GRAPH_FAULT_KINDS {
                    n
                } else {
                    rng.below(GRAPH_FAULT_KINDS)
                };
                let (path, body, name) = pick_graph_fault(&mut rng, mailboxes, kind);
                if sim.control("POST", path, Some(body)).await.is_some() {
                    *faults.entry(name.to_owned()).or_default() += 1;
                }
            } else {
                let index = if graph { drawn / 2 } else { drawn };
                let fault = pick_fault(&mut rng, mailboxes, index, &order);
                let kind = fault["kind"].as_str().unwrap_or("?").to_owned();
                if sim.control("POST", "/faults", Some(fault)).await.is_some() {
                    *faults.entry(kind).or_default() += 1;
                }
            }
            next_fault = now + step.mul_f64(0.5 + rng.below(1000) as f64 / 1000.0);
        }
        if now >= next_reload {
            // Take 1% out, or put back what was taken out.
            if removed.is_empty() {
                removed = (0..(mailboxes / 100).max(1))
                    .map(|_| 1 + rng.below(mailboxes as u64) as usize)
                    .collect();
            } else {
                removed.clear();
            }
            write_list(
                &dir,
                (1..=mailboxes).filter(|n| !removed.contains(n)),
                graph,
            );
            if app.reload().is_ok() {
                reloads += 1;
            }
            next_reload = now + step * 5;
        }
        if !graph && !restarted && run.elapsed() >= Duration::from_secs(seconds) / 2 {
            rejected_before_restart = sim
                .control("GET", "/stats", None)
                .await
                .map_or(Value::Null, |s| s["rejected"].clone());
            sim.crash_and_restart().await;
            sim.control("PUT", "/churn", Some(churn.clone())).await;
            restarted = true;
            restarts += 1;
        }
        // Sample: every mailbox in an open episode, and twenty at random.
        let mut sample: Vec<String> = open_episodes.keys().cloned().collect();
        for _ in 0..20 {
            let n = 1 + rng.below(mailboxes as u64) as usize;
            if !removed.contains(&n) {
                sample.push(address(n));
            }
        }
        sample.sort();
        sample.dedup();
        if let Some(daemon) = ours(api, &sample).await {
            for mailbox in &sample {
                let Some(truth) = truth_of(&sim, mailbox).await else {
                    continue;
                };
                samples += 1;
                let agree = daemon.get(mailbox) == Some(&truth);
                match (agree, open_episodes.get(mailbox)) {
                    (false, None) => {
                        open_episodes.insert(mailbox.clone(), Instant::now());
                    }
                    (true, Some(since)) => {
                        episodes.push(since.elapsed());
                        open_episodes.remove(mailbox);
                    }
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The faults stop: no fault, no churn, the whole list back.
    sim.control("DELETE", "/faults", None).await;
    if graph {
        sim.control("DELETE", "/graph/faults", None).await;
    }
    sim.control("PUT", "/churn", Some(json!({"per_second": 0})))
        .await;
    write_list(&dir, 1..=mailboxes, graph);
    let _ = app.reload();
    let faults_over = Instant::now();
    let bound = Duration::from_millis(DEBOUNCE_MS)
        + REQUEST_TIMEOUT
        + STREAM_BACKOFF_MAX
        + REFRESH_BACKOFF_MAX
        + oof_refresh;
    let (converged, mismatches) = loop {
        let mismatched: Vec<(String, String, String)> =
            match (all_truth(&sim).await, ours(api, &all).await) {
                (Some(truth), Some(daemon)) => all
                    .iter()
                    .filter_map(|m| {
                        let t = truth.get(m).cloned().unwrap_or_default();
                        let d = daemon.get(m).cloned().unwrap_or_default();
                        (t != d).then(|| (m.clone(), t, d))
                    })
                    .collect(),
                _ => vec![("(no answer)".into(), String::new(), String::new())],
            };
        if std::env::var_os("CHAOS_DEBUG").is_some() {
            eprintln!(
                "{:?} {} {:?}",
                faults_over.elapsed(),
                mismatched.len(),
                mismatched.iter().take(3).collect::<Vec<_>>()
            );
        }
        if mismatched.is_empty() || faults_over.elapsed() > bound {
            break (faults_over.elapsed(), mismatched);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Episodes still open when the faults stopped lasted at least until now.
    episodes.extend(open_episodes.values().map(Instant::elapsed));
    episodes.sort();
    let gateway = call(api, "GET", "/v1/gateways", None).await;
    let report = json!({
        "bench": "chaos", "mailboxes": mailboxes, "seconds": seconds, "seed": seed,
        "graph_mailboxes": if graph { mailboxes / 2 } else { 0 },
        "ready_s": (ready_s * 100.0).round() / 100.0,
        "faults": faults, "faults_total": faults.values().sum::<u64>(),
        "reloads": reloads, "simulator_restarts": restarts,
        "sampled": samples, "stale_episodes": episodes.len(),
        "staleness_p50_ms": percentile_ms(&episodes, 0.5),
        "staleness_p99_ms": percentile_ms(&episodes, 0.99),
        "staleness_max_ms": percentile_ms(&episodes, 1.0),
        "converge_s": (converged.as_secs_f64() * 100.0).round() / 100.0,
        "bound_s": bound.as_secs(),
        "final_mismatches": mismatches.len(),
        "mismatch_examples": mismatches.iter().take(5).map(|(m, t, d)| json!({"mailbox": m, "truth": t, "daemon": d})).collect::<Vec<_>>(),
        "simulator_rejected_before_restart": rejected_before_restart,
        "simulator_rejected_after_restart": sim.control("GET", "/stats", None).await.map(|s| s["rejected"].clone()),
        "gateway_last_error": gateway.as_ref().map(|g| g["gateways"][0]["last_error"].clone()),
        "graph_gateway_last_error": gateway.as_ref().and_then(|g| g["gateways"].as_array().and_then(|a| a.iter().find(|x| x["kind"] == "graph")).map(|x| x["last_error"].clone())),
        "resources_first": resources.first(),
        "resources_last": resources.last(),
        "resources_per_minute": if seconds >= 600 { json!(resources) } else { Value::Null },
    });
    app.shutdown(Duration::from_secs(10)).await;
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// The process's resident memory and open descriptors (the daemon runs in it), and
/// what the change feed keeps for resumption.
fn resources_now(app: &App, elapsed: Duration) -> Value {
    let usage = harness::usage("self");
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let feed = app.cache.feed();
    json!({
        "minute": elapsed.as_secs() / 60,
        "rss_mib": (usage.rss as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        "heap_live_mib": (harness::counting::live() as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        "open_fds": fds,
        "feed_kept_changes": feed.kept_changes(),
        "feed_published": feed.last_seq(),
    })
}

fn main() {
    let (args, measuring) = harness::arguments();
    let runtime = harness::runtime();
    let number = |i: usize, default: u64| harness::number(&args, i, default);
    let reports = if measuring {
        vec![runtime.block_on(chaos(Plan {
            mailboxes: number(0, 10_000) as usize,
            seconds: number(1, 600),
            seed: number(2, 1),
            step: Duration::from_secs(4),
            oof_refresh: Duration::from_secs(60),
            graph: args.get(3).is_some_and(|a| a == "graph"),
        }))]
    } else {
        // Smoke runs for `cargo test --all-targets`: small and short, every fault kind
        // still drawn, one restart (EWS alone), then hybrid with the Graph faults; each
        // must converge with no mismatch.
        [false, true]
            .into_iter()
            .map(|graph| {
                runtime.block_on(chaos(Plan {
                    mailboxes: 300,
                    seconds: if graph { 20 } else { 15 },
                    seed: 7,
                    step: Duration::from_millis(600),
                    oof_refresh: Duration::from_secs(5),
                    graph,
                }))
            })
            .collect()
    };
    for report in reports {
        println!("{report}");
        assert_eq!(
            report["final_mismatches"], 0,
            "the daemon disagrees with the truth after the faults: {report}"
        );
    }
}
