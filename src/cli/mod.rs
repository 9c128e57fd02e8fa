//! The command line: [`Cli`] and its subcommands, one file each, every file owning its
//! arguments and its `run`; here the options and helpers they share. `demo` and
//! `simulate` are the only code that links the simulator: the library does not.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod decode;
pub mod demo;
pub mod discover;
pub mod error;
pub mod generate;
pub mod run;
pub mod simulate;

/// Turns Microsoft Exchange calendars into live presence over EWS streaming
/// subscriptions.
#[derive(Debug, Parser)]
#[command(name = "ews-presence", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (for people) or JSON objects, one per line (for collectors:
    /// journald, Kubernetes). Logs go to standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
// Parsed once at start; boxing the simulator's many flags would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Decode a captured EWS response body (file or stdin) into JSON lines, one per
    /// envelope. Exits 1 at the first undecodable byte, after printing the frames
    /// before it.
    Decode(decode::Args),
    /// Run the daemon: hold streaming subscriptions on every configured mailbox and
    /// serve presence over HTTP. SIGHUP re-reads the mailbox list; SIGTERM stops.
    Run(run::Args),
    /// Troubleshoot every configured gateway, in parallel: DNS, TCP, TLS and the
    /// certificate, authentication, the server version, Subscribe + Unsubscribe,
    /// GetUserAvailability and GetUserOofSettings for a test mailbox. Exits 0 when all
    /// pass, 1 otherwise, 2 on a bad configuration.
    Check(check::Args),
    /// Ask Autodiscover where each mailbox's EWS is, as the daemon would: the endpoint
    /// that answered, the EWS URL, the GroupingInformation and the group it lands in,
    /// or the error. Exits 0 when every mailbox was placed, 1 otherwise, 2 on a bad
    /// configuration.
    Discover(discover::Args),
    /// See the whole product work: a simulated Exchange over HTTPS (with a CA made at
    /// start) and the daemon configured against it, in one process.
    Demo(demo::Args),
    /// Run a simulated Exchange server (EWS endpoint plus a JSON control API under
    /// /sim/) with known ground truth, for tests, the demo and benchmarks.
    Simulate(simulate::Args),
    /// Print shell completions or the man page, made from this command line's own
    /// definition (packagers install them; deploy/ holds copies).
    Generate(generate::Args),
}

impl Cli {
    /// Runs the chosen subcommand; its exit code.
    pub fn run(self) -> ExitCode {
        let log = self.log_format;
        match self.command {
            Command::Decode(args) => decode::run(args),
            Command::Run(args) => run::run(args, log),
            Command::Check(args) => check::run(args, log),
            Command::Discover(args) => discover::run(args, log),
            Command::Demo(args) => demo::run(args, log),
            Command::Simulate(args) => simulate::run(args, log),
            Command::Generate(args) => generate::run(args),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the fields the events carry.
    Json,
}

/// Logs to stderr in `format`, at `default` level unless `RUST_LOG` says otherwise.
pub fn init_logging(default: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // The NTLM library traces its contexts: kept out at any level, whatever it prints.
    for quiet in ["sspi=off", "picky=off", "picky_krb=off"] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    // A daemon's standard output is for what it is asked to print; logs go to standard
    // error, with colour only when a person is watching it.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Loads the configuration for `command`; on an error, one line on stderr and exit 2.
pub fn load_config(
    command: &str,
    path: &std::path::Path,
) -> Result<ews_presence::config::Config, ExitCode> {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    ews_presence::config::Config::load(path, &env).map_err(|e| {
        eprintln!("ews-presence {command}: configuration error: {e}");
        ExitCode::from(2)
    })
}

/// The multi-threaded runtime for `command`; on an error, one line on stderr and exit 1.
pub fn runtime(command: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("ews-presence {command}: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}

/// Runs a long-running command on the multi-threaded runtime: exit 0 on success, 1 if
/// the runtime cannot start, 2 (after one line on stderr) if the command fails.
pub fn block_on<E: std::fmt::Display>(
    command: &str,
    future: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    let runtime = match runtime(command) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ews-presence {command}: {e}");
            ExitCode::from(2)
        }
    }
}
