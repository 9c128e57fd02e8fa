//! A storm's setup for the benchmarks: a meeting starting at the same instant T in
//! many mailboxes, known to the daemon before T.

use std::time::{Duration, Instant};

use ews::ops::get_user_availability::BusyType;
use ews_presence::presence::cache::Cache;
use ews_sim::Sim;
use ews_sim::model::NewItem;

/// Puts an hour-long meeting starting at `t` (Unix seconds) into the first `mailboxes`
/// mailboxes of `sim` (`user1@example.test`…) and waits until the daemon's `cache`
/// knows every one; fails when that is not so a second before T (more lead time).
pub async fn meetings_at(sim: &Sim, cache: &Cache, mailboxes: usize, t: i64) {
    for m in 0..mailboxes {
        sim.create_item(
            m,
            NewItem {
                start: t,
                end: t + 3600,
                busy: BusyType::Busy,
                subject: None,
            },
        )
        .expect("create");
    }
    let all: Vec<_> = (1..=mailboxes)
        .map(|n| ews::types::Mailbox::parse(&format!("user{n}@example.test")).expect("address"))
        .collect();
    loop {
        let now = jiff::Timestamp::now().as_second();
        let known = all
            .iter()
            .filter(|m| {
                cache
                    .read(m, now)
                    .is_some_and(|s| s.reading.until == Some(t))
            })
            .count();
        if known == mailboxes {
            return;
        }
        assert!(
            now < t - 1,
            "only {known} of {mailboxes} knew the meeting before T: increase the lead time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `Instant` of Unix second `t`.
pub fn instant_of(t: i64) -> Instant {
    let wait = jiff::Timestamp::now().duration_until(jiff::Timestamp::from_second(t).expect("T"));
    Instant::now() + wait.unsigned_abs()
}
