//! The change feed: every availability transition gets a sequence number and goes to
//! live watchers; the last N are kept so a watcher can resume after a reconnect from
//! the sequence number it saw last. A watcher too far behind is told to start over.
//! The feed carries values (presence snapshots); rendering them is the API's job, done
//! once per change into the change's `rendered` slot and shared by every watcher.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

/// One published change.
#[derive(Debug)]
pub struct Change<T> {
    /// Sequence number, from 1.
    pub seq: u64,
    /// What changed (the mailbox's presence after the change).
    pub item: T,
    /// The change as a consumer renders it, filled by the first to need it.
    pub rendered: OnceLock<String>,
}

/// What a new watcher gets: the changes it missed, then the live receiver.
pub type Watch<T> = (Vec<Arc<Change<T>>>, broadcast::Receiver<Arc<Change<T>>>);

/// A watcher asked to resume from a point no longer (or never) in the replay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset;

#[derive(Debug)]
struct Ring<T> {
    next: u64,
    kept: VecDeque<Arc<Change<T>>>,
    capacity: usize,
}

/// The feed.
#[derive(Debug)]
pub struct Feed<T> {
    ring: Mutex<Ring<T>>,
    live: broadcast::Sender<Arc<Change<T>>>,
}

impl<T> Feed<T> {
    /// A feed keeping the last `replay` changes; live watchers may fall `lag` behind.
    pub fn new(replay: usize, lag: usize) -> Feed<T> {
        Feed {
            ring: Mutex::new(Ring {
                next: 1,
                kept: VecDeque::with_capacity(replay.min(1 << 16)),
                capacity: replay.max(1),
            }),
            live: broadcast::channel(lag.max(16)).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring<T>> {
        crate::util::lock(&self.ring)
    }

    /// Publishes a change; returns its sequence number.
    pub fn publish(&self, item: T) -> u64 {
        self.publish_all(std::iter::once(item))
    }

    /// Publishes changes in order under one lock; returns the last sequence number.
    pub fn publish_all(&self, items: impl IntoIterator<Item = T>) -> u64 {
        let mut ring = self.lock();
        for item in items {
            let change = Arc::new(Change {
                seq: ring.next,
                item,
                rendered: OnceLock::new(),
            });
            ring.next += 1;
            if ring.kept.len() == ring.capacity {
                ring.kept.pop_front();
            }
            ring.kept.push_back(change.clone());
            let _ = self.live.send(change);
        }
        ring.next - 1
    }

    /// The last sequence number published (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().next - 1
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
                let oldest_kept = ring.kept.front().map_or(ring.next, |c| c.seq);
                if seen > last || seen + 1 < oldest_kept {
                    return Err(Reset);
                }
                ring.kept.iter().filter(|c| c.seq > seen).cloned().collect()
            }
        };
        Ok((backlog, receiver))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_within_the_replay_buffer() {
        let feed = Feed::<String>::new(3, 16);
        for i in 1..=5 {
            assert_eq!(feed.publish(format!("{i}")), i);
        }
        let (backlog, _) = feed.watch(Some(3)).unwrap();
        assert_eq!(backlog.iter().map(|c| c.seq).collect::<Vec<_>>(), [4, 5]);
        let (backlog, _) = feed.watch(Some(2)).unwrap();
        assert_eq!(backlog.len(), 3, "2 is just before the oldest kept (3)");
        assert_eq!(feed.watch(Some(1)).unwrap_err(), Reset);
        assert_eq!(
            feed.watch(Some(9)).unwrap_err(),
            Reset,
            "a future id is not ours"
        );
        assert!(feed.watch(None).unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn live_watchers_see_new_changes() {
        let feed = Feed::<String>::new(8, 16);
        let (_, mut rx) = feed.watch(None).unwrap();
        feed.publish("a".into());
        assert_eq!(rx.recv().await.unwrap().item, "a");
    }
}
