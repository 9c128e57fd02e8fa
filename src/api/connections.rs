//! The API's client connections, bounded. When every place is taken, a new client is
//! still served: the connection whose current request started longest ago (a client
//! sending its request slowly, or one idle on keep-alive) is closed to make room.
//! Change-feed watchers are never chosen. So a flood of slow clients cannot keep
//! `/livez` or an ordinary query from being answered, and descriptors stay bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use common::sync::lock;

/// Descriptors left for everything else (EWS connections, files) when the limit is
/// derived from the process's descriptor limit.
const RESERVED_DESCRIPTORS: usize = 256;
/// Limit used when the descriptor limit cannot be read.
const FALLBACK_LIMIT: usize = 512;

/// One client connection.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    since: Mutex<Instant>,
    watcher: AtomicBool,
    /// Cancelled to close the connection.
    pub shed: CancellationToken,
}

impl Connection {
    /// A request begins now.
    pub fn request_started(&self) {
        *lock(&self.since) = Instant::now();
    }

    /// The connection carries the change feed: never closed to make room.
    pub fn mark_watcher(&self) {
        self.watcher.store(true, Ordering::Relaxed);
    }
}

/// The open connections.
#[derive(Debug)]
pub struct Connections {
    limit: usize,
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
    shed_total: AtomicU64,
}

/// The soft limit on open descriptors, from `/proc/self/limits` (Linux).
fn descriptor_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl Connections {
    /// At most `limit` connections; None: the descriptor limit less a reserve.
    pub fn new(limit: Option<usize>) -> Connections {
        let limit = limit.unwrap_or_else(|| {
            descriptor_limit()
                .map_or(FALLBACK_LIMIT, |n| n.saturating_sub(RESERVED_DESCRIPTORS))
                .clamp(16, 65_536)
        });
        Connections {
            limit,
            next: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            shed_total: AtomicU64::new(0),
        }
    }

    /// The limit in force.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Connections closed to make room so far.
    pub fn shed_total(&self) -> u64 {
        self.shed_total.load(Ordering::Relaxed)
    }

    /// Registers a new connection, closing the stalest one first when full; None when
    /// every place is held by a change-feed watcher (the new one is refused).
    pub fn admit(&self) -> Option<Arc<Connection>> {
        let mut open = lock(&self.open);
        if open.len() >= self.limit {
            let stalest = open
                .values()
                .filter(|c| !c.watcher.load(Ordering::Relaxed))
                .min_by_key(|c| *lock(&c.since))
                .cloned();
            let stalest = stalest?;
            open.remove(&stalest.id);
            stalest.shed.cancel();
            self.shed_total.fetch_add(1, Ordering::Relaxed);
        }
        let connection = Arc::new(Connection {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            since: Mutex::new(Instant::now()),
            watcher: AtomicBool::new(false),
            shed: CancellationToken::new(),
        });
        open.insert(connection.id, connection.clone());
        Some(connection)
    }

    /// A connection ended.
    pub fn close(&self, connection: &Connection) {
        lock(&self.open).remove(&connection.id);
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        lock(&self.open).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_stalest_non_watcher_makes_room() {
        let connections = Connections::new(Some(3));
        let slow = connections.admit().unwrap();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let watcher = connections.admit().unwrap();
        watcher.mark_watcher();
        let fresh = connections.admit().unwrap();
        // The watcher is the oldest but is kept; the slow one goes.
        watcher.request_started();
        let newcomer = connections.admit().unwrap();
        assert!(slow.shed.is_cancelled());
        assert!(!watcher.shed.is_cancelled() && !fresh.shed.is_cancelled());
        assert_eq!(connections.len(), 3);
        assert_eq!(connections.shed_total(), 1);
        connections.close(&newcomer);
        assert_eq!(connections.len(), 2);
        // Every place held by watchers: a newcomer is refused.
        let only_watchers = Connections::new(Some(1));
        only_watchers.admit().unwrap().mark_watcher();
        assert!(only_watchers.admit().is_none());
    }

    #[test]
    fn the_default_limit_leaves_descriptors_for_the_rest() {
        let connections = Connections::new(None);
        assert!(connections.limit() >= 16);
        if let Some(fds) = descriptor_limit() {
            assert!(connections.limit() <= fds.max(16 + RESERVED_DESCRIPTORS));
        }
    }
}
