//! Values every section reads the same way: numbers within their documented range,
//! paths relative to the configuration file, web URLs, secrets from files, and
//! availabilities.

use std::path::{Path, PathBuf};

use hyper::Uri;

use super::{ConfigError, error};
use crate::presence::timeline::Availability;

/// A numeric setting within its documented range.
pub(super) fn ranged(
    key: &str,
    value: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(&v) => Ok(v),
        Some(v) => Err(error(
            key,
            format!(
                "{v} is out of range: from {} to {} {unit}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// `path` as given when absolute, else relative to `base` (the configuration file's
/// directory).
pub(super) fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// `path` resolved against `base`, which must be an existing file (a CA bundle).
pub(super) fn existing_file(key: &str, base: &Path, path: &Path) -> Result<PathBuf, ConfigError> {
    let path = resolve(base, path);
    if path.is_file() {
        Ok(path)
    } else {
        Err(error(key, format!("{} does not exist", path.display())))
    }
}

/// An http(s) URL with a host and no credentials in it (the error never quotes a
/// URL that may carry a password).
pub(super) fn web_url(key: &str, text: &str) -> Result<Uri, ConfigError> {
    let url: Uri = text.parse().map_err(|_| error(key, "is not a URL"))?;
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(error(
            key,
            "must not carry credentials (user:password@): use username and password_file",
        ));
    }
    match (url.scheme_str(), url.host()) {
        (Some("https" | "http"), Some(_)) => Ok(url),
        _ => Err(error(
            key,
            format!("{text:?} must be an http:// or https:// URL with a host"),
        )),
    }
}

/// The first line of the secret file `path`, which must not be empty.
pub(super) fn read_secret(key: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
    let secret = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    if secret.is_empty() {
        return Err(error(key, format!("{} is empty", path.display())));
    }
    Ok(secret)
}

/// An availability name, or `default`.
pub(super) fn availability(
    key: &str,
    value: Option<String>,
    default: Availability,
) -> Result<Availability, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => Availability::parse(&v).ok_or_else(|| {
            error(
                key,
                format!("{v:?} is not available, in-a-meeting, away or unknown"),
            )
        }),
    }
}
