//! Time zones as EWS clients send them: a `SerializableTimeZone` (bias plus standard and
//! daylight transition rules, in GetUserAvailability) or a Windows zone id (in
//! `TimeZoneContext`, and answered by GetServerTimeZones from a small built-in table).
//! Converts between UTC and the zone's local time.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;

use ews::xml_tree::Element;
use ews::xml_write::XmlWriter;

/// When a zone switches: the `day_order`-th (5 = last) `weekday` of `month`, at
/// `seconds` after local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// 1 to 12.
    pub month: i8,
    /// 1 to 4, or 5 for the last.
    pub day_order: i8,
    /// Day of the week.
    pub weekday: Weekday,
    /// Seconds after local midnight.
    pub seconds: i32,
}

/// Daylight saving: extra bias and when it starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daylight {
    /// Added to the bias while daylight time is on (usually -60).
    pub bias: i32,
    /// Switch to daylight time (in local standard time).
    pub start: Transition,
    /// Switch back to standard time (in local daylight time).
    pub end: Transition,
}

/// A zone rule: UTC = local + `bias` minutes (+ daylight bias in summer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneRule {
    /// Standard bias in minutes.
    pub bias: i32,
    /// Daylight saving, if any.
    pub daylight: Option<Daylight>,
}

pub const UTC: ZoneRule = ZoneRule {
    bias: 0,
    daylight: None,
};

const fn rule(month: i8, day_order: i8, weekday: Weekday, hour: i32) -> Transition {
    Transition {
        month,
        day_order,
        weekday,
        seconds: hour * 3600,
    }
}

/// A Windows time zone the simulator knows by id.
#[derive(Debug, Clone, Copy)]
pub struct KnownZone {
    /// Windows id, e.g. `W. Europe Standard Time`.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    pub rule: ZoneRule,
}

/// The zones GetServerTimeZones answers for and TimeZoneContext may name.
pub const KNOWN_ZONES: [KnownZone; 5] = [
    KnownZone {
        id: "UTC",
        name: "(UTC) Coordinated Universal Time",
        rule: UTC,
    },
    KnownZone {
        id: "GMT Standard Time",
        name: "(UTC+00:00) Dublin, Edinburgh, Lisbon, London",
        rule: ZoneRule {
            bias: 0,
            daylight: Some(Daylight {
                bias: -60,
                start: rule(3, 5, Weekday::Sunday, 1),
                end: rule(10, 5, Weekday::Sunday, 2),
            }),
        },
    },
    KnownZone {
        id: "W. Europe Standard Time",
        name: "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
        rule: ZoneRule {
            bias: -60,
            daylight: Some(Daylight {
                bias: -60,
                start: rule(3, 5, Weekday::Sunday, 2),
                end: rule(10, 5, Weekday::Sunday, 3),
            }),
        },
    },
    KnownZone {
        id: "Eastern Standard Time",
        name: "(UTC-05:00) Eastern Time (US & Canada)",
        rule: ZoneRule {
            bias: 300,
            daylight: Some(Daylight {
                bias: -60,
                start: rule(3, 2, Weekday::Sunday, 2),
                end: rule(11, 1, Weekday::Sunday, 2),
            }),
        },
    },
    KnownZone {
        id: "Pacific Standard Time",
        name: "(UTC-08:00) Pacific Time (US & Canada)",
        rule: ZoneRule {
            bias: 480,
            daylight: Some(Daylight {
                bias: -60,
                start: rule(3, 2, Weekday::Sunday, 2),
                end: rule(11, 1, Weekday::Sunday, 2),
            }),
        },
    },
];

/// The known zone with this Windows id.
pub fn known(id: &str) -> Option<&'static KnownZone> {
    KNOWN_ZONES.iter().find(|z| z.id == id.trim())
}

fn weekday_from_name(name: &str) -> Option<Weekday> {
    Some(match name.trim() {
        "Sunday" => Weekday::Sunday,
        "Monday" => Weekday::Monday,
        "Tuesday" => Weekday::Tuesday,
        "Wednesday" => Weekday::Wednesday,
        "Thursday" => Weekday::Thursday,
        "Friday" => Weekday::Friday,
        "Saturday" => Weekday::Saturday,
        _ => return None,
    })
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Sunday => "Sunday",
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
    }
}

