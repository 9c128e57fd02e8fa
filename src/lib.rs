//! `ews-presence` turns Microsoft Exchange calendars into live presence.
//!
//! It holds EWS streaming subscriptions on every mailbox's Calendar folder, keeps each
//! mailbox's calendar timeline in memory and serves availability (available, in a
//! meeting, away) to a presence server.
//!
//! # Layout
//!
//! - [`ews`]: the EWS client side of the protocol and nothing else: request writers
//!   ([`ews::ops`]), response readers, the SOAP envelope ([`ews::soap`]), response codes
//!   and how to react to them ([`ews::response_code`], [`ews::error`]), and the
//!   incremental decoder for the endless GetStreamingEvents body ([`ews::stream`]). No
//!   I/O, no presence policy.
//! - [`sim`]: the simulated Exchange (`ews-presence simulate`): ground truth, an EWS
//!   endpoint that behaves like Exchange where the daemon can tell, a JSON control API
//!   and fault injection. It may use `ews` types; nothing else depends on it.
//! - [`cli`]: the command-line subcommands, each rendering library results for an
//!   operator; `main.rs` only parses arguments and maps errors to exit codes.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod ews;
pub mod mailbox;
pub mod presence;
pub mod sim;
pub mod util;
