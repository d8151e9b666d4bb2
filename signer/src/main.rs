//! `signer`: the offline half of the offline TUF toolkit (see the library documentation).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match signer::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match signer::habits::explain(&e) {
            Some(advice) => {
                eprintln!("error: {advice}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    match signer::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e
                .downcast_ref::<signer::error::SignerError>()
                .map_or(1, signer::error::SignerError::exit_code);
            eprintln!("error: {}", signer::error::one_line(&e));
            ExitCode::from(code)
        }
    }
}
