//! `signer`: the offline half of the offline TUF toolkit (see the library documentation).
//! Parses the command line, runs it, and on failure prints the one-line error and exits
//! with its documented code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    shared::cli::tune_allocator();
    let cli = match signer::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match signer::habits::explain(&e) {
            Some(advice) => {
                eprintln!("error: {advice}");
                return ExitCode::from(signer::error::EXIT_USAGE);
            }
            None => e.exit(),
        },
    };
    match signer::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", signer::error::one_line(&e));
            ExitCode::from(e.exit_code())
        }
    }
}
