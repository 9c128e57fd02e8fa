//! JSON string escaping for the hand-written JSON of the API and `decode`.

/// Appends `value` as a JSON string, escaped as `serde_json` escapes it; copied as is
/// when nothing needs escaping (addresses, ids, most messages).
pub fn push_json_str(out: &mut String, value: &str) {
    // Looked at 32 bytes at a time without stopping early, which the compiler turns
    // into vector compares: ids of 150 bytes are the common case in `decode`.
    let plain = value.as_bytes().chunks(32).all(|chunk| {
        !chunk.iter().fold(false, |escape, &b| {
            escape | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    });
    if plain {
        out.push('"');
        out.push_str(value);
        out.push('"');
        return;
    }
    // serde_json's escaping of a plain string cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for value in [
            "a@example.test",
            "",
            "a \"quoted\" \\ line\nbreak\u{1}",
            "Grüße ✓",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, value);
            assert_eq!(out, serde_json::to_string(value).unwrap());
        }
    }
}