/// `HH:MM:SS` to seconds.
fn parse_time_of_day(text: &str) -> Option<i32> {
    let mut parts = text.trim().split(':');
    let h: i32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next()?.parse().ok()?;
    let s: i32 = parts
        .next()
        .map_or(Some(0), |s| s.split('.').next()?.parse().ok())?;
    ((0..24).contains(&h) && (0..60).contains(&m) && (0..60).contains(&s))
        .then_some(h * 3600 + m * 60 + s)
}

impl Transition {
    fn read(e: Element<'_, '_>) -> Result<(i32, Transition), String> {
        let text = |name: &str| {
            e.ews_child(name)
                .map(|c| c.text())
                .ok_or_else(|| format!("{} lacks {name}", e.local()))
        };
        let bias = text("Bias")?
            .parse()
            .map_err(|_| format!("{} Bias is not a number", e.local()))?;
        let seconds = parse_time_of_day(text("Time")?)
            .ok_or_else(|| format!("{} Time is not HH:MM:SS", e.local()))?;
        let day_order: i8 = text("DayOrder")?
            .parse()
            .map_err(|_| "DayOrder is not a number".to_owned())?;
        let month: i8 = text("Month")?
            .parse()
            .map_err(|_| "Month is not a number".to_owned())?;
        let weekday = weekday_from_name(text("DayOfWeek")?).ok_or("DayOfWeek is not a day name")?;
        if !(0..=12).contains(&month) || !(1..=5).contains(&day_order) {
            return Err(format!("{} Month or DayOrder out of range", e.local()));
        }
        Ok((
            bias,
            Transition {
                month,
                day_order,
                weekday,
                seconds,
            },
        ))
    }

    /// The local date-time of this transition in `year`.
    fn in_year(&self, year: i16) -> Option<DateTime> {
        let first = Date::new(year, self.month, 1).ok()?;
        let offset = (i16::from(self.weekday.to_sunday_zero_offset())
            - i16::from(first.weekday().to_sunday_zero_offset()))
        .rem_euclid(7);
        let mut day = 1 + offset as i8 + (self.day_order - 1) * 7;
        let days = first.days_in_month();
        while day > days {
            day -= 7;
        }
        let date = Date::new(year, self.month, day).ok()?;
        let t = jiff::civil::Time::new(
            (self.seconds / 3600) as i8,
            ((self.seconds / 60) % 60) as i8,
            (self.seconds % 60) as i8,
            0,
        )
        .ok()?;
        Some(date.to_datetime(t))
    }
}

