//! Factory simulator and end-to-end harness.
//!
//! * [`sim`] — `factory-sim`, a local stand-in for the Foundries.io factory API (root-update
//!   transactions, production targets, waves) used by the end-to-end tests, the demo and the
//!   benchmarks;
//! * [`harness`] — the end-to-end harness: machines, USB stick, real binaries, device checks.

pub mod harness;
pub mod sim;

/// Prints a line of a test's findings (e.g. how many cases a hostile suite tried) to the
/// real standard error, so that it shows in `cargo test` output even for passing tests,
/// whose `eprintln!` output the test harness captures.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
