//! `ews-presence check --config FILE [--mailbox ADDR] [--json]`: the troubleshooter
//! ([`ews_presence::check`]) over every configured gateway, and its report.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{LogFormat, init_logging, load_config, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The test mailbox (default: each gateway's first configured one).
    #[arg(long)]
    mailbox: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Checks every gateway: 0 when all pass, 1 otherwise, 2 on a bad configuration.
pub fn run(args: Args, log_format: LogFormat) -> ExitCode {
    init_logging("error", log_format);
    let config = match load_config("check", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mailbox = match args
        .mailbox
        .as_deref()
        .map(common::mailbox::Mailbox::parse)
        .transpose()
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("ews-presence check: --mailbox {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime("check") {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Outside the daemon: no credential gate to pass.
    let checks = runtime.block_on(ews_presence::check::check_all(
        &config,
        mailbox.as_ref(),
        &Default::default(),
    ));
    let mut stdout = io::stdout().lock();
    if let Err(e) = ews_presence::check::report::render(&checks, args.json, &mut stdout)
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("ews-presence check: {e}");
    }
    if checks.iter().all(ews_presence::check::GatewayCheck::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
