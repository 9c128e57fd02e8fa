//! The `ews-presence` binary: parses arguments, runs a subcommand, maps errors to exit
//! codes. Everything else lives in the library.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ews_presence::cli::decode::{self, DecodeCommandError};
use ews_presence::ews::stream::DEFAULT_MAX_FRAME;

/// Turns Microsoft Exchange calendars into live presence over EWS streaming
/// subscriptions.
#[derive(Debug, Parser)]
#[command(name = "ews-presence", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a captured EWS response body (file or stdin) into JSON lines, one per
    /// envelope. Exits 1 at the first undecodable byte, after printing the frames
    /// before it.
    Decode {
        /// The captured body; standard input when absent.
        file: Option<PathBuf>,
        /// Largest envelope accepted, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_FRAME)]
        max_frame_bytes: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode {
            file,
            max_frame_bytes,
        } => {
            let stdout = BufWriter::new(io::stdout().lock());
            let result = match &file {
                Some(path) => match File::open(path) {
                    Ok(f) => decode::run(f, stdout, max_frame_bytes),
                    Err(e) => {
                        eprintln!("ews-presence decode: cannot open {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                },
                None => decode::run(io::stdin().lock(), stdout, max_frame_bytes),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(DecodeCommandError::Decode(e)) => {
                    eprintln!("ews-presence decode: {e}");
                    ExitCode::from(1)
                }
                Err(DecodeCommandError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    ExitCode::SUCCESS
                }
                Err(DecodeCommandError::Io(e)) => {
                    eprintln!("ews-presence decode: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
