//! The `courier` binary: the online half of the offline TUF key workflow.
//! All logic lives in the library; see `courier --help`.

fn main() {
    shared::cli::tune_allocator();
    std::process::exit(courier::main_with_args(std::env::args_os()));
}
