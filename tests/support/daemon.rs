//! A simulator and a daemon configured against it, both in-process, with helpers to
//! read presence and wait (with deadlines) for the daemon to agree with the truth.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use ews_presence::app::App;
use ews_presence::config::Config;
use ews_sim::auth::SimAuth;
use ews_sim::{Running, SimConfig};
use serde_json::Value;

use super::client::{self, Target};

/// How the rig is set up.
pub struct Options {
    pub sim: SimConfig,
    /// The daemon serves user1..userN.
    pub mailboxes: usize,
    pub debounce_ms: u64,
    pub oof_refresh_secs: u64,
    pub oof_verify_secs: u64,
    pub per_connection: usize,
    /// The gateway's `max_connections` (None: the daemon's default).
    pub max_connections: Option<usize>,
    pub token: Option<&'static str>,
    /// The password the daemon is given (the simulator's is `sim-password`).
    pub password: &'static str,
    /// `[api] max_connections`, when set.
    pub api_connections: Option<usize>,
    /// The daemon's `auth` (with `bearer`, its token file is `bearer-token` in the
    /// rig's directory, holding `password`).
    pub auth: &'static str,
    /// Serve HTTPS with a certificate for `localhost` the daemon trusts.
    pub https: bool,
    /// Find EWS with Autodiscover (at the simulator's `autodiscover.svc`) instead of a
    /// configured `url`.
    pub autodiscover: bool,
    /// More lines for `[api]` (paths relative to the rig's directory).
    pub api_extra: String,
    /// More sections at the end of the configuration (`[[sip]]`).
    pub sections: String,
    /// Mailboxes served through a second gateway, `online`, of `kind = "graph"`
    /// against the simulator's Graph side (which is then on); the others stay on EWS.
    pub graph_mailboxes: Vec<usize>,
    /// The `online` gateway's credential: `client_secret_file` (the simulator's secret)
    /// unless this names another secret, or the certificate when `"certificate"`.
    pub graph_credential: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sim: SimConfig {
                mailboxes: 60,
                heartbeat: Duration::from_millis(200),
                minute: Duration::from_millis(1000),
                auth: SimAuth::Basic {
                    password: "sim-password".into(),
                },
                ..SimConfig::default()
            },
            mailboxes: 20,
            debounce_ms: 100,
            oof_refresh_secs: 300,
            oof_verify_secs: 14_400,
            per_connection: 200,
            max_connections: None,
            token: None,
            password: "sim-password",
            api_connections: None,
            auth: "basic",
            https: false,
            autodiscover: false,
            api_extra: String::new(),
            sections: String::new(),
            graph_mailboxes: Vec::new(),
            graph_credential: None,
        }
    }
}

/// The name of the rig's Graph gateway.
pub const GRAPH_GATEWAY: &str = "online";

/// A loopback port free now (for a listener whose address must be known before it
/// is bound: Graph's notification URL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub struct Rig {
    pub sim: Running,
    pub sim_target: Target,
    pub app: App,
    pub api: Target,
    pub dir: PathBuf,
    /// The gateway's name, unique per rig: metrics are process-wide and tests run in
    /// parallel, so a rig's metrics are told apart by this label.
    pub gateway: String,
    /// `Authorization` for the rig's own reads when the API takes tokens.
    pub authorization: Option<String>,
}

pub fn address(n: usize) -> String {
    format!("user{n}@example.test")
}

/// Writes the daemon's mailbox file.
pub fn write_mailboxes(dir: &std::path::Path, numbers: impl IntoIterator<Item = usize>) {
    let text: String = numbers
        .into_iter()
        .map(|n| format!("{}\n", address(n)))
        .collect();
    std::fs::write(dir.join("mailboxes.txt"), text).expect("mailbox file");
}

