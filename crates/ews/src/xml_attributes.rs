//! Lexes the attributes of one start tag straight from its text, as
//! `BytesStart::attributes_raw` gives it (everything after the element's name).
//! quick-xml's attribute iterator looks at each byte in turn; here the value, the long
//! part (an Exchange item id is some 150 bytes, and a GetStreamingEvents envelope
//! carries two per event), is found with one `memchr`.
//!
//! What XML requires of the syntax is checked: white space before each attribute, a
//! name, `=` with optional white space around it, a value in matching single or double
//! quotes, and no attribute given twice. Values are returned raw: normalising them
//! (references, white space) is the caller's job.

use memchr::memchr;

use super::decode_error::{Problem, shorten};

/// One attribute of a start tag, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'s> {
    /// The qualified name (`Id`, `xmlns:t`).
    pub key: &'s str,
    /// The value between the quotes, not normalised.
    pub value: &'s str,
}

fn syntax(what: String) -> Problem {
    Problem::Syntax(what)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Hands each attribute of `raw` to `each` in order; stops at the first error, its or
/// a syntax error. `seen` (cleared here) holds the names met so far as ranges of
/// `raw`, to find duplicates: one allocation serves every tag of a document.
pub fn lex<'s>(
    raw: &'s str,
    seen: &mut Vec<(usize, usize)>,
    mut each: impl FnMut(RawAttribute<'s>) -> Result<(), Problem>,
) -> Result<(), Problem> {
    seen.clear();
    let bytes = raw.as_bytes();
    let mut pos = 0;
    loop {
        let name_start = match bytes[pos..].iter().position(|&b| !is_space(b)) {
            Some(skip) => pos + skip,
            None => return Ok(()),
        };
        if name_start == pos && pos > 0 {
            return Err(syntax(format!(
                "attributes must be separated by white space at {:?}",
                shorten(&raw[pos..])
            )));
        }
        let name_end = bytes[name_start..]
            .iter()
            .position(|&b| b == b'=' || is_space(b))
            .map_or(bytes.len(), |n| name_start + n);
        let key = &raw[name_start..name_end];
        if key.is_empty() || key.bytes().any(|b| b == b'"' || b == b'\'') {
            return Err(syntax(format!("invalid attribute name {:?}", shorten(key))));
        }
        let eq = bytes[name_end..]
            .iter()
            .position(|&b| !is_space(b))
            .map(|n| name_end + n)
            .filter(|&at| bytes[at] == b'=')
            .ok_or_else(|| syntax(format!("attribute {:?} has no value", shorten(key))))?;
        let quote_at = bytes[eq + 1..]
            .iter()
            .position(|&b| !is_space(b))
            .map(|n| eq + 1 + n)
            .filter(|&at| matches!(bytes[at], b'"' | b'\''))
            .ok_or_else(|| {
                syntax(format!(
                    "the value of attribute {:?} is not quoted",
                    shorten(key)
                ))
            })?;
        let quote = bytes[quote_at];
        let value_start = quote_at + 1;
        let value_end = memchr(quote, &bytes[value_start..])
            .map(|n| value_start + n)
            .ok_or_else(|| {
                syntax(format!(
                    "the value of attribute {:?} is not closed",
                    shorten(key)
                ))
            })?;
        if seen.iter().any(|&(from, to)| &raw[from..to] == key) {
            return Err(syntax(format!(
                "attribute {:?} is given twice",
                shorten(key)
            )));
        }
        seen.push((name_start, name_end));
        each(RawAttribute {
            key,
            value: &raw[value_start..value_end],
        })?;
        pos = value_end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(raw: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        lex(raw, &mut seen, |a| {
            out.push((a.key.to_owned(), a.value.to_owned()));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn reads_quoted_values_with_white_space_around_the_equals_sign() {
        assert_eq!(
            all(" Id=\"AAMk=\" ChangeKey = 'Dw\"A'\n\txmlns:t=\"urn:x\" ").unwrap(),
            [
                ("Id".into(), "AAMk=".into()),
                ("ChangeKey".into(), "Dw\"A".into()),
                ("xmlns:t".into(), "urn:x".into()),
            ]
        );
        assert_eq!(all("").unwrap(), []);
        assert_eq!(all("  ").unwrap(), []);
        assert_eq!(all(" Id=\"\"").unwrap(), [("Id".into(), String::new())]);
    }

    #[test]
    fn refuses_what_xml_does_not_allow() {
        for (raw, says) in [
            (" Id", "has no value"),
            (" Id x=\"1\"", "has no value"),
            (" Id=1", "not quoted"),
            (" Id=\"1", "not closed"),
            (" Id='1\"", "not closed"),
            (" Id=\"1\"x=\"2\"", "separated by white space"),
            (" Id=\"1\" Id=\"2\"", "given twice"),
            (" \"Id\"=\"1\"", "invalid attribute name"),
            (" =\"1\"", "invalid attribute name"),
        ] {
            let error = all(raw).unwrap_err();
            assert!(error.contains(says), "{raw:?}: {error}");
        }
    }

    #[test]
    fn the_same_local_name_under_two_prefixes_is_two_attributes() {
        assert_eq!(all(" a:Id=\"1\" b:Id=\"2\"").unwrap().len(), 2);
    }
}
