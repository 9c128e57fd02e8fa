//! The status page in a real headless Chromium, driven over WebDriver (chromedriver):
//! it loads with no errors, shows the gateway and the counts, a transition made in the
//! simulator appears on it within a second, and the mailbox search shows the meeting
//! just created, on the bar as well; a mailbox that cannot be served says why, on the
//! gateway and when searched. At 390, 1280, 1400 and 1920 px wide nothing scrolls
//! sideways and no label is clipped, and the browser logs nothing (no missing
//! favicon). With `EWS_PRESENCE_SCREENSHOT=FILE` it also saves a screenshot of the
//! page (`FILE` with the width before the extension, for each width).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::client::{self, Target};
use support::daemon::{Options, eventually, rig};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One page test at a time: they read process-wide metrics (the page's feed
/// connecting is seen in `ews_presence_api_requests_total`), which another daemon in
/// the same test process would also move.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A chromedriver process and one browser session.
struct Browser {
    driver: Child,
    target: Target,
    session: String,
    profile: std::path::PathBuf,
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let target = Target {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            tls: None,
        };
        eventually("chromedriver listens", Duration::from_secs(20), || async {
            tokio::net::TcpStream::connect(target.addr).await.is_ok()
        })
        .await;
        let profile =
            std::env::temp_dir().join(format!("ews-chromium-{}-{port}", std::process::id()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.display())],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let reply = client::request(
            &target,
            "POST",
            "/session",
            &[("Content-Type", "application/json")],
            capabilities.to_string(),
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "new session: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let session = reply.json()["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        Browser {
            driver,
            target,
            session,
            profile,
        }
    }

    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let reply = client::request(
            &self.target,
            method,
            &format!("/session/{}{path}", self.session),
            &[("Content-Type", "application/json")],
            if method == "GET" {
                String::new()
            } else {
                body.to_string()
            },
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{method} {path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command("POST", "/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body) in the page; its return value.
    async fn run(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn text_of(&self, id: &str) -> String {
        self.run(&format!(
            "return (document.getElementById('{id}') || {{}}).textContent || '';"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// What the page logged to the browser's console since last asked.
    async fn console(&self) -> Vec<Value> {
        self.command("POST", "/se/log", json!({"type": "browser"}))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Resizes the window so that the page is `width` CSS pixels wide.
    async fn width(&self, width: u32) {
        self.command(
            "POST",
            "/window/rect",
            json!({"width": width, "height": 900}),
        )
        .await;
    }

    async fn close(mut self) {
        let _ = client::request(
            &self.target,
            "DELETE",
            &format!("/session/{}", self.session),
            &[],
            "",
        )
        .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_gateways_transitions_and_a_mailboxs_day() {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        support::missing("chromium and chromium-driver (Debian packages)");
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    // A SIP presence server that is not there: the page says what fails.
    let closed_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a UDP port")
        .port();
    let rig = rig(Options {
        mailboxes: 20,
        // An admin token: the page's button runs the checks.
        token: Some("page-token admin"),
        sections: format!(
            "[[sip]]\nname = \"presence-lab\"\nserver = \"sip:127.0.0.1:{closed_port};transport=udp\"\n"
        ),
        ..Options::default()
    })
    .await;
    // One mailbox the server does not know: it cannot be served, and must say why.
    support::daemon::write_mailboxes(&rig.dir, (1..=20).chain([99]));
    rig.app.reload().expect("the list reloads");
    rig.ready().await;
    let browser = Browser::start().await;
    let page = format!("http://{}/", rig.api.addr);
    // Metrics are process-wide: the page's feed is seen as one more watch than before.
    let watches_before = rig
        .metric(
            "ews_presence_api_requests_total",
            "route=\"watch\",status=\"200\"",
        )
        .await
        .unwrap_or(0.0);
    browser.open(&page).await;
    // The token is asked for once and kept in the tab's session.
    eventually("the token form", Duration::from_secs(10), || async {
        browser
            .run("return getComputedStyle(document.getElementById('token-panel')).display;")
            .await
            == "block"
    })
    .await;
    browser
        .run("document.getElementById('token').value = 'page-token'; document.getElementById('token-save').click(); return true;")
        .await;
    eventually("the gateway is shown", Duration::from_secs(10), || async {
        browser.text_of("gateways").await.contains(&rig.gateway)
    })
    .await;
    eventually("the counts are shown", Duration::from_secs(10), || async {
        let counts = browser
            .run("return ['available','in-a-meeting','away','unknown'].map(k => Number(document.getElementById('count-' + k).textContent) || 0).reduce((a, b) => a + b, 0);")
            .await;
        counts == 21
    })
    .await;
    // Let the page's change feed connect, then make a transition in the simulator.
    eventually(
        "the page watches the feed",
        Duration::from_secs(10),
        || async {
            rig.metric(
                "ews_presence_api_requests_total",
                "route=\"watch\",status=\"200\"",
            )
            .await
            .is_some_and(|n| n > watches_before)
        },
    )
    .await;
    let n = rig.available_mailbox(1, 20).await;
    let user = format!("user{n}@example.test");
    rig.cover_now(n, "Busy").await;
    let made = tokio::time::Instant::now();
    eventually(
        "the transition appears on the page",
        Duration::from_secs(10),
        || async {
            browser
                .text_of("transitions")
                .await
                .contains(&format!("{user}: available → in-a-meeting"))
        },
    )
    .await;
    let took = made.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "the transition took {took:?} to appear"
    );
    // The meeting is published to the SIP server, which is not there: said, with when
    // the next attempt goes out.
    eventually(
        "the presence server's failure is shown",
        Duration::from_secs(10),
        || async {
            let shown = browser.text_of("publishers").await;
            shown.contains("presence-lab")
                && shown.contains("failing, next attempt")
                && shown.contains("nothing listens on 127.0.0.1:")
        },
    )
    .await;
    // The search shows the meeting just created, now and on today's bar.
    browser
        .run(&format!("document.getElementById('search-input').value = '{user}'; document.getElementById('search-button').click(); return true;"))
        .await;
    eventually(
        "the mailbox is shown in a meeting",
        Duration::from_secs(10),
        || async {
            browser
                .text_of("mailbox")
                .await
                .starts_with(&format!("{user}: in-a-meeting"))
        },
    )
    .await;
    eventually("today's bar shows the meeting", Duration::from_secs(10), || async {
        let on_bar = browser
            .run("return [...document.querySelectorAll('#bar div[data-availability]')].map(d => d.dataset.availability);")
            .await;
        on_bar
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a == "in-a-meeting"))
    })
    .await;
    // The checks run on demand: the gateway's pass, the absent SIP server's fail with
    // what to do.
    browser
        .run("document.getElementById('run-checks').click(); return true;")
        .await;
    eventually("the checks ran", Duration::from_secs(20), || async {
        browser.text_of("checks-state").await == "some failed"
    })
    .await;
    let checks = browser.text_of("checks").await;
    assert!(
        checks.contains(&format!("{} · subscribe pass", rig.gateway)),
        "{checks}"
    );
    assert!(
        checks.contains("presence-lab · sip options FAIL")
            && checks.contains("fix: check that the server listens on 127.0.0.1:"),
        "{checks}"
    );
    // The mailbox that cannot be served says why, on its gateway and when searched.
    eventually(
        "the gateway shows the problem",
        Duration::from_secs(10),
        || async {
            let gateways = browser.text_of("gateways").await;
            gateways.contains("1 mailbox: ") && gateways.contains("Subscribe refused")
        },
    )
    .await;
    browser
        .run("document.getElementById('search-input').value = 'user99@example.test'; document.getElementById('search-button').click(); return true;")
        .await;
    eventually(
        "the searched mailbox says why",
        Duration::from_secs(10),
        || async {
            let shown = browser.text_of("mailbox").await;
            shown.starts_with("user99@example.test: unknown") && shown.contains("Subscribe refused")
        },
    )
    .await;
    // Every width: nothing scrolls sideways, no label is clipped.
    for width in [390, 1280, 1400, 1920] {
        browser.width(width).await;
        let layout = browser
            .run(
                "const clipped = [...document.querySelectorAll('.count, .gateway, .check, li, section, h2, header')]
                   .filter(e => e.scrollWidth > e.clientWidth + 1)
                   .map(e => e.id || e.className || e.tagName);
                 return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth, clipped};",
            )
            .await;
        let inner = layout["inner"].as_f64().unwrap_or(0.0);
        assert!(
            (inner - f64::from(width)).abs() <= 20.0,
            "the window is {width} px wide: {layout}"
        );
        assert!(
            layout["scroll"].as_f64().unwrap_or(f64::MAX) <= inner,
            "scrolls sideways at {width} px: {layout}"
        );
        assert_eq!(
            layout["clipped"],
            json!([]),
            "clipped at {width} px: {layout}"
        );
        if let Ok(path) = std::env::var("EWS_PRESENCE_SCREENSHOT") {
            let png = browser.command("GET", "/screenshot", Value::Null).await;
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(png.as_str().unwrap())
                .unwrap();
            let path = std::path::Path::new(&path);
            let named = path.with_file_name(format!(
                "{}-{width}.{}",
                path.file_stem().and_then(|s| s.to_str()).unwrap_or("page"),
                path.extension().and_then(|s| s.to_str()).unwrap_or("png")
            ));
            std::fs::write(named, bytes).unwrap();
        }
    }
    let errors = browser.run("return window.__errors;").await;
    assert_eq!(errors, json!([]), "no errors in the page");
    let console = browser.console().await;
    assert_eq!(console, Vec::<Value>::new(), "nothing on the console");
    browser.close().await;
    rig.stop().await;
}

/// A Graph gateway beside an EWS one: the page shows both, the Graph one with its
/// notifications and subscriptions instead of streams, and both healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_a_graph_gateway_as_it_shows_an_ews_one() {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        support::missing("chromium and chromium-driver (Debian packages)");
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    let rig = rig(Options {
        mailboxes: 6,
        graph_mailboxes: vec![4, 5, 6],
        ..Options::default()
    })
    .await;
    rig.ready().await;
    let browser = Browser::start().await;
    browser.open(&format!("http://{}/", rig.api.addr)).await;
    eventually(
        "both gateways are shown",
        Duration::from_secs(10),
        || async {
            let shown = browser.text_of("gateways").await;
            shown.contains(&rig.gateway)
                && shown.contains("online ok")
                && shown.contains("Microsoft Graph · notifications")
                && shown.contains("subscriptions 3 · mailboxes 3")
        },
    )
    .await;
    let shown = browser.text_of("gateways").await;
    assert!(
        shown.contains("streams 1"),
        "the EWS gateway still shows its streams: {shown}"
    );
    browser.close().await;
    rig.stop().await;
}
