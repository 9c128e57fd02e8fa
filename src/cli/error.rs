//! What the commands that do their own work (demo, simulate, discover) can fail with,
//! besides what they report: one type, each variant saying what and where. The command
//! prints it once, prefixed with its name, and exits with its code.

use std::path::PathBuf;

use ews_presence::app::StartError;
use ews_presence::config::ConfigError;

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An argument is missing or has a value the command cannot use.
    #[error("{0}")]
    Argument(String),
    /// A file could not be read, written or made.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was done: `read`, `write`, `create`.
        action: &'static str,
        /// Which file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds nothing usable.
    #[error("{what} {} is empty", path.display())]
    Empty {
        /// What the file is for.
        what: &'static str,
        /// Which file.
        path: PathBuf,
    },
    /// The demo's certificates could not be made.
    #[error("cannot make the demo certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// The simulator could not start.
    #[error(transparent)]
    Simulator(#[from] ews_sim::SimError),
    /// The configuration the command made or read is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The daemon could not start.
    #[error(transparent)]
    Daemon(#[from] StartError),
    /// A gateway's TLS settings cannot be used.
    #[error("gateway {gateway}: {source}")]
    Tls {
        /// The gateway's name.
        gateway: String,
        /// Why.
        source: ews::transport::TlsConfigError,
    },
    /// Standard output could not be written.
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
}

impl CommandError {
    /// A file operation that failed.
    pub fn file(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CommandError::File {
            action,
            path: path.into(),
            source,
        }
    }
}
