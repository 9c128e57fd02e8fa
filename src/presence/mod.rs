//! Presence: the pure domain and the store.
//!
//! - [`timeline`]: busy intervals and availability at an instant (pure).
//! - [`cache`]: the only `DashMap` owner; owned snapshots out, transitions published.
//! - [`feed`]: the sequence-numbered change feed with a bounded replay buffer.
//! - [`schedule`]: the boundary timer that publishes transitions at meeting edges.

pub mod cache;
pub mod feed;
pub mod schedule;
pub mod timeline;
