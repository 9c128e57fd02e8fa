//! Autodiscover against the simulator over HTTPS with NTLM: each mailbox's EWS URL and
//! GroupingInformation in batches, address redirects, the POX fallback, and bad
//! answers (untrusted certificate, redirect loops, HTTP instead of HTTPS, malformed
//! XML, unknown users) each a clear error that sends no credentials where they must
//! not go.

mod support;

use std::time::Duration;

use common::mailbox::Mailbox;
use ews::autodiscover::client::{Discoverer, DiscoveryConfig, Outcome};
use ews::transport::{Auth, Secret, client_tls};
use ews_sim::auth::{ExtendedProtection, SimAuth};
use ews_sim::{Running, SimConfig};
use serde_json::{Value, json};
use support::client::{self, Target};
use support::daemon::localhost_certificate;

struct Lab {
    sim: Running,
    target: Target,
    cert: std::path::PathBuf,
    dir: std::path::PathBuf,
}

async fn lab(name: &str, tweak: impl FnOnce(&mut SimConfig)) -> Lab {
    let dir = std::env::temp_dir().join(format!("ews-autodiscover-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = localhost_certificate(&dir);
    let mut config = SimConfig {
        mailboxes: 40,
        backends: 4,
        tls: Some((cert.clone(), key)),
        auth: SimAuth::Ntlm {
            password: "pw".into(),
        },
        extended_protection: ExtendedProtection::Require,
        ..SimConfig::default()
    };
    tweak(&mut config);
    let https = config.tls.is_some();
    let (sim, mut target) = support::sim::start(config).await;
    if https {
        target.tls = Some(client_tls(Some(&cert), std::path::Path::new("certs")).unwrap());
    }
    Lab {
        sim,
        target,
        cert,
        dir,
    }
}

impl Lab {
    fn discoverer(&self, url: &str, trusted: bool) -> Discoverer {
        let tls = if trusted {
            client_tls(Some(&self.cert), std::path::Path::new("certs")).unwrap()
        } else {
            client_tls(None, &self.dir.join("no-such-dir")).unwrap()
        };
        Discoverer::new(
            DiscoveryConfig {
                autodiscover_url: Some(url.parse().unwrap()),
                prefer_internal: false,
                auth: Auth::Ntlm {
                    username: "svc@example.test".into(),
                    password: Secret::new("pw"),
                },
                request_timeout: Duration::from_secs(5),
                allow_plain_http: false,
            },
            tls,
        )
    }

    fn url(&self, file: &str) -> String {
        format!(
            "https://localhost:{}/autodiscover/autodiscover.{file}",
            self.sim.addr.port()
        )
    }

    async fn stats(&self) -> Value {
        client::control(&self.target, "GET", "/stats", None)
            .await
            .json()
    }

    async fn stop(self) {
        self.sim.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mailboxes(addresses: &[String]) -> Vec<Mailbox> {
    addresses
        .iter()
        .map(|a| Mailbox::parse(a).unwrap())
        .collect()
}

fn outcome_of<'a>(outcomes: &'a [(Mailbox, Outcome)], address: &str) -> &'a Outcome {
    &outcomes
        .iter()
        .find(|(m, _)| m.as_str() == address)
        .unwrap_or_else(|| panic!("no outcome for {address}"))
        .1
}

#[tokio::test]
async fn finds_each_mailboxs_url_and_group_in_batches() {
    let lab = lab("batches", |_| {}).await;
    let mut addresses: Vec<String> = (1..=30).map(|n| format!("user{n}@example.test")).collect();
    addresses.push("user3@legacy.example.test".into());
    let outcomes = lab
        .discoverer(&lab.url("svc"), true)
        .discover(&mailboxes(&addresses))
        .await;
    assert_eq!(outcomes.len(), 31);
    for n in 1..=30usize {
        let found = outcome_of(&outcomes, &format!("user{n}@example.test"))
            .as_ref()
            .unwrap_or_else(|e| panic!("user{n}: {e}"));
        let backend = (n - 1) % 4 + 1;
        assert_eq!(
            found.ews_url.path(),
            format!("/mbx{backend:02}/EWS/Exchange.asmx"),
            "user{n}"
        );
        assert_eq!(
            found.grouping.as_deref(),
            Some(format!("EXAMPLE-DAG{backend}").as_str())
        );
    }
    let redirected = outcome_of(&outcomes, "user3@legacy.example.test")
        .as_ref()
        .unwrap();
    assert_eq!(redirected.address, "user3@example.test");
    assert_eq!(redirected.ews_url.path(), "/mbx03/EWS/Exchange.asmx");
    // One batch for all 31, one more for the redirected address.
    let stats = lab.stats().await;
    assert_eq!(stats["requests"]["GetUserSettings"], 2, "{stats}");
    lab.stop().await;
}

#[tokio::test]
async fn servers_without_soap_autodiscover_are_asked_with_pox() {
    let lab = lab("pox", |c| c.pox_only = true).await;
    let addresses = [
        "user5@example.test".to_owned(),
        "user2@legacy.example.test".to_owned(),
    ];
    let outcomes = lab
        .discoverer(&lab.url("svc"), true)
        .discover(&mailboxes(&addresses))
        .await;
    let found = outcome_of(&outcomes, "user5@example.test")
        .as_ref()
        .unwrap();
    assert_eq!(found.ews_url.path(), "/mbx01/EWS/Exchange.asmx");
    assert_eq!(found.grouping.as_deref(), Some("EXAMPLE-DAG1"));
    assert!(found.answered_by.ends_with(".xml"), "{found:?}");
    let redirected = outcome_of(&outcomes, "user2@legacy.example.test")
        .as_ref()
        .unwrap();
    assert_eq!(redirected.ews_url.path(), "/mbx02/EWS/Exchange.asmx");
    lab.stop().await;
}

#[tokio::test]
async fn bad_answers_are_clear_errors() {
    let lab = lab("bad", |_| {}).await;
    let addresses = [
        "nobody@example.test".to_owned(),
        "user1@loop-a.example.test".to_owned(),
        "user1@url-loop.example.test".to_owned(),
    ];
    let outcomes = lab
        .discoverer(&lab.url("svc"), true)
        .discover(&mailboxes(&addresses))
        .await;
    let error = |address| {
        outcome_of(&outcomes, address)
            .as_ref()
            .expect_err("an error")
            .to_string()
    };
    assert!(error("nobody@example.test").contains("InvalidUser"));
    assert!(error("user1@loop-a.example.test").contains("loop"));
    assert!(error("user1@url-loop.example.test").contains("loop"));
    // Malformed XML from SOAP and from POX alike.
    lab.sim.sim.faults.hostile_answers(
        1,
        ews_sim::faults::Hostile::Garbage,
        "GetUserSettings".into(),
    );
    let outcome = lab
        .discoverer(&lab.url("svc"), true)
        .discover(&mailboxes(&["user6@example.test".to_owned()]))
        .await;
    // The garbage SOAP answer is not fatal: POX answers instead.
    assert!(outcome[0].1.is_ok(), "{:?}", outcome[0].1);
    lab.sim.sim.faults.hostile_answers(
        1,
        ews_sim::faults::Hostile::Doctype,
        "Autodiscover(POX)".into(),
    );
    let outcome = lab
        .discoverer(&lab.url("xml"), true)
        .discover(&mailboxes(&["user6@example.test".to_owned()]))
        .await;
    let message = outcome[0].1.as_ref().expect_err("malformed").to_string();
    assert!(message.contains("malformed"), "{message}");
    lab.stop().await;
}

#[tokio::test]
async fn credentials_never_go_to_an_untrusted_or_plain_http_endpoint() {
    let lab = lab("untrusted", |_| {}).await;
    let outcome = lab
        .discoverer(&lab.url("svc"), false)
        .discover(&mailboxes(&["user1@example.test".to_owned()]))
        .await;
    let message = outcome[0].1.as_ref().expect_err("untrusted").to_string();
    assert!(message.contains("certificate"), "{message}");
    let stats = lab.stats().await;
    assert_eq!(stats["logins"], json!({}), "no login was tried: {stats}");
    assert!(
        stats["requests"]
            .as_object()
            .is_some_and(|r| !r.contains_key("GetUserSettings")),
        "no GetUserSettings was counted: {stats}"
    );
    lab.stop().await;

    // A plain HTTP Autodiscover on another machine never gets the NTLM credentials,
    // not even a probe (on this machine it is a test rig: see the unit tests).
    let plain = lab_plain().await;
    let url = format!(
        "http://autodiscover.example.test:{}/autodiscover/autodiscover.svc",
        plain.sim.addr.port()
    );
    let outcome = plain
        .discoverer(&url, true)
        .discover(&mailboxes(&["user1@example.test".to_owned()]))
        .await;
    let message = outcome[0].1.as_ref().expect_err("plain HTTP").to_string();
    assert!(message.contains("in clear"), "{message}");
    let stats = plain.stats().await;
    assert_eq!(
        stats["rejected"],
        json!({}),
        "nothing reached the server: {stats}"
    );
    assert!(
        stats["requests"]
            .as_object()
            .is_some_and(|r| !r.contains_key("GetUserSettings")),
        "no GetUserSettings was counted: {stats}"
    );
    plain.stop().await;
}

async fn lab_plain() -> Lab {
    lab("plain", |c| c.tls = None).await
}
