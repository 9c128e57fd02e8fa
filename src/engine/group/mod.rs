//! One connection group: up to 200 mailboxes on one GetStreamingEvents connection.
//!
//! - [`state`]: the pure state machine, `on(now, input) -> outputs`, table-tested.
//! - [`subscriptions`]: the subscriptions it holds, by id and by mailbox, and which a
//!   healthy frame has proven: one owner of that fact.
//! - [`driver`]: the async loop that executes the outputs and feeds back the results.
//! - [`port`]: the EWS calls a group makes (Subscribe, GetStreamingEvents,
//!   Unsubscribe), as a trait the driver is generic over, faked in its tests.
//! - [`packing`]: how a gateway's mailboxes are packed into groups within the server's
//!   limits.

pub mod driver;
pub mod packing;
pub mod port;
pub mod state;
pub mod subscriptions;

#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod state_tests;
