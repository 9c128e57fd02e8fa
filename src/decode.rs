//! `ews-presence decode [FILE]`: decodes a captured EWS response body and prints one
//! JSON object per frame, one per line, so an operator can inspect what a real server
//! sent. The field names are part of the interface (see docs/protocol.md).

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use serde_json::{Map, Value, json};

use crate::json_string::push_json_str;
use ews::decode_error::DecodeError;
use ews::ops::get_mail_tips::OofTip;
use ews::ops::get_streaming_events::{Event, StreamingResponse};
use ews::stream::{Frame, Response, StreamDecoder};
use ews::types::{EwsDateTime, ObjectId};

/// Bytes read from the input per push. An envelope split between two reads is found
/// by the byte-at-a-time scanner and read again afterwards; whole ones are read once.
/// With 64 KiB reads about one envelope in sixteen of a busy stream was split, and
/// those cost 9% of the instructions for 5% of the bytes (callgrind on a 2 MB capture).
const READ_CHUNK: usize = 1024 * 1024;
/// Bytes of output buffered per write to stdout.
pub const WRITE_BUFFER: usize = 256 * 1024;
/// Size asked for the output pipe: Linux's default limit for unprivileged processes.
const PIPE_BUFFER: usize = 1024 * 1024;

/// When `output` is a pipe, makes it hold 1 MiB instead of 64 KiB. The JSON of a
/// capture is nearly as large as the capture, and every time a small pipe fills this
/// process waits for the reader: a 20 MB capture decoded about a fifth faster into a
/// 1 MiB pipe. Anything else (a file, a terminal, a refused size) stays as it is.
pub fn widen_pipe(output: impl AsFd) {
    let _ = rustix::pipe::fcntl_setpipe_size(output, PIPE_BUFFER);
}

/// Why `decode` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DecodeCommandError {
    /// The input could not be read, or the output written.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The body is not a valid sequence of EWS envelopes.
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

/// Decodes `input` to JSON lines on `output`; frames before a fault are printed first.
pub fn run(
    mut input: impl Read,
    mut output: impl Write,
    max_frame: usize,
) -> Result<(), DecodeCommandError> {
    let mut decoder = StreamDecoder::new(max_frame);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut line = String::with_capacity(4096);
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n > 0 {
            decoder.push(&chunk[..n]);
        }
        while let Some(frame) = decoder.next_frame()? {
            line.clear();
            write_frame(&frame, &mut line);
            line.push('\n');
            output.write_all(line.as_bytes())?;
        }
        if n == 0 {
            decoder.finish()?;
            output.flush()?;
            return Ok(());
        }
    }
}

fn time(t: &Option<EwsDateTime>) -> Value {
    t.as_ref()
        .map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn id(i: &Option<ObjectId>) -> Value {
    i.as_ref()
        .map_or(Value::Null, |i| Value::String(i.id.clone()))
}

fn event_json(e: &Event) -> Value {
    json!({
        "type": e.kind.as_str(),
        "timestamp": time(&e.timestamp),
        "item_id": id(&e.item_id),
        "folder_id": id(&e.folder_id),
        "parent_folder_id": id(&e.parent_folder_id),
        "old_item_id": id(&e.old_item_id),
        "old_folder_id": id(&e.old_folder_id),
        "old_parent_folder_id": id(&e.old_parent_folder_id),
        "watermark": e.watermark,
    })
}

fn streaming_fields(r: &StreamingResponse, out: &mut Map<String, Value>) {
    out.insert(
        "connection_status".into(),
        r.connection_status
            .map_or(Value::Null, |s| s.as_str().into()),
    );
    let notifications = r
        .notifications
        .iter()
        .map(|n| {
            json!({
                "subscription_id": n.subscription_id.as_str(),
                "events": n.events.iter().map(event_json).collect::<Vec<_>>(),
            })
        })
        .collect::<Vec<_>>();
    out.insert("notifications".into(), notifications.into());
    out.insert(
        "error_subscription_ids".into(),
        r.error_subscription_ids
            .iter()
            .map(|i| Value::from(i.as_str()))
            .collect::<Vec<_>>()
            .into(),
    );
}

fn push_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(out, s),
        None => out.push_str("null"),
    }
}

fn push_time(out: &mut String, t: &Option<EwsDateTime>) {
    match t {
        // A date-time prints as digits, `-`, `:`, `.`, `T`, `Z` and `+`: nothing to
        // escape.
        Some(t) => {
            let _ = write!(out, "\"{t}\"");
        }
        None => out.push_str("null"),
    }
}

fn id_str(i: &Option<ObjectId>) -> Option<&str> {
    i.as_ref().map(|i| i.id.as_str())
}

