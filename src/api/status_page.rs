//! The status page served at `GET /`: one self-contained HTML file (no external
//! assets, works offline) that reads everything it shows from `/v1/*` with the tab's
//! bearer token: counts per availability, each gateway's health with the
//! troubleshooter's checks on demand, the latest transitions from the change feed,
//! and one mailbox's state with its day as a bar.

/// The page.
pub const HTML: &str = include_str!("status_page.html");
