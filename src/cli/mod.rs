//! The binary's subcommands that are not the daemon itself: `demo` and `simulate` (the
//! only code that links the simulator) and `discover`. Each renders for an operator
//! what the library computed.

pub mod demo;
pub mod discover;
pub mod simulate;
