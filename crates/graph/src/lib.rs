//! The Microsoft Graph wire, as ews-presence speaks it to Exchange Online (and as the
//! simulator answers it): bodies and their meaning, no I/O.
//!
//! - [`token`]: the OAuth 2.0 client-credentials request (a secret, or a signed
//!   [`assertion`]) and what the token endpoint answers, refusals included.
//! - [`schedule`]: `calendar/getSchedule`, the availability of up to
//!   [`schedule::MAX_SCHEDULES`] mailboxes in one request.
//! - [`settings`]: a mailbox's `automaticRepliesSetting`.
//! - [`subscription`]: change-notification subscriptions on `users/{id}/events`, and
//!   [`notification`]: what Graph POSTs to the notification URL (changes and lifecycle
//!   events).
//! - [`batch`]: JSON `$batch`, up to [`batch::MAX_REQUESTS`] requests in one.
//! - [`event`]: a calendar event as `users/{id}/events` lists and creates it.
//! - [`error`]: Graph's error body, and [`time`]: `dateTimeTimeZone` in UTC.
//!
//! Property and enum names follow Graph's v1.0 schema (CSDL); a test of the daemon
//! checks every body against it.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod assertion;
pub mod batch;
pub mod error;
pub mod event;
pub mod notification;
pub mod schedule;
pub mod settings;
pub mod subscription;
pub mod time;
pub mod token;

/// Decoding a body failed: which body and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct DecodeError {
    /// What was being decoded (`getSchedule answer`).
    pub what: &'static str,
    /// Why it could not be.
    pub why: String,
}

/// Decodes `body` as JSON `T`, naming `what` in the error.
pub fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    body: &[u8],
) -> Result<T, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError {
        what,
        why: e.to_string(),
    })
}

/// `value` as JSON text (the types of this crate always serialise).
pub fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| unreachable!("serialising JSON: {e}"))
}
