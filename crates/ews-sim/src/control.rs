//! The control API under `/sim/` (JSON): change calendars and automatic replies the way
//! a user would, read the ground truth, inject faults, read counters. Changes raise the
//! same notification events as the EWS operations. Bad requests get 400 with a JSON
//! error naming the field; unknown mailboxes and items 404.

use std::sync::Arc;

use common::percent::decode as percent_decode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use tokio::time::Duration;

use super::Sim;
use super::faults::StreamFault;
use super::http::{Body, MAX_REQUEST_BYTES, respond};
use super::model::{Item, ItemPatch, ModelError, NewItem, Oof, item_id, parse_item_id};
use ews::ops::get_user_availability::BusyType;

/// A control-API error: status, message and the offending field.
struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field),
        }
    }

    fn not_found(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            field: Some(field),
        }
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    respond(status, "application/json", format!("{value}\n"))
}

/// Serves one control-API request.
pub async fn handle(sim: &Arc<Sim>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": "body too large", "field": "body"}),
            );
        }
    };
    match dispatch(sim, &method, &path, query.as_deref(), &body) {
        Ok((status, value)) if status == StatusCode::NO_CONTENT => {
            let _ = value;
            respond(status, "application/json", "")
        }
        Ok((status, value)) => json_response(status, &value),
        Err(e) => json_response(e.status, &json!({"error": e.message, "field": e.field})),
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad("body", "the body must be a JSON object")),
        Err(e) => Err(ApiError::bad("body", format!("the body is not JSON: {e}"))),
    }
}

fn time_field(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Timestamp>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse::<Timestamp>().map(Some).map_err(|_| {
            ApiError::bad(
                field,
                format!("{field} must be an RFC 3339 time with offset, got {s:?}"),
            )
        }),
        Some(_) => Err(ApiError::bad(field, format!("{field} must be a string"))),
    }
}

fn busy_field(map: &Map<String, Value>) -> Result<Option<BusyType>, ApiError> {
    match map.get("busy_type") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s != "NoData" => BusyType::parse(s).map(Some).ok_or_else(|| {
            ApiError::bad(
                "busy_type",
                "busy_type must be Free, Tentative, Busy, OOF or WorkingElsewhere",
            )
        }),
        Some(_) => Err(ApiError::bad(
            "busy_type",
            "busy_type must be Free, Tentative, Busy, OOF or WorkingElsewhere",
        )),
    }
}

fn subject_field(map: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match map.get("subject") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 255 => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad(
            "subject",
            "subject must be a string of at most 255 bytes",
        )),
    }
}

