//! The EWS protocol, client side: what we send to an Exchange server and how we read
//! what it answers, and [`autodiscover`], which finds where a mailbox lives. Everything
//! but [`transport`] and [`autodiscover::client`] is pure (no I/O); nothing here retries
//! or knows presence policy. This crate depends on no part of the daemon, only on the
//! leaf crate `common` (the mailbox key, PEM files, locks).
//!
//! - [`autodiscover`]: finding each mailbox's EWS URL and affinity group (SOAP
//!   GetUserSettings, POX fallback), over this crate's transport pieces.
//! - [`ns`]: namespace URIs; elements are matched by namespace URI plus local name,
//!   never by prefix.
//! - [`xml_write`] / [`xml_tree`]: the small XML writer for requests and the borrowed
//!   element tree responses are read from; [`xml_attributes`] lexes a start tag's
//!   attributes for the tree.
//! - [`soap`]: the request envelope (RequestServerVersion, ExchangeImpersonation) and
//!   SOAP faults.
//! - [`types`]: identifiers and values shared by operations (subscription ids, item ids,
//!   EWS date-times; the mailbox type is re-exported from [`common::mailbox`]).
//! - [`response_code`], [`response`], [`error`]: response codes with what to do about
//!   them, the common ResponseMessage, and [`error::EwsError`].
//! - [`ops`]: one file per operation, request writer plus response reader.
//! - [`stream`]: the incremental decoder that splits a response body into envelopes and
//!   decodes each into a typed [`stream::Response`].
//! - [`decode_error`]: where a body could not be decoded (frame and byte).
//! - [`auth`]: the configured scheme and secrets, `WWW-Authenticate`, NTLM through
//!   `sspi`, the Extended Protection channel binding, bearer token files (no I/O).
//! - [`connection`]: one HTTP/1.1 connection we own (NTLM authenticates connections).
//! - [`transport`]: the HTTP client (hyper + rustls) for one server, configured by its
//!   own [`transport::TransportConfig`]: authentication, affinity headers and cookie,
//!   timeouts, TLS failures told apart from the rest.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod auth;
pub mod autodiscover;
pub mod connection;
pub mod decode_error;
pub mod error;
pub mod ns;
pub mod ops;
pub mod response;
pub mod response_code;
pub mod soap;
pub mod stream;
pub mod transport;
pub mod types;
pub mod xml_attributes;
pub mod xml_tree;
pub mod xml_write;
