//! `ews-presence generate completions SHELL | man`: made from the command line's own
//! definition.

use std::io;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: Generate,
}

#[derive(Debug, Subcommand)]
enum Generate {
    /// Completions for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The man page, ews-presence(1), in roff.
    Man,
}

/// Prints completions or the man page to standard output.
pub fn run(args: Args) -> ExitCode {
    use clap::CommandFactory;
    let mut command = super::Cli::command();
    let mut out = io::stdout().lock();
    let written = match args.what {
        Generate::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "ews-presence", &mut out);
            Ok(())
        }
        Generate::Man => clap_mangen::Man::new(command).render(&mut out),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ews-presence generate: {e}");
            ExitCode::from(1)
        }
    }
}
