//! Realistic calendars for the current week, generated from a seed: each mailbox has a
//! home time zone from a spread like a multinational's ([`ZONES`]), and its workday
//! meetings fall on its own local :00 and :30 boundaries between 08:00 and 17:30,
//! Monday to Friday local time; some Tentative, a few WorkingElsewhere blocks, a few
//! Out-of-Office items, some all-day items, and a few users with automatic replies on
//! or scheduled. Deterministic for a (seed, week, mailbox) triple.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::model::{Calendar, Oof};
use super::rng::Rng;
use ews::ops::get_user_availability::BusyType;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// Home zones as fixed offsets from UTC in November (daylight saving ignored: the
/// point is that working hours cover the clock), with how many mailboxes in a hundred
/// live there.
pub const ZONES: [(&str, i64, u64); 8] = [
    ("America/Los_Angeles", -8 * HOUR, 12),
    ("America/Chicago", -6 * HOUR, 8),
    ("America/New_York", -5 * HOUR, 18),
    ("Europe/London", 0, 14),
    ("Europe/Berlin", HOUR, 22),
    ("Asia/Kolkata", 5 * HOUR + 1800, 12),
    ("Asia/Singapore", 8 * HOUR, 8),
    ("Australia/Sydney", 11 * HOUR, 6),
];

/// The home zone of a mailbox, drawn by weight: (name, offset from UTC in seconds).
fn zone(rng: &mut Rng) -> (&'static str, i64) {
    let total: u64 = ZONES.iter().map(|z| z.2).sum();
    let mut pick = rng.below(total);
    for (name, offset, weight) in ZONES {
        if pick < weight {
            return (name, offset);
        }
        pick -= weight;
    }
    ("Europe/London", 0)
}

/// Monday 00:00 UTC of the week holding `now`.
pub fn week_start(now: Timestamp) -> i64 {
    let date = now.to_zoned_datetime(TimeZone::UTC).date();
    let back = date.weekday().to_monday_zero_offset();
    let monday = date.checked_sub(i64::from(back).days()).unwrap_or(date);
    monday
        .to_zoned_datetime(TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .unwrap_or_else(|_| now.as_second() - now.as_second().rem_euclid(DAY))
}

/// The generated calendar of mailbox `index`.
pub fn generate(seed: u64, week_start: i64, index: usize) -> Calendar {
    let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (_, offset) = zone(&mut rng);
    let mut items = Vec::new();
    for day in 0..5 {
        // Local midnight of the local weekday, in UTC.
        let day_start = week_start + day * DAY - offset;
        // Some all-day items: a holiday marker (Free) or a day off (OOF).
        match rng.below(100) {
            0..=2 => {
                items.push((day_start, day_start + DAY, BusyType::Oof));
                continue;
            }
            3..=5 => items.push((day_start, day_start + DAY, BusyType::Free)),
            _ => {}
        }
        let meetings = rng.below(5);
        for _ in 0..meetings {
            // 08:00 to 17:30 on half hours, 30 to 120 minutes long.
            let start = day_start + 8 * HOUR + rng.below(20) as i64 * 1800;
            let length = (1 + rng.below(4) as i64) * 1800;
            let busy = match rng.below(100) {
                0..=69 => BusyType::Busy,
                70..=84 => BusyType::Tentative,
                85..=91 => BusyType::WorkingElsewhere,
                92..=95 => BusyType::Free,
                _ => BusyType::Oof,
            };
            items.push((start, start + length, busy));
        }
    }
    let oof = match rng.below(100) {
        0..=1 => Oof::Enabled,
        2..=3 => {
            let start = week_start + (1 + rng.below(4) as i64) * DAY + 17 * HOUR - offset;
            Oof::Scheduled {
                start: Timestamp::from_second(start).unwrap_or(Timestamp::UNIX_EPOCH),
                end: Timestamp::from_second(start + 2 * DAY).unwrap_or(Timestamp::UNIX_EPOCH),
            }
        }
        _ => Oof::Disabled,
    };
    Calendar::new(items, oof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn week_starts_on_monday_midnight_utc() {
        let now: Timestamp = "2026-11-25T20:19:51Z".parse().unwrap();
        let monday: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        assert_eq!(week_start(now), monday.as_second());
        assert_eq!(week_start(monday), monday.as_second());
    }

    #[test]
    fn generation_is_deterministic_and_realistic() {
        let week = week_start("2026-11-25T12:00:00Z".parse().unwrap());
        let a = generate(7, week, 42);
        let b = generate(7, week, 42);
        assert_eq!(a.items, b.items);
        let mut kinds = std::collections::HashSet::new();
        let mut total = 0;
        for index in 0..2000 {
            let cal = generate(7, week, index);
            for item in &cal.items {
                assert!(item.end > item.start);
                // Local Monday to Friday, whatever the zone.
                assert!(item.start >= week - 12 * HOUR && item.end <= week + 5 * DAY + 8 * HOUR);
                assert_eq!(item.start % 1800, 0, "meetings start on :00 or :30 local");
                kinds.insert(item.busy.as_str());
                total += 1;
            }
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(total > 2000 * 5, "about two meetings a day: {total}");
    }

    #[test]
    fn working_hours_cover_the_clock_on_weekdays() {
        // Someone is in a meeting at every hour from Monday 00:00 to Friday 12:00 UTC.
        let week = week_start("2026-11-25T12:00:00Z".parse().unwrap());
        let calendars: Vec<Calendar> = (0..2000).map(|i| generate(3, week, i)).collect();
        for hour in 0..(4 * 24 + 12) {
            let at = week + hour * HOUR + 900;
            let busy = calendars
                .iter()
                .filter(|c| {
                    c.items
                        .iter()
                        .any(|i| i.busy == BusyType::Busy && i.start <= at && i.end > at)
                })
                .count();
            assert!(busy > 0, "nobody in a meeting at hour {hour} of the week");
        }
    }
}
