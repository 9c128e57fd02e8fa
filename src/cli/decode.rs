//! `ews-presence decode [FILE]`: decodes a captured EWS response body and prints one
//! JSON object per frame, one per line, so an operator can inspect what a real server
//! sent. The field names are part of the interface (see README).

use std::io::{self, Read, Write};

use serde_json::{Map, Value, json};

use crate::ews::decode_error::DecodeError;
use crate::ews::ops::get_streaming_events::{Event, StreamingResponse};
use crate::ews::stream::{Frame, Response, StreamDecoder};
use crate::ews::types::{EwsDateTime, ObjectId};

/// Bytes read from the input per push.
const READ_CHUNK: usize = 64 * 1024;

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
            writeln!(output, "{}", frame_json(&frame))?;
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
        Response::Fault(f) => {
            out.insert("fault_code".into(), f.fault_code.clone().into());
        }
    }
    Value::Object(out)
}
