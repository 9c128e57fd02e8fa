//! Realistic calendars for the current week, generated from a seed: workday meetings
//! on :00 and :30 boundaries, some Tentative, a few WorkingElsewhere blocks, a few
//! Out-of-Office items, some all-day items, and a few users with automatic replies on
//! or scheduled. Deterministic for a (seed, week, mailbox) triple.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::model::{Calendar, Oof};
use super::rng::Rng;
use crate::ews::ops::get_user_availability::BusyType;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

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
    let mut items = Vec::new();
    for day in 0..5 {
        let day_start = week_start + day * DAY;
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
            let start = week_start + (1 + rng.below(4) as i64) * DAY + 17 * HOUR;
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
                assert!(item.start >= week && item.end <= week + 5 * DAY);
                assert_eq!(item.start % 1800, 0, "meetings start on :00 or :30");
                kinds.insert(item.busy.as_str());
                total += 1;
            }
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(total > 2000 * 5, "about two meetings a day: {total}");
    }
}
