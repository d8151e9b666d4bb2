//! The end-to-end harness of the toolkit's tests, the demo and the benchmarks. The factory
//! they run against is [`factory_sim`] (its own package, `factory-sim/`), in-process or as
//! the `factory-sim` binary.
//!
//! * [`harness`] — the end-to-end harness: machines, USB stick, real binaries, device checks;
//! * [`tools`] — the tools outside the Rust toolchain that some tests need, and how they are found;
//! * [`softhsm`] — throwaway SoftHSM2 tokens for the PKCS#11 suites;
//! * [`tamper`] — bundles taken apart, edited and re-packed as an attacker would;
//! * [`snapshot`] — the exact text of user-facing messages (what a command printed) compared
//!   with a file of `tests/snapshots/`.

pub mod harness;
pub mod snapshot;
pub mod softhsm;
pub mod tamper;
pub mod tools;

/// The ids of the tools `build.rs` found when these tests were built (see [`tools`]).
pub fn tools_built_with() -> Vec<&'static str> {
    env!("OFFLINE_TUF_TOOLS_BUILT_WITH")
        .split(',')
        .filter(|s| !s.is_empty())
        .collect()
}

/// Prints a line of a test's findings (e.g. how many cases a hostile suite tried) to the
/// real standard error, so that it shows in `cargo test` output even for passing tests,
/// whose `eprintln!` output the test harness captures.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // One write: stderr is unbuffered, so `writeln!` would write each formatted piece on
        // its own and libtest's lines (on stdout, merged by scripts) could land between them.
        let line = format!("{}\n", format_args!($($arg)*));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

#[cfg(test)]
mod tools_tests {
    use super::tools;

    /// With `CI=true`, a missing tool fails the run (one line per tool) instead of leaving its
    /// suites ignored; elsewhere each missing tool is named once on the test output.
    #[test]
    fn ci_runs_have_every_tool() {
        if tools::is_ci() {
            let problems = tools::ci_problems(&super::tools_built_with());
            assert!(problems.is_empty(), "{}", problems.join("\n"));
        } else {
            for tool in tools::ALL {
                if let Err(why) = tool.locate() {
                    crate::report!("skipped suites: {}", tool.missing_line(&why));
                }
            }
        }
    }

    /// README's test section names every tool, its environment variable and how to install it.
    #[test]
    fn readme_lists_every_tool() {
        let readme = include_str!("../../README.md");
        for tool in tools::ALL {
            for what in [tool.name, tool.env, tool.install] {
                assert!(
                    readme.contains(what),
                    "README.md does not mention {what:?} of {}",
                    tool.name
                );
            }
        }
    }

    /// Pointing a tool's variable at a missing file hides it, whatever is installed.
    #[test]
    fn a_variable_pointing_nowhere_hides_a_tool() {
        for tool in tools::ALL {
            let err = tool
                .locate_at(Some("/nonexistent/offline-tuf-hidden".into()))
                .unwrap_err();
            assert!(err.contains("/nonexistent/offline-tuf-hidden"), "{err}");
            assert!(tool.missing_line(&err).contains(tool.env));
        }
    }
}
