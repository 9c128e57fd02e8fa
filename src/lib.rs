//! `ews-presence` turns Microsoft Exchange calendars into live presence.
//!
//! It holds EWS streaming subscriptions on every mailbox's Calendar folder, keeps each
//! mailbox's calendar timeline in memory and serves availability (available, in a
//! meeting, away) to a presence server.
//!
//! # Layout
//!
//! Dependencies point one way: `mailbox` ← `ews` ← `autodiscover` ← `engine` →
//! `presence`; `api` reads
//! `engine` (through its status handle) and `presence`; nothing of the product depends
//! on `sim`.
//!
//! - [`mailbox`]: the `Mailbox` newtype every part keys on (a leaf).
//! - [`ews`]: the EWS client side of the protocol and nothing else: request writers
//!   ([`ews::ops`]), response readers, the SOAP envelope ([`ews::soap`]), response codes
//!   and how to react to them ([`ews::response_code`], [`ews::error`]), the incremental
//!   decoder for the endless GetStreamingEvents body ([`ews::stream`]), and the HTTP
//!   client ([`ews::transport`], configured by its own `TransportConfig`). No presence
//!   policy.
//! - [`autodiscover`]: finding each mailbox's EWS URL and `GroupingInformation`
//!   (SOAP GetUserSettings, POX fallback), over the `ews` transport pieces.
//! - [`engine`]: keeps subscriptions alive and timelines fresh: each connection group a
//!   pure state machine ([`engine::group::state`]) run by a driver over a fakeable port
//!   ([`engine::port`]), the refresh queue ([`engine::refresh`]), and the read-only status
//!   the API shows ([`engine::status`]).
//! - [`presence`]: the pure domain and the store: timelines, the cache and its
//!   staleness policy, the change feed, the edge scheduler, the injected clock. No
//!   protocol, no HTTP.
//! - [`api`]: the HTTP API, its JSON rendering, its bounded client connections and the
//!   metrics exporter.
//! - [`config`]: the typed configuration; every error names its key.
//! - [`roster`]: which configured mailboxes are served (the list less those opted out
//!   of calendar presence); [`opt_out_store`]: the users' choices, kept on disk.
//! - [`app`]: wiring, reload and shutdown; [`service`]: systemd notifications.
//! - [`troubleshoot`]: the steps of `ews-presence check`, one gateway at a time.
//! - [`sim`]: the simulated Exchange (`ews-presence simulate`): ground truth, an EWS
//!   endpoint that behaves like Exchange where the daemon can tell, a JSON control API
//!   and fault injection. It may use `ews` types; nothing else depends on it.
//! - [`cli`]: the command-line subcommands, each rendering library results for an
//!   operator; `main.rs` only parses arguments and maps errors to exit codes.
//! - [`pem`]: certificate chains and private keys read from PEM files.
//! - [`util`]: two small helpers with nothing else in common.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod app;
pub mod autodiscover;
pub mod cli;
pub mod config;
pub mod engine;
pub mod ews;
pub mod mailbox;
pub mod opt_out_store;
pub mod pem;
pub mod presence;
pub mod roster;
pub mod service;
pub mod sim;
pub mod troubleshoot;
pub mod util;
