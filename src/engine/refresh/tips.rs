//! What a GetMailTips tip says about a mailbox's automatic replies, and which errors
//! mean the server does not serve GetMailTips (or GetServiceConfiguration) at all.
//!
//! Why GetMailTips: it answers the automatic-reply tip of many mailboxes in one request
//! (Exchange 2010 and later), so a sweep of N mailboxes costs N / limit requests instead
//! of N. A server that does not serve it is read one mailbox at a time with
//! GetUserOofSettings, and `/v1/gateways` says why.
//!
//! What a tip means (see [`ews::ops::get_mail_tips`]): a message means replies are on
//! now (Scheduled when a `Duration` comes with it); a `Duration` alone means a Scheduled
//! window. An empty message without `Duration` is "off" or "on with an empty message":
//! when we last knew the mailbox off that agrees and nothing is asked; when we knew it on
//! or scheduled, it changed and GetUserOofSettings reads what it is now. A tip the server
//! did not compute or answered in another shape, or a recipient's error, is also read
//! with GetUserOofSettings. Because "on with an empty message" cannot be told from "off"
//! by a tip, every mailbox is also confirmed with GetUserOofSettings once per
//! `oof_verify` (see [`super::state`]).

use crate::presence::timeline::AutoReply;
use ews::error::EwsError;
use ews::ops::get_mail_tips::{OofTip, RecipientTip};
use ews::types::EwsDateTime;

/// Whether an error means the server does not serve GetMailTips /
/// GetServiceConfiguration at all (as opposed to failing now).
pub fn not_served(error: &EwsError) -> Option<String> {
    let code = match error {
        EwsError::Response(status) => &status.code,
        EwsError::Fault(fault) => &fault.status.code,
        _ => return None,
    };
    NOT_SERVED
        .contains(&code.as_str())
        .then(|| format!("the server answered {code}"))
}

/// Codes that say the server does not serve the operation (or not as we ask it).
const NOT_SERVED: &[&str] = &[
    "ErrorMailTipsDisabled",
    "ErrorInvalidRequest",
    "ErrorInvalidServerVersion",
    "ErrorSchemaValidation",
    "ErrorInvalidOperation",
    "ErrorExceededMaxRecipientLimit",
];

/// The instant `t` names, in seconds since the epoch (UTC when it names no zone).
pub fn seconds(t: &EwsDateTime) -> Option<i64> {
    t.to_timestamp_assuming_utc().map(|t| t.as_second())
}

/// What to do with one recipient's tip, given what we knew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TipVerdict {
    /// Store this.
    Apply(AutoReply),
    /// Agrees with what we knew; nothing to do.
    Agrees,
    /// Read it with GetUserOofSettings.
    Confirm,
}

/// Decides what one tip says about a mailbox last known as `known`.
pub fn verdict(tip: &RecipientTip, known: &AutoReply) -> TipVerdict {
    if !tip.status.code.is_success() {
        return TipVerdict::Confirm;
    }
    let window = |w: &(EwsDateTime, EwsDateTime)| match (seconds(&w.0), seconds(&w.1)) {
        (Some(start), Some(end)) if end > start => Some(AutoReply::Scheduled { start, end }),
        _ => None,
    };
    match &tip.oof {
        OofTip::Replying { window: None } => TipVerdict::Apply(AutoReply::On),
        OofTip::Replying { window: Some(w) } | OofTip::Silent { window: Some(w) } => {
            window(w).map_or(TipVerdict::Confirm, TipVerdict::Apply)
        }
        OofTip::Silent { window: None } => match known {
            AutoReply::Off => TipVerdict::Agrees,
            AutoReply::On | AutoReply::Scheduled { .. } => TipVerdict::Confirm,
        },
        OofTip::Unknown => TipVerdict::Confirm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ews::response::Status;

    fn tip(oof: OofTip) -> RecipientTip {
        RecipientTip {
            status: Status::success(),
            address: None,
            oof,
        }
    }

    fn time(s: &str) -> EwsDateTime {
        EwsDateTime::parse(s).unwrap()
    }

    #[test]
    fn a_tip_is_applied_when_it_can_tell_and_confirmed_when_it_cannot() {
        let window = Some((time("2026-12-01T08:00:00Z"), time("2026-12-05T17:00:00Z")));
        let scheduled = AutoReply::Scheduled {
            start: seconds(&time("2026-12-01T08:00:00Z")).unwrap(),
            end: seconds(&time("2026-12-05T17:00:00Z")).unwrap(),
        };
        let off = AutoReply::Off;
        assert_eq!(
            verdict(&tip(OofTip::Replying { window: None }), &off),
            TipVerdict::Apply(AutoReply::On)
        );
        assert_eq!(
            verdict(
                &tip(OofTip::Replying {
                    window: window.clone()
                }),
                &off
            ),
            TipVerdict::Apply(scheduled)
        );
        // A window with an empty message (or outside it) is still the window.
        assert_eq!(
            verdict(&tip(OofTip::Silent { window }), &off),
            TipVerdict::Apply(scheduled)
        );
        // Empty and no window: agrees with "off", contradicts "on" and "scheduled".
        let silent = tip(OofTip::Silent { window: None });
        assert_eq!(verdict(&silent, &off), TipVerdict::Agrees);
        assert_eq!(verdict(&silent, &AutoReply::On), TipVerdict::Confirm);
        assert_eq!(verdict(&silent, &scheduled), TipVerdict::Confirm);
        assert_eq!(verdict(&tip(OofTip::Unknown), &off), TipVerdict::Confirm);
        let mut refused = tip(OofTip::Replying { window: None });
        refused.status.code = ews::response_code::ResponseCode::ErrorMailRecipientNotFound;
        refused.status.class = ews::response::ResponseClass::Error;
        assert_eq!(verdict(&refused, &off), TipVerdict::Confirm);
    }
}
