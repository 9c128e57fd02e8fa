//! `ews-presence check --config FILE [--mailbox ADDR] [--json]`: the troubleshooter.
//! Every configured gateway (no cap) is checked in parallel, step by step
//! ([`crate::troubleshoot`]); the answer is a table, one row per gateway and step with
//! pass/fail and the time it took, and for each failure one line saying what to
//! change, or JSON for machines.

use std::io::Write;

use serde_json::json;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::mailbox::Mailbox;
use crate::troubleshoot::{self, Step};

/// One gateway's steps.
#[derive(Debug)]
pub struct GatewayCheck {
    /// The gateway's name.
    pub gateway: String,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

impl GatewayCheck {
    /// Whether every step passed.
    pub fn ok(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }
}

/// Checks every gateway of `config` in parallel, with `mailbox` (else each gateway's
/// first configured mailbox) as the test mailbox; in configuration order.
pub async fn check_all(config: &Config, mailbox: Option<&Mailbox>) -> Vec<GatewayCheck> {
    let mut running = JoinSet::new();
    for (index, gateway) in config.gateways.iter().enumerate() {
        let test_mailbox = mailbox.cloned().or_else(|| {
            config
                .mailboxes
                .iter()
                .find(|(_, g)| *g == index)
                .map(|(m, _)| m.clone())
        });
        let gateway = gateway.clone();
        let certs = config.certs_dir.clone();
        running.spawn(async move {
            let steps = match test_mailbox {
                Some(m) => troubleshoot::check(&gateway, &certs, &m).await,
                None => vec![Step {
                    step: "mailbox",
                    ok: false,
                    millis: 0,
                    detail: "no mailbox is configured on this gateway".into(),
                    fix: Some("pass --mailbox ADDRESS".into()),
                }],
            };
            (
                index,
                GatewayCheck {
                    gateway: gateway.name.clone(),
                    steps,
                },
            )
        });
    }
    let mut done: Vec<(usize, GatewayCheck)> = Vec::new();
    while let Some(joined) = running.join_next().await {
        if let Ok(result) = joined {
            done.push(result);
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, c)| c).collect()
}

/// Prints `checks` as a table or JSON.
pub fn render(checks: &[GatewayCheck], as_json: bool, out: &mut impl Write) -> std::io::Result<()> {
    if as_json {
        let value = json!({
            "ok": checks.iter().all(GatewayCheck::ok),
            "gateways": checks.iter().map(|c| json!({
                "gateway": c.gateway,
                "ok": c.ok(),
                "steps": c.steps,
            })).collect::<Vec<_>>(),
        });
        return writeln!(out, "{value}");
    }
    let width = checks
        .iter()
        .map(|c| c.gateway.len())
        .max()
        .unwrap_or(7)
        .max(7);
    writeln!(
        out,
        "{:width$}  {:17}  {:6}  {:>7}  detail",
        "gateway", "step", "result", "time"
    )?;
    for check in checks {
        for step in &check.steps {
            writeln!(
                out,
                "{:width$}  {:17}  {:6}  {:>5}ms  {}",
                check.gateway,
                step.step,
                if step.ok { "pass" } else { "FAIL" },
                step.millis,
                step.detail
            )?;
            if let Some(fix) = &step.fix {
                writeln!(
                    out,
                    "{:width$}  {:17}  {:6}  {:>7}  fix: {fix}",
                    "", "", "", ""
                )?;
            }
        }
    }
    Ok(())
}
