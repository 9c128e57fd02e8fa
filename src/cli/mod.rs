//! Command-line subcommands. Each renders what the library computed for an operator;
//! argument parsing and exit codes stay in `main.rs`.

pub mod check;
pub mod decode;
pub mod demo;
pub mod discover;
pub mod simulate;
