//! SIP message syntax (RFC 3261 §7, §20): writing the requests we send and reading
//! whatever arrives (responses to us, and requests when a test plays a watcher), plus
//! the framing of a byte stream by `Content-Length` (§18.3). Header names are matched
//! case-insensitively and in their compact forms (§7.3.3); folded header lines are
//! unfolded. Sizes are bounded: a message over [`MAX_MESSAGE`] bytes is refused.

use std::fmt::Write as _;

/// The largest message we read or write (a PIDF document is a few hundred bytes;
/// Kamailio's own UDP limit is 64 KiB).
pub const MAX_MESSAGE: usize = 65_535;
/// The most header lines a message may have.
pub const MAX_HEADERS: usize = 128;

/// A request we send. [`Request::encode`] writes it with `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `PUBLISH`, `OPTIONS`, `SUBSCRIBE`, …
    pub method: String,
    /// The Request-URI.
    pub uri: String,
    /// Headers in order, Via first (the client puts it there).
    pub headers: Vec<(String, String)>,
    /// The body (its `Content-Type` is one of the headers).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, uri: &str) -> Request {
        Request {
            method: method.to_owned(),
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Appends a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body and its type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Request {
        self.set("Content-Type", content_type);
        self.body = body;
        self
    }

    /// Replaces a header's value (every line of that name), or appends it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        self.headers.retain(|(n, _)| !same_name(n, name));
        self.headers.push((name.to_owned(), value));
    }

    /// Puts a header first (Via).
    pub fn set_first(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !same_name(n, name));
        self.headers.insert(0, (name.to_owned(), value.into()));
    }

    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut head = String::with_capacity(512);
        let _ = write!(head, "{} {} SIP/2.0\r\n", self.method, self.uri);
        for (name, value) in &self.headers {
            if !same_name(name, "Content-Length") {
                let _ = write!(head, "{name}: {value}\r\n");
            }
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// The start line of a message read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// A request: method and Request-URI.
    Request {
        /// The method.
        method: String,
        /// The Request-URI.
        uri: String,
    },
    /// A response: status code and reason phrase.
    Response {
        /// 100–699.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
}

/// A message read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request or response line.
    pub start: StartLine,
    /// Headers in order, names as written, values trimmed and unfolded.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

/// Why bytes are not a SIP message we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Over [`MAX_MESSAGE`] bytes, or over [`MAX_HEADERS`] header lines.
    #[error("the message is larger than {MAX_MESSAGE} bytes or {MAX_HEADERS} header lines")]
    TooLarge,
    /// Not UTF-8 in the head.
    #[error("the message head is not UTF-8")]
    NotText,
    /// The first line is neither `METHOD uri SIP/2.0` nor `SIP/2.0 code reason`.
    #[error("the first line {0:?} is neither a request nor a response line")]
    StartLine(String),
    /// A header line without a colon.
    #[error("the header line {0:?} has no colon")]
    Header(String),
    /// `Content-Length` is not a number.
    #[error("Content-Length {0:?} is not a number")]
    ContentLength(String),
    /// The body is shorter than `Content-Length` says (a datagram cut short).
    #[error("the body holds {got} bytes where Content-Length says {expected}")]
    Truncated {
        /// `Content-Length`.
        expected: usize,
        /// What arrived.
        got: usize,
    },
}

