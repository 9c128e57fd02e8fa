//! `ews-presence decode [FILE]`: a captured EWS response body as JSON lines (the work
//! is the library's [`ews_presence::decode`]); exit codes and stdout handling here.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use ews::stream::DEFAULT_MAX_FRAME;
use ews_presence::decode::{self, DecodeCommandError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The captured body; standard input when absent.
    file: Option<PathBuf>,
    /// Largest envelope accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME)]
    max_frame_bytes: usize,
}

/// Decodes to standard output: 0, 1 at an undecodable byte, 2 when the input cannot
/// be read.
pub fn run(args: Args) -> ExitCode {
    let Args {
        file,
        max_frame_bytes,
    } = args;
    // Large writes: a capture prints lines of 4 to 10 KB, which an 8 KB buffer
    // would write one system call each.
    decode::widen_pipe(io::stdout());
    let stdout = BufWriter::with_capacity(decode::WRITE_BUFFER, io::stdout().lock());
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
