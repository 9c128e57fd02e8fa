//! Finds where each envelope of a response body begins and ends, one byte at a time
//! across arbitrary chunk boundaries, without parsing it. It tracks just enough XML
//! lexing to do that: element depth, quoted attribute values, comments, processing
//! instructions and CDATA. Scanning resumes where it stopped, so every byte is looked
//! at once however the body is chunked, and every decision depends only on the bytes,
//! which makes frames and errors identical for every chunking.
//!
//! Between envelopes it allows white space, XML declarations and other processing
//! instructions, comments and a byte-order mark at the very start. It rejects DOCTYPE
//! and entity declarations, text outside an envelope, a top-level element whose local
//! name is not `Envelope`, an end tag that does not match the open element, nesting
//! deeper than [`MAX_DEPTH`], and any envelope longer than the size limit. Matching end
//! tags here, not only in the parser, means a broken envelope is reported at its
//! broken tag instead of swallowing the rest of a live stream.

use memchr::{memchr, memchr3};

use crate::decode_error::{Problem, shorten};
use crate::xml_tree::{MAX_DEPTH, is_name_start};

/// Markup declarations that may follow `<!`.
const COMMENT_OPEN: &[u8] = b"--";
const CDATA_OPEN: &[u8] = b"[CDATA[";
const DOCTYPE_OPEN: &[u8] = b"DOCTYPE";
const ENTITY_OPEN: &[u8] = b"ENTITY";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between envelopes.
    Outside,
    /// After a byte-order mark's first `n` bytes at the start of the body.
    ByteOrderMark(u8),
    /// After `<` between envelopes.
    OutsideLt,
    /// After `<!`, `len` bytes of the declaration keyword read so far.
    Markup { inside: bool, len: u8 },
    /// Inside `<!-- … -->`, counting trailing dashes.
    Comment { inside: bool, dashes: u8 },
    /// Inside `<? … ?>`.
    Pi { inside: bool, question: bool },
    /// Inside `<![CDATA[ … ]]>`, counting trailing brackets.
    CData { brackets: u8 },
    /// Character data inside an envelope.
    Text,
    /// After `<` inside an envelope.
    Lt,
    /// Inside a start tag.
    Tag,
    /// Inside a quoted attribute value.
    Attr(u8),
    /// Inside an end tag.
    EndTag,
}

/// What one call to [`Scanner::scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A complete envelope spans `buf[start..end]`.
    Frame {
        /// Index of its `<`.
        start: usize,
        /// One past its final `>`.
        end: usize,
    },
    /// An envelope's start tag begins at `buf[start]` (its `<`). Scanning goes on
    /// inside it on the next call, unless the caller read the envelope itself and
    /// calls [`Scanner::skip_envelope`].
    EnvelopeStart {
        /// Index of its `<`.
        start: usize,
    },
    /// Every byte was consumed; more are needed.
    NeedMore,
    /// The body is unusable from `at` on.
    Error {
        /// Buffer index of the offending byte.
        at: usize,
        /// What was wrong.
        problem: Problem,
    },
}

/// Resumable envelope-boundary scanner over a growing buffer.
#[derive(Debug, Clone)]
pub struct Scanner {
    state: State,
    /// Names of the open elements of the current envelope, as (offset from `start`,
    /// length) of the name in the buffer.
    open: Vec<(usize, usize)>,
    /// Start of the current top-level construct (envelope, comment or PI).
    start: usize,
    /// Buffer index of the `<` of the tag being read.
    tag_start: usize,
    /// Next byte to look at.
    pos: usize,
    /// Largest envelope accepted, in bytes.
    max_frame: usize,
    /// The keyword after `<!`.
    markup: [u8; 8],
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn syntax(at: usize, what: &str) -> Step {
    Step::Error {
        at,
        problem: Problem::Syntax(what.to_owned()),
    }
}

impl Scanner {
    /// A scanner at the start of a body.
    pub fn new(max_frame: usize) -> Scanner {
        Scanner {
            state: State::Outside,
            open: Vec::new(),
            start: 0,
            tag_start: 0,
            pos: 0,
            max_frame,
            markup: [0; 8],
        }
    }

