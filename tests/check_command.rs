//! `ews-presence check`: every gateway checked in parallel, step by step, each failure
//! saying plainly what is wrong and what to change; exit 0 only when all pass, 1
//! otherwise, 2 on a bad configuration.

mod support;

use std::path::Path;
use std::process::Output;

use ews_sim::auth::{ExtendedProtection, SimAuth};
use ews_sim::{Running, SimConfig};
use serde_json::Value;
use support::daemon::localhost_certificate;

async fn sim(dir: &Path) -> (Running, std::path::PathBuf) {
    let (cert, key) = localhost_certificate(dir);
    let (running, _) = support::sim::start(SimConfig {
        mailboxes: 10,
        tls: Some((cert.clone(), key)),
        auth: SimAuth::Ntlm {
            password: "right".into(),
        },
        extended_protection: ExtendedProtection::Require,
        ..SimConfig::default()
    })
    .await;
    (running, cert)
}

fn gateway(name: &str, host: &str, port: u16, password_file: &str, ca: &Path) -> String {
    format!(
        "[[gateway]]\nname = \"{name}\"\nurl = \"https://{host}:{port}/EWS/Exchange.asmx\"\nauth = \"ntlm\"\nusername = \"svc@example.test\"\npassword_file = \"{password_file}\"\nca_file = \"{}\"\n",
        ca.display()
    )
}

