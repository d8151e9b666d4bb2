//! The `courier` binary: the online half of the offline TUF key workflow.
//! All logic lives in the library; see `courier --help`.

fn main() {
    std::process::exit(courier::main_with_args(std::env::args_os()));
}
