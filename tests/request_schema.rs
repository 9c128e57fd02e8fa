//! Every request we send validates against Microsoft's EWS schema
//! (`../shared/ews-schema/ews-validate.xsd`) with xmllint: each body element, and each
//! SOAP header element. Where `../shared` or xmllint is missing the test says so on
//! stderr and is skipped, except in CI (`CI=true`), where it fails.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ews::ops::{
    get_mail_tips, get_service_configuration, get_streaming_events, get_user_availability,
    get_user_oof_settings, subscribe, unsubscribe,
};
use ews::soap::{impersonation_element, request_server_version_element};
use ews::types::{Mailbox, RequestServerVersion, SubscriptionId};

fn schema() -> Option<PathBuf> {
    let Some(shared) = support::shared_dir() else {
        support::missing("../shared (the EWS schema)");
        return None;
    };
    let xsd = shared.join("ews-schema/ews-validate.xsd");
    if Command::new("xmllint").arg("--version").output().is_err() {
        support::missing("xmllint");
        return None;
    }
    Some(xsd)
}

/// Runs xmllint on `xml`; returns its stderr on failure.
fn validate(xsd: &std::path::Path, xml: &str) -> Result<(), String> {
    let mut child = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(xml.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn mailboxes(n: usize) -> Vec<Mailbox> {
    (1..=n)
        .map(|i| Mailbox::parse(&format!("user{i}@example.test")).unwrap())
        .collect()
}

fn ids(n: usize) -> Vec<SubscriptionId> {
    (0..n)
        .map(|i| SubscriptionId::new(format!("EgBtYngwMS5leGFtcGxlLnRlc3Q{i}==")).unwrap())
        .collect()
}

fn every_request() -> Vec<(&'static str, String)> {
    let start = "2026-11-25T09:00:00Z".parse().unwrap();
    let end = "2026-11-26T09:00:00.5Z".parse().unwrap();
    let odd = Mailbox::parse("o'brien&co@example.test").unwrap();
    vec![
        ("Subscribe", subscribe::body()),
        (
            "GetStreamingEvents x1",
            get_streaming_events::body(&ids(1), 1).unwrap(),
        ),
        (
            "GetStreamingEvents x200",
            get_streaming_events::body(&ids(200), 30).unwrap(),
        ),
        ("Unsubscribe", unsubscribe::body(&ids(1)[0])),
        (
            "GetUserAvailability x1",
            get_user_availability::body(&mailboxes(1), start, end).unwrap(),
        ),
        (
            "GetUserAvailability x100",
            get_user_availability::body(&mailboxes(100), start, end).unwrap(),
        ),
        ("GetUserOofSettings", get_user_oof_settings::body(&odd)),
        (
            "GetMailTips x100",
            get_mail_tips::body(&odd, &mailboxes(100)).unwrap(),
        ),
        ("GetServiceConfiguration", get_service_configuration::body()),
        (
            "RequestServerVersion",
            request_server_version_element(RequestServerVersion::default()),
        ),
        ("ExchangeImpersonation", impersonation_element(&odd)),
    ]
}

#[test]
fn every_request_validates_against_the_ews_schema() {
    let Some(xsd) = schema() else { return };
    let mut failures = Vec::new();
    for (name, xml) in every_request() {
        if let Err(e) = validate(&xsd, &xml) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "schema violations:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_server_version_validates() {
    let Some(xsd) = schema() else { return };
    for name in RequestServerVersion::NAMES {
        let version = RequestServerVersion::parse(name).unwrap();
        validate(&xsd, &request_server_version_element(version))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_check_catches_invalid_requests() {
    let Some(xsd) = schema() else { return };
    let valid = get_streaming_events::body(&ids(1), 30).unwrap();
    let out_of_range = valid.replace("<m:ConnectionTimeout>30<", "<m:ConnectionTimeout>31<");
    assert!(
        validate(&xsd, &out_of_range).is_err(),
        "ConnectionTimeout 31 passed the schema"
    );
    let wrong_namespace = valid.replace("t:SubscriptionId", "m:SubscriptionId");
    assert!(
        validate(&xsd, &wrong_namespace).is_err(),
        "m:SubscriptionId passed the schema"
    );
    let https_namespace =
        subscribe::body().replace("http://schemas.microsoft", "https://schemas.microsoft");
    assert!(
        validate(&xsd, &https_namespace).is_err(),
        "https namespace passed the schema"
    );
}
