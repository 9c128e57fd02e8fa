//! A mailbox's automatic replies, `GET /users/{id}/mailboxSettings/automaticRepliesSetting`
//! (Graph raises no change notification for them, so they are swept).

use serde::{Deserialize, Serialize};

use crate::time::DateTimeTimeZone;

/// `automaticRepliesSetting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticRepliesSetting {
    /// Off, on, or on inside the scheduled window.
    pub status: AutomaticRepliesStatus,
    /// Who outside gets a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_audience: Option<ExternalAudienceScope>,
    /// Start of the window (with `scheduled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_start_date_time: Option<DateTimeTimeZone>,
    /// End of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_end_date_time: Option<DateTimeTimeZone>,
    /// The reply inside the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_reply_message: Option<String>,
    /// The reply outside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reply_message: Option<String>,
}

/// `automaticRepliesStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AutomaticRepliesStatus {
    /// Off.
    Disabled,
    /// On.
    AlwaysEnabled,
    /// On inside the window.
    Scheduled,
}

/// `externalAudienceScope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExternalAudienceScope {
    /// Nobody outside.
    None,
    /// Contacts only.
    ContactsOnly,
    /// Everyone.
    All,
}

/// What automatic replies say about presence: off, on, or on inside `[start, end)`
/// (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replies {
    /// Off.
    Off,
    /// On.
    On,
    /// On inside the window.
    Scheduled {
        /// Start.
        start: i64,
        /// End.
        end: i64,
    },
}

impl AutomaticRepliesSetting {
    /// What they say; a scheduled window that cannot be read is an error that names it.
    pub fn replies(&self) -> Result<Replies, String> {
        match self.status {
            AutomaticRepliesStatus::Disabled => Ok(Replies::Off),
            AutomaticRepliesStatus::AlwaysEnabled => Ok(Replies::On),
            AutomaticRepliesStatus::Scheduled => {
                let at = |t: &Option<DateTimeTimeZone>, name: &str| {
                    t.as_ref()
                        .ok_or_else(|| format!("scheduled without {name}"))
                        .and_then(|t| t.instant().map(|i| i.as_second()))
                };
                Ok(Replies::Scheduled {
                    start: at(&self.scheduled_start_date_time, "scheduledStartDateTime")?,
                    end: at(&self.scheduled_end_date_time, "scheduledEndDateTime")?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_window_is_read() {
        let body = br#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users('x')/mailboxSettings/automaticRepliesSetting",
          "status":"scheduled","externalAudience":"all",
          "scheduledStartDateTime":{"dateTime":"2026-12-04T08:00:00.0000000","timeZone":"UTC"},
          "scheduledEndDateTime":{"dateTime":"2026-12-05T08:00:00.0000000","timeZone":"UTC"},
          "internalReplyMessage":"<html>away</html>","externalReplyMessage":""}"#;
        let setting: AutomaticRepliesSetting =
            crate::decode("automaticRepliesSetting", body).expect("decodes");
        let Ok(Replies::Scheduled { start, end }) = setting.replies() else {
            panic!("scheduled: {:?}", setting.replies());
        };
        assert_eq!(end - start, 86_400);
        let broken = AutomaticRepliesSetting {
            scheduled_end_date_time: None,
            ..setting
        };
        assert!(
            broken
                .replies()
                .is_err_and(|e| e.contains("scheduledEndDateTime"))
        );
    }
}
