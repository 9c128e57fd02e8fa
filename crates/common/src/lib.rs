//! What every part of `ews-presence` shares and nothing else: the [`mailbox::Mailbox`]
//! key, certificates and keys read from [`pem`] files, [`sync`] locks that survive a
//! poisoning panic, and [`percent`]-decoding. A leaf: it depends on no other crate of
//! the workspace.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod mailbox;
pub mod pem;
pub mod percent;
pub mod sync;
