//! `[state]`: where what the daemon keeps across restarts lives (the users' opt-out
//! choices).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::resolve;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) dir: Option<PathBuf>,
}

/// `[state] dir` when set; else systemd's `StateDirectory=` (`$STATE_DIRECTORY`, the
/// first of several); else `state` beside the configuration file.
pub(super) fn state_dir(raw: RawState, base: &Path, systemd_state: Option<PathBuf>) -> PathBuf {
    match (raw.dir, systemd_state) {
        (Some(dir), _) => resolve(base, &dir),
        // systemd may list several, separated by colons: ours is the first.
        (None, Some(dirs)) => dirs
            .to_str()
            .and_then(|d| d.split(':').next())
            .map_or(dirs.clone(), PathBuf::from),
        (None, None) => base.join("state"),
    }
}
