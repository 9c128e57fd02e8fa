//! Fuzzes the streaming decoder with arbitrary bodies: it must never panic, never
//! buffer past its limit, decode identically whether the body arrives whole or in
//! small chunks, number frames in order at increasing offsets inside the body, decode
//! each envelope the same when it is read on its own (envelopes are self-contained),
//! and render each frame as `decode` JSON naming that frame and its operation.
//!
//! The first two input bytes choose the frame-size limit and the chunk sizes; the rest
//! is the body. Run with `fuzz/run.sh` (seeds the corpus from `fixtures/`).
#![no_main]

use ews_presence::decode::frame_json;
use ews::decode_error::DecodeError;
use ews::stream::{Frame, StreamDecoder};
use libfuzzer_sys::fuzz_target;

fn decode(body: &[u8], sizes: &[usize], max_frame: usize) -> (Vec<Frame>, Option<DecodeError>) {
    let mut decoder = StreamDecoder::new(max_frame);
    let mut frames = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let take = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        decoder.push(&rest[..take]);
        rest = &rest[take..];
        assert!(decoder.buffered() <= 2 * max_frame + take, "buffer grew past its bound");
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, decoder.finish().err())
}

fuzz_target!(|data: &[u8]| {
    let Some((control, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_frame = 64 + usize::from(control[0]) * 64;
    let sizes = [
        1 + usize::from(control[1] % 16),
        1,
        1 + usize::from(control[1] / 16) * 7,
    ];
    let whole = decode(body, &[body.len().max(1)], max_frame);
    let chunked = decode(body, &sizes, max_frame);
    assert_eq!(whole, chunked, "chunking changed the result");
    if let Some(e) = &whole.1 {
        assert!(e.offset <= body.len() as u64, "error offset past the end: {e}");
    }
    let mut previous: Option<u64> = None;
    for (i, frame) in whole.0.iter().enumerate() {
        assert_eq!(frame.index, i as u64, "frames are numbered in order");
        assert!(frame.offset < body.len() as u64, "frame offset past the end");
        assert!(
            previous.is_none_or(|p| frame.offset > p),
            "frame offsets increase"
        );
        previous = Some(frame.offset);
        let alone = decode(&body[frame.offset as usize..], &[body.len().max(1)], max_frame);
        let first = alone.0.first().expect("an envelope decodes on its own");
        assert_eq!(
            (&first.server_version, &first.response),
            (&frame.server_version, &frame.response),
            "an envelope decodes the same on its own"
        );
        let json = frame_json(frame);
        assert_eq!(json["frame"], frame.index, "JSON names its frame");
        assert_eq!(
            json["operation"],
            frame.response.operation(),
            "JSON names the operation"
        );
    }
});
