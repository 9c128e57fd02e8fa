//! A mailbox's availability over a span (today, for the status page's bar): the
//! readings the cache gives, walked from edge to edge (`until` of each reading), as
//! segments; outside the fetched window it is unknown. Bounded: at most
//! [`MAX_SEGMENTS`].

use super::cache::Cache;
use crate::presence::timeline::{Availability, CalendarState};
use common::mailbox::Mailbox;

/// Most segments returned for one span.
pub const MAX_SEGMENTS: usize = 500;

/// One stretch of unchanged availability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Start (seconds).
    pub start: i64,
    /// End (seconds, exclusive).
    pub end: i64,
    /// What a presence server shows.
    pub availability: Availability,
    /// The calendar's state, when known.
    pub calendar: Option<CalendarState>,
}

/// `mailbox`'s segments over `[from, to)`; None when it is not configured.
pub fn segments(cache: &Cache, mailbox: &Mailbox, from: i64, to: i64) -> Option<Vec<Segment>> {
    let mut out: Vec<Segment> = Vec::new();
    let window = cache.window(mailbox);
    let mut t = from;
    while t < to && out.len() < MAX_SEGMENTS {
        let reading = cache.read(mailbox, t)?.reading;
        // Before the fetched window nothing is known, and a reading there says nothing
        // of when that ends: the window's start does.
        let edge = match window {
            Some((start, _)) if t < start => Some(start),
            _ => reading.until,
        };
        let end = edge.filter(|u| *u > t).unwrap_or(to).min(to);
        match out.last_mut() {
            Some(last)
                if last.availability == reading.availability
                    && last.calendar == reading.calendar =>
            {
                last.end = end;
            }
            _ => out.push(Segment {
                start: t,
                end,
                availability: reading.availability,
                calendar: reading.calendar,
            }),
        }
        t = end;
    }
    Some(out)
}