/// The fault's `operation`, when given: one of `ews` or `autodiscover`; the error names
/// exactly those.
fn operation_field(
    map: &Map<String, Value>,
    ews: &[&str],
    autodiscover: &[&str],
) -> Result<Option<String>, ApiError> {
    match map.get("operation") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(op))
            if ews.contains(&op.as_str()) || autodiscover.contains(&op.as_str()) =>
        {
            Ok(Some(op.clone()))
        }
        Some(_) => Err(ApiError::bad(
            "operation",
            format!(
                "operation must be one of {}",
                ews.iter()
                    .chain(autodiscover)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn u64_field(
    map: &Map<String, Value>,
    field: &'static str,
    default: Option<u64>,
) -> Result<u64, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => {
            default.ok_or_else(|| ApiError::bad(field, format!("{field} is required")))
        }
        Some(v) => v.as_u64().ok_or_else(|| {
            ApiError::bad(
                field,
                format!("{field} must be a non-negative whole number"),
            )
        }),
    }
}

fn model_error(e: ModelError) -> ApiError {
    match e {
        ModelError::ItemNotFound => ApiError::not_found("item", "no such item in this mailbox"),
        ModelError::EndBeforeStart => ApiError::bad("end", "end must be after start"),
        ModelError::CalendarFull(_) => ApiError::bad("start", e.to_string()),
    }
}

fn item_json(mailbox: usize, item: &Item) -> Value {
    let at = |s: i64| {
        Timestamp::from_second(s)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    json!({
        "item_id": item_id(mailbox, item.number),
        "start": at(item.start),
        "end": at(item.end),
        "busy_type": item.busy.as_str(),
        "subject": item.subject.as_deref(),
    })
}

type Outcome = Result<(StatusCode, Value), ApiError>;

fn dispatch(
    sim: &Arc<Sim>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Outcome {
    let segments: Vec<_> = path
        .trim_start_matches("/sim")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(AsRef::as_ref).collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["stats"]) => Ok((StatusCode::OK, stats(sim))),
        (&Method::GET, ["faults"]) => Ok((StatusCode::OK, json!(sim.faults.active()))),
        (&Method::DELETE, ["faults"]) => {
            sim.faults.clear();
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        (&Method::POST, ["faults"]) => inject_fault(sim, &parse_body(body)?),
        (&Method::GET, ["churn"]) => Ok((StatusCode::OK, churn_json(sim))),
        (&Method::PUT, ["churn"]) => {
            let map = parse_body(body)?;
            let number = |field: &'static str, max: f64| match map.get(field) {
                None | Some(Value::Null) => Ok(0.0),
                Some(v) => v
                    .as_f64()
                    .filter(|x| (0.0..=max).contains(x))
                    .ok_or_else(|| ApiError::bad(field, format!("{field} must be 0 to {max}"))),
            };
            sim.churn
                .set(number("per_second", 100_000.0)?, number("now_share", 1.0)?);
            Ok((StatusCode::OK, churn_json(sim)))
        }
        (&Method::GET, ["truth"]) => {
            let at = Timestamp::now();
            let all: Vec<Value> = (0..sim.directory.len())
                .map(|m| {
                    let truth = sim.directory.with(m, |c| c.truth(at));
                    json!({"mailbox": sim.directory.address(m), "availability": truth.availability()})
                })
                .collect();
            Ok((StatusCode::OK, json!({"at": at.to_string(), "truth": all})))
        }
        (_, ["graph", rest @ ..]) => graph_route(sim, method, rest, body),
        (_, ["mailboxes", address, rest @ ..]) => {
            let mailbox = sim
                .directory
                .lookup(address)
                .ok_or_else(|| ApiError::not_found("mailbox", format!("no mailbox {address}")))?;
            mailbox_route(sim, method, mailbox, rest, query, body)
        }
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no control route {method} {path}"),
            field: None,
        }),
    }
}

