//! `ews-presence simulate`: runs the simulated Exchange until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use ews_sim::auth::SimAuth;
use ews_sim::{Sim, SimConfig};

/// The simulator's authentication from `--auth`, `--password-file` and `--token-file`.
pub fn auth(
    scheme: Option<&str>,
    password_file: Option<&PathBuf>,
    token_file: Option<&PathBuf>,
) -> Result<SimAuth, String> {
    let scheme = scheme.unwrap_or(if password_file.is_some() {
        "basic"
    } else {
        "none"
    });
    let password = || -> Result<String, String> {
        let path = password_file.ok_or_else(|| format!("--auth {scheme} needs --password-file"))?;
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
            let token_file = token_file.ok_or("--auth bearer needs --token-file")?;
            std::fs::metadata(token_file)
                .map_err(|e| format!("cannot read token file {}: {e}", token_file.display()))?;
            Ok(SimAuth::Bearer {
                token_file: token_file.clone(),
            })
        }
        other => Err(format!("--auth {other:?}: use basic, ntlm, bearer or none")),
    }
}

/// Reads the service account's password from a file (first line, trimmed).
pub fn read_password(path: &PathBuf) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read password file {}: {e}", path.display()))?;
    let password = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    if password.is_empty() {
        return Err(format!("password file {} is empty", path.display()));
    }
    Ok(password)
}

/// Starts the simulator, prints where it listens, serves until a stop signal.
pub async fn run(config: SimConfig) -> Result<(), String> {
    let mailboxes = config.mailboxes;
    let sim = Sim::new(config).map_err(|e| e.to_string())?;
    let running = sim.start().await.map_err(|e| e.to_string())?;
    println!(
        "ews-presence simulate: listening on {} ({} mailboxes; EWS at {}, control API at {}/sim/)",
        running.base_url(),
        mailboxes,
        running.ews_url(),
        running.base_url()
    );
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
