//! `ews-presence decode`: the JSON lines an operator reads, exactly, and the exit code
//! and one-line message on bad input.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn decode_file(name: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .arg("decode")
        .arg(support::fixtures_dir().join("ews").join(name))
        .output()
        .expect("run ews-presence")
}

fn decode_stdin(body: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ews-presence");
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

const COMMON: [&str; 6] = [
    "frame",
    "operation",
    "response_class",
    "response_code",
    "message_text",
    "back_off_ms",
];

#[test]
fn streaming_frames_as_json_lines() {
    let out = decode_file("stream-exchange2016-calendar.xml");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = lines(&out);
    assert_eq!(frames.len(), 3);
    let expected_keys: Vec<&str> = COMMON
        .iter()
        .copied()
        .chain([
            "connection_status",
            "notifications",
            "error_subscription_ids",
        ])
        .collect();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(keys(f), expected_keys);
        assert_eq!(f["frame"], json!(i));
    }
    let event = &frames[0]["notifications"][0]["events"][1];
    assert_eq!(
        keys(event),
        [
            "type",
            "timestamp",
            "item_id",
            "folder_id",
            "parent_folder_id",
            "old_item_id",
            "old_folder_id",
            "old_parent_folder_id",
            "watermark"
        ]
    );
    assert_eq!(event["type"], "FreeBusyChangedEvent");
    assert_eq!(event["timestamp"], "2026-11-23T08:59:58Z");
    assert_eq!(event.get("folder_id"), Some(&Value::Null));
    assert!(event["item_id"].is_string());
    assert_eq!(frames[1]["connection_status"], "OK");
    assert_eq!(frames[2]["connection_status"], "Closed");
    assert_eq!(frames[0].get("message_text"), Some(&Value::Null));
    assert_eq!(frames[0].get("back_off_ms"), Some(&Value::Null));
}

#[test]
fn stdin_and_file_give_the_same_output() {
    let body = support::fixture("stream-namespace-variants.xml");
    let from_stdin = decode_stdin(&body);
    let from_file = decode_file("stream-namespace-variants.xml");
    assert!(from_stdin.status.success());
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

#[test]
fn error_frames_and_faults() {
    let frames = lines(&decode_file("stream-error-subscription-ids.xml"));
    assert_eq!(frames[1]["response_class"], "Error");
    assert_eq!(frames[1]["response_code"], "ErrorSubscriptionNotFound");
    assert_eq!(
        frames[1]["message_text"],
        "The specified subscription was not found."
    );
    assert_eq!(
        frames[1]["error_subscription_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let busy = &lines(&decode_file("fault-server-busy.xml"))[0];
    let fault_keys: Vec<&str> = COMMON.iter().copied().chain(["fault_code"]).collect();
    assert_eq!(keys(busy), fault_keys);
    assert_eq!(busy["operation"], "Fault");
    assert_eq!(busy["response_code"], "ErrorServerBusy");
    assert_eq!(busy["back_off_ms"], 45000);
    assert_eq!(busy["fault_code"], "a:ErrorServerBusy");
}

#[test]
fn unary_operations() {
    let sub = &lines(&decode_file("subscribe-success.xml"))[0];
    assert_eq!(
        keys(sub),
        COMMON
            .iter()
            .copied()
            .chain(["subscription_id"])
            .collect::<Vec<_>>()
    );
    assert!(sub["subscription_id"].as_str().unwrap().starts_with("EgB"));

    let unsub = &lines(&decode_file("unsubscribe-error-not-found.xml"))[0];
    assert_eq!(keys(unsub), COMMON);
    assert_eq!(unsub["operation"], "Unsubscribe");

    let avail = &lines(&decode_file("availability-mixed.xml"))[0];
    assert_eq!(
        keys(avail),
        COMMON
            .iter()
            .copied()
            .chain(["mailboxes"])
            .collect::<Vec<_>>()
    );
    let mailboxes = avail["mailboxes"].as_array().unwrap();
    assert_eq!(mailboxes.len(), 5);
    assert_eq!(
        keys(&mailboxes[0]),
        ["response_class", "response_code", "events"]
    );
    assert_eq!(
        mailboxes[0]["events"][1],
        json!({"start": "2026-11-23T09:00:00", "end": "2026-11-23T10:00:00", "busy_type": "Busy"})
    );
    assert_eq!(
        mailboxes[1]["events"][0],
        json!({"start": "2026-11-23T09:00:00Z", "end": "2026-11-23T09:30:00Z", "busy_type": "Busy"})
    );
    assert_eq!(mailboxes[0]["events"][4]["busy_type"], "OOF");
    assert_eq!(mailboxes[2]["response_code"], "ErrorMailRecipientNotFound");
    assert_eq!(mailboxes[3]["events"], json!([]));

    let oof = &lines(&decode_file("oof-scheduled.xml"))[0];
    assert_eq!(
        keys(oof),
        COMMON
            .iter()
            .copied()
            .chain(["oof_state", "oof_start", "oof_end"])
            .collect::<Vec<_>>()
    );
    assert_eq!(oof["oof_state"], "Scheduled");
    assert_eq!(oof["oof_start"], "2026-11-23T17:00:00Z");
    let off = &lines(&decode_file("oof-disabled.xml"))[0];
    assert_eq!(
        (off["oof_state"].as_str(), off.get("oof_start")),
        (Some("Disabled"), Some(&Value::Null))
    );
}

#[test]
fn bad_input_prints_frames_before_the_fault_then_exits_1() {
    let out = decode_file("bad/doctype.xml");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        lines(&out).len(),
        1,
        "the good frame before the fault is printed"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("frame 1") && stderr.contains("byte 981") && stderr.contains("DOCTYPE"),
        "{stderr}"
    );

    let out = decode_stdin(b"<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("frame 0, byte 66: stream ended inside a frame"),
        "{stderr}"
    );
}

#[test]
fn frame_size_limit_is_configurable() {
    let body = support::fixture("stream-exchange2013-heartbeats.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["decode", "--max-frame-bytes", "200"])
        .arg(support::fixtures_dir().join("ews/stream-exchange2013-heartbeats.xml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("exceeds the 200-byte limit"), "{stderr}");
    assert!(body.len() > 200);
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["decode", "no/such/capture.xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/capture.xml"));
}