/// `/sim/graph/…`: the Graph side's faults, subscriptions and lifecycle events.
fn graph_route(sim: &Arc<Sim>, method: &Method, rest: &[&str], body: &[u8]) -> Outcome {
    let graph = sim.graph.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: "the simulator does not serve Graph (start it with --graph)".into(),
        field: None,
    })?;
    match (method, rest) {
        (&Method::GET, ["faults"]) => Ok((StatusCode::OK, json!(graph.faults.active()))),
        (&Method::DELETE, ["faults"]) => {
            graph.faults.clear();
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        (&Method::POST, ["faults"]) => {
            let map = parse_body(body)?;
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
            match kind {
                "throttle" => graph.faults.throttle(
                    u64_field(&map, "count", Some(1))?,
                    u64_field(&map, "retry_after_s", Some(1))?,
                ),
                "refuse_token" => graph
                    .faults
                    .refuse_tokens(u64_field(&map, "count", Some(1))?),
                "drop_notifications" => graph.faults.drop_notifications(
                    u64_field(&map, "count", Some(1))?,
                    map.get("then_missed")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                ),
                "delay_notifications" => graph
                    .faults
                    .delay_notifications(Duration::from_millis(u64_field(&map, "ms", None)?)),
                _ => {
                    return Err(ApiError::bad(
                        "kind",
                        "kind must be throttle, refuse_token, drop_notifications or delay_notifications",
                    ));
                }
            }
            sim.stats.fault(&format!("graph_{kind}"));
            Ok((StatusCode::OK, json!(graph.faults.active())))
        }
        (&Method::GET, ["exchanges"]) => {
            let recorded: Vec<_> = common::sync::lock(&graph.recorded)
                .iter()
                .cloned()
                .collect();
            Ok((StatusCode::OK, json!({"exchanges": recorded})))
        }
        (&Method::GET, ["subscriptions"]) => {
            let all: Vec<Value> = graph
                .subscriptions
                .all()
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "mailbox": sim.directory.address(s.mailbox),
                        "expires": s.expires.to_string(),
                        "notification_url": s.notification_url,
                        "lifecycle_url": s.lifecycle_url,
                    })
                })
                .collect();
            Ok((StatusCode::OK, json!({"subscriptions": all})))
        }
        (&Method::POST, ["lifecycle"]) => {
            let map = parse_body(body)?;
            let address = map
                .get("mailbox")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad("mailbox", "mailbox is required"))?;
            let mailbox = sim
                .directory
                .lookup(address)
                .ok_or_else(|| ApiError::not_found("mailbox", format!("no mailbox {address}")))?;
            let event = match map.get("event").and_then(Value::as_str) {
                Some("missed") => graph::notification::LifecycleEvent::Missed,
                Some("subscriptionRemoved") => {
                    graph::notification::LifecycleEvent::SubscriptionRemoved
                }
                Some("reauthorizationRequired") => {
                    graph::notification::LifecycleEvent::ReauthorizationRequired
                }
                _ => {
                    return Err(ApiError::bad(
                        "event",
                        "event must be missed, subscriptionRemoved or reauthorizationRequired",
                    ));
                }
            };
            // One subscription when named, else every one of the mailbox.
            let told = match map.get("subscription").and_then(Value::as_str) {
                Some(id) => match graph.subscriptions.get(id).filter(|s| s.mailbox == mailbox) {
                    Some(one) => {
                        sim.graph_lifecycle_one(&one, event);
                        1
                    }
                    None => {
                        return Err(ApiError::not_found(
                            "subscription",
                            format!("no subscription {id} of {address}"),
                        ));
                    }
                },
                None => sim.graph_lifecycle(mailbox, event),
            };
            Ok((StatusCode::OK, json!({"subscriptions": told})))
        }
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no control route {method} /sim/graph/{}", rest.join("/")),
            field: None,
        }),
    }
}

