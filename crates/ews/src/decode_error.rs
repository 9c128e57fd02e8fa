//! Errors met while decoding what a server sent: the [`Problem`], where inside a frame
//! it was found ([`FrameError`]), and where in the whole stream ([`DecodeError`]).

use thiserror::Error;

/// Longest excerpt of offending input quoted in an error message.
const MAX_QUOTED: usize = 64;

/// What was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// One envelope grew past the configured size limit.
    #[error("frame exceeds the {limit}-byte limit")]
    FrameTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// DTDs (and with them entity declarations) are never accepted from a server.
    #[error("DOCTYPE or entity declaration is not allowed")]
    DoctypeNotAllowed,
    /// The bytes are not well-formed XML.
    #[error("malformed XML: {0}")]
    Syntax(String),
    /// The bytes are not UTF-8.
    #[error("input is not valid UTF-8")]
    InvalidUtf8,
    /// Non-whitespace text between envelopes.
    #[error("text outside any envelope")]
    TextOutsideEnvelope,
    /// A top-level element that is not a SOAP Envelope.
    #[error("unknown root element <{name}> (expected a SOAP Envelope)")]
    UnknownRoot {
        /// The element's name as written.
        name: String,
    },
    /// A SOAP body holding a response we do not read.
    #[error("unknown operation <{name}> in the SOAP body")]
    UnknownOperation {
        /// The element's name as written.
        name: String,
    },
    /// A required element is absent.
    #[error("missing <{element}> in <{parent}>")]
    MissingElement {
        /// Local name of the missing element.
        element: &'static str,
        /// Local name of the element it should be in.
        parent: String,
    },
    /// An element or attribute holds a value we cannot interpret.
    #[error("invalid {element} {value:?}: expected {expected}")]
    InvalidValue {
        /// Which element or attribute.
        element: &'static str,
        /// The value found (shortened).
        value: String,
        /// What would have been valid.
        expected: &'static str,
    },
    /// An entity reference other than the five predefined ones or a character reference.
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    /// Elements nested deeper than any EWS message needs.
    #[error("elements nested deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// The stream ended inside an envelope.
    #[error("stream ended inside a frame")]
    Truncated,
}

impl Problem {
    /// An [`Problem::InvalidValue`] quoting at most a short excerpt of `value`.
    pub fn invalid(element: &'static str, value: &str, expected: &'static str) -> Problem {
        Problem::InvalidValue {
            element,
            value: shorten(value),
            expected,
        }
    }
}

/// Cuts `s` to at most [`MAX_QUOTED`] characters for quoting in a message.
pub fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// A problem at a byte offset inside one envelope.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at byte {offset} of the envelope: {problem}")]
pub struct FrameError {
    /// Offset from the envelope's first byte.
    pub offset: usize,
    /// What was wrong.
    pub problem: Problem,
}

impl FrameError {
    /// A problem found at `offset`.
    pub fn at(offset: usize, problem: Problem) -> FrameError {
        FrameError { offset, problem }
    }
}

/// A problem located in a whole response body: which frame, which byte.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("frame {frame}, byte {offset}: {problem}")]
pub struct DecodeError {
    /// 0-based index of the frame (envelope) in the body.
    pub frame: u64,
    /// 0-based byte offset from the start of the body.
    pub offset: u64,
    /// What was wrong.
    pub problem: Problem,
}