impl Message {
    /// Reads one whole message (a datagram, or a frame cut by [`frame`]). Leading
    /// CRLFs (keep-alives) are skipped; without `Content-Length` the body is the rest.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge);
        }
        let bytes = skip_crlf(bytes);
        let (head_len, body_start) = match find_head_end(bytes) {
            Some(end) => end,
            None => (bytes.len(), bytes.len()),
        };
        let head = std::str::from_utf8(&bytes[..head_len]).map_err(|_| ParseError::NotText)?;
        let mut lines = unfold(head)?.into_iter();
        let first = lines.next().unwrap_or_default();
        let start = start_line(&first)?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::Header(line.clone()))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let rest = &bytes[body_start..];
        let body = match content_length(&headers)? {
            None => rest.to_vec(),
            Some(len) if len <= rest.len() => rest[..len].to_vec(),
            Some(len) => {
                return Err(ParseError::Truncated {
                    expected: len,
                    got: rest.len(),
                });
            }
        };
        Ok(Message {
            start,
            headers,
            body,
        })
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header (any case, compact form too).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order; comma-separated values are not split.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// The `branch` parameter of the topmost Via.
    pub fn top_branch(&self) -> Option<&str> {
        let via = self.get("Via")?;
        let first = via.split(',').next()?;
        param(first, "branch")
    }

    /// The CSeq's method.
    pub fn cseq_method(&self) -> Option<&str> {
        self.get("CSeq")?.split_whitespace().nth(1)
    }

    /// A header's value as seconds (`Expires`, `Min-Expires`, `Retry-After`'s number).
    pub fn seconds(&self, name: &str) -> Option<u32> {
        let value = self.get(name)?;
        let number = value.split([';', '(', ' ']).next()?.trim();
        number.parse().ok()
    }
}

/// The value of parameter `name` in a header value (`;name=value`), unquoted.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The `tag` parameter of a From or To value.
pub fn tag(value: &str) -> Option<&str> {
    let after_uri = value.rsplit_once('>').map_or(value, |(_, rest)| rest);
    param(after_uri, "tag")
}

/// How many bytes at the start of `buffer` make one whole message of a stream
/// (leading CRLF keep-alives included); `None` while more bytes are needed. A stream
/// message must carry `Content-Length` (§18.3); without it the body is taken as empty.
pub fn frame(buffer: &[u8]) -> Result<Option<usize>, ParseError> {
    let skipped = buffer.len() - skip_crlf(buffer).len();
    let rest = &buffer[skipped..];
    let Some((head_len, body_start)) = find_head_end(rest) else {
        if rest.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&rest[..head_len]).map_err(|_| ParseError::NotText)?;
    let mut headers = Vec::new();
    for line in unfold(head)?.into_iter().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let body = content_length(&headers)?.unwrap_or(0);
    let total = body_start + body;
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    Ok((rest.len() >= total).then_some(skipped + total))
}

/// Compact forms (§7.3.3) of the headers we read or write.
const COMPACT: [(&str, &str); 10] = [
    ("v", "via"),
    ("i", "call-id"),
    ("l", "content-length"),
    ("c", "content-type"),
    ("f", "from"),
    ("t", "to"),
    ("m", "contact"),
    ("o", "event"),
    ("e", "content-encoding"),
    ("k", "supported"),
];

fn canonical(name: &str) -> &str {
    COMPACT
        .iter()
        .find(|(short, _)| name.eq_ignore_ascii_case(short))
        .map_or(name, |(_, long)| long)
}

/// Whether two header names are the same header.
pub fn same_name(a: &str, b: &str) -> bool {
    canonical(a).eq_ignore_ascii_case(canonical(b))
}

fn skip_crlf(mut bytes: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// The end of the head (without its blank line) and the start of the body.
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    // Bare LF line ends, tolerated on reading.
    bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

fn unfold(head: &str) -> Result<Vec<String>, ParseError> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t'])
            && let Some(last) = lines.last_mut()
        {
            last.push(' ');
            last.push_str(line.trim());
            continue;
        }
        if lines.len() > MAX_HEADERS {
            return Err(ParseError::TooLarge);
        }
        lines.push(line.to_owned());
    }
    Ok(lines)
}

