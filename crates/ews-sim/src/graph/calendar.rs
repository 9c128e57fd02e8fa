//! `users/{id}/events` (list, get, create, update, delete; changes go through the
//! model, so EWS subscribers and Graph subscribers hear of them alike) and
//! `users/{id}/calendar/getSchedule`, answered from the ground truth.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE as B64URL;
use hyper::Method;
use jiff::Timestamp;

use super::{Reply, body_of};
use crate::Sim;
use crate::model::{Item, ItemPatch, ModelError, NewItem};
use ews::ops::get_user_availability::BusyType;
use graph::event::{Event, EventPage};
use graph::schedule::{
    FreeBusyError, FreeBusyStatus, MAX_SCHEDULES, MAX_WINDOW_DAYS, ScheduleAnswer,
    ScheduleInformation, ScheduleItem, ScheduleRequest,
};
use graph::time::DateTimeTimeZone;

/// Events per page of a list (Graph's default page size for events).
const PAGE: usize = 10;

/// The Graph id of item `number` of `mailbox`.
pub fn event_id(mailbox: usize, number: u32) -> String {
    let mut raw = Vec::with_capacity(32);
    raw.extend_from_slice(b"AAMkSIM-event\0");
    raw.extend_from_slice(&(mailbox as u32).to_be_bytes());
    raw.extend_from_slice(&number.to_be_bytes());
    B64URL.encode(raw)
}

/// The item an id written by [`event_id`] names.
pub fn parse_event_id(id: &str) -> Option<(usize, u32)> {
    let raw = B64URL.decode(id.trim()).ok()?;
    let rest = raw.strip_prefix(b"AAMkSIM-event\0")?;
    let mailbox = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?);
    let number = u32::from_be_bytes(rest.get(4..8)?.try_into().ok()?);
    Some((mailbox as usize, number))
}

fn status_of(busy: BusyType) -> FreeBusyStatus {
    match busy {
        BusyType::Free => FreeBusyStatus::Free,
        BusyType::Tentative => FreeBusyStatus::Tentative,
        BusyType::Busy => FreeBusyStatus::Busy,
        BusyType::Oof => FreeBusyStatus::Oof,
        BusyType::WorkingElsewhere => FreeBusyStatus::WorkingElsewhere,
        BusyType::NoData => FreeBusyStatus::Unknown,
    }
}

fn busy_of(status: FreeBusyStatus) -> BusyType {
    match status {
        FreeBusyStatus::Free => BusyType::Free,
        FreeBusyStatus::Tentative => BusyType::Tentative,
        FreeBusyStatus::Busy => BusyType::Busy,
        FreeBusyStatus::Oof => BusyType::Oof,
        FreeBusyStatus::WorkingElsewhere => BusyType::WorkingElsewhere,
        FreeBusyStatus::Unknown => BusyType::NoData,
    }
}

