//! `POST /users/{id}/calendar/getSchedule`: the free/busy items of up to
//! [`MAX_SCHEDULES`] mailboxes over a window shorter than [`MAX_WINDOW_DAYS`] days, as
//! the mailbox in the URL may see them (Graph's "calendar: getSchedule"). The answer
//! holds one `scheduleInformation` per address asked, in order, each with its items or
//! an error.

use serde::{Deserialize, Serialize};

use crate::time::DateTimeTimeZone;

/// Mailboxes one request may ask for (Graph's limit).
pub const MAX_SCHEDULES: usize = 20;
/// The window must be shorter than this many days.
pub const MAX_WINDOW_DAYS: i64 = 62;
/// The `availabilityView` slot length we ask for (minutes; we read the items, not the
/// view).
pub const VIEW_INTERVAL_MINUTES: i32 = 60;

/// The request body. Graph's documentation writes the parameters camelCase, its
/// schema (and the SDKs generated from it) PascalCase (`Schedules`); Graph takes
/// both, and so does this type when it reads one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleRequest {
    /// SMTP addresses.
    #[serde(alias = "Schedules")]
    pub schedules: Vec<String>,
    /// Window start.
    #[serde(alias = "StartTime")]
    pub start_time: DateTimeTimeZone,
    /// Window end.
    #[serde(alias = "EndTime")]
    pub end_time: DateTimeTimeZone,
    /// Minutes per `availabilityView` slot.
    #[serde(alias = "AvailabilityViewInterval")]
    pub availability_view_interval: i32,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleAnswer {
    /// One per address asked.
    pub value: Vec<ScheduleInformation>,
}

/// One mailbox's availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleInformation {
    /// The address asked.
    pub schedule_id: String,
    /// One digit per slot (0 free, 1 tentative, 2 busy, 3 oof, 4 working elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_view: Option<String>,
    /// Why it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FreeBusyError>,
    /// Its items in the window.
    #[serde(default)]
    pub schedule_items: Vec<ScheduleItem>,
}

/// Why one mailbox's schedule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreeBusyError {
    /// In words.
    #[serde(default)]
    pub message: String,
    /// A code (`ErrorMailRecipientNotFound`, …).
    #[serde(default)]
    pub response_code: String,
}

/// One item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleItem {
    /// Start.
    pub start: DateTimeTimeZone,
    /// End.
    pub end: DateTimeTimeZone,
    /// How it shows.
    pub status: FreeBusyStatus,
    /// Marked private.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_private: Option<bool>,
}

/// `freeBusyStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FreeBusyStatus {
    /// Free.
    Free,
    /// Tentative.
    Tentative,
    /// Busy.
    Busy,
    /// Out of office.
    Oof,
    /// Working elsewhere.
    WorkingElsewhere,
    /// No data (and any member a later Graph adds).
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_as_graph_documents_it_decodes() {
        let body = br#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)","value":[
          {"scheduleId":"adelev@contoso.com","availabilityView":"000220000","scheduleItems":[
            {"isPrivate":false,"status":"busy","subject":"Let's go for lunch","location":"Harry's Bar",
             "start":{"dateTime":"2019-03-15T12:00:00.0000000","timeZone":"Pacific Standard Time"},
             "end":{"dateTime":"2019-03-15T14:00:00.0000000","timeZone":"Pacific Standard Time"}}],
           "workingHours":{"daysOfWeek":["monday"],"startTime":"08:00:00.0000000","endTime":"17:00:00.0000000"}},
          {"scheduleId":"nobody@contoso.com","error":{"message":"not found","responseCode":"ErrorMailRecipientNotFound"}},
          {"scheduleId":"x@contoso.com","scheduleItems":[{"status":"unknownFutureValue",
             "start":{"dateTime":"2019-03-15T12:00:00","timeZone":"UTC"},"end":{"dateTime":"2019-03-15T13:00:00","timeZone":"UTC"}}]}]}"#;
        let answer: ScheduleAnswer = crate::decode("getSchedule answer", body).expect("decodes");
        assert_eq!(answer.value.len(), 3);
        assert_eq!(
            answer.value[0].schedule_items[0].status,
            FreeBusyStatus::Busy
        );
        assert_eq!(
            answer.value[1]
                .error
                .as_ref()
                .map(|e| e.response_code.as_str()),
            Some("ErrorMailRecipientNotFound")
        );
        assert_eq!(
            answer.value[2].schedule_items[0].status,
            FreeBusyStatus::Unknown
        );
    }
}
