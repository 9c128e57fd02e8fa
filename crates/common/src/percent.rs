//! Percent-encoding and -decoding of URL path segments, query values and
//! `application/x-www-form-urlencoded` fields.

use std::borrow::Cow;

/// Decodes `%XX` escapes in a URL path segment or query value; invalid escapes are
/// kept as written and invalid UTF-8 is replaced. Borrows when there is no `%`.
pub fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Encodes `s` for a URL path segment, query value or form field: every byte but
/// the unreserved ones (RFC 3986 §2.3) as `%XX`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space).
pub fn decode_form(s: &str) -> String {
    decode(&s.replace('+', " ")).into_owned()
}

/// The fields of an `application/x-www-form-urlencoded` body, decoded, in order.
pub fn form_fields(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_form(k), decode_form(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_a_form_or_segment_cannot_hold() {
        assert_eq!(encode("user1@example.test"), "user1%40example.test");
        assert_eq!(encode("a b/c+d"), "a%20b%2Fc%2Bd");
        let body = format!(
            "scope={}&x=a+b",
            encode("https://graph.microsoft.com/.default")
        );
        assert_eq!(
            form_fields(&body),
            [
                (
                    "scope".to_owned(),
                    "https://graph.microsoft.com/.default".to_owned()
                ),
                ("x".to_owned(), "a b".to_owned())
            ]
        );
    }

    #[test]
    fn decodes_escapes_and_keeps_broken_ones() {
        assert_eq!(decode("user1%40example.test"), "user1@example.test");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert!(matches!(decode("a@b.test"), Cow::Borrowed("a@b.test")));
    }
}
