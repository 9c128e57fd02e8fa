//! `ews-presence` turns Microsoft Exchange calendars into live presence.
//!
//! It holds EWS streaming subscriptions on every mailbox's Calendar folder, keeps each
//! mailbox's calendar timeline in memory and serves availability (available, in a
//! meeting, away) to a presence server.
//!
//! # Layout
//!
//! The workspace's crates are the architecture (docs/architecture.md): `common` (the
//! mailbox key, PEM files, locks) ← `ews` (the EWS and Autodiscover wire) ← this
//! library, `graph` (the Microsoft Graph wire: OAuth client credentials, getSchedule,
//! subscriptions, notifications) ← this library, and `sip` (the SIP wire: messages,
//! transactions, digest, PIDF) ← this library; the simulator (`ews-sim`) is used only by the binary's `demo` and
//! `simulate` commands, the tests and the benchmarks. Inside this library the data
//! flows `engine` → `presence` → `api`: the engine writes timelines into the cache,
//! the API reads the cache and the change feed and the engine's status handle;
//! `presence` and `api` never name the wire (`tests/architecture.rs` checks).
//!
//! - [`engine`]: keeps subscriptions alive and timelines fresh: each connection group a
//!   pure state machine ([`engine::group::state`]) run by a driver over a fakeable port
//!   ([`engine::group::port`]), each gateway's reads another
//!   ([`engine::refresh::state`]), the gateway's client and credential gate
//!   ([`engine::gateway`]), and the read-only status the API shows
//!   ([`engine::status`]).
//! - [`graph`]: the second source, Exchange Online through Microsoft Graph (`kind =
//!   "graph"` gateways): token, getSchedule and automatic-reply reads through the same
//!   refresh queue, change-notification subscriptions, and the notification receiver
//!   the API serves at `/graph/notifications`; over the `graph` crate's wire.
//! - [`presence`]: the pure domain and the store: timelines, the cache and its
//!   staleness policy, the change feed, the edge scheduler, the injected clock. No
//!   protocol, no HTTP.
//! - [`api`]: the HTTP API, its JSON rendering, its bounded client connections and the
//!   metrics exporter.
//! - [`publish`]: publishing presence to SIP presence servers (PUBLISH with PIDF and
//!   RPID), one publisher per `[[sip]]` server following the change feed, over the
//!   `sip` crate's client.
//! - [`config`]: the typed configuration; every error names its key.
//! - [`roster`]: which configured mailboxes are served (the list less those opted out
//!   of calendar presence); [`opt_out_store`]: the users' choices, kept on disk.
//! - [`app`]: wiring, reload and shutdown; [`service`]: systemd notifications.
//! - [`check`]: the troubleshooter (`ews-presence check` and `POST /v1/checks`), one
//!   gateway at a time, and its report.
//! - [`decode`]: `ews-presence decode`: a captured body as JSON lines.
//! - [`json_string`]: JSON string escaping for the hand-written JSON.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod app;
pub mod check;
pub mod config;
pub mod decode;
pub mod engine;
pub mod graph;
pub mod json_string;
pub mod opt_out_store;
pub mod presence;
pub mod publish;
pub mod roster;
pub mod service;
pub mod source;