    /// The first buffer index still needed: the start of an unfinished top-level
    /// construct, or the scan position between envelopes.
    pub fn keep_from(&self) -> usize {
        match self.state {
            State::Outside | State::ByteOrderMark(_) => self.pos,
            _ => self.start,
        }
    }

    /// True when the body may end here (between envelopes).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Outside)
    }

    /// Where the current envelope must have ended, in a buffer of `len` bytes: its
    /// start plus the size limit, or the buffer's end.
    pub fn frame_end_limit(&self, len: usize) -> usize {
        len.min(self.start.saturating_add(self.max_frame))
    }

    /// The envelope just reported by [`Step::EnvelopeStart`] was read elsewhere and
    /// ends at `end` (one past its final `>`): go on scanning from there, between
    /// envelopes.
    pub fn skip_envelope(&mut self, end: usize) {
        self.state = State::Outside;
        self.open.clear();
        self.pos = end;
    }

    /// The buffer lost its first `n` bytes.
    pub fn shift(&mut self, n: usize) {
        self.pos -= n;
        self.start = self.start.saturating_sub(n);
        self.tag_start = self.tag_start.saturating_sub(n);
    }

    /// Scans `buf` from where the last call stopped. `base` is the body offset of
    /// `buf[0]`, used only to recognise a byte-order mark at the very start.
    pub fn scan(&mut self, buf: &[u8], base: u64) -> Step {
        loop {
            let limit = match self.state {
                State::Outside | State::ByteOrderMark(_) => buf.len(),
                _ => self.frame_end_limit(buf.len()),
            };
            if self.pos >= limit {
                if self.pos < buf.len() {
                    return Step::Error {
                        at: limit,
                        problem: Problem::FrameTooLarge {
                            limit: self.max_frame,
                        },
                    };
                }
                return Step::NeedMore;
            }
            if let Some(step) = self.step(buf, limit, base) {
                return step;
            }
        }
    }

