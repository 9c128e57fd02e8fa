//! The quiet period after a change read: when each mailbox's last read for a change was
//! sent, so that events within `debounce` of it wait for one trailing read instead of
//! each causing a read. Only recent reads are remembered: the map is pruned when it has
//! doubled, so it holds the mailboxes changed lately, not every mailbox ever changed.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use common::mailbox::Mailbox;

/// The map is never pruned below this many entries.
pub const PRUNE_FLOOR: usize = 1024;

/// When each recently changed mailbox was last read for a change.
#[derive(Debug)]
pub struct QuietPeriods {
    debounce: Duration,
    last_read: HashMap<Mailbox, Instant>,
    /// Size at which reads older than the period are dropped next.
    prune_at: usize,
}

impl QuietPeriods {
    /// No mailbox read yet; a period lasts `debounce`.
    pub fn new(debounce: Duration) -> QuietPeriods {
        QuietPeriods {
            debounce,
            last_read: HashMap::new(),
            prune_at: PRUNE_FLOOR,
        }
    }

    /// When the quiet period of `mailbox` ends, if it has not ended by `now`.
    pub fn until(&self, mailbox: &Mailbox, now: Instant) -> Option<Instant> {
        self.last_read
            .get(mailbox)
            .map(|sent| *sent + self.debounce)
            .filter(|at| *at > now)
    }

    /// A read of `mailbox` for a change was sent at `now`: a period starts.
    pub fn read_sent(&mut self, mailbox: &Mailbox, now: Instant) {
        self.last_read.insert(mailbox.clone(), now);
        // Amortised constant time per read: prune only when the map has doubled.
        if self.last_read.len() > self.prune_at {
            if let Some(cutoff) = now.checked_sub(self.debounce) {
                self.last_read.retain(|_, sent| *sent > cutoff);
            }
            self.prune_at = (self.last_read.len() * 2).max(PRUNE_FLOOR);
        }
    }

    /// Forgets `mailbox`.
    pub fn remove(&mut self, mailbox: &Mailbox) {
        self.last_read.remove(mailbox);
    }

    /// How many reads are remembered.
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.last_read.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use common::mailbox::numbered as mailbox;

    #[test]
    fn only_recent_reads_are_remembered() {
        let debounce = Duration::from_millis(100);
        let mut quiet = QuietPeriods::new(debounce);
        let mut now = Instant::now();
        // Waves of changes to different mailboxes, each wave after the quiet period.
        for wave in 0..8usize {
            for n in 0..1000 {
                quiet.read_sent(&mailbox(wave * 1000 + n), now);
            }
            now += Duration::from_millis(150);
        }
        let remembered = quiet.remembered();
        assert!(
            remembered <= 2 * PRUNE_FLOOR.max(2000),
            "{remembered} reads remembered of 8,000 mailboxes changed"
        );
        // A mailbox read within the period is still remembered.
        quiet.read_sent(&mailbox(7999), now);
        assert_eq!(quiet.until(&mailbox(7999), now), Some(now + debounce));
        assert_eq!(quiet.until(&mailbox(7999), now + debounce), None);
        quiet.remove(&mailbox(7999));
        assert_eq!(quiet.until(&mailbox(7999), now), None);
    }
}
