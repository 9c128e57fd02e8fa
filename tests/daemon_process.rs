//! The real `ews-presence run` process: SIGHUP re-reads the mailbox list, SIGTERM
//! unsubscribes everything and exits 0, and logs go to standard error without colour
//! escapes when it is not a terminal.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::client::{self, Target};
use support::daemon::{eventually, write_mailboxes};
use support::sim;

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_unsubscribes_and_exits_0() {
    let mut sim_config = sim::config();
    sim_config.minute = Duration::from_millis(1000);
    let (sim, sim_target) = sim::start(sim_config).await;
    let dir = std::env::temp_dir().join(format!("ews-presence-process-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_mailboxes(&dir, 1..=5);
    // Pick a free port for the API: bind, read, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("ews-presence.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:{port}\"\n[presence]\ndebounce_ms = 50\nheartbeat_secs = 1\n[[gateway]]\nname = \"sim\"\nurl = \"http://{}/EWS/Exchange.asmx\"\nauth = \"none\"\n[mailboxes]\nfile = \"mailboxes.txt\"\n",
            sim.addr
        ),
    )
    .unwrap();
    let stdout = std::fs::File::create(dir.join("stdout")).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["run", "--config"])
        .arg(dir.join("ews-presence.toml"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let api = Target {
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        tls: None,
    };
    let stats = || async {
        client::control(&sim_target, "GET", "/stats", None)
            .await
            .json()
    };
    let within = Duration::from_secs(15);
    eventually("five subscriptions", within, || async {
        stats().await["subscriptions_live"] == 5
    })
    .await;
    eventually("the API answers", within, || async {
        tokio::net::TcpStream::connect(api.addr).await.is_ok()
            && client::request(&api, "GET", "/readyz", &[], "")
                .await
                .status
                == 200
    })
    .await;

    write_mailboxes(&dir, [1, 2, 3, 7, 8, 9]);
    signal(child.id(), "HUP");
    eventually("the new list is applied", within, || async {
        client::request(&api, "GET", "/v1/presence/user9@example.test", &[], "")
            .await
            .status
            == 200
            && client::request(&api, "GET", "/v1/presence/user5@example.test", &[], "")
                .await
                .status
                == 404
            && stats().await["subscriptions_live"] == 6
    })
    .await;

    // An empty list drops everyone: said at warn, with the counts.
    write_mailboxes(&dir, []);
    signal(child.id(), "HUP");
    eventually("the empty list is applied", within, || async {
        stats().await["subscriptions_live"] == 0
    })
    .await;

    signal(child.id(), "TERM");
    let deadline = tokio::time::Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon did not exit"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        stats().await["subscriptions_live"],
        0,
        "everything was unsubscribed"
    );
    let out = std::fs::read_to_string(dir.join("stdout")).unwrap();
    let err = std::fs::read_to_string(dir.join("stderr")).unwrap();
    assert_eq!(out, "", "nothing on standard output");
    assert!(err.contains("started"), "logs on standard error: {err:?}");
    assert!(err.contains("mailbox list reloaded"), "{err:?}");
    let dropped = err
        .lines()
        .find(|l| l.contains("every mailbox was dropped"))
        .unwrap_or_else(|| panic!("an emptied list is reported: {err}"));
    assert!(
        dropped.contains("WARN") && dropped.contains("removed=6"),
        "{dropped}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no colour escapes into a file: {err:?}"
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_gateway_is_logged_once_at_the_default_level() {
    let (sim, target) = sim::start(sim::config()).await;
    let dir = std::env::temp_dir().join(format!("ews-presence-wrong-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_mailboxes(&dir, 1..=3);
    std::fs::write(
        dir.join("ews-presence.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[[gateway]]\nname = \"wrong\"\nurl = \"http://{}/EWS/Wrong.asmx\"\nauth = \"none\"\n[mailboxes]\nfile = \"mailboxes.txt\"\n",
            sim.addr
        ),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["run", "--config"])
        .arg(dir.join("ews-presence.toml"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    // Several retries (250 ms doubling) happen in four seconds; one warning says so.
    eventually("the failure is logged", Duration::from_secs(10), || async {
        read().contains("connection group is failing")
    })
    .await;
    // Three more attempts reach the server (each a 404 on the wrong path).
    let not_found = || async {
        client::control(&target, "GET", "/stats", None).await.json()["rejected"]["not_found"]
            .as_u64()
            .unwrap_or(0)
    };
    let at_warning = not_found().await;
    eventually("a few retries later", Duration::from_secs(20), || async {
        not_found().await >= at_warning + 3
    })
    .await;
    signal(child.id(), "TERM");
    let _ = child.wait();
    let err = read();
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("connection group is failing"))
        .collect();
    assert_eq!(warnings.len(), 1, "once, not per retry: {err}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("HTTP 404"),
        "{}",
        warnings[0]
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_even_at_trace_level() {
    use ews_sim::auth::{ExtendedProtection, SimAuth};
    const PASSWORD: &str = "Pa55-word-never-logged";
    let dir = std::env::temp_dir().join(format!("ews-presence-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = support::daemon::localhost_certificate(&dir);
    let mut sim_config = sim::config();
    sim_config.tls = Some((cert.clone(), key));
    sim_config.auth = SimAuth::Ntlm {
        password: PASSWORD.into(),
    };
    sim_config.extended_protection = ExtendedProtection::Require;
    let (sim, mut sim_target) = sim::start(sim_config).await;
    sim_target.tls =
        Some(ews::transport::client_tls(Some(&cert), std::path::Path::new("certs")).unwrap());
    write_mailboxes(&dir, 1..=5);
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(
        dir.join("ews-presence.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[[gateway]]\nname = \"sim\"\nurl = \"https://localhost:{}/EWS/Exchange.asmx\"\nauth = \"ntlm\"\nusername = \"svc@example.test\"\npassword_file = \"password\"\nca_file = \"{}\"\n[mailboxes]\nfile = \"mailboxes.txt\"\n",
            sim.addr.port(),
            cert.display()
        ),
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["run", "--config"])
        .arg(dir.join("ews-presence.toml"))
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    eventually(
        "five subscriptions over NTLM",
        Duration::from_secs(15),
        || async {
            client::control(&sim_target, "GET", "/stats", None)
                .await
                .json()["subscriptions_live"]
                == 5
        },
    )
    .await;
    signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.join("stderr")).unwrap();
    assert!(log.lines().count() > 20, "trace logging was on: {log}");
    for secret in [
        PASSWORD,
        "TlRMTVNT",
        "NTLMSSP",
        "Negotiate TlRM",
        "NTLM TlRM",
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log");
    }
    assert!(
        !log.to_ascii_lowercase().contains("authorization:"),
        "an Authorization header is in the log"
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_systemd_when_ready_and_stopping_and_logs_json_lines() {
    let (sim, _target) = sim::start(sim::config()).await;
    let dir = std::env::temp_dir().join(format!("ews-presence-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_mailboxes(&dir, 1..=5);
    std::fs::write(
        dir.join("ews-presence.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[[gateway]]\nname = \"sim\"\nurl = \"http://{}/EWS/Exchange.asmx\"\nauth = \"none\"\n[mailboxes]\nfile = \"mailboxes.txt\"\n",
            sim.addr
        ),
    )
    .unwrap();
    // systemd's side: a datagram socket named by NOTIFY_SOCKET.
    let socket_path = dir.join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["run", "--log-format", "json", "--config"])
        .arg(dir.join("ews-presence.toml"))
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut buf = vec![0u8; 4096];
    let deadline = Duration::from_secs(15);
    while !seen.contains("READY=1") {
        let n = tokio::time::timeout(deadline, socket.recv(&mut buf))
            .await
            .expect("READY=1 within the deadline")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(seen.contains("STATUS=serving 5 mailboxes"), "{seen}");
    signal(child.id(), "TERM");
    let mut stopping = String::new();
    while !stopping.contains("STOPPING=1") {
        let n = tokio::time::timeout(deadline, socket.recv(&mut buf))
            .await
            .expect("STOPPING=1 within the deadline")
            .unwrap();
        stopping.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.join("stderr")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "started" && l["mailboxes"] == 5),
        "fields are carried: {log}"
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gateway_down_still_gets_ready_1_and_names_the_dead_gateway() {
    let (sim, _target) = sim::start(sim::config()).await;
    let dir = std::env::temp_dir().join(format!("ews-presence-halfdown-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A server that accepts connections and never answers: each request times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let mut list = String::new();
    for n in 1..=3 {
        list.push_str(&format!("user{n}@example.test up\n"));
    }
    for n in 4..=6 {
        list.push_str(&format!("user{n}@example.test silent\n"));
    }
    std::fs::write(dir.join("mailboxes.txt"), list).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let request_timeout = 3;
    std::fs::write(
        dir.join("ews-presence.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [[gateway]]\nname = \"up\"\nurl = \"http://{}/EWS/Exchange.asmx\"\nauth = \"none\"\n\
             [[gateway]]\nname = \"silent\"\nurl = \"http://{silent_addr}/EWS/Exchange.asmx\"\nauth = \"none\"\nrequest_timeout_secs = {request_timeout}\n\
             [mailboxes]\nfile = \"mailboxes.txt\"\n",
            sim.addr
        ),
    )
    .unwrap();
    let socket_path = dir.join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["run", "--config"])
        .arg(dir.join("ews-presence.toml"))
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(request_timeout + 7);
    while !seen.contains("READY=1") {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!("READY=1 within the request timeout and a few seconds: {seen}")
            })
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    let ready = seen
        .split('\n')
        .skip_while(|l| *l != "READY=1")
        .find(|l| l.starts_with("STATUS="))
        .unwrap_or_default()
        .to_owned();
    assert!(
        ready.starts_with("STATUS=serving 6 mailboxes, 3 failing"),
        "{seen}"
    );
    let api = Target {
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        tls: None,
    };
    let presence = |n: usize| {
        let api = api.clone();
        async move {
            client::request(
                &api,
                "GET",
                &format!("/v1/presence/user{n}@example.test"),
                &[],
                "",
            )
            .await
            .json()
        }
    };
    for n in 4..=6 {
        let p = presence(n).await;
        assert_eq!(p["availability"], "unknown");
        assert!(
            p["problem"]
                .as_str()
                .is_some_and(|t| t.starts_with("silent: ")
                    && t.contains(&format!("no answer within {request_timeout}"))),
            "{p}"
        );
    }
    for n in 1..=3 {
        let p = presence(n).await;
        assert_eq!(p.get("problem"), Some(&serde_json::Value::Null), "{p}");
    }
    signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    drop(silent);
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
