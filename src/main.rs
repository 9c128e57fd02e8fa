//! The `ews-presence` binary: parses the command line and runs the subcommand, each
//! of which ([`cli`]) owns its arguments, its run and its exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps the resident size of a daemon holding 100,000 small entries low;
/// glibc's per-thread arenas fragmented after start-up bursts (see docs/performance.md).
/// It is built without transparent huge pages (feature `no_thp`): with them, the first
/// touch of fresh heap makes the kernel zero a whole 2 MiB page, which took 2% to 31%
/// of an `ews-presence decode` run from one run to the next (`perf record`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::Cli::parse().run()
}
