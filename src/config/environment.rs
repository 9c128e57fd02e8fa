//! `EWS_PRESENCE_<SECTION>_<KEY>` overrides: applied to the parsed file, and an error
//! in a key they set names the variable.

use std::collections::HashMap;

use super::{ConfigError, error};

/// Parses an override value the way TOML would.
fn override_value(text: &str) -> toml::Value {
    if let Ok(b) = text.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = text.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    toml::Value::String(text.to_owned())
}

/// Applies `EWS_PRESENCE_<SECTION>_<KEY>` variables to the parsed table. Gateway and
/// SIP keys apply to every gateway and every SIP server; a key only one kind of
/// gateway takes (`password_file`, `client_id`) applies to the gateways of that kind.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: &HashMap<String, String>,
) -> Result<Vec<EnvOrigin>, ConfigError> {
    let mut origins = Vec::new();
    let mut names: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with("EWS_PRESENCE_"))
        .collect();
    names.sort();
    for name in names {
        let rest = &name["EWS_PRESENCE_".len()..];
        let (section, key) = ["API", "PRESENCE", "GATEWAY", "MAILBOXES", "STATE", "SIP"]
            .iter()
            .find_map(|s| {
                rest.strip_prefix(s)
                    .and_then(|k| k.strip_prefix('_'))
                    .map(|k| (s.to_ascii_lowercase(), k.to_ascii_lowercase()))
            })
            .ok_or_else(|| {
                error(
                    name.as_str(),
                    "unknown section; expected API, PRESENCE, GATEWAY, MAILBOXES, STATE or SIP",
                )
            })?;
        if key.is_empty() {
            return Err(error(name.as_str(), "no key after the section"));
        }
        let value = override_value(&env[name]);
        origins.push(EnvOrigin {
            section: section.clone(),
            key: key.clone(),
            variable: name.clone(),
        });
        match table.get_mut(&section) {
            Some(toml::Value::Array(gateways)) if section == "gateway" || section == "sip" => {
                for g in gateways.iter_mut() {
                    if let toml::Value::Table(t) = g
                        && super::graph::key_fits(t, &key)
                    {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
            Some(toml::Value::Table(t)) => {
                t.insert(key, value);
            }
            None if section != "gateway" && section != "sip" => {
                let mut t = toml::Table::new();
                t.insert(key, value);
                table.insert(section, toml::Value::Table(t));
            }
            _ => {
                return Err(error(
                    name.as_str(),
                    format!("there is no [{section}] to override"),
                ));
            }
        }
    }
    Ok(origins)
}

/// A key set by an environment variable, so that an error in it names the variable.
#[derive(Debug)]
pub(super) struct EnvOrigin {
    section: String,
    key: String,
    variable: String,
}

impl EnvOrigin {
    /// Whether the configuration key `path` (`presence.debounce_ms`,
    /// `gateway[0].max_connections`) is this one.
    fn sets(&self, path: &str) -> bool {
        let Some((section, key)) = path.split_once('.') else {
            return false;
        };
        let section = section.split('[').next().unwrap_or(section);
        section == self.section && key == self.key
    }
}

/// Names the variable an error came from, when a key it set is at fault.
pub(super) fn blame_environment(mut e: ConfigError, origins: &[EnvOrigin]) -> ConfigError {
    let by_key = origins.iter().find(|o| o.sets(&e.key));
    let in_message = origins.iter().find(|o| {
        e.message.contains(&format!("{}.{}", o.section, o.key))
            || e.message.contains(&format!("`{}`", o.key))
    });
    if let Some(origin) = by_key.or(in_message) {
        e.message = format!(
            "{} (set by the environment for {}.{})",
            e.message, origin.section, origin.key
        );
        e.key = origin.variable.clone();
    }
    e
}
