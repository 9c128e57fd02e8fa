//! Running under systemd (`Type=notify`): `READY=1` once every mailbox has been synced
//! once or has failed (what `/readyz` reports), `WATCHDOG=1` at half the configured
//! `WatchdogSec` while the runtime is alive, `STOPPING=1` on shutdown, and a `STATUS=`
//! line systemctl shows. Without `NOTIFY_SOCKET` every call does nothing, so the same
//! binary runs anywhere.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::presence::cache::Cache;

/// How often readiness is looked at before it is reached.
const READINESS_POLL: Duration = Duration::from_millis(250);

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Tells the service manager `READY=1` once no mailbox is waiting for its first sync.
pub async fn ready_when_synced(cache: Arc<Cache>, stop: CancellationToken) {
    loop {
        let pending = cache.pending();
        if pending == 0 {
            let status = format!("serving {} mailboxes", cache.len());
            notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
            tracing::info!("ready: every mailbox synced once or failed");
            return;
        }
        let status = format!("syncing: {pending} mailboxes to go");
        notify(&[NotifyState::Status(&status)]);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(READINESS_POLL) => {}
        }
    }
}

/// Pets the systemd watchdog at half its interval, when one is configured.
pub async fn watchdog(stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (interval / 2).max(Duration::from_millis(100));
    loop {
        notify(&[NotifyState::Watchdog]);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Tells the service manager the daemon is stopping.
pub fn stopping() {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: unsubscribing"),
    ]);
}

/// Tells the service manager the mailbox list was reloaded.
pub fn reloaded(total: usize) {
    let status = format!("serving {total} mailboxes (list reloaded)");
    notify(&[NotifyState::Status(&status)]);
}
