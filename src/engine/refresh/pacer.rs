//! A paced sweep over a gateway's mailboxes: it walks them in order, a few per step at
//! even intervals, so that each is visited once per period and never all at once (the
//! automatic-reply sweep and its verification both pace themselves with one).

use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::Duration;

use tokio::time::Instant;

use common::mailbox::Mailbox;

/// Shortest interval between two steps of a paced sweep (more mailboxes per step
/// beyond that).
pub const MIN_STEP: Duration = Duration::from_millis(100);

/// Walks the gateway's mailboxes in order, a few per step, so each is visited once
/// per period.
#[derive(Debug, Default)]
pub struct Pacer {
    cursor: Option<Mailbox>,
    next_at: Option<Instant>,
    /// Mailboxes owed to the pace but not yet taken (a fraction of one per step).
    credit: f64,
}

impl Pacer {
    /// The step interval and mailboxes per step (on average) for `members` over
    /// `period` in batches of `batch`.
    pub fn plan(members: usize, period: Duration, batch: usize) -> (Duration, f64) {
        let batch = batch.max(1);
        let steps = members.div_ceil(batch).max(1) as u32;
        let step = period / steps;
        if step >= MIN_STEP {
            (step, batch.min(members.max(1)) as f64)
        } else {
            let per = members as f64 * MIN_STEP.as_secs_f64() / period.as_secs_f64();
            (MIN_STEP, per)
        }
    }

    /// The mailboxes due at `now` (and when the next step is).
    pub fn step(
        &mut self,
        now: Instant,
        members: &BTreeSet<Mailbox>,
        period: Duration,
        batch: usize,
    ) -> (Vec<Mailbox>, Instant) {
        let (interval, per) = Pacer::plan(members.len(), period, batch);
        let Some(at) = self.next_at else {
            // The first step comes one interval after start (the start-up reads
            // covered everyone just now).
            let at = now + interval;
            self.next_at = Some(at);
            return (Vec::new(), at);
        };
        if at > now {
            return (Vec::new(), at);
        }
        self.credit += per;
        let per = (self.credit.floor() as usize).min(members.len());
        self.credit -= per as f64;
        let mut taken = Vec::with_capacity(per);
        let start = match &self.cursor {
            Some(c) => members.range::<Mailbox, _>((Bound::Excluded(c), Bound::Unbounded)),
            None => members.range::<Mailbox, _>(..),
        };
        taken.extend(start.take(per).cloned());
        // Wrap around to the beginning (no overlap: `per` is at most every member).
        let more = per - taken.len();
        taken.extend(members.iter().take(more).cloned());
        self.cursor = taken.last().cloned();
        let next = (at + interval).max(now);
        self.next_at = Some(next);
        (taken, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use common::mailbox::numbered as mailbox;

    #[tokio::test(start_paused = true)]
    async fn a_sweep_visits_everyone_once_per_period_in_full_batches_at_even_intervals() {
        let members: BTreeSet<Mailbox> = (0..1000).map(mailbox).collect();
        let period = Duration::from_secs(300);
        let mut pacer = Pacer::default();
        let start = Instant::now();
        let (first, mut next) = pacer.step(start, &members, period, 50);
        assert!(first.is_empty(), "the start-up read covered everyone");
        assert_eq!(
            next - start,
            Duration::from_secs(15),
            "20 steps of 50 in 300 s"
        );
        let mut seen = Vec::new();
        while next < start + period + Duration::from_secs(1) {
            tokio::time::advance(next - Instant::now()).await;
            let (due, at) = pacer.step(Instant::now(), &members, period, 50);
            assert_eq!(due.len(), 50);
            seen.extend(due);
            next = at;
        }
        assert_eq!(seen.len(), 1000, "one full period");
        let distinct: BTreeSet<&Mailbox> = seen.iter().collect();
        assert_eq!(distinct.len(), 1000, "each mailbox once");
        // Many mailboxes: steps no closer than MIN_STEP, more per step.
        let (step, per) = Pacer::plan(1_000_000, period, 50);
        assert_eq!(step, MIN_STEP);
        assert!((per - 333.33).abs() < 0.01, "{per}");
        // One by one (batch 1) over a small gateway.
        assert_eq!(Pacer::plan(10, period, 1), (Duration::from_secs(30), 1.0));
        // A fraction per step adds up: 10,000 over 240 s is 4.17 per 100 ms step,
        // 41.7 a second, not 5 per step.
        let members: BTreeSet<Mailbox> = (0..10_000).map(mailbox).collect();
        let mut pacer = Pacer::default();
        let period = Duration::from_secs(240);
        let (_, mut next) = pacer.step(Instant::now(), &members, period, 1);
        let started = Instant::now();
        let mut taken = 0;
        while Instant::now() < started + Duration::from_secs(24) {
            tokio::time::advance(next - Instant::now()).await;
            let (due, at) = pacer.step(Instant::now(), &members, period, 1);
            taken += due.len();
            next = at;
        }
        assert!(
            (999..=1001).contains(&taken),
            "{taken} in a tenth of the period"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_wraps_around() {
        let members: BTreeSet<Mailbox> = (0..3).map(mailbox).collect();
        let mut pacer = Pacer::default();
        let period = Duration::from_secs(3);
        let (_, mut next) = pacer.step(Instant::now(), &members, period, 2);
        let mut seen = Vec::new();
        for _ in 0..3 {
            tokio::time::advance(next - Instant::now()).await;
            let (due, at) = pacer.step(Instant::now(), &members, period, 2);
            seen.extend(due);
            next = at;
        }
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[..3], seen[3..]);
    }
}