    /// Consumes at least one byte; returns a step when one is due.
    fn step(&mut self, buf: &[u8], limit: usize, base: u64) -> Option<Step> {
        let pos = self.pos;
        let b = buf[pos];
        match self.state {
            State::Outside => {
                if is_space(b) {
                    self.pos += 1;
                } else if b == b'<' {
                    self.start = pos;
                    self.state = State::OutsideLt;
                    self.pos += 1;
                } else if b == 0xEF && base + pos as u64 == 0 {
                    self.state = State::ByteOrderMark(1);
                    self.pos += 1;
                } else {
                    return Some(Step::Error {
                        at: pos,
                        problem: Problem::TextOutsideEnvelope,
                    });
                }
            }
            State::ByteOrderMark(n) => {
                let expected = [0xEF, 0xBB, 0xBF][n as usize];
                if b != expected {
                    return Some(Step::Error {
                        at: pos,
                        problem: Problem::TextOutsideEnvelope,
                    });
                }
                self.state = if n == 2 {
                    State::Outside
                } else {
                    State::ByteOrderMark(n + 1)
                };
                self.pos += 1;
            }
            State::OutsideLt | State::Lt => {
                let inside = self.state == State::Lt;
                self.tag_start = pos - 1;
                self.state = match b {
                    b'?' => State::Pi {
                        inside,
                        question: false,
                    },
                    b'!' => State::Markup { inside, len: 0 },
                    b'/' if inside => State::EndTag,
                    b'/' => return Some(syntax(pos, "end tag outside any element")),
                    b if is_name_start(b) => State::Tag,
                    _ => return Some(syntax(pos, "invalid character after '<'")),
                };
                self.pos += 1;
                if !inside && self.state == State::Tag {
                    return Some(Step::EnvelopeStart { start: self.start });
                }
            }
            State::Markup { inside, len } => {
                let len = len as usize;
                self.markup[len] = b;
                let keyword = &self.markup[..=len];
                self.pos += 1;
                if keyword == COMMENT_OPEN {
                    self.state = State::Comment { inside, dashes: 0 };
                } else if keyword == CDATA_OPEN && inside {
                    self.state = State::CData { brackets: 0 };
                } else if keyword == DOCTYPE_OPEN || keyword == ENTITY_OPEN {
                    return Some(Step::Error {
                        at: self.start,
                        problem: Problem::DoctypeNotAllowed,
                    });
                } else if [COMMENT_OPEN, CDATA_OPEN, DOCTYPE_OPEN, ENTITY_OPEN]
                    .iter()
                    .any(|k| k.starts_with(keyword))
                {
                    self.state = State::Markup {
                        inside,
                        len: (len + 1) as u8,
                    };
                } else {
                    return Some(syntax(self.start, "invalid markup declaration after '<!'"));
                }
            }
            State::Comment { inside, dashes } => {
                self.pos += 1;
                self.state = match b {
                    b'-' => State::Comment {
                        inside,
                        dashes: (dashes + 1).min(2),
                    },
                    b'>' if dashes == 2 => self.after_construct(inside),
                    _ => State::Comment { inside, dashes: 0 },
                };
            }
            State::Pi { inside, question } => {
                self.pos += 1;
                self.state = match b {
                    b'?' => State::Pi {
                        inside,
                        question: true,
                    },
                    b'>' if question => self.after_construct(inside),
                    _ => State::Pi {
                        inside,
                        question: false,
                    },
                };
            }
            State::CData { brackets } => {
                self.pos += 1;
                self.state = match b {
                    b']' => State::CData {
                        brackets: (brackets + 1).min(2),
                    },
                    b'>' if brackets == 2 => State::Text,
                    _ => State::CData { brackets: 0 },
                };
            }
            State::Text => match memchr(b'<', &buf[pos..limit]) {
                Some(i) => {
                    self.pos = pos + i + 1;
                    self.state = State::Lt;
                }
                None => self.pos = limit,
            },
            State::Attr(quote) => match memchr(quote, &buf[pos..limit]) {
                Some(i) => {
                    self.pos = pos + i + 1;
                    self.state = State::Tag;
                }
                None => self.pos = limit,
            },
            State::Tag => match memchr3(b'"', b'\'', b'>', &buf[pos..limit]) {
                Some(i) => {
                    let at = pos + i;
                    self.pos = at + 1;
                    let found = buf[at];
                    if found != b'>' {
                        self.state = State::Attr(found);
                        return None;
                    }
                    let self_closing = buf[at - 1] == b'/';
                    let name = tag_name(buf, self.tag_start + 1, at);
                    if self.open.is_empty() {
                        if let Some(error) = self.check_root_name(&buf[name.clone()]) {
                            return Some(error);
                        }
                        if self_closing {
                            return Some(self.frame_done(at));
                        }
                    }
                    if !self_closing {
                        if self.open.len() >= MAX_DEPTH {
                            return Some(Step::Error {
                                at: self.tag_start,
                                problem: Problem::TooDeep { limit: MAX_DEPTH },
                            });
                        }
                        self.open.push((name.start - self.start, name.len()));
                    }
                    self.state = State::Text;
                }
                None => self.pos = limit,
            },
            State::EndTag => match memchr(b'>', &buf[pos..limit]) {
                Some(i) => {
                    let at = pos + i;
                    self.pos = at + 1;
                    let closing = tag_name(buf, self.tag_start + 2, at);
                    let open = self
                        .open
                        .pop()
                        .map(|(offset, len)| &buf[self.start + offset..self.start + offset + len]);
                    if open != Some(&buf[closing.clone()]) {
                        return Some(Step::Error {
                            at: self.tag_start,
                            problem: Problem::Syntax(format!(
                                "end tag </{}> does not match <{}>",
                                shorten(&String::from_utf8_lossy(&buf[closing])),
                                shorten(&String::from_utf8_lossy(open.unwrap_or_default()))
                            )),
                        });
                    }
                    if self.open.is_empty() {
                        return Some(self.frame_done(at));
                    }
                    self.state = State::Text;
                }
                None => self.pos = limit,
            },
        }
        None
    }

