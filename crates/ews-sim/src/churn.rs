//! Random calendar changes at a set rate (`--churn R` per second, or as set through the
//! control API), spread over all mailboxes: new meetings, moved meetings, deleted
//! meetings, changed busy types and toggled automatic replies; a set share of them
//! change the present (an ad-hoc call, a meeting starting in a minute, one ending
//! early, an item over now deleted, automatic replies switched on or off), so that
//! presence itself changes at any hour of any day. The sequence of changes is
//! deterministic for a seed and rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use tokio::time::{Duration, Instant, MissedTickBehavior};

use super::Sim;
use super::model::{ItemPatch, NewItem, Oof};
use super::rng::Rng;
use ews::ops::get_user_availability::BusyType;

const TICK: Duration = Duration::from_millis(10);
/// Most changes made in one tick, so a stalled runtime cannot trigger a burst.
const MAX_PER_TICK: f64 = 10_000.0;

const BUSY_TYPES: [BusyType; 5] = [
    BusyType::Busy,
    BusyType::Tentative,
    BusyType::Free,
    BusyType::Oof,
    BusyType::WorkingElsewhere,
];

/// The share of the demo's changes that change the present: enough that presence
/// moves at any hour of any day, not only in working hours.
pub const DEMO_NOW_SHARE: f64 = 0.8;

/// The churn rate and the share of changes that affect the present.
#[derive(Debug)]
pub struct Rate {
    per_second: AtomicU64,
    now_share: AtomicU64,
}

impl Rate {
    /// `per_second` changes, `now_share` (0 to 1) of them over now.
    pub fn new(per_second: f64, now_share: f64) -> Rate {
        let rate = Rate {
            per_second: AtomicU64::new(0),
            now_share: AtomicU64::new(0),
        };
        rate.set(per_second, now_share);
        rate
    }

    /// Sets both (negative or non-finite values count as 0; the share is capped at 1).
    pub fn set(&self, per_second: f64, now_share: f64) {
        let clean = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        self.per_second
            .store(clean(per_second).to_bits(), Ordering::Relaxed);
        self.now_share
            .store(clean(now_share).min(1.0).to_bits(), Ordering::Relaxed);
    }

    /// Changes per second.
    pub fn per_second(&self) -> f64 {
        f64::from_bits(self.per_second.load(Ordering::Relaxed))
    }

    /// The share of changes over now.
    pub fn now_share(&self) -> f64 {
        f64::from_bits(self.now_share.load(Ordering::Relaxed))
    }
}

/// Makes `sim.churn` changes per second until shutdown.
pub async fn run(sim: Arc<Sim>) {
    let mut rng = Rng::new(sim.config.seed ^ 0xC4A2_6E00_0000_0001);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut owed = 0.0;
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = sim.shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        owed = (owed + sim.churn.per_second() * (now - last).as_secs_f64()).min(MAX_PER_TICK);
        last = now;
        let share = (sim.churn.now_share() * 1000.0) as u64;
        while owed >= 1.0 {
            let now = Timestamp::now().as_second();
            if share > 0 && rng.below(1000) < share {
                change_now(&sim, &mut rng, now);
            } else {
                change(&sim, &mut rng, now);
            }
            owed -= 1.0;
        }
    }
}

/// One random change of the present at `now` (seconds): an ad-hoc call, a meeting
/// starting within a minute or two, a meeting ending early, an item over now deleted,
/// or automatic replies switched on or off.
pub fn change_now(sim: &Sim, rng: &mut Rng, now: i64) {
    let mailbox = rng.below(sim.directory.len() as u64) as usize;
    let covering = sim.directory.with(mailbox, |c| {
        c.items
            .iter()
            .filter(|i| i.start <= now && i.end > now)
            .map(|i| i.number)
            .next()
    });
    let create = |start: i64, end: i64, busy: BusyType| {
        let _ = sim.create_item(
            mailbox,
            NewItem {
                start,
                end,
                busy,
                subject: None,
            },
        );
    };
    match (rng.below(10), covering) {
        // A meeting over now ends early (in a few seconds) or is cancelled.
        (0..=1, Some(number)) => {
            let _ = sim.update_item(
                mailbox,
                number,
                ItemPatch {
                    end: Some(now + 2 + rng.below(20) as i64),
                    ..ItemPatch::default()
                },
            );
        }
        (2, Some(number)) => {
            let _ = sim.delete_item(mailbox, number);
        }
        // Automatic replies switched on, or off again.
        (3, _) => {
            let on = sim.directory.with(mailbox, |c| c.oof != Oof::Disabled);
            sim.set_oof(mailbox, if on { Oof::Disabled } else { Oof::Enabled });
        }
        // A meeting starting within a minute or two.
        (4..=5, _) => {
            let start = now + 10 + rng.below(90) as i64;
            let busy = if rng.below(4) == 0 {
                BusyType::Tentative
            } else {
                BusyType::Busy
            };
            create(start, start + 300 + rng.below(1500) as i64, busy);
        }
        // An ad-hoc call (or an out-of-office block) from now on.
        _ => {
            let busy = match rng.below(10) {
                0 => BusyType::Oof,
                1 => BusyType::Tentative,
                _ => BusyType::Busy,
            };
            create(
                now - rng.below(60) as i64,
                now + 120 + rng.below(1500) as i64,
                busy,
            );
        }
    }
}

