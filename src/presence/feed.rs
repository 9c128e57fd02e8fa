//! The change feed: every availability transition gets a sequence number and goes to
//! live watchers; the last N are kept so a watcher can resume after a reconnect from
//! the sequence number it saw last. A watcher too far behind is told to start over.
//!
//! Changes travel in batches: whatever one publisher hands over at once (a single
//! refresh, or up to a thousand transitions of a storm) is one allocation, one slot of
//! the live channel and one wake-up for each watcher. The feed carries values
//! (presence snapshots); rendering them is each watcher's job, into its own buffer, so
//! nothing rendered is kept while a batch waits in the channel or the replay ring.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

/// Changes published together, numbered consecutively from `first`.
#[derive(Debug)]
pub struct Batch<T> {
    first: u64,
    items: Vec<T>,
}

/// Changes kept for SSE resumption (a client that missed more re-queries).
pub const REPLAY: usize = 32_768;
/// How many publications (batches of changes) a live watcher may lag before it is
/// reset, at least. Start-up and refreshes publish one change at a time, a million
/// mailboxes' first syncs a million times in about two minutes.
pub const LAG: usize = 131_072;

/// How many publications a live watcher may lag with `mailboxes` configured: room for
/// a top-of-the-hour storm of every mailbox changing at once, twice over. A storm is
/// published in batches of 1,024 changes, so about one publication per 1,000
/// mailboxes. The channel's slots are allocated up front, about 40 bytes each; a batch
/// stays in its slot until the channel comes round to it again.
pub fn lag_for(mailboxes: usize) -> usize {
    LAG.max(mailboxes / 512)
}
impl<T> Batch<T> {
    /// The sequence number of the first change (numbers start at 1).
    pub fn first_seq(&self) -> u64 {
        self.first
    }

    /// The sequence number of the last change.
    pub fn last_seq(&self) -> u64 {
        self.first + self.items.len() as u64 - 1
    }

    /// The changes with their sequence numbers, in order.
    pub fn changes(&self) -> impl Iterator<Item = (u64, &T)> {
        (self.first..).zip(&self.items)
    }

    /// The changes after sequence number `seen`, in order.
    pub fn changes_after(&self, seen: u64) -> impl Iterator<Item = (u64, &T)> {
        let skip = usize::try_from(seen.saturating_add(1).saturating_sub(self.first))
            .unwrap_or(usize::MAX);
        self.changes().skip(skip)
    }

    /// How many changes it holds (never 0).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Always false: an empty publication is not sent.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What a new watcher gets: the batches holding the changes it missed (the first may
/// start before them: see [`Batch::changes_after`]), then the live receiver.
pub type Watch<T> = (Vec<Arc<Batch<T>>>, broadcast::Receiver<Arc<Batch<T>>>);

/// A watcher asked to resume from a point no longer (or never) in the replay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset;

#[derive(Debug)]
struct Ring<T> {
    next: u64,
    kept: VecDeque<Arc<Batch<T>>>,
    /// Changes in `kept`.
    kept_changes: usize,
    /// Changes kept at least (whole batches, so up to a batch more).
    capacity: usize,
}

/// The change feed: sequence-numbered batches of changes for live watchers, the last
/// ones kept so that a watcher can resume after a reconnect.
#[derive(Debug)]
pub struct Feed<T> {
    ring: Mutex<Ring<T>>,
    live: broadcast::Sender<Arc<Batch<T>>>,
}

impl<T> Feed<T> {
    /// A feed keeping at least the last `replay` changes; live watchers may fall `lag`
    /// publications (batches) behind.
    pub fn new(replay: usize, lag: usize) -> Feed<T> {
        Feed {
            ring: Mutex::new(Ring {
                next: 1,
                kept: VecDeque::new(),
                kept_changes: 0,
                capacity: replay.max(1),
            }),
            live: broadcast::channel(lag.max(16)).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring<T>> {
        common::sync::lock(&self.ring)
    }

    /// Publishes one change; returns its sequence number.
    pub fn publish(&self, item: T) -> u64 {
        self.publish_all(vec![item])
    }

    /// Publishes changes in order as one batch; returns the last sequence number (the
    /// previous one when `items` is empty: nothing is sent).
    pub fn publish_all(&self, mut items: Vec<T>) -> u64 {
        // The ring keeps the batch for a long while: keep only what it holds. A pass
        // over an edge reserves room for every mailbox due and publishes the few that
        // changed; kept as reserved, each such batch held room for hundreds.
        items.shrink_to_fit();
        let mut ring = self.lock();
        if items.is_empty() {
            return ring.next - 1;
        }
        let batch = Arc::new(Batch {
            first: ring.next,
            items,
        });
        ring.next += batch.len() as u64;
        ring.kept_changes += batch.len();
        ring.kept.push_back(batch.clone());
        // Drop the oldest batches while the rest still hold `capacity` changes.
        while let Some(oldest) = ring.kept.front() {
            let rest = ring.kept_changes - oldest.len();
            if rest < ring.capacity {
                break;
            }
            ring.kept_changes = rest;
            ring.kept.pop_front();
        }
        let last = ring.next - 1;
        let _ = self.live.send(batch);
        last
    }

    /// The last sequence number published (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().next - 1
    }

    /// Changes kept for resumption now (at most the replay size and one batch).
    pub fn kept_changes(&self) -> usize {
        self.lock().kept_changes
    }

    /// Starts watching. With `after`, the changes since that sequence number come
    /// first; `Reset` when they are no longer kept.
    pub fn watch(&self, after: Option<u64>) -> Result<Watch<T>, Reset> {
        let ring = self.lock();
        let receiver = self.live.subscribe();
        let backlog = match after {
            None => Vec::new(),
            Some(seen) => {
                let last = ring.next - 1;
                let oldest_kept = ring.kept.front().map_or(ring.next, |b| b.first_seq());
                if seen > last || seen + 1 < oldest_kept {
                    return Err(Reset);
                }
                ring.kept
                    .iter()
                    .filter(|b| b.last_seq() > seen)
                    .cloned()
                    .collect()
            }
        };
        Ok((backlog, receiver))
    }
}

/// Test support: a live receiver read one change at a time.
#[cfg(test)]
pub(crate) struct Changes<T> {
    live: broadcast::Receiver<Arc<Batch<T>>>,
    pending: VecDeque<(u64, T)>,
}

#[cfg(test)]
impl<T: Clone> Changes<T> {
    pub(crate) fn new(live: broadcast::Receiver<Arc<Batch<T>>>) -> Changes<T> {
        Changes {
            live,
            pending: VecDeque::new(),
        }
    }