async fn run_check(config: &Path, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ews-presence"));
    command.args(["check", "--config"]).arg(config).args(args);
    tokio::task::spawn_blocking(move || command.output().expect("runs"))
        .await
        .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_names_its_step_and_what_to_change() {
    let dir = std::env::temp_dir().join(format!("ews-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (sim, cert) = sim(&dir).await;
    // A CA of another name that never signed the simulator's certificate.
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Some other CA");
    let other = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let unrelated = dir.join("other-ca.pem");
    std::fs::write(&unrelated, other.pem()).unwrap();
    std::fs::write(dir.join("right.pw"), "right\n").unwrap();
    std::fs::write(dir.join("wrong.pw"), "wrong\n").unwrap();
    std::fs::write(dir.join("mailboxes.txt"), "user3@example.test\n").unwrap();
    let port = sim.addr.port();
    let config = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\n{}{}{}{}[mailboxes]\nfile = \"mailboxes.txt\"\n",
        gateway("good", "localhost", port, "right.pw", &cert),
        gateway("by-address", "127.0.0.1", port, "right.pw", &cert),
        gateway("wrong-password", "localhost", port, "wrong.pw", &cert),
        gateway("untrusted", "localhost", port, "right.pw", &unrelated),
    );
    std::fs::write(dir.join("c.toml"), &config).unwrap();
    let output = run_check(
        &dir.join("c.toml"),
        &["--json", "--mailbox", "user3@example.test"],
    )
    .await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let gateways = report["gateways"].as_array().unwrap();
    let by = |name: &str| {
        gateways
            .iter()
            .find(|g| g["gateway"] == name)
            .unwrap()
            .clone()
    };
    let good = by("good");
    assert_eq!(good["ok"], true, "{good}");
    let steps: Vec<&str> = good["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "dns",
            "tcp",
            "tls",
            "auth",
            "server version",
            "subscribe",
            "availability",
            "automatic replies"
        ]
    );
    let auth = &good["steps"][3]["detail"];
    assert!(
        auth.as_str()
            .unwrap()
            .contains("offered: Negotiate, NTLM; used: ntlm"),
        "{auth}"
    );
    let failed = |g: &Value| {
        g["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["ok"] == false)
            .cloned()
            .unwrap()
    };
    let names = failed(&by("by-address"));
    assert_eq!(names["step"], "tls");
    assert!(
        names["detail"]
            .as_str()
            .unwrap()
            .contains("names do not cover 127.0.0.1"),
        "{names}"
    );
    let password = failed(&by("wrong-password"));
    assert_eq!(password["step"], "auth");
    assert!(
        password["detail"]
            .as_str()
            .unwrap()
            .contains("svc@example.test"),
        "{password}"
    );
    assert!(
        password["fix"].as_str().unwrap().contains("password_file"),
        "{password}"
    );
    let trust = failed(&by("untrusted"));
    assert_eq!(trust["step"], "tls");
    assert!(
        trust["detail"]
            .as_str()
            .unwrap()
            .contains("not issued by a CA we trust"),
        "{trust}"
    );
    assert!(
        trust["fix"].as_str().unwrap().contains("ca_file"),
        "{trust}"
    );

    // Only the good gateway: exit 0, and a table for people.
    let only_good = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\n{}[mailboxes]\nfile = \"mailboxes.txt\"\n",
        gateway("good", "localhost", port, "right.pw", &cert)
    );
    std::fs::write(dir.join("good.toml"), only_good).unwrap();
    let output = run_check(&dir.join("good.toml"), &[]).await;
    assert_eq!(output.status.code(), Some(0));
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        table.lines().count(),
        9,
        "a header and a row per step: {table}"
    );
    assert!(
        table.lines().skip(1).all(|l| l.contains(" pass ")),
        "{table}"
    );

    // A bad configuration: exit 2.
    std::fs::write(dir.join("bad.toml"), "[api]\nlisten = 1\n").unwrap();
    assert_eq!(
        run_check(&dir.join("bad.toml"), &[]).await.status.code(),
        Some(2)
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_a_mailbox_is_checked_up_to_the_mailbox_steps() {
    let dir = std::env::temp_dir().join(format!("ews-check-nomailbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (sim, cert) = sim(&dir).await;
    std::fs::write(dir.join("right.pw"), "right\n").unwrap();
    std::fs::write(dir.join("wrong.pw"), "wrong\n").unwrap();
    // One mailbox, on the first gateway only.
    std::fs::write(
        dir.join("mailboxes.txt"),
        "user3@example.test with-mailbox\n",
    )
    .unwrap();
    let port = sim.addr.port();
    let healthy = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\n{}{}[mailboxes]\nfile = \"mailboxes.txt\"\n",
        gateway("with-mailbox", "localhost", port, "right.pw", &cert),
        gateway("without", "localhost", port, "right.pw", &cert),
    );
    std::fs::write(dir.join("healthy.toml"), &healthy).unwrap();
    let output = run_check(&dir.join("healthy.toml"), &["--json"]).await;
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        output.status.code(),
        Some(0),
        "skipped is not failed: {report}"
    );
    let without = &report["gateways"][1];
    assert_eq!(without["gateway"], "without");
    let results: Vec<(&str, &str)> = without["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [
            ("dns", "pass"),
            ("tcp", "pass"),
            ("tls", "pass"),
            ("auth", "pass"),
            ("server version", "pass"),
            ("subscribe", "skipped"),
            ("availability", "skipped"),
            ("automatic replies", "skipped"),
        ],
        "{without}"
    );
    assert!(
        without["steps"][5]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("--mailbox ADDRESS")),
        "{without}"
    );
    // The table says skip, with the fix.
    let output = run_check(&dir.join("healthy.toml"), &[]).await;
    assert_eq!(output.status.code(), Some(0));
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("without") && l.contains(" skip "))
            .count(),
        3,
        "{table}"
    );

    // A wrong password on the gateway without a mailbox is found.
    let wrong = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\n{}{}[mailboxes]\nfile = \"mailboxes.txt\"\n",
        gateway("with-mailbox", "localhost", port, "right.pw", &cert),
        gateway("without", "localhost", port, "wrong.pw", &cert),
    );
    std::fs::write(dir.join("wrong.toml"), &wrong).unwrap();
    let output = run_check(&dir.join("wrong.toml"), &["--json"]).await;
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let auth = &report["gateways"][1]["steps"][3];
    assert_eq!(auth["step"], "auth", "{report}");
    assert_eq!(auth["result"], "fail", "{report}");
    assert!(
        auth["detail"]
            .as_str()
            .is_some_and(|d| d.contains("credentials for svc@example.test refused")),
        "{auth}"
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
