//! The incremental decoder for EWS response bodies, above all the endless
//! GetStreamingEvents body: complete SOAP envelopes back to back, forever, arriving in
//! chunks that split them anywhere.
//!
//! [`StreamDecoder::push`] takes bytes as they arrive; [`StreamDecoder::next_frame`]
//! yields each complete envelope as a typed [`Frame`], in order; at the end of the
//! body [`StreamDecoder::finish`] says whether it ended cleanly. No I/O happens here.
//!
//! Memory is bounded: an envelope larger than the limit is an error as soon as its
//! first excess byte arrives, and bytes between envelopes are dropped once scanned.
//! The first error ends decoding: frames before it are still yielded, then the error,
//! naming the frame index and the byte offset in the body; later input is ignored.
//! (The caller drops the connection and resynchronises.)

mod envelope;
mod scanner;

use std::collections::VecDeque;

pub use envelope::{Envelope, Response, decode_envelope};

use crate::ews::decode_error::{DecodeError, Problem};
use crate::ews::soap::ServerVersionInfo;
use scanner::{Scanner, Step};

/// Default largest envelope accepted: 4 MiB.
pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;

/// Bytes no longer needed are dropped from the buffer once they are this many, or
/// half of it, so feeding tiny chunks does not move the buffer on every push.
const COMPACT_AT: usize = 64 * 1024;

/// One decoded envelope with its place in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// 0-based index of the envelope in the body.
    pub index: u64,
    /// Byte offset of its first byte in the body.
    pub offset: u64,
    /// The `ServerVersionInfo` header, when sent.
    pub server_version: Option<ServerVersionInfo>,
    /// What it held.
    pub response: Response,
}

/// Splits a response body into envelopes and decodes each one.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Body offset of `buf[0]`.
    base: u64,
    scanner: Scanner,
    /// Complete envelopes not yet decoded, as buffer ranges.
    ready: VecDeque<(usize, usize)>,
    /// Index the next envelope the scanner completes will get.
    scanned: u64,
    /// Index of the next frame to yield.
    yielded: u64,
    /// An error found by the scanner, yielded after the frames before it.
    pending_error: Option<DecodeError>,
    /// An error has been returned; nothing more will be.
    done: bool,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        StreamDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl StreamDecoder {
    /// A decoder refusing envelopes larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> StreamDecoder {
        StreamDecoder {
            buf: Vec::new(),
            base: 0,
            scanner: Scanner::new(max_frame.max(1)),
            ready: VecDeque::new(),
            scanned: 0,
            yielded: 0,
            pending_error: None,
            done: false,
        }
    }

    /// Adds the next bytes of the body. Call [`StreamDecoder::next_frame`] until it
    /// returns `Ok(None)` before pushing more.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.done || self.pending_error.is_some() {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(chunk);
        loop {
            match self.scanner.scan(&self.buf, self.base) {
                Step::Frame { start, end } => {
                    self.ready.push_back((start, end));
                    self.scanned += 1;
                }
                Step::NeedMore => return,
                Step::Error { at, problem } => {
                    self.pending_error = Some(DecodeError {
                        frame: self.scanned,
                        offset: self.base + at as u64,
                        problem,
                    });
                    self.buf.truncate(at);
                    return;
                }
            }
        }
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or the error
    /// that ends decoding.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.done {
            return Ok(None);
        }
        if let Some((start, end)) = self.ready.pop_front() {
            let index = self.yielded;
            self.yielded += 1;
            let offset = self.base + start as u64;
            return match decode_envelope(&self.buf[start..end]) {
                Ok(envelope) => Ok(Some(Frame {
                    index,
                    offset,
                    server_version: envelope.server_version,
                    response: envelope.response,
                })),
                Err(e) => Err(self.fail(DecodeError {
                    frame: index,
                    offset: offset + e.offset as u64,
                    problem: e.problem,
                })),
            };
        }
        match self.pending_error.take() {
            Some(e) => Err(self.fail(e)),
            None => Ok(None),
        }
    }

    /// Declares the end of the body: an error if it ended inside an envelope (or an
    /// error is still pending). Call after draining [`StreamDecoder::next_frame`].
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.done {
            return Ok(());
        }
        if let Some(e) = self.pending_error.take() {
            return Err(self.fail(e));
        }
        if !self.ready.is_empty() || !self.scanner.at_boundary() {
            let e = DecodeError {
                frame: self.scanned,
                offset: self.base + self.buf.len() as u64,
                problem: Problem::Truncated,
            };
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Whether part of an envelope has arrived and not yet been yielded: a body that
    /// stops here has lost whatever that envelope carried.
    pub fn inside_frame(&self) -> bool {
        !self.done && (!self.ready.is_empty() || !self.scanner.at_boundary())
    }

    /// Bytes currently buffered (for tests and metrics).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.done = true;
        self.buf = Vec::new();
        self.ready.clear();
        e
    }

    fn compact(&mut self) {
        let keep = match self.ready.front() {
            Some(&(start, _)) => start,
            None => self.scanner.keep_from(),
        };
        if keep == 0 || (keep < COMPACT_AT && keep * 2 < self.buf.len()) {
            return;
        }
        self.buf.drain(..keep);
        self.base += keep as u64;
        self.scanner.shift(keep);
        for range in &mut self.ready {
            range.0 -= keep;
            range.1 -= keep;
        }
    }
}
