//! Nothing unknown without a reason, and a start-up that ends: with a gateway's port
//! closed, a wrong password, or one of two gateways down, every mailbox that is not
//! served carries a problem naming its gateway and the cause, `/readyz` answers 200
//! with the counts once every mailbox is synced or failing, and `/readyz?strict`
//! answers 503 while any fails.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use ews_presence::app::App;
use ews_presence::config::Config;
use serde_json::Value;
use support::client::{self, Target};
use support::daemon::{Options, address, eventually, rig};

use support::sim;

const WITHIN: Duration = Duration::from_secs(15);

/// A loopback port nothing listens on (bound, read, released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ews-presence-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn get(api: &Target, path: &str) -> (u16, Value) {
    let reply = client::request(api, "GET", path, &[], "").await;
    (reply.status, reply.json())
}

/// Waits for `/readyz` to answer 200 and returns its body.
async fn ready(api: &Target) -> Value {
    eventually("/readyz answers 200", WITHIN, || async {
        get(api, "/readyz").await.0 == 200
    })
    .await;
    get(api, "/readyz").await.1
}

/// Starts the daemon on `config` (TOML, relative paths in `dir`).
async fn start(dir: &std::path::Path, config: &str) -> (App, Target) {
    let path = dir.join("ews-presence.toml");
    std::fs::write(&path, config).expect("config file");
    let config = Config::load(&path, &HashMap::new()).expect("valid config");
    let app = App::start(config).await.expect("daemon starts");
    let api = Target {
        addr: app.api_addr,
        tls: None,
    };
    (app, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_gives_every_mailbox_its_reason_and_start_up_ends() {
    let dir = dir("closed-port");
    let port = closed_port();
    std::fs::write(
        dir.join("mailboxes.txt"),
        (1..=3)
            .map(|n| format!("{}\n", address(n)))
            .collect::<String>(),
    )
    .unwrap();
    let (app, api) = start(
        &dir,
        &format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[[gateway]]\nname = \"exch1\"\nurl = \"http://127.0.0.1:{port}/EWS/Exchange.asmx\"\nauth = \"none\"\n[mailboxes]\nfile = \"mailboxes.txt\"\n"
        ),
    )
    .await;
    let body = ready(&api).await;
    assert_eq!(body["synced"], 0, "{body}");
    assert_eq!(body["failing"], 3, "{body}");
    let expected = format!("exch1: cannot connect to 127.0.0.1:{port} (connection refused)");
    for n in 1..=3 {
        let (_, p) = get(&api, &format!("/v1/presence/{}", address(n))).await;
        assert_eq!(p["availability"], "unknown");
        assert_eq!(p["problem"], expected.as_str(), "{p}");
    }
    let (status, strict) = get(&api, "/readyz?strict").await;
    assert_eq!(
        status, 503,
        "strict readiness wants no failing mailbox: {strict}"
    );
    assert_eq!(strict["failing"], 3);
    // The same words on /v1/gateways.
    let (_, gateways) = get(&api, "/v1/gateways").await;
    let problems = &gateways["gateways"][0]["problems"];
    assert_eq!(problems[0]["problem"], expected.as_str(), "{gateways}");
    assert_eq!(problems[0]["mailboxes"], 3, "{gateways}");
    app.shutdown(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_names_the_account_on_every_mailbox() {
    let rig = rig(Options {
        mailboxes: 5,
        password: "not-the-password",
        ..Options::default()
    })
    .await;
    let body = ready(&rig.api).await;
    assert_eq!(body["failing"], 5, "{body}");
    let prefix = format!(
        "{}: credentials for svc@example.test refused (Basic, HTTP 401)",
        rig.gateway
    );
    for n in 1..=5 {
        let p = rig.presence(n).await;
        assert_eq!(p["availability"], "unknown");
        assert!(
            p["problem"]
                .as_str()
                .is_some_and(|text| text.starts_with(&prefix)),
            "{p}"
        );
    }
    // One login was refused; the rest waited behind the credential gate.
    let stats = rig.sim_stats().await;
    assert_eq!(stats["rejected"]["unauthorized"], 1, "{stats}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gateway_down_the_others_mailboxes_are_served() {
    let (sim, _target) = sim::start(sim::config()).await;
    let dir = dir("one-down");
    let port = closed_port();
    let mut list = String::new();
    for n in 1..=4 {
        list.push_str(&format!("{} up\n", address(n)));
    }
    for n in 5..=7 {
        list.push_str(&format!("{} down\n", address(n)));
    }
    std::fs::write(dir.join("mailboxes.txt"), list).unwrap();
    let (app, api) = start(
        &dir,
        &format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[presence]\nheartbeat_secs = 1\n\
             [[gateway]]\nname = \"up\"\nurl = \"http://{}/EWS/Exchange.asmx\"\nauth = \"none\"\n\
             [[gateway]]\nname = \"down\"\nurl = \"http://127.0.0.1:{port}/EWS/Exchange.asmx\"\nauth = \"none\"\n\
             [mailboxes]\nfile = \"mailboxes.txt\"\n",
            sim.addr
        ),
    )
    .await;
    let body = ready(&api).await;
    assert_eq!(body["synced"], 4, "{body}");
    assert_eq!(body["failing"], 3, "{body}");
    for n in 1..=4 {
        let (_, p) = get(&api, &format!("/v1/presence/{}", address(n))).await;
        assert_ne!(p["availability"], "unknown", "{p}");
        assert_eq!(p.get("problem"), Some(&Value::Null), "{p}");
    }
    for n in 5..=7 {
        let (_, p) = get(&api, &format!("/v1/presence/{}", address(n))).await;
        assert_eq!(p["availability"], "unknown");
        assert!(
            p["problem"]
                .as_str()
                .is_some_and(|t| t.starts_with("down: cannot connect to 127.0.0.1:")),
            "{p}"
        );
    }
    app.shutdown(Duration::from_secs(5)).await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