fn start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::StartLine(line.chars().take(80).collect());
    let mut parts = line.splitn(3, ' ');
    let (a, b, c) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().unwrap_or(""),
    );
    if a == "SIP/2.0" {
        let status: u16 = b.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&status) {
            return Err(bad());
        }
        return Ok(StartLine::Response {
            status,
            reason: c.to_owned(),
        });
    }
    if c != "SIP/2.0" || a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: a.to_owned(),
        uri: b.to_owned(),
    })
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, ParseError> {
    match headers.iter().find(|(n, _)| same_name(n, "Content-Length")) {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| ParseError::ContentLength(v.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport=40000\r\n\
From: <sip:gw@example.test>;tag=1\r\n\
To: <sip:alice@example.test>;tag=b27e1a1d33761e85846fc98f5f3a7e58.b7c5\r\n\
Call-ID: c1\r\n\
CSeq: 1 PUBLISH\r\n\
Expires: 3600\r\n\
SIP-ETag: a.1733300000.1234.1.0\r\n\
Server: kamailio (5.6.3 (x86_64/linux))\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn a_response_reads_with_its_headers() {
        let m = Message::parse(OK).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.top_branch(), Some("z9hG4bKabc"));
        assert_eq!(m.cseq_method(), Some("PUBLISH"));
        assert_eq!(m.get("sip-etag"), Some("a.1733300000.1234.1.0"));
        assert_eq!(m.seconds("Expires"), Some(3600));
        assert_eq!(
            tag(m.get("To").unwrap()),
            Some("b27e1a1d33761e85846fc98f5f3a7e58.b7c5")
        );
        assert!(m.body.is_empty());
    }

    #[test]
    fn compact_names_folding_and_bodies() {
        let text = b"NOTIFY sip:w@127.0.0.1:5070 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\ni: x\r\nSubscription-State: active;\r\n expires=600\r\nc: application/pidf+xml\r\nl: 5\r\n\r\nhello";
        let m = Message::parse(text).unwrap();
        assert_eq!(
            m.start,
            StartLine::Request {
                method: "NOTIFY".into(),
                uri: "sip:w@127.0.0.1:5070".into()
            }
        );
        assert_eq!(m.get("Call-ID"), Some("x"));
        assert_eq!(m.get("content-type"), Some("application/pidf+xml"));
        assert_eq!(m.get("Subscription-State"), Some("active; expires=600"));
        assert_eq!(m.body, b"hello");
    }

    #[test]
    fn a_request_encodes_with_its_length() {
        let r = Request::new("PUBLISH", "sip:alice@example.test")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1")
            .header("Content-Length", "99")
            .body("application/pidf+xml", b"<x/>".to_vec());
        let bytes = r.encode();
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(
            m.get("Content-Length"),
            Some("4"),
            "ours, not the stale one"
        );
        assert_eq!(m.body, b"<x/>");
        assert!(bytes.starts_with(b"PUBLISH sip:alice@example.test SIP/2.0\r\n"));
    }

    #[test]
    fn a_stream_is_cut_into_messages() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(OK);
        let whole = stream.len();
        stream.extend_from_slice(&OK[..20]);
        assert_eq!(frame(&stream), Ok(Some(whole)));
        assert_eq!(frame(&stream[whole..]), Ok(None));
        let with_body = b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nab";
        assert_eq!(frame(with_body), Ok(None), "the body is not all there");
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        assert!(matches!(
            Message::parse(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(ParseError::StartLine(_))
        ));
        assert!(matches!(
            Message::parse(b"SIP/2.0 200 OK\r\nnocolon\r\n\r\n"),
            Err(ParseError::Header(_))
        ));
        assert_eq!(
            Message::parse(b"SIP/2.0 200 OK\r\nl: 9\r\n\r\nab"),
            Err(ParseError::Truncated {
                expected: 9,
                got: 2
            })
        );
        assert!(matches!(
            Message::parse(b"SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(ParseError::ContentLength(_))
        ));
        assert_eq!(
            Message::parse(&vec![b'a'; MAX_MESSAGE + 1]),
            Err(ParseError::TooLarge)
        );
        assert_eq!(
            frame(&vec![b'a'; MAX_MESSAGE + 1]),
            Err(ParseError::TooLarge)
        );
    }
}
