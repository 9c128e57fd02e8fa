//! `ews-presence simulate`: runs the simulated Exchange until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use super::error::CommandError;
use super::{LogFormat, block_on, init_logging};

use ews_sim::auth::SimAuth;
use ews_sim::{Sim, SimConfig};

/// The simulator's authentication from `--auth`, `--password-file` and `--token-file`.
pub fn auth(
    scheme: Option<&str>,
    password_file: Option<&PathBuf>,
    token_file: Option<&PathBuf>,
) -> Result<SimAuth, CommandError> {
    let scheme = scheme.unwrap_or(if password_file.is_some() {
        "basic"
    } else {
        "none"
    });
    let password = || -> Result<String, CommandError> {
        let path = password_file.ok_or_else(|| {
            CommandError::Argument(format!("--auth {scheme} needs --password-file"))
        })?;
        read_password(path)
    };
    match scheme {
        "none" => Ok(SimAuth::None),
        "basic" => Ok(SimAuth::Basic {
            password: password()?,
        }),
        "ntlm" => Ok(SimAuth::Ntlm {
            password: password()?,
        }),
        "bearer" => {
            let token_file = token_file.ok_or_else(|| {
                CommandError::Argument("--auth bearer needs --token-file".to_owned())
            })?;
            std::fs::metadata(token_file)
                .map_err(|e| CommandError::file("read token file", token_file, e))?;
            Ok(SimAuth::Bearer {
                token_file: token_file.clone(),
            })
        }
        other => Err(CommandError::Argument(format!(
            "--auth {other:?}: use basic, ntlm, bearer or none"
        ))),
    }
}

/// Reads the service account's password from a file (first line, trimmed).
pub fn read_password(path: &PathBuf) -> Result<String, CommandError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CommandError::file("read password file", path, e))?;
    let password = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    if password.is_empty() {
        return Err(CommandError::Empty {
            what: "password file",
            path: path.clone(),
        });
    }
    Ok(password)
}

/// Starts the simulator, prints where it listens, serves until a stop signal.
async fn serve(config: SimConfig) -> Result<(), CommandError> {
    let mailboxes = config.mailboxes;
    let graph = config
        .graph
        .as_ref()
        .map(|g| (g.tenant.clone(), g.client_id.clone()));
    let sim = Sim::new(config)?;
    let running = sim.start().await?;
    // One write: a reader may take the first line and close the pipe.
    let mut banner = format!(
        "ews-presence simulate: listening on {} ({} mailboxes; EWS at {}, control API at {}/sim/)\n",
        running.base_url(),
        mailboxes,
        running.ews_url(),
        running.base_url()
    );
    if let Some((tenant, client_id)) = graph {
        banner.push_str(&format!(
            "ews-presence simulate: Microsoft Graph at {base}/v1.0/, tokens at {base}/{tenant}/oauth2/v2.0/token for client {client_id}\n",
            base = running.base_url()
        ));
    }
    print!("{banner}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    wait_for_stop_signal().await;
    running.stop().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
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
    /// Serve Microsoft Graph too (token endpoint at /{tenant}/oauth2/v2.0/token, Graph
    /// at /v1.0/), over the same mailboxes.
    #[arg(long)]
    graph: bool,
    /// The Graph tenant (a domain or an id).
    #[arg(long, default_value = "example.test", requires = "graph")]
    graph_tenant: String,
    /// The registered application's client id.
    #[arg(
        long,
        default_value = "00000000-0000-0000-0000-0000000a0001",
        requires = "graph"
    )]
    graph_client_id: String,
    /// File holding the application's client secret (else secrets are refused).
    #[arg(long, requires = "graph")]
    graph_secret_file: Option<PathBuf>,
    /// The application's certificate (PEM): client assertions signed by its key are
    /// accepted.
    #[arg(long, requires = "graph")]
    graph_certificate: Option<PathBuf>,
    /// CA file to trust when delivering notifications to https:// URLs (else the
    /// system roots).
    #[arg(long, requires = "graph")]
    graph_notify_ca: Option<PathBuf>,
}

/// Runs the simulator until stopped: 0, or 2 on bad arguments.
pub fn run(args: Args, log_format: LogFormat) -> ExitCode {
    init_logging("warn", log_format);
    let auth = match auth(
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
    let graph = if args.graph {
        let client_secret = match args
            .graph_secret_file
            .as_ref()
            .map(read_password)
            .transpose()
        {
            Ok(secret) => secret,
            Err(e) => {
                eprintln!("ews-presence simulate: --graph-secret-file: {e}");
                return ExitCode::from(2);
            }
        };
        Some(ews_sim::graph::GraphConfig {
            tenant: args.graph_tenant,
            client_id: args.graph_client_id,
            client_secret,
            certificate: args.graph_certificate,
            token_lifetime: std::time::Duration::from_secs(3600),
            notify_ca: args.graph_notify_ca,
        })
    } else {
        None
    };
    let config = SimConfig {
        graph,
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
    block_on("simulate", serve(config))
}
