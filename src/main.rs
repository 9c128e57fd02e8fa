//! The `ews-presence` binary: parses arguments, runs a subcommand, maps errors to exit
//! codes. Everything else lives in the library, but for the simulator's commands
//! ([`cli`]): the library does not link the simulator.

mod cli;

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc keeps the resident size of a daemon holding 100,000 small entries low;
/// glibc's per-thread arenas fragmented after start-up bursts (see docs/performance.md).
/// It is built without transparent huge pages (feature `no_thp`): with them, the first
/// touch of fresh heap makes the kernel zero a whole 2 MiB page, which took 2% to 31%
/// of an `ews-presence decode` run from one run to the next (`perf record`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cli::simulate;
use ews::stream::DEFAULT_MAX_FRAME;
use ews_presence::decode::{self, DecodeCommandError};
use ews_sim::SimConfig;

/// Turns Microsoft Exchange calendars into live presence over EWS streaming
/// subscriptions.
#[derive(Debug, Parser)]
#[command(name = "ews-presence", version, about)]
struct Cli {
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
    Decode {
        /// The captured body; standard input when absent.
        file: Option<PathBuf>,
        /// Largest envelope accepted, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_FRAME)]
        max_frame_bytes: usize,
    },
    /// Run the daemon: hold streaming subscriptions on every configured mailbox and
    /// serve presence over HTTP. SIGHUP re-reads the mailbox list; SIGTERM stops.
    Run {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Troubleshoot every configured gateway, in parallel: DNS, TCP, TLS and the
    /// certificate, authentication, the server version, Subscribe + Unsubscribe,
    /// GetUserAvailability and GetUserOofSettings for a test mailbox. Exits 0 when all
    /// pass, 1 otherwise, 2 on a bad configuration.
    Check {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The test mailbox (default: each gateway's first configured one).
        #[arg(long)]
        mailbox: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Ask Autodiscover where each mailbox's EWS is, as the daemon would: the endpoint
    /// that answered, the EWS URL, the GroupingInformation and the group it lands in,
    /// or the error. Exits 0 when every mailbox was placed, 1 otherwise, 2 on a bad
    /// configuration.
    Discover {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// Mailboxes to ask for (default: every configured one on an Autodiscover
        /// gateway).
        mailboxes: Vec<String>,
    },
    /// See the whole product work: a simulated Exchange over HTTPS (with a CA made at
    /// start) and the daemon configured against it, in one process.
    Demo {
        /// Simulated mailboxes, all served by the daemon.
        #[arg(long, default_value_t = 1000)]
        mailboxes: usize,
        /// Where the daemon's API listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Random calendar changes per second.
        #[arg(long, default_value_t = 5.0)]
        churn: f64,
    },
    /// Run a simulated Exchange server (EWS endpoint plus a JSON control API under
    /// /sim/) with known ground truth, for tests, the demo and benchmarks.
    Simulate(SimulateArgs),
    /// Print shell completions or the man page, made from this command line's own
    /// definition (packagers install them; deploy/ holds copies).
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

#[derive(Debug, Subcommand)]
enum Generate {
    /// Completions for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The man page, ews-presence(1), in roff.
    Man,
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: std::net::SocketAddr,
    /// Mailboxes user1@DOMAIN … userN@DOMAIN.
    #[arg(long, default_value_t = 100)]
    mailboxes: usize,
    /// Mail domain.
    #[arg(long, default_value = "example.test")]
    domain: String,
    /// Seed for calendars and churn.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Random calendar changes per second.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The service account.
    #[arg(long, default_value = "svc@example.test")]
    account: String,
    /// How clients authenticate: basic|ntlm|bearer|none (default: basic with
    /// --password-file, else none).
    #[arg(long)]
    auth: Option<String>,
    /// File holding the account's password (basic and ntlm).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// File holding the accepted bearer token, read at every request (bearer).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Extended Protection for NTLM over HTTPS: none|allow|require.
    #[arg(long, default_value = "none")]
    extended_protection: String,
    /// Heartbeat interval of open streams, in milliseconds.
    #[arg(long, default_value_t = 45_000)]
    heartbeat_ms: u64,
    /// Length of one protocol minute (ConnectionTimeout, subscription lifetime), in ms.
    #[arg(long, default_value_t = 60_000)]
    minute_ms: u64,
    /// Backend mailbox servers (affinity matters when more than 1).
    #[arg(long, default_value_t = 1)]
    backends: usize,
    /// Streaming connections allowed per budget: the account's, or each
    /// impersonated mailbox's copy (Exchange's HangingConnectionLimit).
    #[arg(long, default_value_t = 10)]
    connection_limit: usize,
    /// Who owns a subscription: account (Exchange) or impersonated (gromox: streams
    /// and Unsubscribe must impersonate the subscription's user).
    #[arg(long, default_value = "account")]
    subscription_owner: String,
    /// Answer only POX Autodiscover (autodiscover.xml), as older servers do.
    #[arg(long)]
    autodiscover_pox_only: bool,
    /// Start with empty calendars and automatic replies off.
    #[arg(long)]
    empty_calendars: bool,
    /// Send a StatusEvent notification per subscription with every heartbeat (as
    /// gromox does).
    #[arg(long)]
    status_event_heartbeats: bool,
    /// MaxRecipientsPerGetMailTipsRequest; 0 turns MailTips off (as gromox says).
    #[arg(long, default_value_t = ews_sim::DEFAULT_MAIL_TIPS_RECIPIENTS)]
    mail_tips_max_recipients: u32,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the fields the events carry.
    Json,
}

/// Logs to stderr in `format`, at `default` level unless `RUST_LOG` says otherwise.
fn init_logging(default: &str, format: LogFormat) {
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
fn load_config(
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
fn runtime(command: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
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
fn block_on<E: std::fmt::Display>(
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

fn run(path: &std::path::Path, log_format: LogFormat) -> ExitCode {
    init_logging("info", log_format);
    let config = match load_config("run", path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on("run", ews_presence::app::run(config))
}

fn check(
    path: &std::path::Path,
    mailbox: Option<&str>,
    json: bool,
    log_format: LogFormat,
) -> ExitCode {
    init_logging("error", log_format);
    let config = match load_config("check", path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mailbox = match mailbox.map(common::mailbox::Mailbox::parse).transpose() {
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
    if let Err(e) = ews_presence::check::report::render(&checks, json, &mut stdout)
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

fn discover(
    path: &std::path::Path,
    mailboxes: &[String],
    json: bool,
    log_format: LogFormat,
) -> ExitCode {
    init_logging("warn", log_format);
    let config = match load_config("discover", path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut wanted = Vec::new();
    for m in mailboxes {
        match common::mailbox::Mailbox::parse(m) {
            Ok(m) => wanted.push(m),
            Err(e) => {
                eprintln!("ews-presence discover: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match runtime("discover") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut stdout = io::stdout().lock();
    match runtime.block_on(cli::discover::run(&config, &wanted, json, &mut stdout)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ews-presence discover: {e}");
            ExitCode::from(2)
        }
    }
}

fn demo(
    mailboxes: usize,
    listen: std::net::SocketAddr,
    churn: f64,
    log_format: LogFormat,
) -> ExitCode {
    init_logging("warn", log_format);
    block_on("demo", cli::demo::run(mailboxes, listen, churn))
}

fn simulate(args: SimulateArgs, log_format: LogFormat) -> ExitCode {
    init_logging("warn", log_format);
    let auth = match simulate::auth(
        args.auth.as_deref(),
        args.password_file.as_ref(),
        args.token_file.as_ref(),
    ) {
        Ok(auth) => auth,
        Err(e) => {
            eprintln!("ews-presence simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let extended_protection = match args.extended_protection.parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ews-presence simulate: --extended-protection {e}");
            return ExitCode::from(2);
        }
    };
    let subscription_owner = match args.subscription_owner.parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ews-presence simulate: --subscription-owner {e}");
            return ExitCode::from(2);
        }
    };
    let config = SimConfig {
        listen: args.listen,
        mailboxes: args.mailboxes,
        domain: args.domain,
        seed: args.seed,
        churn: args.churn,
        heartbeat: std::time::Duration::from_millis(args.heartbeat_ms),
        minute: std::time::Duration::from_millis(args.minute_ms),
        backends: args.backends,
        connection_limit: args.connection_limit,
        subscription_owner,
        pox_only: args.autodiscover_pox_only,
        account: args.account,
        auth,
        extended_protection,
        tls: args.tls_cert.zip(args.tls_key),
        empty_calendars: args.empty_calendars,
        status_event_heartbeats: args.status_event_heartbeats,
        mail_tips_max_recipients: (args.mail_tips_max_recipients > 0)
            .then_some(args.mail_tips_max_recipients),
    };
    block_on("simulate", simulate::run(config))
}

/// Prints completions or the man page to standard output.
fn generate(what: Generate) -> ExitCode {
    use clap::CommandFactory;
    let mut command = Cli::command();
    let mut out = io::stdout().lock();
    let written = match what {
        Generate::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "ews-presence", &mut out);
            Ok(())
        }
        Generate::Man => clap_mangen::Man::new(command).render(&mut out),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ews-presence generate: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    match cli.command {
        Command::Simulate(args) => simulate(args, log_format),
        Command::Run { config } => run(&config, log_format),
        Command::Check {
            config,
            mailbox,
            json,
        } => check(&config, mailbox.as_deref(), json, log_format),
        Command::Discover {
            config,
            json,
            mailboxes,
        } => discover(&config, &mailboxes, json, log_format),
        Command::Demo {
            mailboxes,
            listen,
            churn,
        } => demo(mailboxes, listen, churn, log_format),
        Command::Generate { what } => generate(what),
        Command::Decode {
            file,
            max_frame_bytes,
        } => {
            // Large writes: a capture prints lines of 4 to 10 KB, which an 8 KB buffer
            // would write one system call each.
            decode::widen_pipe(io::stdout());
            let stdout = BufWriter::with_capacity(decode::WRITE_BUFFER, io::stdout().lock());
            let result = match &file {
                Some(path) => match File::open(path) {
                    Ok(f) => decode::run(f, stdout, max_frame_bytes),
                    Err(e) => {
                        eprintln!("ews-presence decode: cannot open {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                },
                None => decode::run(io::stdin().lock(), stdout, max_frame_bytes),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(DecodeCommandError::Decode(e)) => {
                    eprintln!("ews-presence decode: {e}");
                    ExitCode::from(1)
                }
                Err(DecodeCommandError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    ExitCode::SUCCESS
                }
                Err(DecodeCommandError::Io(e)) => {
                    eprintln!("ews-presence decode: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
