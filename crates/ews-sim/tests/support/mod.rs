//! Helpers of the simulator's tests: an HTTP client for its EWS endpoint and control
//! API, and shortcuts for subscribing and streaming. The daemon's integration tests use
//! the same files, so both suites talk to the simulator the same way.
#![allow(dead_code)]

#[path = "../../../../tests/support/client.rs"]
pub mod client;
#[path = "../../../../tests/support/sim.rs"]
pub mod sim;
