//! A change-feed watcher for the benchmarks that counts events without parsing them.

use std::net::SocketAddr;
use std::time::Instant;

use http_body_util::BodyExt;

use super::connect;

/// Watches the feed and counts the events holding `needle` (split across chunks or
/// not) without parsing them, so that a storm's watcher takes little of the CPU the
/// daemon needs. Ends with the count and when it reached `want`, or at `until`.
pub async fn watch_counting(
    api: SocketAddr,
    needle: &'static str,
    want: usize,
    until: Instant,
) -> tokio::task::JoinHandle<(usize, Option<Instant>)> {
    let mut sender = connect(api).await;
    let req = super::get_request("/v1/presence/watch");
    let response = sender.send_request(req).await.expect("watch");
    let mut body = response.into_body();
    tokio::spawn(async move {
        let _sender = sender;
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let mut seen = 0;
        // The last bytes of the previous chunk, which may hold the start of a match.
        let mut carry: Vec<u8> = Vec::new();
        let deadline = tokio::time::Instant::from_std(until);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            carry.extend_from_slice(&data);
            seen += finder.find_iter(&carry).count();
            let keep = carry.len().min(needle.len() - 1);
            carry.drain(..carry.len() - keep);
            if seen >= want {
                return (seen, Some(Instant::now()));
            }
        }
        (seen, None)
    })
}
