//! `signer`: the offline half of the offline TUF toolkit (see the library documentation).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = signer::cli::Cli::parse();
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