fn civil_seconds(dt: DateTime) -> i64 {
    dt.to_zoned_datetime(TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .unwrap_or(0)
}

fn civil_from_seconds(secs: i64) -> DateTime {
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(TimeZone::UTC)
        .datetime()
}

impl ZoneRule {
    /// Reads a `SerializableTimeZone` (`t:TimeZone`) element.
    pub fn read(e: Element<'_, '_>) -> Result<ZoneRule, String> {
        let bias: i32 = e
            .ews_child("Bias")
            .ok_or("TimeZone lacks Bias")?
            .text()
            .parse()
            .map_err(|_| "TimeZone Bias is not a number".to_owned())?;
        let standard = e
            .ews_child("StandardTime")
            .map(Transition::read)
            .transpose()?;
        let daylight = e
            .ews_child("DaylightTime")
            .map(Transition::read)
            .transpose()?;
        let daylight = match (standard, daylight) {
            (Some((_, end)), Some((dst_bias, start)))
                if start.month != 0 && end.month != 0 && dst_bias != 0 =>
            {
                Some(Daylight {
                    bias: dst_bias,
                    start,
                    end,
                })
            }
            _ => None,
        };
        Ok(ZoneRule { bias, daylight })
    }

    /// Minutes to add to local time to get UTC at the UTC instant `utc`.
    pub fn bias_at(&self, utc: i64) -> i32 {
        let Some(d) = self.daylight else {
            return self.bias;
        };
        let year = civil_from_seconds(utc - i64::from(self.bias) * 60).year();
        let (Some(start), Some(end)) = (d.start.in_year(year), d.end.in_year(year)) else {
            return self.bias;
        };
        let start_utc = civil_seconds(start) + i64::from(self.bias) * 60;
        let end_utc = civil_seconds(end) + i64::from(self.bias + d.bias) * 60;
        let summer = if start_utc < end_utc {
            start_utc <= utc && utc < end_utc
        } else {
            utc >= start_utc || utc < end_utc
        };
        if summer {
            self.bias + d.bias
        } else {
            self.bias
        }
    }

    /// Local time of the UTC instant `utc`.
    pub fn to_local(&self, utc: i64) -> DateTime {
        civil_from_seconds(utc - i64::from(self.bias_at(utc)) * 60)
    }

    /// The UTC instant of local time `local` (standard time when ambiguous).
    pub fn to_utc(&self, local: DateTime) -> i64 {
        let secs = civil_seconds(local);
        let standard = secs + i64::from(self.bias) * 60;
        if self.bias_at(standard) == self.bias {
            return standard;
        }
        secs + i64::from(self.bias_at(standard)) * 60
    }
}

fn duration(minutes: i32) -> String {
    if minutes < 0 {
        format!("-PT{}M", -minutes)
    } else {
        format!("PT{minutes}M")
    }
}

/// Writes a `t:TimeZoneDefinition` (Exchange 2010+ form) for a known zone.
pub fn write_definition(w: &mut XmlWriter, zone: &KnownZone) {
    let period = |kind: &str| format!("trule:Microsoft/Registry/{}/2006-{kind}", zone.id);
    w.open(
        "t:TimeZoneDefinition",
        &[("Name", zone.name), ("Id", zone.id)],
    );
    w.open("t:Periods", &[]);
    w.empty(
        "t:Period",
        &[
            ("Bias", &duration(-zone.rule.bias)),
            ("Name", "Standard"),
            ("Id", &period("Standard")),
        ],
    );
    if let Some(d) = zone.rule.daylight {
        w.empty(
            "t:Period",
            &[
                ("Bias", &duration(-(zone.rule.bias + d.bias))),
                ("Name", "Daylight"),
                ("Id", &period("Daylight")),
            ],
        );
    }
    w.close("t:Periods");
    w.open("t:TransitionsGroups", &[]);
    w.open("t:TransitionsGroup", &[("Id", "0")]);
    match zone.rule.daylight {
        None => {
            w.open("t:Transition", &[]);
            w.leaf_with("t:To", &[("Kind", "Period")], &period("Standard"));
            w.close("t:Transition");
        }
        Some(d) => {
            for (to, t) in [("Daylight", d.start), ("Standard", d.end)] {
                w.open("t:RecurringDayTransition", &[]);
                w.leaf_with("t:To", &[("Kind", "Period")], &period(to));
                w.leaf("t:TimeOffset", &format!("PT{}M", t.seconds / 60));
                w.leaf("t:Month", &t.month.to_string());
                w.leaf("t:DayOfWeek", weekday_name(t.weekday));
                w.leaf(
                    "t:Occurrence",
                    if t.day_order == 5 {
                        "-1"
                    } else {
                        ["1", "2", "3", "4"][(t.day_order - 1) as usize]
                    },
                );
                w.close("t:RecurringDayTransition");
            }
        }
    }
    w.close("t:TransitionsGroup");
    w.close("t:TransitionsGroups");
    w.open("t:Transitions", &[]);
    w.open("t:Transition", &[]);
    w.leaf_with("t:To", &[("Kind", "Group")], "0");
    w.close("t:Transition");
    w.close("t:Transitions");
    w.close("t:TimeZoneDefinition");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn european_summer_time() {
        let berlin = known("W. Europe Standard Time").unwrap().rule;
        assert_eq!(berlin.bias_at(secs("2026-01-15T12:00:00Z")), -60);
        assert_eq!(berlin.bias_at(secs("2026-07-15T12:00:00Z")), -120);
        // 2026-03-29 01:00 UTC is 02:00 CET, the switch.
        assert_eq!(berlin.bias_at(secs("2026-03-29T00:59:59Z")), -60);
        assert_eq!(berlin.bias_at(secs("2026-03-29T01:00:00Z")), -120);
        assert_eq!(
            berlin.to_local(secs("2026-07-15T12:00:00Z")).to_string(),
            "2026-07-15T14:00:00"
        );
        let local: DateTime = "2026-11-25T10:00:00".parse().unwrap();
        assert_eq!(berlin.to_utc(local), secs("2026-11-25T09:00:00Z"));
    }

    #[test]
    fn us_eastern_second_sunday() {
        let eastern = known("Eastern Standard Time").unwrap().rule;
        assert_eq!(eastern.bias_at(secs("2026-03-08T06:59:59Z")), 300);
        assert_eq!(eastern.bias_at(secs("2026-03-08T07:00:00Z")), 240);
        assert_eq!(eastern.bias_at(secs("2026-11-01T05:59:59Z")), 240);
        assert_eq!(eastern.bias_at(secs("2026-11-01T06:00:00Z")), 300);
    }
}
