//! `users/{id}/mailboxSettings` and its `automaticRepliesSetting`: read from the
//! ground truth, and changed with `PATCH` (as Outlook on the web does), which raises
//! no notification: Graph has none for mailbox settings.

use std::sync::Arc;

use hyper::Method;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Reply, body_of};
use crate::Sim;
use crate::model::Oof;
use graph::settings::{AutomaticRepliesSetting, AutomaticRepliesStatus, ExternalAudienceScope};
use graph::time::DateTimeTimeZone;

/// The settings we serve (`mailboxSettings`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailboxSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    automatic_replies_setting: Option<AutomaticRepliesSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
}

/// A mailbox's automatic replies as Graph shows them.
pub fn setting_of(sim: &Sim, mailbox: usize) -> AutomaticRepliesSetting {
    let (oof, message) = sim
        .directory
        .with(mailbox, |c| (c.oof.clone(), c.oof_message));
    let text = |on: bool| {
        Some(if on && message {
            "<html><body>I am away.</body></html>".to_owned()
        } else {
            String::new()
        })
    };
    let (status, window) = match oof {
        Oof::Disabled => (AutomaticRepliesStatus::Disabled, None),
        Oof::Enabled => (AutomaticRepliesStatus::AlwaysEnabled, None),
        Oof::Scheduled { start, end } => (AutomaticRepliesStatus::Scheduled, Some((start, end))),
    };
    AutomaticRepliesSetting {
        status,
        external_audience: Some(ExternalAudienceScope::All),
        scheduled_start_date_time: window.map(|(s, _)| DateTimeTimeZone::utc(s)),
        scheduled_end_date_time: window.map(|(_, e)| DateTimeTimeZone::utc(e)),
        internal_reply_message: text(status != AutomaticRepliesStatus::Disabled),
        external_reply_message: text(status != AutomaticRepliesStatus::Disabled),
    }
}

fn instant(t: &Option<DateTimeTimeZone>, name: &str) -> Result<Timestamp, Reply> {
    let t = t.as_ref().ok_or_else(|| {
        Reply::error(
            400,
            "ErrorInvalidRequest",
            &format!("scheduled needs {name}"),
        )
    })?;
    super::instant_of(t, name)
}

/// Answers `users/{id}/mailboxSettings…`.
pub fn answer(
    sim: &Arc<Sim>,
    mailbox: usize,
    method: &Method,
    rest: &[&str],
    body: &[u8],
) -> Reply {
    match (method, rest) {
        (&Method::GET, ["mailboxSettings"]) => Reply::of(
            200,
            &MailboxSettings {
                automatic_replies_setting: Some(setting_of(sim, mailbox)),
                time_zone: Some("UTC".to_owned()),
            },
        ),
        (&Method::GET, ["mailboxSettings", "automaticRepliesSetting"]) => {
            Reply::of(200, &setting_of(sim, mailbox))
        }
        (&Method::PATCH, ["mailboxSettings"]) => {
            let settings: MailboxSettings = match body_of(body) {
                Ok(s) => s,
                Err(reply) => return reply,
            };
            if let Some(replies) = settings.automatic_replies_setting {
                let oof = match replies.status {
                    AutomaticRepliesStatus::Disabled => Oof::Disabled,
                    AutomaticRepliesStatus::AlwaysEnabled => Oof::Enabled,
                    AutomaticRepliesStatus::Scheduled => {
                        let start = match instant(
                            &replies.scheduled_start_date_time,
                            "scheduledStartDateTime",
                        ) {
                            Ok(t) => t,
                            Err(reply) => return reply,
                        };
                        let end =
                            match instant(&replies.scheduled_end_date_time, "scheduledEndDateTime")
                            {
                                Ok(t) => t,
                                Err(reply) => return reply,
                            };
                        Oof::Scheduled { start, end }
                    }
                };
                let message = replies
                    .internal_reply_message
                    .as_deref()
                    .is_some_and(|m| !m.is_empty());
                sim.set_oof_with_message(mailbox, oof, message);
            }
            Reply::of(
                200,
                &MailboxSettings {
                    automatic_replies_setting: Some(setting_of(sim, mailbox)),
                    time_zone: Some("UTC".to_owned()),
                },
            )
        }
        _ => Reply::error(400, "BadRequest", "Resource not found for the segment."),
    }
}
