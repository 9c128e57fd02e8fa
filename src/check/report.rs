//! The report of `ews-presence check`: every configured gateway (no cap) is checked in
//! parallel, step by step ([`super::check_all`]); the answer is a table, one row per gateway and step with
//! pass, FAIL or skip and the time it took, and for each failure or skipped step one
//! line saying what to change, or JSON for machines. The exit code counts failures
//! only.

use std::io::Write;

use serde_json::json;

use super::{GatewayCheck, Outcome};

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
                match step.result {
                    Outcome::Pass => "pass",
                    Outcome::Fail => "FAIL",
                    Outcome::Skipped => "skip",
                },
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