fn mailbox_route(
    sim: &Arc<Sim>,
    method: &Method,
    mailbox: usize,
    rest: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Outcome {
    let item_number = |id: &str| match parse_item_id(id) {
        Some((m, n)) if m == mailbox => Ok(n),
        _ => Err(ApiError::not_found(
            "item",
            format!("no item {id} in this mailbox"),
        )),
    };
    match (method, rest) {
        (&Method::GET, ["truth"]) => {
            let at = match query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("at="))) {
                Some(raw) => percent_decode(raw)
                    .parse::<Timestamp>()
                    .map_err(|_| ApiError::bad("at", "at must be an RFC 3339 time with offset"))?,
                None => Timestamp::now(),
            };
            let truth = sim.directory.with(mailbox, |c| c.truth(at));
            Ok((
                StatusCode::OK,
                json!({
                    "mailbox": sim.directory.address(mailbox),
                    "at": at.to_string(),
                    "availability": truth.availability(),
                    "calendar": truth.calendar.as_str(),
                    "out_of_office": truth.out_of_office,
                }),
            ))
        }
        (&Method::GET, ["items"]) => {
            let items = sim
                .directory
                .with(mailbox, |c| c.items_between(i64::MIN / 2, i64::MAX / 2));
            Ok((
                StatusCode::OK,
                Value::Array(items.iter().map(|i| item_json(mailbox, i)).collect()),
            ))
        }
        (&Method::POST, ["items"]) => {
            let map = parse_body(body)?;
            let start = time_field(&map, "start")?
                .ok_or_else(|| ApiError::bad("start", "start is required"))?;
            let end =
                time_field(&map, "end")?.ok_or_else(|| ApiError::bad("end", "end is required"))?;
            let busy = busy_field(&map)?
                .ok_or_else(|| ApiError::bad("busy_type", "busy_type is required"))?;
            let new = NewItem {
                start: start.as_second(),
                end: end.as_second(),
                busy,
                subject: subject_field(&map)?,
            };
            let item = sim.create_item(mailbox, new).map_err(model_error)?;
            Ok((StatusCode::CREATED, item_json(mailbox, &item)))
        }
        (&Method::PATCH, ["items", id]) => {
            let number = item_number(id)?;
            let map = parse_body(body)?;
            let patch = ItemPatch {
                start: time_field(&map, "start")?.map(|t| t.as_second()),
                end: time_field(&map, "end")?.map(|t| t.as_second()),
                busy: busy_field(&map)?,
                subject: subject_field(&map)?,
            };
            let item = sim
                .update_item(mailbox, number, patch)
                .map_err(model_error)?;
            Ok((StatusCode::OK, item_json(mailbox, &item)))
        }
        (&Method::DELETE, ["items", id]) => {
            let number = item_number(id)?;
            sim.delete_item(mailbox, number).map_err(model_error)?;
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        (&Method::PUT, ["oof"]) => {
            let map = parse_body(body)?;
            let oof = match map.get("state").and_then(Value::as_str) {
                Some("Disabled") => Oof::Disabled,
                Some("Enabled") => Oof::Enabled,
                Some("Scheduled") => {
                    let start = time_field(&map, "start")?
                        .ok_or_else(|| ApiError::bad("start", "Scheduled needs start"))?;
                    let end = time_field(&map, "end")?
                        .ok_or_else(|| ApiError::bad("end", "Scheduled needs end"))?;
                    if end <= start {
                        return Err(ApiError::bad("end", "end must be after start"));
                    }
                    Oof::Scheduled { start, end }
                }
                _ => {
                    return Err(ApiError::bad(
                        "state",
                        "state must be Disabled, Enabled or Scheduled",
                    ));
                }
            };
            // `"message": ""` models automatic replies with an empty message.
            let message = map
                .get("message")
                .and_then(Value::as_str)
                .is_none_or(|m| !m.trim().is_empty());
            sim.set_oof_with_message(mailbox, oof, message);
            Ok((
                StatusCode::OK,
                json!({"mailbox": sim.directory.address(mailbox), "state": map.get("state")}),
            ))
        }
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "no control route {method} for a mailbox /{}",
                rest.join("/")
            ),
            field: None,
        }),
    }
}