fn utc(second: i64) -> DateTimeTimeZone {
    DateTimeTimeZone::utc(Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn event_of(mailbox: usize, item: &Item) -> Event {
    Event {
        id: Some(event_id(mailbox, item.number)),
        change_key: Some(crate::model::change_key(item.version)),
        subject: Some(item.subject.as_deref().unwrap_or_default().to_owned()),
        start: Some(utc(item.start)),
        end: Some(utc(item.end)),
        show_as: Some(status_of(item.busy)),
    }
}

fn model_error(e: ModelError) -> Reply {
    match e {
        ModelError::ItemNotFound => Reply::error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
        other => Reply::error(400, "ErrorInvalidRequest", &other.to_string()),
    }
}

fn instant(t: &DateTimeTimeZone, name: &str) -> Result<i64, Reply> {
    super::instant_of(t, name).map(|t| t.as_second())
}

/// Answers `users/{id}/…` for events and getSchedule.
pub fn answer(
    sim: &Arc<Sim>,
    mailbox: usize,
    method: &Method,
    rest: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Reply {
    let rest = match rest {
        ["calendar", "events", tail @ ..] => [&["events"][..], tail].concat(),
        other => other.to_vec(),
    };
    let outcome = match (method, rest.as_slice()) {
        (&Method::POST, ["calendar", "getSchedule"]) => get_schedule(sim, body),
        (&Method::GET, ["events"]) => Ok(list(sim, mailbox, skip_of(query))),
        (&Method::POST, ["events"]) => create(sim, mailbox, body),
        (_, ["events", id]) => {
            let number = match parse_event_id(id) {
                Some((m, n)) if m == mailbox => n,
                _ => return model_error(ModelError::ItemNotFound),
            };
            match *method {
                Method::GET => sim
                    .directory
                    .with(mailbox, |c| c.item(number).cloned())
                    .map(|item| Reply::of(200, &event_of(mailbox, &item)))
                    .ok_or(ModelError::ItemNotFound)
                    .map_err(model_error),
                Method::PATCH => update(sim, mailbox, number, body),
                Method::DELETE => sim
                    .delete_item(mailbox, number)
                    .map(|()| Reply::empty(204))
                    .map_err(model_error),
                _ => Err(Reply::error(405, "BadRequest", "method not allowed")),
            }
        }
        _ => Err(Reply::error(
            400,
            "BadRequest",
            "Resource not found for the segment.",
        )),
    };
    outcome.unwrap_or_else(|reply| reply)
}

/// A page of events, `skip` from the first, with a `@odata.nextLink` when more follow.
pub fn list(sim: &Sim, mailbox: usize, skip: usize) -> Reply {
    let mut items = sim
        .directory
        .with(mailbox, |c| c.items_between(i64::MIN / 2, i64::MAX / 2));
    items.sort_by_key(|i| (i.start, i.number));
    let page: Vec<Event> = items
        .iter()
        .skip(skip)
        .take(PAGE)
        .map(|i| event_of(mailbox, i))
        .collect();
    let next_link = (items.len() > skip + PAGE).then(|| {
        format!(
            "/v1.0/users/{}/events?$skip={}",
            common::percent::encode(&sim.directory.address(mailbox)),
            skip + PAGE
        )
    });
    Reply::of(
        200,
        &EventPage {
            value: page,
            next_link,
        },
    )
}

fn create(sim: &Sim, mailbox: usize, body: &[u8]) -> Result<Reply, Reply> {
    let event: Event = body_of(body)?;
    let (Some(start), Some(end)) = (&event.start, &event.end) else {
        return Err(Reply::error(
            400,
            "ErrorInvalidRequest",
            "An event needs start and end.",
        ));
    };
    let new = NewItem {
        start: instant(start, "start")?,
        end: instant(end, "end")?,
        // Graph's default for a new event.
        busy: event.show_as.map_or(BusyType::Busy, busy_of),
        subject: event.subject.clone(),
    };
    let item = sim.create_item(mailbox, new).map_err(model_error)?;
    Ok(Reply::of(201, &event_of(mailbox, &item)))
}

fn update(sim: &Sim, mailbox: usize, number: u32, body: &[u8]) -> Result<Reply, Reply> {
    let event: Event = body_of(body)?;
    let patch = ItemPatch {
        start: event
            .start
            .as_ref()
            .map(|t| instant(t, "start"))
            .transpose()?,
        end: event.end.as_ref().map(|t| instant(t, "end")).transpose()?,
        busy: event.show_as.map(busy_of),
        subject: event.subject.clone(),
    };
    let item = sim
        .update_item(mailbox, number, patch)
        .map_err(model_error)?;
    Ok(Reply::of(200, &event_of(mailbox, &item)))
}

/// The digit of `availabilityView` for a state.
fn view_digit(status: FreeBusyStatus) -> (u8, char) {
    match status {
        FreeBusyStatus::Free | FreeBusyStatus::Unknown => (0, '0'),
        FreeBusyStatus::WorkingElsewhere => (1, '4'),
        FreeBusyStatus::Tentative => (2, '1'),
        FreeBusyStatus::Busy => (3, '2'),
        FreeBusyStatus::Oof => (4, '3'),
    }
}

fn get_schedule(sim: &Sim, body: &[u8]) -> Result<Reply, Reply> {
    let request: ScheduleRequest = body_of(body)?;
    if request.schedules.is_empty() || request.schedules.len() > MAX_SCHEDULES {
        return Err(Reply::error(
            400,
            "ErrorInvalidRequest",
            &format!("Schedules must name 1 to {MAX_SCHEDULES} mailboxes."),
        ));
    }
    let start = instant(&request.start_time, "startTime")?;
    let end = instant(&request.end_time, "endTime")?;
    if end <= start || end - start >= MAX_WINDOW_DAYS * 86_400 {
        return Err(Reply::error(
            400,
            "ErrorInvalidRequest",
            &format!("The window must be positive and shorter than {MAX_WINDOW_DAYS} days."),
        ));
    }
    let interval = i64::from(request.availability_view_interval.clamp(5, 1440)) * 60;
    sim.stats.availability_fetched(request.schedules.len());
    let value = request
        .schedules
        .iter()
        .map(|address| match sim.directory.lookup(address) {
            None => ScheduleInformation {
                schedule_id: address.clone(),
                availability_view: None,
                error: Some(FreeBusyError {
                    message: format!("The mailbox {address} was not found."),
                    response_code: "ErrorMailRecipientNotFound".to_owned(),
                }),
                schedule_items: Vec::new(),
            },
            Some(m) => {
                let items = sim.directory.with(m, |c| c.items_between(start, end));
                let view = (0..)
                    .map(|slot| start + slot * interval)
                    .take_while(|at| *at < end)
                    .map(|at| {
                        items
                            .iter()
                            .filter(|i| i.overlaps(at, at + interval))
                            .map(|i| view_digit(status_of(i.busy)))
                            .max()
                            .map_or('0', |(_, c)| c)
                    })
                    .collect();
                ScheduleInformation {
                    schedule_id: address.clone(),
                    availability_view: Some(view),
                    error: None,
                    schedule_items: items
                        .iter()
                        .map(|i| ScheduleItem {
                            start: utc(i.start),
                            end: utc(i.end),
                            status: status_of(i.busy),
                            is_private: Some(false),
                        })
                        .collect(),
                }
            }
        })
        .collect();
    Ok(Reply::of(200, &ScheduleAnswer { value }))
}

/// A list's `$skip`, for pages after the first.
pub fn skip_of(query: Option<&str>) -> usize {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|p| {
            p.strip_prefix("$skip=")
                .or_else(|| p.strip_prefix("%24skip="))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
