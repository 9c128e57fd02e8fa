//! A bearer token kept in a file that an external agent renews: read at first use,
//! re-read whenever the file's modification time or length changes, and on demand
//! after a 401 (the file may have been rewritten within the same second).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use hyper::header::HeaderValue;

/// Largest token file read (tokens are a few kilobytes).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bearer token file {path}: {problem}")]
pub struct TokenError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

#[derive(Debug)]
struct Loaded {
    stamp: (Option<SystemTime>, u64),
    header: HeaderValue,
}

/// The token file and its last reading.
#[derive(Debug)]
pub struct BearerToken {
    path: PathBuf,
    loaded: Mutex<Option<Loaded>>,
}

impl BearerToken {
    /// A token to be read from `path`.
    pub fn new(path: &Path) -> BearerToken {
        BearerToken {
            path: path.to_owned(),
            loaded: Mutex::new(None),
        }
    }

    fn error(&self, problem: impl Into<String>) -> TokenError {
        TokenError {
            path: self.path.display().to_string(),
            problem: problem.into(),
        }
    }

    fn stamp(&self) -> Result<(Option<SystemTime>, u64), TokenError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| self.error(e.to_string()))?;
        Ok((meta.modified().ok(), meta.len()))
    }

    /// The `Authorization` value, re-reading the file when it changed.
    pub fn header(&self) -> Result<HeaderValue, TokenError> {
        let stamp = self.stamp()?;
        let mut loaded = common::sync::lock(&self.loaded);
        if let Some(l) = loaded.as_ref()
            && l.stamp == stamp
        {
            return Ok(l.header.clone());
        }
        let header = self.read(stamp.1)?;
        *loaded = Some(Loaded {
            stamp,
            header: header.clone(),
        });
        Ok(header)
    }

    /// Reads the file again whatever its stamp says; true when the token changed.
    pub fn reload(&self) -> Result<bool, TokenError> {
        let stamp = self.stamp()?;
        let header = self.read(stamp.1)?;
        let mut loaded = common::sync::lock(&self.loaded);
        let changed = loaded.as_ref().is_none_or(|l| l.header != header);
        *loaded = Some(Loaded { stamp, header });
        Ok(changed)
    }

    fn read(&self, len: u64) -> Result<HeaderValue, TokenError> {
        if len > MAX_TOKEN_BYTES {
            return Err(self.error(format!("is {len} bytes, more than {MAX_TOKEN_BYTES}")));
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| self.error(e.to_string()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(self.error("is empty"));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| self.error("holds characters a header cannot carry"))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_file_and_reports_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("ews-bearer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let token = BearerToken::new(&path);
        let missing = token.header().unwrap_err();
        assert!(missing.to_string().contains("token"), "{missing}");
        std::fs::write(&path, "first\n").unwrap();
        assert_eq!(token.header().unwrap(), "Bearer first");
        // A rewrite of another length is seen at once.
        std::fs::write(&path, "second-token").unwrap();
        assert_eq!(token.header().unwrap(), "Bearer second-token");
        // Same length within the same mtime tick: only a reload sees it.
        std::fs::write(&path, "third--token").unwrap();
        assert!(token.reload().unwrap());
        assert_eq!(token.header().unwrap(), "Bearer third--token");
        assert!(!token.reload().unwrap(), "unchanged");
        std::fs::write(&path, "  \n").unwrap();
        assert!(token.header().unwrap_err().problem.contains("empty"));
        std::fs::write(&path, "bad\u{7f}token").unwrap();
        assert!(token.reload().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