fn inject_fault(sim: &Arc<Sim>, map: &Map<String, Value>) -> Outcome {
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let detail = match kind {
        "drop-streams" => {
            sim.faults.broadcast(StreamFault::Drop);
            json!({})
        }
        "move-mailbox" => {
            let address = map
                .get("mailbox")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad("mailbox", "mailbox is required"))?;
            let index = sim
                .directory
                .lookup(address)
                .ok_or_else(|| ApiError::not_found("mailbox", format!("no mailbox {address}")))?;
            let to = u64_field(map, "to_backend", None)? as usize;
            if to >= sim.config.backends {
                return Err(ApiError::bad(
                    "to_backend",
                    format!("to_backend must be below {}", sim.config.backends),
                ));
            }
            let expired = sim.move_mailbox(index, to);
            json!({"mailbox": address, "to_backend": to, "subscriptions_expired": expired})
        }
        "drop-connections" => {
            sim.faults.broadcast(StreamFault::Drop);
            sim.faults.drop_connections();
            json!({})
        }
        "cut-mid-frame" => {
            sim.faults.cut_next_frame();
            json!({})
        }
        "malformed-frame" => {
            sim.faults.malform_next_frame();
            json!({})
        }
        "expire-subscriptions" => {
            let expired = match map.get("mailboxes") {
                None | Some(Value::Null) => sim.registry.expire(None),
                Some(Value::Array(list)) => {
                    let mut indices = Vec::new();
                    for address in list {
                        let address = address.as_str().ok_or_else(|| {
                            ApiError::bad("mailboxes", "mailboxes must be a list of addresses")
                        })?;
                        indices.push(sim.directory.lookup(address).ok_or_else(|| {
                            ApiError::not_found("mailboxes", format!("no mailbox {address}"))
                        })?);
                    }
                    sim.registry.expire(Some(&indices))
                }
                Some(_) => {
                    return Err(ApiError::bad(
                        "mailboxes",
                        "mailboxes must be a list of addresses",
                    ));
                }
            };
            sim.faults.broadcast(StreamFault::Expired);
            json!({"expired": expired})
        }
        "server-busy" => {
            let count = u64_field(map, "count", Some(1))?;
            let back_off = u64_field(map, "back_off_ms", Some(5000))?;
            let operation = operation_field(map, &super::endpoint::OPERATIONS, &[])?;
            sim.faults.server_busy(count, back_off, operation.clone());
            json!({"count": count, "back_off_ms": back_off, "operation": operation})
        }
        "http-503" => {
            let count = u64_field(map, "count", Some(1))?;
            let retry_after = match map.get("retry_after_s") {
                None | Some(Value::Null) => None,
                Some(_) => Some(u64_field(map, "retry_after_s", None)?),
            };
            sim.faults.http_503(count, retry_after);
            json!({"count": count, "retry_after_s": retry_after})
        }
        "stall-heartbeats" => {
            let ms = u64_field(map, "duration_ms", None)?;
            sim.faults.stall(Duration::from_millis(ms));
            json!({"duration_ms": ms})
        }
        "hostile-answers" => {
            let count = u64_field(map, "count", Some(1))?;
            let answer = map
                .get("answer")
                .and_then(Value::as_str)
                .unwrap_or("garbage");
            let hostile = super::faults::Hostile::parse(answer).ok_or_else(|| {
                ApiError::bad("answer", "answer must be doctype, garbage or whitespace")
            })?;
            let operation = operation_field(
                map,
                &super::endpoint::OPERATIONS,
                &super::autodiscover::OPERATIONS,
            )?
            .ok_or_else(|| ApiError::bad("operation", "operation is required"))?;
            sim.faults
                .hostile_answers(count, hostile, operation.clone());
            json!({"count": count, "answer": answer, "operation": operation})
        }
        "trickle" => {
            let ms = u64_field(map, "duration_ms", None)?;
            let interval = u64_field(map, "interval_ms", Some(1000))?.max(1);
            sim.faults
                .trickle(Duration::from_millis(ms), Duration::from_millis(interval));
            json!({"duration_ms": ms, "interval_ms": interval})
        }
        "reject-subscriptions" => {
            let ms = u64_field(map, "duration_ms", None)?;
            sim.faults.reject_subscriptions(Duration::from_millis(ms));
            json!({"duration_ms": ms})
        }
        "slow" => {
            let ms = u64_field(map, "delay_ms", None)?;
            sim.faults.slow(ms);
            json!({"delay_ms": ms})
        }
        _ => {
            return Err(ApiError::bad(
                "kind",
                "kind must be drop-streams, cut-mid-frame, expire-subscriptions, server-busy, http-503, stall-heartbeats, malformed-frame, reject-subscriptions, trickle, hostile-answers or slow",
            ));
        }
    };
    sim.stats.fault(kind);
    let mut out = json!({"kind": kind});
    if let (Value::Object(o), Value::Object(d)) = (&mut out, detail) {
        o.extend(d);
    }
    Ok((StatusCode::OK, out))
}

fn churn_json(sim: &Sim) -> Value {
    json!({"per_second": sim.churn.per_second(), "now_share": sim.churn.now_share()})
}

fn stats(sim: &Sim) -> Value {
    let budgets = sim.streams_per_budget();
    json!({
        "mailboxes": sim.directory.len(),
        "subscriptions_live": sim.registry.len(),
        "subscriptions_off_home": sim.stats.subscriptions_off_home(),
        "availability_mailboxes": sim.stats.availability_mailboxes(),
        "streams_open": sim.stats.streams_open(),
        "requests": sim.stats.requests(),
        "events_emitted": sim.stats.events_emitted(),
        "faults_injected": sim.stats.faults(),
        "rejected": sim.stats.rejections(),
        "logins": sim.stats.logins(),
        "stream_budgets": {"in_use": budgets.0, "most_streams_on_one": budgets.1},
    })
}