/// A fresh directory for one rig.
fn rig_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ews-presence-rig-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes a self-signed certificate for `localhost` into `dir`: (cert, key).
pub fn localhost_certificate(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let (cert_file, key_file) = (dir.join("sim-cert.pem"), dir.join("sim-key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).expect("cert file");
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).expect("key file");
    (cert_file, key_file)
}

pub async fn rig(options: Options) -> Rig {
    let dir = rig_dir();
    let mut sim_config = options.sim.clone();
    let graph = !options.graph_mailboxes.is_empty();
    if graph {
        sim_config.graph = Some(ews_sim::graph::GraphConfig {
            certificate: Some(super::fixtures_dir().join("graph/cert.pem")),
            ..ews_sim::graph::GraphConfig::default()
        });
    }
    let mut ca_line = String::new();
    if options.https {
        let (cert, key) = localhost_certificate(&dir);
        ca_line = format!("ca_file = \"{}\"\n", cert.display());
        sim_config.tls = Some((cert, key));
    }
    let trusted = sim_config.tls.as_ref().map(|(cert, _)| cert.clone());
    let (sim, mut sim_target) = super::sim::start(sim_config).await;
    if let Some(cert) = trusted {
        sim_target.tls = Some(
            ews::transport::client_tls(Some(&cert), std::path::Path::new("certs"))
                .expect("client TLS"),
        );
    }
    let gateway = format!("sim-{}", sim.addr.port());
    std::fs::write(dir.join("password"), format!("{}\n", options.password)).expect("password file");
    std::fs::write(dir.join("bearer-token"), format!("{}\n", options.password))
        .expect("token file");
    let scheme = if sim.https { "https" } else { "http" };
    let host = if sim.https {
        format!("localhost:{}", sim.addr.port())
    } else {
        sim.addr.to_string()
    };
    if graph {
        let text: String = (1..=options.mailboxes)
            .map(|n| {
                if options.graph_mailboxes.contains(&n) {
                    format!("{} {GRAPH_GATEWAY}\n", address(n))
                } else {
                    format!("{}\n", address(n))
                }
            })
            .collect();
        std::fs::write(dir.join("mailboxes.txt"), text).expect("mailbox file");
    } else {
        write_mailboxes(&dir, 1..=options.mailboxes);
    }
    let (listen, graph_section) = if graph {
        let port = free_port();
        let defaults = ews_sim::graph::GraphConfig::default();
        let credential = match options.graph_credential {
            Some("certificate") => format!(
                "client_certificate_file = \"{}\"",
                super::fixtures_dir().join("graph/app.pem").display()
            ),
            other => {
                let secret = other.map_or(
                    defaults.client_secret.clone().unwrap_or_default(),
                    str::to_owned,
                );
                std::fs::write(dir.join("graph-secret"), format!("{secret}\n"))
                    .expect("secret file");
                "client_secret_file = \"graph-secret\"".to_owned()
            }
        };
        let base = format!("http://{}", sim.addr);
        (
            format!("127.0.0.1:{port}"),
            format!(
                "[[gateway]]\nname = \"{GRAPH_GATEWAY}\"\nkind = \"graph\"\ntenant = \"{}\"\nclient_id = \"{}\"\n{credential}\nnotification_url = \"http://127.0.0.1:{port}/graph/notifications\"\nauthority = \"{base}\"\ngraph_url = \"{base}\"\nrequest_timeout_secs = 10\n",
                defaults.tenant, defaults.client_id
            ),
        )
    } else {
        ("127.0.0.1:0".to_owned(), String::new())
    };
    let token = options
        .token
        .map(|t| {
            std::fs::write(dir.join("tokens"), format!("{t}\n")).expect("token file");
            "token_file = \"tokens\"\n"
        })
        .unwrap_or_default();
    let api_connections = options
        .api_connections
        .map(|n| format!("max_connections = {n}\n"))
        .unwrap_or_default();
    let config = format!(
        r#"
[api]
listen = "{listen}"
{token}{api_connections}{api_extra}
[presence]
debounce_ms = {debounce}
heartbeat_secs = 1
oof_refresh_secs = {oof}
oof_verify_secs = {verify}
[[gateway]]
name = "{gateway}"
{endpoint}
auth = "{auth}"
username = "svc@example.test"
password_file = "password"
token_file = "bearer-token"
{ca_line}max_subscriptions_per_connection = {per}
{max}request_timeout_secs = 10
{graph_section}[mailboxes]
file = "mailboxes.txt"
{sections}
"#,
        sections = options.sections,
        listen = listen,
        graph_section = graph_section,
        debounce = options.debounce_ms,
        api_extra = options.api_extra,
        oof = options.oof_refresh_secs,
        verify = options.oof_verify_secs,
        auth = options.auth,
        endpoint = if options.autodiscover {
            format!(
                "autodiscover = true\nautodiscover_url = \"{scheme}://{host}/autodiscover/autodiscover.svc\""
            )
        } else {
            format!("url = \"{scheme}://{host}/EWS/Exchange.asmx\"")
        },
        per = options.per_connection,
        max = options
            .max_connections
            .map(|n| format!("max_connections = {n}\n"))
            .unwrap_or_default(),
        gateway = gateway,
    );
    std::fs::write(dir.join("ews-presence.toml"), config).expect("config file");
    let app = start_daemon(&dir).await;
    let api = Target {
        addr: app.api_addr,
        tls: None,
    };
    Rig {
        sim,
        sim_target,
        app,
        api,
        dir,
        gateway,
        authorization: options
            .token
            .and_then(|t| t.split_whitespace().next())
            .map(|t| format!("Bearer {t}")),
    }
}

/// Starts the daemon in process on the configuration in `dir`.
async fn start_daemon(dir: &std::path::Path) -> App {
    let config =
        Config::load(&dir.join("ews-presence.toml"), &HashMap::new()).expect("valid config");
    App::start(config)
        .await
        .unwrap_or_else(|e| panic!("the daemon starts: {e}"))
}

impl Rig {
    /// The daemon's presence JSON for mailbox `n`.
    pub async fn presence(&self, n: usize) -> Value {
        let authorization = self.authorization.as_deref().map(|a| ("Authorization", a));
        client::request(
            &self.api,
            "GET",
            &format!("/v1/presence/{}", address(n)),
            authorization.as_slice(),
            "",
        )
        .await
        .json()
    }

    /// The simulator's truth for mailbox `n` now.
    pub async fn truth(&self, n: usize) -> Value {
        client::control(
            &self.sim_target,
            "GET",
            &format!("/mailboxes/{}/truth", address(n)),
            None,
        )
        .await
        .json()
    }

    pub async fn sim_stats(&self) -> Value {
        client::control(&self.sim_target, "GET", "/stats", None)
            .await
            .json()
    }

    pub async fn requests(&self, operation: &str) -> u64 {
        self.sim_stats().await["requests"][operation]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until the start-up read of `mailboxes` mailboxes' automatic replies went
    /// out: in GetMailTips batches of the simulator's limit, or one GetUserOofSettings
    /// each where MailTips are off.
    pub async fn auto_replies_read(&self, mailboxes: u64) {
        let batches = self
            .sim
            .sim
            .config
            .mail_tips_max_recipients
            .map(|max| mailboxes.div_ceil(u64::from(max.min(100))));
        eventually(
            "start-up automatic-reply reads done",
            Duration::from_secs(15),
            || async {
                match batches {
                    Some(b) => self.requests("GetMailTips").await >= b,
                    None => self.requests("GetUserOofSettings").await >= mailboxes,
                }
            },
        )
        .await;
    }

    /// Whether the daemon's availability for `n` equals the truth's (both must be
    /// answers that carry one).
    pub async fn agrees(&self, n: usize) -> bool {
        let (truth, ours) = (self.truth(n).await, self.presence(n).await);
        truth["availability"].is_string() && truth["availability"] == ours["availability"]
    }

    /// The served mailboxes 1..=`mailboxes` whose availability differs from the
    /// simulator's truth or is unknown, read in one request each. Every one of them
    /// must be in both answers exactly once: an empty list means each was compared.
    pub async fn disagreements(&self, mailboxes: usize) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Row {
            mailbox: String,
            availability: String,
        }
        #[derive(serde::Deserialize)]
        struct Truth {
            truth: Vec<Row>,
        }
        #[derive(serde::Deserialize)]
        struct Query {
            presence: Vec<Row>,
        }
        let reply = client::control(&self.sim_target, "GET", "/truth", None).await;
        let truth: Truth = reply.typed();
        let truth: HashMap<String, String> = truth
            .truth
            .into_iter()
            .map(|t| (t.mailbox, t.availability))
            .collect();
        let wanted: Vec<String> = (1..=mailboxes).map(address).collect();
        let body = serde_json::json!({ "mailboxes": wanted }).to_string();
        let reply = client::request(&self.api, "POST", "/v1/presence/query", &[], body).await;
        assert_eq!(reply.status, 200);
        let answer: Query = reply.typed();
        let answered: Vec<&str> = answer.presence.iter().map(|p| p.mailbox.as_str()).collect();
        assert_eq!(
            answered, wanted,
            "the query answers every mailbox asked, in order"
        );
        answer
            .presence
            .iter()
            .filter(|p| {
                let known = truth.get(&p.mailbox);
                assert!(
                    known.is_some(),
                    "the simulator has no truth for {}",
                    p.mailbox
                );
                p.availability == "unknown" || known != Some(&p.availability)
            })
            .map(|p| {
                format!(
                    "{}: {} (truth {:?})",
                    p.mailbox,
                    p.availability,
                    truth.get(&p.mailbox)
                )
            })
            .collect()
    }

    /// A mailbox among user`from`..user`to` whose truth and presence are `available`
    /// and stay so for the next minutes (the generated calendars depend on the hour).
    pub async fn available_mailbox(&self, from: usize, to: usize) -> usize {
        let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10)).to_string();
        for n in from..=to {
            if self.truth(n).await["availability"] == "available" {
                let p = self.presence(n).await;
                let until = p["until"].as_str().map(str::to_owned);
                if p["availability"] == "available" && until.is_none_or(|u| u > soon) {
                    return n;
                }
            }
        }
        panic!("no steadily available mailbox among user{from}..user{to}");
    }

    /// Sets mailbox `n`'s automatic replies in the simulator (`{"state": "Enabled"}`, …).
    pub async fn set_oof(&self, n: usize, body: Value) {
        let reply = client::control(
            &self.sim_target,
            "PUT",
            &format!("/mailboxes/{}/oof", address(n)),
            Some(body),
        )
        .await;
        assert_eq!(reply.status, 200);
    }

    /// Puts an hour-long item of `busy_type` (Busy, OOF, …) over now into mailbox `n`.
    pub async fn cover_now(&self, n: usize, busy_type: &str) {
        use jiff::ToSpan;
        let now = jiff::Timestamp::now();
        let reply = client::control(
            &self.sim_target,
            "POST",
            &format!("/mailboxes/{}/items", address(n)),
            Some(serde_json::json!({"start": (now - 1.minute()).to_string(), "end": (now + 1.hour()).to_string(), "busy_type": busy_type})),
        )
        .await;
        assert_eq!(reply.status, 201, "{:?}", reply.json());
    }

    /// Injects a simulator fault (`POST /sim/faults`); its answer.
    pub async fn fault(&self, body: Value) -> Value {
        let reply = client::control(&self.sim_target, "POST", "/faults", Some(body)).await;
        assert_eq!(reply.status, 200, "{:?}", reply.json());
        reply.json()
    }

    /// Waits until the simulator holds exactly one open stream (the rig's group).
    pub async fn one_stream_open(&self) {
        eventually("one stream open", Duration::from_secs(15), || async {
            self.sim_stats().await["streams_open"] == 1
        })
        .await;
    }

    /// The daemon's `/v1/gateways` entry for this rig's gateway.
    pub async fn gateway_status(&self) -> Value {
        client::request(&self.api, "GET", "/v1/gateways", &[], "")
            .await
            .json()["gateways"][0]
            .clone()
    }

    /// The value of the sample `name{labels}` in `/metrics`, where `labels` is the
    /// label set as rendered (`gateway="…"` and so on); None when absent.
    pub async fn metric(&self, name: &str, labels: &str) -> Option<f64> {
        let text = String::from_utf8(
            client::request(&self.api, "GET", "/metrics", &[], "")
                .await
                .body
                .to_vec(),
        )
        .expect("metrics are text");
        let prefix = if labels.is_empty() {
            format!("{name} ")
        } else {
            format!("{name}{{{labels}}} ")
        };
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().parse().expect("a number"))
    }

    /// Presses the status page's check button while the credentials are refused: the
    /// credential gate holds its login back, and the auth step says when the next
    /// attempt is instead.
    pub async fn check_is_held_back(&self) {
        let checks = client::request(&self.api, "POST", "/v1/checks", &[], "")
            .await
            .json();
        let steps = checks["gateways"][0]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("steps: {checks}"));
        let auth = steps
            .iter()
            .find(|s| s["step"] == "auth")
            .unwrap_or_else(|| panic!("an auth step: {checks}"));
        assert_eq!(auth["result"], "fail", "{checks}");
        assert!(
            auth["detail"]
                .as_str()
                .is_some_and(|d| d.contains("waiting for the credential back-off, next attempt at")),
            "{auth}"
        );
    }

    /// `gateway="<this rig's gateway>"`.
    pub fn gateway_label(&self) -> String {
        format!("gateway=\"{}\"", self.gateway)
    }

    /// Waits until `/readyz` says every mailbox has been synced (or has failed).
    pub async fn ready(&self) {
        eventually("daemon ready", Duration::from_secs(10), || async {
            client::request(&self.api, "GET", "/readyz", &[], "")
                .await
                .status
                == 200
        })
        .await;
    }

    /// Stops the daemon and starts it again on the same configuration (and state
    /// directory); the API moves to the new instance's address.
    pub async fn restart(self) -> Rig {
        let Rig {
            sim,
            sim_target,
            app,
            api,
            dir,
            gateway,
            authorization,
        } = self;
        app.shutdown(Duration::from_secs(5)).await;
        let app = start_daemon(&dir).await;
        Rig {
            api: Target {
                addr: app.api_addr,
                ..api
            },
            sim,
            sim_target,
            app,
            dir,
            gateway,
            authorization,
        }
    }

    pub async fn stop(self) {
        let Rig { sim, app, dir, .. } = self;
        app.shutdown(Duration::from_secs(5)).await;
        sim.stop().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Polls `check` until it holds, failing after `within` (bounded: used only where no
/// event can be waited on).
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
