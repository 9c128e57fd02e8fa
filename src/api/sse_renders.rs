//! The rendered SSE text of recent large batches of the change feed, shared by every
//! watcher. Each watcher used to render every change it sent, so in a storm the CPU
//! spent rendering grew with the number of watchers. A large batch is now rendered
//! once, by the first watcher to need it, and the others send the same bytes.
//!
//! What is kept is bounded by bytes, oldest first out, so nothing rendered outlives a
//! few dozen batches: a watcher further behind than that renders for itself, as
//! before. Small batches (one refresh's changes) are not shared: a watcher coalesces
//! those into its own chunks, which keeps a quiet feed to one write per burst.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

use crate::util::lock;

/// Shared renderings, newest last.
#[derive(Debug)]
pub struct SharedRenders {
    budget: usize,
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// (first sequence number of the batch, its rendering).
    entries: VecDeque<(u64, Bytes)>,
    /// Sum of the renderings' lengths.
    bytes: usize,
}

impl Kept {
    fn find(&self, first: u64) -> Option<Bytes> {
        self.entries
            .iter()
            .rev()
            .find(|(f, _)| *f == first)
            .map(|(_, b)| b.clone())
    }
}

impl SharedRenders {
    /// Keeps at most `budget` bytes of renderings.
    pub fn new(budget: usize) -> SharedRenders {
        SharedRenders {
            budget,
            kept: Mutex::new(Kept::default()),
        }
    }

    /// The rendering of the batch whose first sequence number is `first`: the one
    /// another watcher made, or `render`'s, which is then kept for the others. Two
    /// watchers asking at once may both render; the first kept is the one shared.
    pub fn get_or_render(&self, first: u64, render: impl FnOnce() -> String) -> Bytes {
        if let Some(rendered) = lock(&self.kept).find(first) {
            return rendered;
        }
        let rendered = Bytes::from(render());
        let mut kept = lock(&self.kept);
        if let Some(earlier) = kept.find(first) {
            return earlier;
        }
        if rendered.len() <= self.budget {
            kept.bytes += rendered.len();
            kept.entries.push_back((first, rendered.clone()));
            while kept.bytes > self.budget {
                match kept.entries.pop_front() {
                    Some((_, old)) => kept.bytes -= old.len(),
                    None => break,
                }
            }
        }
        rendered
    }

    /// Bytes kept now.
    pub fn kept_bytes(&self) -> usize {
        lock(&self.kept).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_rendered_once_and_the_same_bytes_are_shared() {
        let renders = SharedRenders::new(1024);
        let first = renders.get_or_render(1, || "id: 1\n\n".to_owned());
        let second = renders.get_or_render(1, || unreachable!("rendered twice"));
        assert_eq!(first, second);
        assert_eq!(first.as_ptr(), second.as_ptr(), "the same allocation");
    }

    #[test]
    fn what_is_kept_stays_within_the_budget_oldest_out_first() {
        let renders = SharedRenders::new(100);
        for first in 0..10u64 {
            renders.get_or_render(first * 10, || "x".repeat(30));
            assert!(renders.kept_bytes() <= 100, "{} kept", renders.kept_bytes());
        }
        assert_eq!(renders.kept_bytes(), 90);
        // The newest three are kept; an older one is rendered again.
        let mut rendered_again = false;
        renders.get_or_render(90, || unreachable!("kept"));
        renders.get_or_render(0, || {
            rendered_again = true;
            "x".repeat(30)
        });
        assert!(rendered_again);
        // A rendering larger than the budget is returned, not kept.
        let big = renders.get_or_render(1000, || "y".repeat(101));
        assert_eq!(big.len(), 101);
        assert!(renders.kept_bytes() <= 100);
    }
}