/// One random change, at `now` (seconds).
pub fn change(sim: &Sim, rng: &mut Rng, now: i64) {
    let mailbox = rng.below(sim.directory.len() as u64) as usize;
    let next_half_hour = now - now.rem_euclid(1800) + 1800;
    let action = rng.below(5);
    let existing = sim.directory.with(mailbox, |c| {
        if c.items.is_empty() {
            None
        } else {
            Some(c.items[rng.below(c.items.len() as u64) as usize].number)
        }
    });
    let busy = BUSY_TYPES[rng.below(BUSY_TYPES.len() as u64) as usize];
    match (action, existing) {
        (1, Some(number)) => {
            let shift = if rng.below(2) == 0 { -1800 } else { 1800 };
            let (start, end) = sim
                .directory
                .with(mailbox, |c| c.item(number).map(|i| (i.start, i.end)))
                .unwrap_or((next_half_hour, next_half_hour + 1800));
            let _ = sim.update_item(
                mailbox,
                number,
                ItemPatch {
                    start: Some(start + shift),
                    end: Some(end + shift),
                    ..ItemPatch::default()
                },
            );
        }
        (2, Some(number)) => {
            let _ = sim.delete_item(mailbox, number);
        }
        (3, Some(number)) => {
            let _ = sim.update_item(
                mailbox,
                number,
                ItemPatch {
                    busy: Some(busy),
                    ..ItemPatch::default()
                },
            );
        }
        (4, _) => {
            let on = sim.directory.with(mailbox, |c| c.oof != Oof::Disabled);
            sim.set_oof(mailbox, if on { Oof::Disabled } else { Oof::Enabled });
        }
        _ => {
            let start = next_half_hour + rng.below(16) as i64 * 1800;
            let _ = sim.create_item(
                mailbox,
                NewItem {
                    start,
                    end: start + (1 + rng.below(4) as i64) * 1800,
                    busy,
                    subject: None,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    /// The demo's first minute at a dead hour: Sunday 03:00 UTC, with the demo's rate
    /// (5 changes a second) and share of changes to the present, on a pinned clock.
    #[test]
    fn the_demo_is_alive_on_a_sunday_night() {
        let at: Timestamp = "2026-11-29T03:00:00Z".parse().unwrap();
        let sim = Sim::new_at(
            SimConfig {
                mailboxes: 1000,
                ..SimConfig::default()
            },
            at,
        )
        .unwrap();
        let start = at.as_second();
        let states = |t: i64| -> Vec<&'static str> {
            let when = Timestamp::from_second(t).unwrap();
            (0..sim.directory.len())
                .map(|m| sim.directory.with(m, |c| c.truth(when).availability()))
                .collect()
        };
        let mut rng = Rng::new(1);
        let share = (DEMO_NOW_SHARE * 1000.0) as u64;
        let mut before = states(start);
        let mut lively = 0;
        for interval in 0..12 {
            for k in 0..25 {
                let now = start + interval * 5 + k / 5;
                if rng.below(1000) < share {
                    change_now(&sim, &mut rng, now);
                } else {
                    change(&sim, &mut rng, now);
                }
            }
            let after = states(start + (interval + 1) * 5);
            if after != before {
                lively += 1;
            }
            before = after;
        }
        for state in ["available", "in-a-meeting", "away"] {
            assert!(before.contains(&state), "nobody {state} after a minute");
        }
        assert!(lively >= 10, "transitions in only {lively} of 12 intervals");
    }
}
