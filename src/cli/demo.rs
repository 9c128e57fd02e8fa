//! `ews-presence demo`: the whole product in one process. A certificate authority is
//! made at start; the simulator serves EWS over HTTPS with a certificate from it and
//! Basic authentication; the daemon is configured against it through an ordinary
//! configuration file, trusting exactly that CA, so TLS is verified for real. Prints
//! the API address, ready-to-paste `curl` commands and a one-line summary every few
//! seconds; Ctrl-C stops both cleanly. Nothing needs to exist beforehand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::error::CommandError;
use super::simulate::wait_for_stop_signal;
use super::{LogFormat, block_on, init_logging};
use ews_presence::app::{App, SHUTDOWN_GRACE};
use ews_presence::config::Config;
use ews_presence::presence::timeline::Availability;
use ews_sim::{Sim, SimConfig};
use std::process::ExitCode;

/// Seconds between summary lines.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, CommandError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| CommandError::file("write", &path, e))?;
    Ok(path)
}

/// A CA and a certificate for 127.0.0.1 signed by it: (CA PEM, server cert PEM, key PEM).
fn make_certificates() -> Result<(String, String, String), rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "ews-presence demo CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "ews-presence demo Exchange");
    let server_cert = server.signed_by(&server_key, &issuer)?;
    Ok((ca_cert.pem(), server_cert.pem(), server_key.serialize_pem()))
}

fn random_password() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("demo-{:x}-{:x}", nanos, std::process::id())
}

/// Runs the demo until Ctrl-C or SIGTERM.
async fn serve(mailboxes: usize, listen: SocketAddr, churn: f64) -> Result<(), CommandError> {
    if mailboxes == 0 {
        return Err(CommandError::Argument(
            "--mailboxes must be positive".to_owned(),
        ));
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("ews-presence-demo-{}", std::process::id())));
    let dir = &scratch.0;
    std::fs::create_dir_all(dir).map_err(|e| CommandError::file("create", dir, e))?;
    let (ca, cert, key) = make_certificates()?;
    let ca_file = write(dir, "demo-ca.pem", &ca)?;
    let cert_file = write(dir, "exchange.pem", &cert)?;
    let key_file = write(dir, "exchange.key", &key)?;
    let password = random_password();
    write(dir, "svc.password", &format!("{password}\n"))?;
    let groups = mailboxes.div_ceil(200);

    let sim = Sim::new(SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        mailboxes,
        churn,
        // As Exchange 2019 CU14+ and SE are installed: Windows authentication with
        // Extended Protection required.
        auth: ews_sim::auth::SimAuth::Ntlm { password },
        extended_protection: ews_sim::auth::ExtendedProtection::Require,
        tls: Some((cert_file, key_file)),
        connection_limit: groups + 2,
        ..SimConfig::default()
    })?;
    let sim = sim.start().await?;
    // Presence moves at any hour: most changes are to the present.
    sim.sim.churn.set(churn, ews_sim::churn::DEMO_NOW_SHARE);

    let list: String = (1..=mailboxes)
        .map(|n| format!("user{n}@example.test\n"))
        .collect();
    write(dir, "mailboxes.txt", &list)?;
    let account = format!(
        "auth = \"ntlm\"\nusername = \"svc@example.test\"\npassword_file = \"svc.password\"\nca_file = \"{}\"\n",
        ca_file.display()
    );
    let config_file = write(
        dir,
        "ews-presence.toml",
        &format!(
            "[api]\nlisten = \"{listen}\"\n[presence]\ndebounce_ms = 500\n[[gateway]]\nname = \"demo-exchange\"\nurl = \"https://{}/EWS/Exchange.asmx\"\n{account}max_connections = {groups}\n[mailboxes]\nfile = \"mailboxes.txt\"\n",
            sim.addr,
        ),
    )?;
    // The same account with Autodiscover instead of a url, for `discover` to try.
    let discover_file = write(
        dir,
        "discover.toml",
        &format!(
            "[[gateway]]\nname = \"demo-exchange\"\nautodiscover = true\nautodiscover_url = \"https://{}/autodiscover/autodiscover.svc\"\n{account}[mailboxes]\nlist = [\"user1@example.test\", \"user2@example.test\"]\n",
            sim.addr,
        ),
    )?;
    let config = Config::load(&config_file, &HashMap::new())?;
    let sweep = config.presence.oof_refresh;
    let app = App::start(config).await?;
    let api = format!("http://{}", app.api_addr);
    println!("Status page: {api}/   (open it in a browser; Ctrl-C stops the demo)\n");
    println!(
        "ews-presence demo: {mailboxes} simulated mailboxes at {} (HTTPS with a CA made at start; NTLM with Extended Protection required), {churn} changes/s",
        sim.ews_url()
    );
    println!("API: {api}\n");
    println!("  curl -s {api}/v1/presence/user1@example.test");
    println!(
        "  curl -s -X POST {api}/v1/presence/query -d '{{\"mailboxes\":[\"user1@example.test\",\"user2@example.test\"]}}'"
    );
    println!("  curl -sN {api}/v1/presence/watch");
    println!("  curl -s {api}/v1/gateways");
    println!("  curl -s {api}/metrics | grep ^ews_presence_mailboxes");
    println!(
        "  curl -s --cacert {} {}/sim/mailboxes/user1@example.test/truth   # the simulator's ground truth\n",
        ca_file.display(),
        sim.base_url()
    );
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "ews-presence".into());
    println!(
        "Configuration: {} (and everything it names, removed when the demo stops)",
        config_file.display()
    );
    println!("  {program} check --config {}", config_file.display());
    println!(
        "  {program} discover --config {}   # Autodiscover against the simulator\n",
        discover_file.display()
    );
    println!(
        "Automatic replies raise no event (on Exchange as here): they are read by a sweep every {} s, so within one sweep the simulator's truth can already say away while the daemon does not yet.\n",
        sweep.as_secs()
    );

    let mut ticker = tokio::time::interval(SUMMARY_EVERY);
    ticker.tick().await;
    let (mut last_seq, mut last_events) = (0, 0);
    let stop = wait_for_stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        let now = app.cache.clock().now_secs();
        let counts = app.cache.counts(now);
        let count = |a: Availability| counts.iter().find(|(k, _)| *k == a).map_or(0, |(_, n)| *n);
        let seq = app.cache.feed().last_seq();
        let events: u64 = app
            .source
            .status()
            .gateways()
            .iter()
            .map(|g| g.events_received)
            .sum();
        println!(
            "{}  available {}  in-a-meeting {}  away {}  unknown {}  | transitions +{}  events +{}",
            jiff::Timestamp::now().strftime("%H:%M:%S"),
            count(Availability::Available),
            count(Availability::InAMeeting),
            count(Availability::Away),
            count(Availability::Unknown),
            seq - last_seq,
            events - last_events,
        );
        (last_seq, last_events) = (seq, events);
    }
    println!("stopping: unsubscribing and shutting down");
    app.shutdown(SHUTDOWN_GRACE).await;
    sim.stop().await;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated mailboxes, all served by the daemon.
    #[arg(long, default_value_t = 1000)]
    mailboxes: usize,
    /// Where the daemon's API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Random calendar changes per second.
    #[arg(long, default_value_t = 5.0)]
    churn: f64,
}

/// Runs the demo until Ctrl-C: 0, or 2 when it cannot start.
pub fn run(args: Args, log_format: LogFormat) -> ExitCode {
    init_logging("warn", log_format);
    block_on("demo", serve(args.mailboxes, args.listen, args.churn))
}
