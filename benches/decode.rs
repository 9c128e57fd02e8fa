//! Decode throughput of the streaming decoder on a realistic GetStreamingEvents body.
//!
//! The body is written the way Exchange 2016 writes it: unprefixed SOAP envelopes with
//! a ServerVersionInfo header, heartbeats (`ConnectionStatus` OK) between calendar
//! bursts, each burst holding 1 to 4 subscriptions' Notifications, each of those 1 to 3
//! item changes as ModifiedEvent + FreeBusyChangedEvent pairs followed by the calendar
//! folder's ModifiedEvent. It is fed in 16 KiB chunks, as an HTTP body arrives, and
//! every frame is fully decoded into typed events.
//!
//! Two figures: the decoder in this process (`decode`), and `ews-presence decode` as a
//! whole process (`decode_process`): a 20 MB capture of the same stream read from a
//! file, one JSON line per frame printed to a pipe this benchmark drains, from process
//! start to exit.
//!
//! Run: `cargo bench --bench decode` (release build). Prints one JSON line per figure;
//! MB = 10^6 bytes; each figure is the median over the timed iterations on one core.

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use ews::stream::{Response, StreamDecoder};

const TARGET_BYTES: usize = 64 * 1024 * 1024;
/// Size of the capture `ews-presence decode` reads as a whole process.
const CAPTURE_BYTES: usize = 20 * 1000 * 1000;
/// Stream size for the correctness pass `cargo test --all-targets` runs.
const QUICK_BYTES: usize = 1024 * 1024;
const CHUNK: usize = 16 * 1024;
const ITERATIONS: usize = 7;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const HEADER: &str = r#"<?xml version="1.0" encoding="utf-8"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><soap11:Header xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/"><ServerVersionInfo xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" Version="V2017_07_11"/></soap11:Header><soap11:Body xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/"><m:GetStreamingEventsResponse xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>"#;
const FOOTER: &str = "</m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></soap11:Body></Envelope>\r\n";

fn id(kind: &str, mailbox: u64, n: u64) -> String {
    // Exchange ids are ~150 base64 characters.
    format!(
        "AAMkADg4MTg2OTVjLTY5NzItNDliYS05NjRjLWE1Y2NkYmJhNTU4MQBGAAAAAAAnT+v/XrekSJPJnfajaVp7BwB4AcCri66ATqtSWLqPBV/{kind}{mailbox:06}{n:08}AAA="
    )
}

fn item_event(out: &mut String, element: &str, second: u64, mailbox: u64, item: u64) {
    out.push_str(&format!(
        "<t:{element}><t:TimeStamp>2026-11-23T09:{:02}:{:02}Z</t:TimeStamp><t:ItemId Id=\"{}\" ChangeKey=\"DwAAAA==\"/><t:ParentFolderId Id=\"{}\" ChangeKey=\"AQAAAA==\"/></t:{element}>",
        (second / 60) % 60,
        second % 60,
        id("item", mailbox, item),
        id("fold", mailbox, 0)
    ));
}

/// Returns (body, frames, events).
fn realistic_stream(target_bytes: usize) -> (Vec<u8>, usize, usize) {
    let mut rng = Lcg(0x5eed);
    let mut out = String::with_capacity(target_bytes + 64 * 1024);
    let (mut frames, mut events) = (0, 0);
    let mut second = 0;
    while out.len() < target_bytes {
        second += 1;
        out.push_str(HEADER);
        if rng.next(4) == 0 {
            out.push_str("<m:ConnectionStatus>OK</m:ConnectionStatus>");
        } else {
            out.push_str("<m:Notifications>");
            for _ in 0..1 + rng.next(4) {
                let mailbox = rng.next(100_000);
                out.push_str(&format!(
                    "<m:Notification><t:SubscriptionId>FwBleGNoMDEuZXhhbXBsZS50ZXN0EAAAAJFK4NnstRVFlF1NQaCP{mailbox:06}XGkYiHJpukmWTKXM27pVgQ==</t:SubscriptionId>"
                ));
                for _ in 0..1 + rng.next(3) {
                    let item = rng.next(1_000_000);
                    item_event(&mut out, "ModifiedEvent", second, mailbox, item);
                    item_event(&mut out, "FreeBusyChangedEvent", second, mailbox, item);
                    events += 2;
                }
                out.push_str(&format!(
                    "<t:ModifiedEvent><t:TimeStamp>2026-11-23T09:{:02}:{:02}Z</t:TimeStamp><t:FolderId Id=\"{}\" ChangeKey=\"AgAAAA==\"/><t:ParentFolderId Id=\"{}\" ChangeKey=\"AQAAAA==\"/></t:ModifiedEvent></m:Notification>",
                    (second / 60) % 60,
                    second % 60,
                    id("fold", mailbox, 0),
                    id("root", mailbox, 0)
                ));
                events += 1;
            }
            out.push_str("</m:Notifications>");
        }
        out.push_str(FOOTER);
        frames += 1;
    }
    (out.into_bytes(), frames, events)
}

