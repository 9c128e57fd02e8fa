//! Small helpers shared across modules that have nothing else in common.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, carrying on after a panic elsewhere poisoned it: every critical
/// section here leaves its data consistent, so the data is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Reads `lock`, carrying on after a poisoning panic as [`lock`] does.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    match lock.read() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Writes `lock`, carrying on after a poisoning panic as [`lock`] does.
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    match lock.write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

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

/// Decodes `%XX` escapes in a URL path segment or query value; invalid escapes are
/// kept as written and invalid UTF-8 is replaced. Borrows when there is no `%`.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
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

    #[test]
    fn decodes_escapes_and_keeps_broken_ones() {
        assert_eq!(percent_decode("user1%40example.test"), "user1@example.test");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert!(matches!(
            percent_decode("a@b.test"),
            Cow::Borrowed("a@b.test")
        ));
    }
}
