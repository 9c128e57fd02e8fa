//! Running under systemd (`Type=notify`): `READY=1` once start-up has ended (every
//! mailbox synced once or failing with a problem that says why, what `/readyz`
//! reports), with a `STATUS=` line that says how many fail; `WATCHDOG=1` at half the
//! configured `WatchdogSec` while the runtime is alive; `STOPPING=1` on shutdown.
//! Without `NOTIFY_SOCKET` every call does nothing, so the same binary runs anywhere.
//!
//! Messages are sent without blocking: a service manager that reads its socket slowly
//! must never stall a runtime thread (and with it the API). A `STATUS=` or
//! `WATCHDOG=1` line that does not fit is dropped (the next one says the same);
//! `READY=1` is tried again every [`RETRY_ESSENTIAL`] until it goes.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::presence::cache::Cache;

/// How often readiness is looked at before it is reached.
const READINESS_POLL: Duration = Duration::from_millis(250);
/// How often `READY=1` is tried again while the socket is full.
const RETRY_ESSENTIAL: Duration = Duration::from_millis(100);

/// A non-blocking socket connected to `path` (a path, or `@name` in the abstract
/// namespace), as `NOTIFY_SOCKET` names it.
fn socket_at(path: &OsStr) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path);
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.connect_addr(&address)?;
    } else {
        socket.connect(path)?;
    }
    Ok(socket)
}

/// Sends `message` (newline-separated `KEY=VALUE` lines) to the service manager once,
/// without blocking; without `NOTIFY_SOCKET`, does nothing.
fn send(message: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => send_to(&path, message),
        None => Ok(true),
    }
}

/// Sends `message` to the socket at `path` once, without blocking. `Ok(false)`: the
/// socket is full and nothing was sent.
fn send_to(path: &OsStr, message: &str) -> io::Result<bool> {
    let socket = socket_at(path)?;
    match socket.send(message.as_bytes()) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sends a line that may be dropped when the socket is full.
fn notify(message: &str) {
    match send(message) {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(message, "the service manager's socket is full; dropped")
        }
        Err(e) => tracing::warn!(error = %e, "cannot notify the service manager"),
    }
}

/// Sends a line that must arrive, trying again while the socket is full (until
/// `stop`).
async fn notify_essential(message: &str, stop: &CancellationToken) {
    loop {
        match send(message) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot notify the service manager");
                return;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RETRY_ESSENTIAL) => {}
        }
    }
}

/// The `STATUS=` line once start-up has ended.
pub fn serving_status(total: usize, failing: usize) -> String {
    if failing == 0 {
        format!("serving {total} mailboxes")
    } else {
        format!(
            "serving {total} mailboxes, {failing} failing (each carries its problem: see /v1/gateways)"
        )
    }
}

/// Tells the service manager `READY=1` once start-up has ended: no mailbox is still
/// waiting for the end of its first attempt.
pub async fn ready_when_synced(cache: Arc<Cache>, stop: CancellationToken) {
    loop {
        let readiness = cache.readiness();
        if readiness.ready() {
            let status = serving_status(cache.len(), readiness.failing);
            notify_essential(&format!("READY=1\nSTATUS={status}\n"), &stop).await;
            tracing::info!(
                synced = readiness.synced,
                failing = readiness.failing,
                "ready: every mailbox synced once or failing with a problem"
            );
            return;
        }
        notify(&format!(
            "STATUS=syncing: {} mailboxes to go, {} failing\n",
            readiness.syncing, readiness.failing
        ));
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
        notify("WATCHDOG=1\n");
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Tells the service manager the daemon is stopping (dropped if the socket is full:
/// the process's exit says it too).
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=stopping: unsubscribing\n");
}

/// Tells the service manager the mailbox list was reloaded.
pub fn reloaded(total: usize) {
    notify(&format!(
        "STATUS=serving {total} mailboxes (list reloaded)\n"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_socket_drops_a_line_instead_of_blocking() {
        let dir =
            std::env::temp_dir().join(format!("ews-presence-notify-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        // The service manager's side, never read.
        let reader = UnixDatagram::bind(&path).unwrap();
        let sender = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                // A slow reader's queue fills within a few hundred datagrams; bounded.
                for _ in 0..100_000 {
                    if !send_to(path.as_os_str(), "STATUS=syncing\n").unwrap() {
                        return true;
                    }
                }
                false
            })
        };
        let filled = tokio::time::timeout(Duration::from_secs(10), sender)
            .await
            .expect("sending never blocks")
            .unwrap();
        assert!(filled, "the queue filled and the next line was dropped");
        // Once the reader catches up, lines go again.
        let mut buf = [0u8; 64];
        let n = reader.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=syncing\n");
        assert!(send_to(path.as_os_str(), "READY=1\n").unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_status_line_says_how_many_fail() {
        assert_eq!(serving_status(5, 0), "serving 5 mailboxes");
        assert!(serving_status(7, 3).starts_with("serving 7 mailboxes, 3 failing"));
    }
}