/// Decodes the whole body; returns (frames, events) seen.
fn decode(body: &[u8]) -> (usize, usize) {
    let mut decoder = StreamDecoder::default();
    let (mut frames, mut events) = (0, 0);
    for chunk in body.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(frame) = decoder.next_frame().expect("benchmark stream is valid") {
            frames += 1;
            if let Response::GetStreamingEvents(r) = &frame.response {
                events += r
                    .notifications
                    .iter()
                    .map(|n| n.events.len())
                    .sum::<usize>();
            }
            black_box(&frame);
        }
    }
    decoder.finish().expect("benchmark stream ends cleanly");
    (frames, events)
}

/// Runs `ews-presence decode capture`, draining its output; returns (lines, seconds).
fn decode_process(capture: &Path) -> (usize, f64) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .arg("decode")
        .arg(capture)
        .stdout(Stdio::piped())
        .spawn()
        .expect("ews-presence starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = 0;
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    loop {
        let buffer = reader.fill_buf().expect("read output");
        if buffer.is_empty() {
            break;
        }
        lines += buffer.iter().filter(|b| **b == b'\n').count();
        let n = buffer.len();
        reader.consume(n);
    }
    let status = child.wait().expect("ews-presence exits");
    let seconds = start.elapsed().as_secs_f64();
    assert!(status.success(), "ews-presence decode failed: {status}");
    (lines, seconds)
}

/// Median, min and max of `rates`.
fn spread(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary with
    // no flag, and gets a quick correctness pass on a small stream instead.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (body, frames, events) = realistic_stream(if quick { QUICK_BYTES } else { TARGET_BYTES });
    let seen = decode(&body);
    assert_eq!(
        seen,
        (frames, events),
        "decoder disagrees with the generator"
    );
    // The whole process: a capture file in, JSON lines out.
    let (capture_body, capture_frames, _) =
        realistic_stream(if quick { QUICK_BYTES } else { CAPTURE_BYTES });
    let capture = std::env::temp_dir().join(format!(
        "ews-presence-bench-decode-{}.xml",
        std::process::id()
    ));
    std::fs::write(&capture, &capture_body).expect("write the capture");
    let (lines, _) = decode_process(&capture);
    assert_eq!(lines, capture_frames, "one JSON line per frame");
    if quick {
        let _ = std::fs::remove_file(&capture);
        return;
    }
    let (median, min, max) = spread(
        (0..ITERATIONS)
            .map(|_| capture_body.len() as f64 / decode_process(&capture).1 / 1e6)
            .collect(),
    );
    let _ = std::fs::remove_file(&capture);
    println!(
        "{{\"bench\":\"decode_process\",\"command\":\"ews-presence decode FILE | (drained)\",\"bytes\":{},\"frames\":{},\"iterations\":{},\"mb_per_s_median\":{:.1},\"mb_per_s_min\":{:.1},\"mb_per_s_max\":{:.1}}}",
        capture_body.len(),
        capture_frames,
        ITERATIONS,
        median,
        min,
        max
    );
    let (median, min, max) = spread(
        (0..ITERATIONS)
            .map(|_| {
                let start = Instant::now();
                black_box(decode(black_box(&body)));
                body.len() as f64 / start.elapsed().as_secs_f64() / 1e6
            })
            .collect(),
    );
    println!(
        "{{\"bench\":\"decode\",\"bytes\":{},\"frames\":{},\"events\":{},\"chunk_bytes\":{},\"iterations\":{},\"mb_per_s_median\":{:.1},\"mb_per_s_min\":{:.1},\"mb_per_s_max\":{:.1}}}",
        body.len(),
        frames,
        events,
        CHUNK,
        ITERATIONS,
        median,
        min,
        max
    );
}