    /// The next change, waiting for it.
    pub(crate) async fn next(&mut self) -> (u64, T) {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return change;
            }
            let batch = self.live.recv().await.expect("the feed is open");
            self.pending
                .extend(batch.changes().map(|(seq, item)| (seq, item.clone())));
        }
    }

    /// Whether a change is waiting.
    pub(crate) fn is_waiting(&mut self) -> bool {
        !self.pending.is_empty() || !self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_batch_holds_only_its_changes() {
        let feed: Feed<u64> = Feed::new(8, 4);
        let mut reserved = Vec::with_capacity(1000);
        reserved.push(7);
        feed.publish_all(reserved);
        let ring = feed.lock();
        let kept = ring.kept.back().expect("a batch is kept");
        assert_eq!((kept.items.len(), kept.items.capacity()), (1, 1));
    }

    fn seqs<T>(backlog: &[Arc<Batch<T>>], seen: u64) -> Vec<u64> {
        backlog
            .iter()
            .flat_map(|b| b.changes_after(seen).map(|(seq, _)| seq))
            .collect()
    }

    #[test]
    fn resumes_within_the_replay_buffer() {
        let feed = Feed::<String>::new(3, 16);
        for i in 1..=5 {
            assert_eq!(feed.publish(format!("{i}")), i);
        }
        let (backlog, _) = feed.watch(Some(3)).unwrap();
        assert_eq!(seqs(&backlog, 3), [4, 5]);
        let (backlog, _) = feed.watch(Some(2)).unwrap();
        assert_eq!(
            seqs(&backlog, 2),
            [3, 4, 5],
            "2 is just before the oldest kept (3)"
        );
        assert_eq!(feed.watch(Some(1)).unwrap_err(), Reset);
        assert_eq!(
            feed.watch(Some(9)).unwrap_err(),
            Reset,
            "a future id is not ours"
        );
        assert!(feed.watch(None).unwrap().0.is_empty());
    }

    #[test]
    fn batches_are_numbered_on_and_kept_whole() {
        let feed = Feed::<u32>::new(4, 16);
        assert_eq!(feed.publish_all(vec![]), 0, "nothing published");
        assert_eq!(feed.publish_all(vec![10, 11, 12]), 3);
        assert_eq!(feed.publish_all(vec![13, 14, 15]), 6);
        // The first batch holds 1..=3; the second alone holds fewer than 4, so both
        // are kept, and a watcher resuming inside the first gets the rest of it.
        let (backlog, _) = feed.watch(Some(1)).unwrap();
        assert_eq!(seqs(&backlog, 1), [2, 3, 4, 5, 6]);
        let items: Vec<u32> = backlog
            .iter()
            .flat_map(|b| b.changes_after(1).map(|(_, v)| *v))
            .collect();
        assert_eq!(items, [11, 12, 13, 14, 15]);
        feed.publish_all(vec![16, 17, 18, 19]);
        // Batches 4..=6 and 7..=10 hold 7 changes: the second alone holds 4.
        assert_eq!(feed.watch(Some(5)).unwrap_err(), Reset);
        assert_eq!(seqs(&feed.watch(Some(6)).unwrap().0, 6), [7, 8, 9, 10]);
    }

    #[tokio::test]
    async fn live_watchers_see_new_changes() {
        let feed = Feed::<String>::new(8, 16);
        let (_, rx) = feed.watch(None).unwrap();
        let mut changes = Changes::new(rx);
        feed.publish("a".into());
        feed.publish_all(vec!["b".into(), "c".into()]);
        assert_eq!(changes.next().await, (1, "a".to_owned()));
        assert_eq!(changes.next().await, (2, "b".to_owned()));
        assert_eq!(changes.next().await, (3, "c".to_owned()));
        assert!(!changes.is_waiting());
    }
}
