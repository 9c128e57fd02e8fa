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

use memchr::memmem;

use envelope::decode_leading_envelope;
pub use envelope::{Envelope, Response, decode_envelope};

use crate::decode_error::{DecodeError, Problem};
use crate::soap::ServerVersionInfo;
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

impl Frame {
    /// Envelope number `index`, which started at body offset `offset`.
    fn of(index: u64, offset: u64, envelope: Envelope) -> Frame {
        Frame {
            index,
            offset,
            server_version: envelope.server_version,
            response: envelope.response,
        }
    }
}

/// What an envelope's end tag ends with, whatever its prefix.
const ENVELOPE_END: &[u8] = b"Envelope>";

/// An envelope found in the buffer and not yet yielded. Not boxed: nearly every entry
/// is `Decoded`, so a box would only add an allocation per envelope.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Ready {
    /// Scanned, not yet decoded: it spans `buf[start..end]`.
    Scanned { start: usize, end: usize },
    /// Decoded as soon as it arrived whole; it started at this body offset.
    Decoded { offset: u64, envelope: Envelope },
}

/// Splits a response body into envelopes and decodes each one.
///
/// Every envelope is first offered whole to the XML reader: when it has arrived
/// complete and is plain EWS (no comments, processing instructions or CDATA), the
/// reader both finds its end and decodes it, in one pass. Anything else (an envelope
/// split across pushes, one that does not decode, unusual markup) is found by the
/// byte-at-a-time [`Scanner`] and decoded afterwards, which also locates every error.
/// Both ways give the same frames, so the result never depends on chunking.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Body offset of `buf[0]`.
    base: u64,
    scanner: Scanner,
    /// Finds where an envelope may end, to bound what is read as its text.
    envelope_end: memmem::Finder<'static>,
    /// Envelopes not yet yielded, in body order.
    ready: VecDeque<Ready>,
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
            envelope_end: memmem::Finder::new(ENVELOPE_END),
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
                Step::EnvelopeStart { start } => {
                    if let Some((envelope, len)) = self.decode_whole(start) {
                        self.scanner.skip_envelope(start + len);
                        self.ready.push_back(Ready::Decoded {
                            offset: self.base + start as u64,
                            envelope,
                        });
                        self.scanned += 1;
                    }
                }
                Step::Frame { start, end } => {
                    self.ready.push_back(Ready::Scanned { start, end });
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
        if let Some(ready) = self.ready.pop_front() {
            let index = self.yielded;
            self.yielded += 1;
            let (start, end) = match ready {
                Ready::Scanned { start, end } => (start, end),
                Ready::Decoded { offset, envelope } => {
                    return Ok(Some(Frame::of(index, offset, envelope)));
                }
            };
            let offset = self.base + start as u64;
            return match decode_envelope(&self.buf[start..end]) {
                Ok(envelope) => Ok(Some(Frame::of(index, offset, envelope))),
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

    /// Reads the envelope starting at `buf[start]` in one pass, when it is all in the
    /// buffer and plain EWS; returns it and its length. Its text is taken up to the
    /// first end tag whose name ends in `Envelope`, so that only the envelope's bytes
    /// are checked as UTF-8; when that is not where it ends, the scanner reads it.
    /// Called on [`Step::EnvelopeStart`], so the scanner's size limit counts from
    /// `start`.
    fn decode_whole(&self, start: usize) -> Option<(Envelope, usize)> {
        let limit = self.scanner.frame_end_limit(self.buf.len());
        let window = &self.buf[start..limit];
        let end = self
            .envelope_end
            .find_iter(window)
            .map(|at| at + ENVELOPE_END.len())
            .find(|&end| is_end_tag(&window[..end]))?;
        let text = std::str::from_utf8(&window[..end]).ok()?;
        decode_leading_envelope(text).filter(|&(_, len)| len == end)
    }

    fn compact(&mut self) {
        let first_scanned = self.ready.iter().find_map(|r| match r {
            Ready::Scanned { start, .. } => Some(*start),
            Ready::Decoded { .. } => None,
        });
        let keep = first_scanned.unwrap_or_else(|| self.scanner.keep_from());
        if keep == 0 || (keep < COMPACT_AT && keep * 2 < self.buf.len()) {
            return;
        }
        self.buf.drain(..keep);
        self.base += keep as u64;
        self.scanner.shift(keep);
        for ready in &mut self.ready {
            if let Ready::Scanned { start, end } = ready {
                *start -= keep;
                *end -= keep;
            }
        }
    }
}

/// True when `text` ends with an end tag: the last `<` in it opens `</`.
fn is_end_tag(text: &[u8]) -> bool {
    memchr::memrchr(b'<', text).is_some_and(|lt| text.get(lt + 1) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE: &[u8] = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:UnsubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:UnsubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode></m:UnsubscribeResponseMessage></m:ResponseMessages></m:UnsubscribeResponse></s:Body></s:Envelope>"#;

    /// An envelope that arrives whole is read in one pass as it is pushed; one split
    /// across pushes is scanned, and decoded when it is asked for. Both give the same.
    #[test]
    fn a_whole_envelope_is_read_in_one_pass_and_a_split_one_is_scanned() {
        let mut whole = StreamDecoder::default();
        whole.push(b"\r\n");
        whole.push(ENVELOPE);
        assert!(matches!(
            whole.ready.front(),
            Some(Ready::Decoded { offset: 2, .. })
        ));
        let mut split = StreamDecoder::default();
        split.push(b"\r\n");
        split.push(&ENVELOPE[..40]);
        split.push(&ENVELOPE[40..]);
        assert!(matches!(split.ready.front(), Some(Ready::Scanned { .. })));
        let frame = whole.next_frame().unwrap().unwrap();
        assert_eq!(frame.offset, 2);
        assert_eq!(split.next_frame().unwrap().unwrap(), frame);
        assert_eq!((whole.finish(), split.finish()), (Ok(()), Ok(())));
    }
}
