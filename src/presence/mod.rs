//! Presence: the pure domain and the store. Knows no protocol and no HTTP.
//!
//! - [`timeline`]: busy intervals and availability at an instant (pure).
//! - [`snapshot`]: one mailbox's presence at an instant, owned.
//! - [`cache`]: the only `DashMap` owner; owned snapshots out, transitions published,
//!   the staleness policy.
//! - [`feed`]: the sequence-numbered change feed with a bounded replay buffer.
//! - [`schedule`]: the boundary timer that publishes transitions at meeting edges.
//! - [`clock`]: the injected wall clock.
//! - [`day`]: a mailbox's availability over a span, as segments (the status page).
//! - [`metrics`]: presence's metric names.

pub mod cache;
pub mod clock;
pub mod day;
pub mod feed;
pub mod metrics;
pub mod schedule;
pub mod snapshot;
pub mod timeline;
pub mod updates;
