//! One connection group: up to 200 mailboxes on one GetStreamingEvents connection.
//!
//! - [`state`]: the pure state machine, `on(now, input) -> outputs`, table-tested.
//! - [`driver`]: the async loop that executes the outputs and feeds back the results.

pub mod driver;
pub mod state;

#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod state_tests;
