//! `ews-presence discover --config FILE [MAILBOX...] [--json]`: asks Autodiscover for
//! each mailbox the way the daemon would and prints, per mailbox, the endpoint that
//! answered, the EWS URL, the GroupingInformation and the group it lands in, or the
//! error with every endpoint tried. Without mailboxes, every configured one of the
//! gateways that use Autodiscover.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::error::CommandError;
use super::{LogFormat, init_logging, load_config, runtime};

use serde_json::json;

use common::mailbox::Mailbox;
use ews::autodiscover::client::{Discoverer, Outcome};
use ews::transport::client_tls;
use ews_presence::config::Config;
use ews_presence::engine::gateway::endpoints::GroupKey;
use ews_presence::engine::group::packing::pack;

/// Discovers and prints; `Ok(true)` when every mailbox was placed.
pub async fn report(
    config: &Config,
    wanted: &[Mailbox],
    as_json: bool,
    out: &mut impl Write,
) -> Result<bool, CommandError> {
    let mut all_found = true;
    let mut any_gateway = false;
    for (index, gateway) in config.gateways.iter().enumerate() {
        let Some(discovery) = gateway.discovery() else {
            continue;
        };
        any_gateway = true;
        let mailboxes: Vec<Mailbox> = if wanted.is_empty() {
            config
                .mailboxes
                .iter()
                .filter(|(_, g)| *g == index)
                .map(|(m, _)| m.clone())
                .collect()
        } else {
            wanted.to_vec()
        };
        let tls = client_tls(gateway.ca_file.as_deref(), &config.certs_dir).map_err(|source| {
            CommandError::Tls {
                gateway: gateway.name.clone(),
                source,
            }
        })?;
        let outcomes: BTreeMap<Mailbox, Outcome> = Discoverer::new(discovery, tls)
            .discover(&mailboxes)
            .await
            .into_iter()
            .collect();
        // Where each lands: the daemon's own packing, fallback to `url` included.
        let keyed: Vec<(GroupKey, Mailbox)> = outcomes
            .iter()
            .filter_map(|(m, outcome)| {
                let key = match outcome {
                    Ok(found) => GroupKey {
                        url: found.ews_url.to_string(),
                        grouping: found.grouping.clone(),
                    },
                    Err(_) => GroupKey {
                        url: gateway.url.as_ref()?.to_string(),
                        grouping: None,
                    },
                };
                Some((key, m.clone()))
            })
            .collect();
        let packing = pack(
            keyed,
            gateway.max_subscriptions_per_connection,
            gateway.max_connections,
        );
        let mut landing: BTreeMap<Mailbox, (usize, Mailbox)> = BTreeMap::new();
        for (n, (_, members)) in packing.groups.iter().enumerate() {
            for m in members {
                landing.insert(m.clone(), (n + 1, members[0].clone()));
            }
        }
        for (mailbox, outcome) in &outcomes {
            all_found &= outcome.is_ok();
            let group = landing.get(mailbox);
            let line = if as_json {
                let group =
                    group.map(|(n, anchor)| json!({"number": n, "anchor": anchor.as_str()}));
                match outcome {
                    Ok(found) => json!({
                        "gateway": gateway.name, "mailbox": mailbox.as_str(), "ok": true,
                        "endpoint": found.answered_by, "address": found.address,
                        "ews_url": found.ews_url.to_string(), "grouping_information": found.grouping,
                        "group": group,
                    }),
                    Err(error) => json!({
                        "gateway": gateway.name, "mailbox": mailbox.as_str(), "ok": false,
                        "error": error.problem, "tried": error.tried, "group": group,
                    }),
                }
                .to_string()
            } else {
                let group = group.map_or_else(
                    || "not served".to_owned(),
                    |(n, anchor)| format!("group {n} (anchor {anchor})"),
                );
                match outcome {
                    Ok(found) => format!(
                        "{}  {mailbox}  {}  grouping {}  {group}  (answered by {})",
                        gateway.name,
                        found.ews_url,
                        found.grouping.as_deref().unwrap_or("(none)"),
                        found.answered_by
                    ),
                    Err(error) => format!("{}  {mailbox}  ERROR {error}  {group}", gateway.name),
                }
            };
            writeln!(out, "{line}").map_err(CommandError::Output)?;
        }
    }
    if !any_gateway {
        return Err(CommandError::Argument(
            "no gateway has autodiscover = true".to_owned(),
        ));
    }
    Ok(all_found)
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The TOML configuration file.
    #[arg(long)]
    config: PathBuf,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Mailboxes to ask for (default: every configured one on an Autodiscover
    /// gateway).
    mailboxes: Vec<String>,
}

/// Asks Autodiscover: 0 when every mailbox was placed, 1 otherwise, 2 on a bad
/// configuration.
pub fn run(args: Args, log_format: LogFormat) -> ExitCode {
    init_logging("warn", log_format);
    let config = match load_config("discover", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut wanted = Vec::new();
    for m in &args.mailboxes {
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
    match runtime.block_on(report(&config, &wanted, args.json, &mut stdout)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ews-presence discover: {e}");
            ExitCode::from(2)
        }
    }
}
