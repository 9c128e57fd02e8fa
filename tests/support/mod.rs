//! Helpers shared by the integration tests: fixture loading and whole-body decoding.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ews::decode_error::DecodeError;
use ews::stream::{Frame, StreamDecoder};

/// The project's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The team's `shared/` directory beside the project, when present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    dir.is_dir().then_some(dir)
}

/// Something a check needs is missing. Outside CI the check says so on stderr and is
/// skipped; in CI (`CI=true`, where `.ci/run` installs everything) it fails, so a
/// check never passes there without running.
pub fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("{what} is missing, and CI must run this check");
    }
    eprintln!("{what} is missing: this check is NOT run (it fails in CI)");
}

/// Reads `fixtures/ews/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join("ews").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every `.xml` file under `dir`, recursively, sorted.
pub fn xml_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, "xml")
}

/// Every file named `*.<extension>` under `dir`, recursively, sorted.
pub fn files_ending(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// What decoding a whole body produced: its frames, then the error that ended it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub frames: Vec<Frame>,
    pub error: Option<DecodeError>,
}

/// Decodes `body` pushed in pieces of the given sizes (cycled), draining after each.
pub fn decode_in_chunks(body: &[u8], sizes: &[usize], max_frame: usize) -> Decoded {
    let mut decoder = StreamDecoder::new(max_frame);
    let mut frames = Vec::new();
    let mut rest = body;
    let mut i = 0;
    loop {
        let take = if rest.is_empty() {
            0
        } else {
            sizes[i % sizes.len()].clamp(1, rest.len())
        };
        i += 1;
        if take > 0 {
            decoder.push(&rest[..take]);
            rest = &rest[take..];
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => {
                    return Decoded {
                        frames,
                        error: Some(error),
                    };
                }
            }
        }
        if take == 0 {
            return Decoded {
                frames,
                error: decoder.finish().err(),
            };
        }
    }
}

/// Decodes `body` pushed in one piece.
pub fn decode_whole(body: &[u8]) -> Decoded {
    decode_in_chunks(body, &[body.len().max(1)], ews::stream::DEFAULT_MAX_FRAME)
}

pub mod client;
pub mod csdl;
pub mod daemon;
pub mod graph;
pub mod kamailio;
pub mod sim;
pub mod watcher;
