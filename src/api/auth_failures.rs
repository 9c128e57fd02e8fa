//! Refused API requests: counted in `api_auth_failures_total{reason}` and logged at
//! `warn` at most once a minute per client address, with how many were refused since
//! the last line, so that a guessing client is seen without flooding the log. The
//! addresses remembered are bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::tokens::Refusal;

/// At most one log line per client address in this long.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// Client addresses remembered at once; the stalest goes to make room.
const MAX_CLIENTS: usize = 4096;

#[derive(Debug)]
struct Client {
    /// When its last line was logged.
    logged_at: Instant,
    /// Refusals since then (not yet logged).
    unlogged: u64,
}

/// The refusals seen, per client address.
#[derive(Debug, Default)]
pub struct AuthFailures {
    clients: Mutex<HashMap<IpAddr, Client>>,
}

impl AuthFailures {
    /// Records a refusal from `peer` at `now`; returns how many refusals the log line
    /// written now reports (None: no line now, the minute is not over).
    pub fn refused(&self, peer: IpAddr, reason: Refusal, now: Instant) -> Option<u64> {
        super::metrics::auth_failure(reason.as_str());
        let mut clients = common::sync::lock(&self.clients);
        if !clients.contains_key(&peer) && clients.len() >= MAX_CLIENTS {
            let stalest = clients
                .iter()
                .min_by_key(|(_, c)| c.logged_at)
                .map(|(ip, _)| *ip);
            if let Some(ip) = stalest {
                clients.remove(&ip);
            }
        }
        let logged = match clients.get_mut(&peer) {
            Some(client) if now.saturating_duration_since(client.logged_at) < LOG_EVERY => {
                client.unlogged += 1;
                None
            }
            Some(client) => {
                let count = client.unlogged + 1;
                *client = Client {
                    logged_at: now,
                    unlogged: 0,
                };
                Some(count)
            }
            None => {
                clients.insert(
                    peer,
                    Client {
                        logged_at: now,
                        unlogged: 0,
                    },
                );
                Some(1)
            }
        };
        if let Some(count) = logged {
            tracing::warn!(
                client = %peer,
                reason = reason.as_str(),
                refused = count,
                "API requests refused (no token, an unknown token, or a token without the scope)"
            );
        }
        logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_minute_per_client_with_the_count() {
        let failures = AuthFailures::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(failures.refused(a, Refusal::Invalid, t0), Some(1));
        for s in 1..=5 {
            assert_eq!(
                failures.refused(a, Refusal::Invalid, t0 + Duration::from_secs(s)),
                None
            );
        }
        assert_eq!(
            failures.refused(b, Refusal::Missing, t0),
            Some(1),
            "per client"
        );
        assert_eq!(
            failures.refused(a, Refusal::Scope, t0 + LOG_EVERY),
            Some(6),
            "the five held back and this one"
        );
    }

    #[test]
    fn the_addresses_remembered_are_bounded() {
        let failures = AuthFailures::default();
        let t0 = Instant::now();
        for n in 0..(MAX_CLIENTS as u32 + 10) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            failures.refused(
                ip,
                Refusal::Invalid,
                t0 + Duration::from_millis(u64::from(n)),
            );
        }
        assert_eq!(common::sync::lock(&failures.clients).len(), MAX_CLIENTS);
    }
}