    fn after_construct(&self, inside: bool) -> State {
        if inside { State::Text } else { State::Outside }
    }

    fn frame_done(&mut self, last: usize) -> Step {
        self.state = State::Outside;
        self.open.clear();
        Step::Frame {
            start: self.start,
            end: last + 1,
        }
    }

    /// The root element's local name must be `Envelope`.
    fn check_root_name(&self, name: &[u8]) -> Option<Step> {
        let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
        if local == b"Envelope" {
            return None;
        }
        Some(Step::Error {
            at: self.start,
            problem: Problem::UnknownRoot {
                name: shorten(&String::from_utf8_lossy(name)),
            },
        })
    }
}

/// The name in a tag whose name starts at `from` and whose `>` is at `gt`.
fn tag_name(buf: &[u8], from: usize, gt: usize) -> std::ops::Range<usize> {
    let len = buf[from..gt]
        .iter()
        .position(|&b| is_space(b) || b == b'/')
        .unwrap_or(gt - from);
    from..from + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(body: &[u8], max: usize) -> Vec<Step> {
        let mut scanner = Scanner::new(max);
        let mut out = Vec::new();
        loop {
            let step = scanner.scan(body, 0);
            if matches!(step, Step::EnvelopeStart { .. }) {
                continue;
            }
            let stop = !matches!(step, Step::Frame { .. });
            out.push(step);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn splits_back_to_back_envelopes() {
        let body = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<Envelope a='>'><b/><![CDATA[</Envelope>]]><!-- </Envelope> --></Envelope><s:Envelope x=\"/\"/>  <?xml version='1.0'?><Envelope></Envelope>";
        let steps = frames(body, 1 << 20);
        let spans: Vec<_> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Frame { start, end } => {
                    Some(std::str::from_utf8(&body[*start..*end]).unwrap())
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            spans,
            [
                "<Envelope a='>'><b/><![CDATA[</Envelope>]]><!-- </Envelope> --></Envelope>",
                "<s:Envelope x=\"/\"/>",
                "<Envelope></Envelope>"
            ]
        );
        assert_eq!(steps.last(), Some(&Step::NeedMore));
    }

    #[test]
    fn rejects_what_is_not_an_envelope() {
        let cases: [(&[u8], Problem); 6] = [
            (
                b"<Envelope><a><b></a></b></Envelope>",
                Problem::Syntax("end tag </a> does not match <b>".into()),
            ),
            (
                b"<s:Envelope><s:Body></s:Envelope>",
                Problem::Syntax("end tag </s:Envelope> does not match <s:Body>".into()),
            ),
            (b"  hello", Problem::TextOutsideEnvelope),
            (
                b"<html><body/></html>",
                Problem::UnknownRoot {
                    name: "html".into(),
                },
            ),
            (b"<!DOCTYPE x><Envelope/>", Problem::DoctypeNotAllowed),
            (
                b"<Envelope><!ENTITY x 'y'></Envelope>",
                Problem::DoctypeNotAllowed,
            ),
        ];
        for (body, problem) in cases {
            let steps = frames(body, 1 << 20);
            assert!(
                matches!(steps.last(), Some(Step::Error { problem: p, .. }) if *p == problem),
                "{:?}: {steps:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn size_limit_is_exact() {
        let body = b"<Envelope>0123456789</Envelope>";
        assert!(matches!(frames(body, body.len())[0], Step::Frame { .. }));
        assert_eq!(
            frames(body, body.len() - 1)[0],
            Step::Error {
                at: body.len() - 1,
                problem: Problem::FrameTooLarge {
                    limit: body.len() - 1
                }
            }
        );
    }
}
