//! `dateTimeTimeZone`: Graph's wall-clock time with the name of its zone. We ask for
//! UTC (`Prefer: outlook.timezone="UTC"`, and UTC in what we send); an answer in an
//! IANA zone is read too, any other zone name is an error that says so.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// A wall-clock time and its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    /// `2026-12-04T09:30:00.0000000` (no offset).
    pub date_time: String,
    /// `UTC`, or another zone name.
    pub time_zone: String,
}

impl DateTimeTimeZone {
    /// `at` in UTC, as Graph writes it.
    pub fn utc(at: Timestamp) -> DateTimeTimeZone {
        DateTimeTimeZone {
            date_time: at.strftime("%Y-%m-%dT%H:%M:%S.0000000").to_string(),
            time_zone: "UTC".to_owned(),
        }
    }

    /// The instant it names.
    pub fn instant(&self) -> Result<Timestamp, String> {
        let civil: DateTime = self
            .date_time
            .trim_end_matches('Z')
            .parse()
            .map_err(|e| format!("dateTime {:?}: {e}", self.date_time))?;
        let zone = if self.time_zone.eq_ignore_ascii_case("UTC")
            || self.time_zone.eq_ignore_ascii_case("Etc/UTC")
        {
            TimeZone::UTC
        } else {
            TimeZone::get(&self.time_zone).map_err(|_| {
                format!(
                    "timeZone {:?} is not UTC or an IANA zone (we ask for UTC)",
                    self.time_zone
                )
            })?
        };
        zone.to_timestamp(civil)
            .map_err(|e| format!("{} in {}: {e}", self.date_time, self.time_zone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_round_trips() {
        let at: Timestamp = "2026-12-04T09:30:00Z".parse().expect("instant");
        let written = DateTimeTimeZone::utc(at);
        assert_eq!(written.date_time, "2026-12-04T09:30:00.0000000");
        assert_eq!(written.instant(), Ok(at));
    }

    #[test]
    fn an_iana_zone_is_read_and_a_windows_name_refused() {
        let berlin = DateTimeTimeZone {
            date_time: "2026-12-04T10:30:00.0000000".into(),
            time_zone: "Europe/Berlin".into(),
        };
        assert_eq!(
            berlin.instant().map(|t| t.to_string()).as_deref(),
            Ok("2026-12-04T09:30:00Z")
        );
        let windows = DateTimeTimeZone {
            time_zone: "W. Europe Standard Time".into(),
            ..berlin
        };
        assert!(
            windows
                .instant()
                .is_err_and(|e| e.contains("we ask for UTC"))
        );
    }
}
