//! SIP, client side, as far as a presence publisher needs it: what we send to a SIP
//! presence server and how we read what it answers. Depends on no part of the daemon.
//!
//! - [`uri`]: the SIP URIs we are configured with (`sip:host:port;transport=udp`).
//! - [`message`]: writing requests and reading messages (RFC 3261 §7), including the
//!   framing of a byte stream by `Content-Length` (§18.3).
//! - [`digest`]: digest authentication (RFC 8760, RFC 7616: MD5 and SHA-256, `qop=auth`).
//! - [`transaction`]: the non-INVITE client transaction (§17.1.2) as a pure state
//!   machine: timers E, F and K, no I/O.
//! - [`client`]: the only part with I/O: one connection (UDP socket, or TCP/TLS
//!   connection re-opened on loss) to one server, with any number of transactions in
//!   flight over it and responses matched to them by branch.
//! - [`pidf`]: PIDF documents (RFC 3863) with RPID activities (RFC 4480).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod client;
pub mod digest;
pub mod message;
pub mod pidf;
pub mod transaction;
pub mod uri;