/// Writes the JSON line of one frame: GetStreamingEvents frames (the bulk of any
/// capture) directly, without building a value tree; the others through
/// [`frame_json`]. Both give the same text (a test checks every fixture).
pub fn write_frame(frame: &Frame, out: &mut String) {
    let Response::GetStreamingEvents(r) = &frame.response else {
        let _ = write!(out, "{}", frame_json(frame));
        return;
    };
    let status = &r.status;
    // Writing into a String cannot fail.
    let _ = write!(out, "{{\"frame\":{},\"operation\":", frame.index);
    push_json_str(out, frame.response.operation());
    out.push_str(",\"response_class\":");
    push_json_str(out, status.class.as_str());
    out.push_str(",\"response_code\":");
    push_json_str(out, status.code.as_str());
    out.push_str(",\"message_text\":");
    push_opt(out, status.message_text.as_deref());
    out.push_str(",\"back_off_ms\":");
    match status.back_off_ms {
        Some(ms) => {
            let _ = write!(out, "{ms}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"connection_status\":");
    push_opt(out, r.connection_status.map(|c| c.as_str()));
    out.push_str(",\"notifications\":");
    push_list(out, &r.notifications, |out, notification| {
        out.push_str("{\"subscription_id\":");
        push_json_str(out, notification.subscription_id.as_str());
        out.push_str(",\"events\":");
        push_list(out, &notification.events, |out, e| {
            out.push_str("{\"type\":");
            push_json_str(out, e.kind.as_str());
            out.push_str(",\"timestamp\":");
            push_time(out, &e.timestamp);
            for (name, value) in [
                (",\"item_id\":", id_str(&e.item_id)),
                (",\"folder_id\":", id_str(&e.folder_id)),
                (",\"parent_folder_id\":", id_str(&e.parent_folder_id)),
                (",\"old_item_id\":", id_str(&e.old_item_id)),
                (",\"old_folder_id\":", id_str(&e.old_folder_id)),
                (
                    ",\"old_parent_folder_id\":",
                    id_str(&e.old_parent_folder_id),
                ),
                (",\"watermark\":", e.watermark.as_deref()),
            ] {
                out.push_str(name);
                push_opt(out, value);
            }
            out.push('}');
        });
        out.push('}');
    });
    out.push_str(",\"error_subscription_ids\":");
    push_list(out, &r.error_subscription_ids, |out, id| {
        push_json_str(out, id.as_str())
    });
    out.push('}');
}

/// Appends `items` as a JSON array, each written by `write`.
fn push_list<T>(out: &mut String, items: &[T], mut write: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        write(out, item);
    }
    out.push(']');
}

/// The JSON object printed for one frame.
pub fn frame_json(frame: &Frame) -> Value {
    let status = frame.response.status();
    let mut out = Map::new();
    out.insert("frame".into(), frame.index.into());
    out.insert("operation".into(), frame.response.operation().into());
    out.insert("response_class".into(), status.class.as_str().into());
    out.insert("response_code".into(), status.code.as_str().into());
    out.insert("message_text".into(), status.message_text.clone().into());
    out.insert("back_off_ms".into(), status.back_off_ms.into());
    match &frame.response {
        Response::GetStreamingEvents(r) => streaming_fields(r, &mut out),
        Response::Subscribe(r) => {
            out.insert(
                "subscription_id".into(),
                r.subscription_id
                    .as_ref()
                    .map(|i| i.as_str().to_owned())
                    .into(),
            );
        }
        Response::Unsubscribe(_) => {}
        Response::GetUserAvailability(r) => {
            let mailboxes = r
                .mailboxes
                .iter()
                .map(|m| {
                    json!({
                        "response_class": m.status.class.as_str(),
                        "response_code": m.status.code.as_str(),
                        "events": m.events.iter().map(|e| json!({
                            "start": e.start.to_string(),
                            "end": e.end.to_string(),
                            "busy_type": e.busy_type.as_str(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect::<Vec<_>>();
            out.insert("mailboxes".into(), mailboxes.into());
        }
        Response::GetUserOofSettings(r) => {
            let settings = r.settings.as_ref();
            out.insert(
                "oof_state".into(),
                settings.map(|s| s.state.as_str()).into(),
            );
            out.insert(
                "oof_start".into(),
                time(&settings.and_then(|s| s.start.clone())),
            );
            out.insert(
                "oof_end".into(),
                time(&settings.and_then(|s| s.end.clone())),
            );
        }
        Response::GetMailTips(r) => {
            let recipients = r
                .recipients
                .iter()
                .map(|t| {
                    let (tip, window) = match &t.oof {
                        OofTip::Replying { window } => ("replying", window),
                        OofTip::Silent { window } => ("silent", window),
                        OofTip::Unknown => ("unknown", &None),
                    };
                    json!({
                        "address": t.address,
                        "response_code": t.status.code.as_str(),
                        "oof_tip": tip,
                        "oof_start": window.as_ref().map(|(s, _)| s.to_string()),
                        "oof_end": window.as_ref().map(|(_, e)| e.to_string()),
                    })
                })
                .collect::<Vec<_>>();
            out.insert("recipients".into(), recipients.into());
        }
        Response::GetServiceConfiguration(r) => {
            out.insert(
                "mail_tips_enabled".into(),
                r.mail_tips.map(|m| m.enabled).into(),
            );
            out.insert(
                "mail_tips_max_recipients".into(),
                r.mail_tips.map(|m| m.max_recipients).into(),
            );
        }
        Response::Fault(f) => {
            out.insert("fault_code".into(), f.fault_code.clone().into());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct writer and the value tree give the same bytes for every fixture.
    #[test]
    fn the_fast_writer_matches_the_value_tree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ews");
        let mut frames = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "xml") {
                continue;
            }
            let mut decoder = StreamDecoder::default();
            decoder.push(&std::fs::read(&path).unwrap());
            while let Ok(Some(frame)) = decoder.next_frame() {
                let mut fast = String::new();
                write_frame(&frame, &mut fast);
                assert_eq!(fast, frame_json(&frame).to_string(), "{}", path.display());
                frames += 1;
            }
        }
        assert!(frames > 20, "{frames} frames checked");
    }
}
