//! What to write instead: TOML errors shortened to one line, with the known key closest
//! to an unknown one, the file a secret belongs in, or the quoting a Windows account
//! needs.

/// A TOML error on one line: location and message, without the source snippet.
pub(super) fn one_line(e: &toml::de::Error) -> String {
    let snippet = |l: &str| {
        l.starts_with('|')
            || l.split_once(" |")
                .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok())
    };
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !snippet(l))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Keys that hold a secret in other programs' configurations, and where ours reads it.
pub(super) const SECRET_KEYS: &[(&str, &str)] = &[
    ("password", "password_file"),
    ("token", "token_file"),
    ("tokens", "token_file"),
];

/// Adds what to do to a TOML error: the known key closest to an unknown one (or the
/// file a secret is read from), single quotes for a Windows `DOMAIN\user`.
pub(super) fn with_hint(message: String) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("escape") {
        return format!(
            "{message}; a backslash in \"double quotes\" starts an escape: write a Windows account in single quotes, username = 'CONTOSO\\svc-presence'"
        );
    }
    let Some(rest) = message.split("unknown field `").nth(1) else {
        return message;
    };
    let unknown = rest.split('`').next().unwrap_or_default();
    if let Some((_, file_key)) = SECRET_KEYS.iter().find(|(k, _)| *k == unknown) {
        return format!(
            "{message}; secrets are never written in the configuration: put it alone in a file readable only by the service and name that file with {file_key} = \"path\""
        );
    }
    let known: Vec<&str> = rest
        .split("expected one of ")
        .nth(1)
        .or_else(|| rest.split("expected ").nth(1))
        .unwrap_or_default()
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    let closest = known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .min()
        .filter(|(d, k)| *d <= (k.len() / 3).max(2));
    match closest {
        Some((_, key)) => format!("{message}; did you mean `{key}`?"),
        None => message,
    }
}

/// Levenshtein distance of two short keys.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
