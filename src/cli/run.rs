//! `ews-presence run --config FILE`: the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{LogFormat, block_on, init_logging, load_config};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML configuration file.
    #[arg(long)]
    config: PathBuf,
}

/// Runs the daemon until SIGTERM: 0, or 2 when it cannot start.
pub fn run(args: Args, log_format: LogFormat) -> ExitCode {
    init_logging("info", log_format);
    let config = match load_config("run", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on("run", ews_presence::app::run(config))
}
