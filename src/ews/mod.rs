//! The EWS protocol, client side: what we send to an Exchange server and how we read
//! what it answers. Protocol only: no sockets, no retry loops, no presence policy.
//!
//! - [`ns`]: namespace URIs; elements are matched by namespace URI plus local name,
//!   never by prefix.
//! - [`xml_write`] / [`xml_tree`]: the small XML writer for requests and the borrowed
//!   element tree responses are read from.
//! - [`soap`]: the request envelope (RequestServerVersion, ExchangeImpersonation) and
//!   SOAP faults.
//! - [`types`]: identifiers and values shared by operations (mailboxes, subscription
//!   ids, item ids, EWS date-times).
//! - [`response_code`], [`response`], [`error`]: response codes with what to do about
//!   them, the common ResponseMessage, and [`error::EwsError`].
//! - [`ops`]: one file per operation, request writer plus response reader.
//! - [`stream`]: the incremental decoder that splits a response body into envelopes and
//!   decodes each into a typed [`stream::Response`].

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
pub mod xml_tree;
pub mod xml_write;
