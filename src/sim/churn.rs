//! Random calendar changes at a set rate (`--churn R` per second), spread over all
//! mailboxes: new meetings, moved meetings, deleted meetings, changed busy types and
//! toggled automatic replies. The sequence of changes is deterministic for a seed.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::time::{Duration, Instant, MissedTickBehavior};

use super::Sim;
use super::model::{ItemPatch, NewItem, Oof};
use super::rng::Rng;
use crate::ews::ops::get_user_availability::BusyType;

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

/// Makes `sim.config.churn` changes per second until shutdown.
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
        owed = (owed + sim.config.churn * (now - last).as_secs_f64()).min(MAX_PER_TICK);
        last = now;
        while owed >= 1.0 {
            change(&sim, &mut rng);
            owed -= 1.0;
        }
    }
}

/// One random change.
pub fn change(sim: &Sim, rng: &mut Rng) {
    let mailbox = rng.below(sim.directory.len() as u64) as usize;
    let now = Timestamp::now().as_second();
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
