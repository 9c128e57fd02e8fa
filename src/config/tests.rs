//! The configuration's tests: good files, every kind of error, the environment.

use std::time::Duration;

use ews::transport::{Auth, Secret};
use ews::types::RequestServerVersion;

use super::hints::edit_distance;
use super::*;
use crate::presence::timeline::Availability;

/// A gateway configuration for unit tests elsewhere in the crate.
pub(crate) fn gateway_config(name: &str, url: &str) -> GatewayConfig {
    GatewayConfig {
        name: name.into(),
        url: Some(url.parse().expect("test URL")),
        autodiscover: None,
        auth: Auth::None,
        ca_file: None,
        server_version: RequestServerVersion::Exchange2016,
        impersonation: true,
        max_subscriptions_per_connection: 200,
        max_connections: None,
        request_timeout: Duration::from_secs(10),
        allow_plain_http: false,
        graph: None,
    }
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("ews-presence-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

const GOOD: &str = r#"
[api]
listen = "127.0.0.1:9000"
[presence]
debounce_ms = 0
working_elsewhere = "in-a-meeting"
[[gateway]]
name = "exch1"
url = "https://exch1.example.test/EWS/Exchange.asmx"
username = "svc@example.test"
password_file = "pw"
[[gateway]]
name = "lab"
url = "http://127.0.0.1:8443/EWS/Exchange.asmx"
auth = "none"
[mailboxes]
file = "mailboxes.txt"
"#;

fn load(d: &Dir, toml: &str, mailboxes: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    std::fs::write(d.0.join("c.toml"), toml).unwrap();
    std::fs::write(d.0.join("pw"), "hunter2\n").unwrap();
    std::fs::write(d.0.join("mailboxes.txt"), mailboxes).unwrap();
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(&d.0.join("c.toml"), &env)
}

#[test]
fn loads_a_good_config_with_overrides() {
    let d = dir("good");
    let c = load(
        &d,
        GOOD,
        "# people\nA@example.test\nb@example.test lab\n\n",
        &[
            ("EWS_PRESENCE_API_LISTEN", "127.0.0.1:9100"),
            ("EWS_PRESENCE_GATEWAY_MAX_CONNECTIONS", "3"),
        ],
    )
    .unwrap();
    assert_eq!(c.api.listen.port(), 9100);
    assert_eq!(c.presence.debounce, Duration::ZERO);
    assert_eq!(
        c.presence.mapping.working_elsewhere,
        Availability::InAMeeting
    );
    assert_eq!(
        c.gateways[0].auth,
        Auth::Basic {
            username: "svc@example.test".into(),
            password: Secret::new("hunter2")
        }
    );
    assert!(c.gateways.iter().all(|g| g.max_connections == Some(3)));
    assert_eq!(
        c.mailboxes
            .iter()
            .map(|(m, g)| (m.as_str(), *g))
            .collect::<Vec<_>>(),
        [("a@example.test", 0), ("b@example.test", 1)]
    );
}

#[test]
fn credentials_over_plain_http_are_refused_but_on_loopback_or_when_allowed() {
    let d = dir("plain-http");
    let with = |url: &str, extra: &str| {
        GOOD.replace(
            "url = \"https://exch1.example.test/EWS/Exchange.asmx\"",
            &format!("url = \"{url}\"\n{extra}"),
        )
    };
    let refused = load(
        &d,
        &with("http://exch1.example.test/EWS/Exchange.asmx", ""),
        "a@example.test",
        &[],
    )
    .unwrap_err();
    assert_eq!(refused.key, "gateway[0].url");
    assert!(
        refused.message.contains("auth = \"basic\"")
            && refused.message.contains("in clear")
            && refused.message.contains("allow_plain_http"),
        "{refused}"
    );
    for loopback in [
        "http://127.0.0.1:8080/EWS/Exchange.asmx",
        "http://localhost/EWS",
        "http://[::1]:80/EWS",
    ] {
        let c = load(&d, &with(loopback, ""), "a@example.test", &[]).unwrap();
        assert_eq!(c.gateways[0].plain_http_warning(), None, "{loopback}");
    }
    let allowed = load(
        &d,
        &with(
            "http://exch1.example.test/EWS/Exchange.asmx",
            "allow_plain_http = true",
        ),
        "a@example.test",
        &[],
    )
    .unwrap();
    let warning = allowed.gateways[0].plain_http_warning().expect("a warning");
    assert!(
        warning.contains("svc@example.test") && warning.contains("in clear"),
        "{warning}"
    );
    // Without credentials there is nothing to protect (the lab gateway).
    assert!(
        load(&d, GOOD, "a@example.test", &[]).unwrap().gateways[1]
            .plain_http_warning()
            .is_none()
    );
    // Autodiscover follows the same rule.
    let discovered = GOOD.replace(
            "url = \"https://exch1.example.test/EWS/Exchange.asmx\"",
            "autodiscover = true\nautodiscover_url = \"http://ad.example.test/autodiscover/autodiscover.svc\"",
        );
    let refused = load(&d, &discovered, "a@example.test", &[]).unwrap_err();
    assert_eq!(refused.key, "gateway[0].autodiscover_url", "{refused}");
}

#[test]
fn errors_say_what_to_write_instead() {
    let d = dir("hints");
    let typo = load(
        &d,
        &GOOD.replace("debounce_ms = 0", "debounse_ms = 0"),
        "a@example.test",
        &[],
    )
    .unwrap_err();
    assert!(
        typo.message.contains("did you mean `debounce_ms`?"),
        "{typo}"
    );
    let password = load(
        &d,
        &GOOD.replace("password_file = \"pw\"", "password = \"hunter2\""),
        "a@example.test",
        &[],
    )
    .unwrap_err();
    assert!(
        password.message.contains("password_file = \"path\""),
        "{password}"
    );
    assert!(
        !password.to_string().contains("hunter2"),
        "the secret is not repeated"
    );
    let escape = load(
        &d,
        &GOOD.replace(
            "username = \"svc@example.test\"",
            "username = \"CONTOSO\\svc\"",
        ),
        "a@example.test",
        &[],
    )
    .unwrap_err();
    assert!(escape.message.contains("single quotes"), "{escape}");
    let version = load(
        &d,
        &GOOD.replace(
            "password_file = \"pw\"",
            "password_file = \"pw\"\nserver_version = \"Exchange2019\"",
        ),
        "a@example.test",
        &[],
    )
    .unwrap_err();
    assert_eq!(version.key, "gateway[0].server_version");
    assert!(version.message.contains("\"Exchange2016\""), "{version}");
    assert!(
        version.message.contains("Subscription Edition"),
        "{version}"
    );
    assert_eq!(edit_distance("debounse_ms", "debounce_ms"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
}

#[test]
fn the_state_directory_defaults_beside_the_file_or_to_systemds() {
    let d = dir("state");
    let beside = load(&d, GOOD, "a@example.test", &[]).unwrap();
    assert_eq!(beside.state_dir, d.0.join("state"));
    let systemd = load(
        &d,
        GOOD,
        "a@example.test",
        &[("STATE_DIRECTORY", "/var/lib/ews-presence")],
    )
    .unwrap();
    assert_eq!(systemd.state_dir, PathBuf::from("/var/lib/ews-presence"));
    let set = load(
        &d,
        GOOD,
        "a@example.test",
        &[
            ("STATE_DIRECTORY", "/var/lib/x"),
            ("EWS_PRESENCE_STATE_DIR", "kept"),
        ],
    )
    .unwrap();
    assert_eq!(set.state_dir, d.0.join("kept"), "the configuration wins");
}

#[test]
fn the_mailbox_list_takes_an_opt_out_flag() {
    let d = dir("opt-out-flag");
    let c = load(
        &d,
        GOOD,
        "a@example.test opt-out\nb@example.test lab opt-out\nc@example.test lab\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.mailboxes.len(), 3);
    assert_eq!(
        c.opted_out.iter().map(Mailbox::as_str).collect::<Vec<_>>(),
        ["a@example.test", "b@example.test"]
    );
    for bad in [
        "a@example.test opt-out lab",
        "a@example.test lab lab",
        "a@example.test opt-out opt-out",
    ] {
        let e = load(&d, GOOD, bad, &[]).unwrap_err();
        assert!(e.message.contains("[opt-out]"), "{bad}: {e}");
    }
}

#[test]
fn api_tls_needs_a_certificate_and_its_key_and_a_client_ca_needs_both() {
    let d = dir("api-tls");
    let with = |lines: &str| {
        GOOD.replace(
            "listen = \"127.0.0.1:9000\"",
            &format!("listen = \"127.0.0.1:9000\"\n{lines}"),
        )
    };
    let c = load(
            &d,
            &with("tls_cert_file = \"api.pem\"\ntls_key_file = \"api.key\"\nclient_ca_file = \"clients.pem\""),
            "a@example.test",
            &[],
        )
        .unwrap();
    let tls = c.api.tls.expect("TLS configured");
    assert_eq!(tls.cert_file, d.0.join("api.pem"), "relative to the file");
    assert_eq!(tls.client_ca_file, Some(d.0.join("clients.pem")));
    for (lines, key) in [
        ("tls_cert_file = \"api.pem\"", "api.tls_key_file"),
        ("tls_key_file = \"api.key\"", "api.tls_cert_file"),
        ("client_ca_file = \"clients.pem\"", "api.client_ca_file"),
    ] {
        let e = load(&d, &with(lines), "a@example.test", &[]).unwrap_err();
        assert_eq!(e.key, key, "{e}");
    }
    assert!(
        load(&d, GOOD, "a@example.test", &[])
            .unwrap()
            .api
            .tls
            .is_none()
    );
}

#[test]
fn autodiscover_makes_url_optional_and_its_keys_need_it() {
    let d = dir("autodiscover");
    let lab = |lines: &str| {
        GOOD.replace(
            "url = \"http://127.0.0.1:8443/EWS/Exchange.asmx\"\nauth = \"none\"",
            &format!("auth = \"none\"\n{lines}"),
        )
    };
    let c = load(
            &d,
            &lab("autodiscover = true\nautodiscover_url = \"https://ad.example.test/autodiscover/autodiscover.svc\"\nautodiscover_prefer = \"internal\"\nautodiscover_ttl_secs = 3600"),
            "a@example.test",
            &[],
        )
        .unwrap();
    let lab_gw = &c.gateways[1];
    assert_eq!(lab_gw.url, None);
    let a = lab_gw.autodiscover.as_ref().unwrap();
    assert!(a.prefer_internal);
    assert_eq!(a.ttl, Duration::from_secs(3600));
    assert_eq!(lab_gw.describe_url(), "autodiscover");
    let default_ttl = load(&d, &lab("autodiscover = true"), "a@example.test", &[]).unwrap();
    assert_eq!(
        default_ttl.gateways[1].autodiscover.as_ref().unwrap().ttl,
        Duration::from_secs(86_400)
    );
    for (lines, key) in [
        ("", "gateway[1].url"),
        ("autodiscover = false", "gateway[1].url"),
        (
            "autodiscover_url = \"https://x.test/a.svc\"",
            "gateway[1].autodiscover_url",
        ),
        (
            "autodiscover = true\nautodiscover_prefer = \"both\"",
            "gateway[1].autodiscover_prefer",
        ),
        (
            "autodiscover = true\nautodiscover_ttl_secs = 5",
            "gateway[1].autodiscover_ttl_secs",
        ),
        (
            "autodiscover = true\nautodiscover_url = \"ftp://x.test/\"",
            "gateway[1].autodiscover_url",
        ),
    ] {
        let e = load(&d, &lab(lines), "a@example.test", &[]).unwrap_err();
        assert_eq!(e.key, key, "{lines}: {e}");
    }
}

#[test]
fn numbers_out_of_range_urls_with_passwords_and_long_addresses_are_refused() {
    let d = dir("refused");
    let presence = |line: &str| GOOD.replace("debounce_ms = 0", line);
    let cases = [
        (
            presence("debounce_ms = 9223372036854775807"),
            "presence.debounce_ms",
        ),
        (
            presence("horizon_hours = 100000000"),
            "presence.horizon_hours",
        ),
        (
            presence("horizon_hours = 5124095576030432"),
            "presence.horizon_hours",
        ),
        (presence("heartbeat_secs = 0"), "presence.heartbeat_secs"),
        (
            presence("oof_refresh_secs = 0"),
            "presence.oof_refresh_secs",
        ),
        (
            GOOD.replace("127.0.0.1:9000", "127.0.0.1:99999"),
            "api.listen",
        ),
        (
            GOOD.replace("auth = \"none\"", "auth = \"none\"\nmax_connections = 0"),
            "gateway[1].max_connections",
        ),
        (
            GOOD.replace(
                "auth = \"none\"",
                "auth = \"none\"\nrequest_timeout_secs = 86400",
            ),
            "gateway[1].request_timeout_secs",
        ),
        (
            GOOD.replace(
                "http://127.0.0.1:8443",
                "http://admin:hunter2@127.0.0.1:8443",
            ),
            "gateway[1].url",
        ),
    ];
    for (text, key) in cases {
        let e = load(&d, &text, "a@example.test", &[]).unwrap_err();
        assert_eq!(e.key, key, "{e}");
        assert!(
            !e.to_string().contains("hunter2"),
            "a password is never echoed: {e}"
        );
    }
    let long = format!("{}@example.test", "x".repeat(300));
    let e = load(&d, GOOD, &long, &[]).unwrap_err();
    assert!(e.to_string().contains("local part"), "{e}");
}

#[test]
fn an_error_from_the_environment_names_the_variable() {
    let d = dir("env-blame");
    for value in ["99999999", "soon"] {
        let e = load(
            &d,
            GOOD,
            "a@example.test",
            &[("EWS_PRESENCE_PRESENCE_DEBOUNCE_MS", value)],
        )
        .unwrap_err();
        assert_eq!(e.key, "EWS_PRESENCE_PRESENCE_DEBOUNCE_MS", "{value}: {e}");
    }
    let e = load(
        &d,
        GOOD,
        "a@example.test",
        &[("EWS_PRESENCE_GATEWAY_MAX_CONNECTIONS", "0")],
    )
    .unwrap_err();
    assert_eq!(e.key, "EWS_PRESENCE_GATEWAY_MAX_CONNECTIONS", "{e}");
}

#[test]
fn max_stale_has_a_default_and_a_range() {
    let d = dir("stale");
    let c = load(&d, GOOD, "a@example.test", &[]).unwrap();
    assert_eq!(c.presence.max_stale, Duration::from_secs(900));
    let set = |v: &str| {
        GOOD.replace(
            "debounce_ms = 0",
            &format!("debounce_ms = 0\nmax_stale_secs = {v}"),
        )
    };
    let c = load(&d, &set("3600"), "a@example.test", &[]).unwrap();
    assert_eq!(c.presence.max_stale, Duration::from_secs(3600));
    for bad in ["0", "59", "86401"] {
        let e = load(&d, &set(bad), "a@example.test", &[]).unwrap_err();
        assert_eq!(e.key, "presence.max_stale_secs", "{bad}: {e}");
    }
}

#[test]
fn errors_name_the_key_or_line() {
    let d = dir("bad");
    /// (config text, mailbox file, environment, key the error must name)
    type Case<'a> = (String, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 8] = [
        (
            GOOD.replace("debounce_ms", "debounce_msec"),
            "x@example.test",
            &[],
            "debounce_msec",
        ),
        (
            GOOD.replace("password_file = \"pw\"", "password_file = \"missing\""),
            "x@example.test",
            &[],
            "gateway[0].password_file",
        ),
        (
            GOOD.replace("https://exch1", "ftp://exch1"),
            "x@example.test",
            &[],
            "gateway[0].url",
        ),
        (
            GOOD.to_owned(),
            "x@example.test\nX@example.test",
            &[],
            "mailboxes.txt:2",
        ),
        (
            GOOD.to_owned(),
            "x@example.test nowhere",
            &[],
            "mailboxes.txt:1",
        ),
        (GOOD.to_owned(), "not-an-address", &[], "mailboxes.txt:1"),
        (
            GOOD.to_owned(),
            "x@example.test",
            &[("EWS_PRESENCE_NOPE_X", "1")],
            "EWS_PRESENCE_NOPE_X",
        ),
        (
            GOOD.replace("\"127.0.0.1:9000\"", "\"nine thousand\""),
            "x@example.test",
            &[],
            "api.listen",
        ),
    ];
    for (toml, mailboxes, env, key) in cases {
        let e = load(&d, &toml, mailboxes, env).unwrap_err();
        assert!(e.to_string().contains(key), "expected {key} in: {e}");
    }
}

#[test]
fn sip_servers_are_validated_and_take_overrides() {
    let d = dir("sip");
    std::fs::write(d.0.join("pw"), "x\n").unwrap();
    std::fs::write(d.0.join("sip.pw"), "sip-secret\n").unwrap();
    let with = |sip: &str| format!("{GOOD}[[sip]]\n{sip}");
    let good = load(
        &d,
        &with("name = \"k\"\nserver = \"sip:127.0.0.1;transport=tcp\"\nusername = \"gw\"\npassword_file = \"sip.pw\"\n"),
        "a@example.test\n",
        &[("EWS_PRESENCE_SIP_EXPIRES_SECS", "120")],
    )
    .unwrap();
    let s = &good.sips[0];
    assert_eq!(
        (s.name.as_str(), s.server.effective_port(), s.expires_secs),
        ("k", 5060, 120)
    );
    assert_eq!(
        s.credentials.as_ref().map(|c| c.password.as_str()),
        Some("sip-secret")
    );
    assert_eq!((s.max_in_flight, s.publish_available), (64, false));
    assert!(
        GOOD.parse::<toml::Table>().is_ok()
            && load(&d, GOOD, "a@example.test\n", &[])
                .unwrap()
                .sips
                .is_empty()
    );
    for (sip, key, says) in [
        ("server = \"sip:x\"\n", "sip[0].name", "needs a name"),
        ("name = \"k\"\n", "sip[0].server", "missing"),
        (
            "name = \"k\"\nserver = \"http://x\"\n",
            "sip[0].server",
            "sip: or sips:",
        ),
        (
            "name = \"k\"\nserver = \"sip:u@x\"\n",
            "sip[0].server",
            "names a user",
        ),
        (
            "name = \"k\"\nserver = \"sip:x\"\npresentity = \"sip:{user}@x\"\n",
            "sip[0].presentity",
            "{user}",
        ),
        (
            "name = \"k\"\nserver = \"sip:x\"\nexpires_secs = 5\n",
            "sip[0].expires_secs",
            "out of range",
        ),
        (
            "name = \"k\"\nserver = \"sip:x\"\nusername = \"gw\"\n",
            "sip[0].password_file",
            "password_file",
        ),
        (
            "name = \"k\"\nserver = \"sip:x\"\nca_file = \"none.pem\"\n",
            "sip[0].ca_file",
            "does not exist",
        ),
    ] {
        let e = load(&d, &with(sip), "a@example.test\n", &[]).unwrap_err();
        assert_eq!(e.key, key, "{sip}: {e}");
        assert!(e.message.contains(says), "{sip}: {e}");
    }
    let twice = format!(
        "{}[[sip]]\nname = \"k\"\nserver = \"sip:y\"\n",
        with("name = \"k\"\nserver = \"sip:x\"\n")
    );
    assert_eq!(
        load(&d, &twice, "a@example.test\n", &[]).unwrap_err().key,
        "sip[1].name"
    );
}

/// A hybrid configuration: an EWS gateway and a Graph one.
const HYBRID: &str = r#"
[[gateway]]
name = "onprem"
url = "https://exch.example.test/EWS/Exchange.asmx"
username = "svc@example.test"
password_file = "pw"
[[gateway]]
name = "online"
kind = "graph"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_file = "pw"
notification_url = "https://presence.example.test/graph/notifications"
[mailboxes]
file = "mailboxes.txt"
"#;

#[test]
fn a_graph_gateway_loads_beside_an_ews_one() {
    let d = dir("graph-good");
    let c = load(
        &d,
        HYBRID,
        "a@example.test\nb@example.test online\n",
        // An EWS-only key set for every gateway reaches the EWS one only.
        &[
            ("EWS_PRESENCE_GATEWAY_PASSWORD_FILE", "pw"),
            ("EWS_PRESENCE_GATEWAY_REQUEST_TIMEOUT_SECS", "5"),
        ],
    )
    .unwrap();
    let graph = c.gateways[1].graph.as_ref().expect("a Graph gateway");
    assert_eq!(c.gateways[0].kind(), "ews");
    assert_eq!(c.gateways[1].kind(), "graph");
    assert_eq!(
        graph.token_url(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(graph.scope(), "https://graph.microsoft.com/.default");
    assert_eq!(graph.credential.scheme(), "client-secret");
    assert!(
        c.gateways
            .iter()
            .all(|g| g.request_timeout == Duration::from_secs(5))
    );
    assert_eq!(c.mailboxes[1].1, 1, "b is on the Graph gateway");
}

#[test]
fn graph_gateway_errors_name_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "client_secret_file = \"pw\"\n",
            "client_secret_file = \"pw\"\nauth = \"ntlm\"\n",
            "gateway[1].auth",
        ),
        (
            "tenant = \"contoso.onmicrosoft.com\"\n",
            "",
            "gateway[1].tenant",
        ),
        (
            "client_secret_file = \"pw\"\n",
            "",
            "gateway[1].client_certificate_file",
        ),
        (
            "client_secret_file = \"pw\"\n",
            "client_secret_file = \"pw\"\nclient_certificate_file = \"pw\"\n",
            "gateway[1].client_secret_file",
        ),
        (
            "client_secret_file = \"pw\"\n",
            "client_certificate_file = \"pw\"\n",
            "gateway[1].client_certificate_file",
        ),
        (
            "notification_url = \"https://presence.example.test/graph/notifications\"\n",
            "notification_url = \"not a url\"\n",
            "gateway[1].notification_url",
        ),
        ("kind = \"graph\"\n", "kind = \"o365\"\n", "gateway[1].kind"),
    ];
    for (i, (from, to, key)) in cases.iter().enumerate() {
        let d = dir(&format!("graph-bad-{i}"));
        let text = HYBRID.replacen(from, to, 1);
        let e = load(&d, &text, "a@example.test\n", &[]).expect_err(key);
        assert_eq!(e.key, *key, "{e}");
    }
    // A Graph key on an EWS gateway.
    let d = dir("graph-bad-ews");
    let text = HYBRID.replacen(
        "password_file = \"pw\"\n",
        "password_file = \"pw\"\ntenant = \"x\"\n",
        1,
    );
    let e = load(&d, &text, "a@example.test\n", &[]).expect_err("tenant on EWS");
    assert_eq!(e.key, "gateway[0].tenant", "{e}");
}
