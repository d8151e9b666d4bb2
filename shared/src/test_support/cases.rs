//! Tables of named test cases where one failing case does not hide the rest.
//!
//! A loop of assertions stops at the first case that fails, so a run tells about one
//! problem at a time and says nothing about the cases after it. [`run_cases`] runs every
//! case of a table (each under [`std::panic::catch_unwind`]), then fails once, naming every
//! failing case with its message:
//!
//! ```should_panic
//! use shared::test_support::cases::{run_cases, Case};
//!
//! let cases = [Case::new("one", 1), Case::new("two", 2), Case::new("three", 3)];
//! // Panics with "2 of 3 cases failed" naming "one" and "three"; "two" still ran.
//! run_cases("odd numbers", &cases, |_name, n| assert_eq!(n % 2, 0, "{n} is odd"));
//! ```
//!
//! The hostile suites of the `tests` crate and the signer's in-process tables use it; what a
//! case needs from its table (the world it runs in, counters) the check closure borrows. A
//! case should set up what it depends on itself, so that a failing case cannot make the
//! next one fail.

use std::panic::{self, AssertUnwindSafe};

/// One named case of a table: its name (what a failure report says) and its input.
#[derive(Clone, Debug)]
pub struct Case<T> {
    /// Names the case in the report: what is tried, in a few words.
    pub name: String,
    /// What the table's check is given.
    pub input: T,
}

impl<T> Case<T> {
    /// The case `name` with `input`.
    pub fn new(name: impl Into<String>, input: T) -> Case<T> {
        Case {
            name: name.into(),
            input,
        }
    }
}

/// A case that failed: its name and what its panic said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The case's name.
    pub name: String,
    /// The panic message (an assertion's text), or a note that it had none.
    pub message: String,
}

/// Runs `check` on every case in order, each under [`catch_unwind`](std::panic::catch_unwind),
/// and returns the cases that panicked. Nothing stops early.
pub fn try_cases<T>(cases: &[Case<T>], mut check: impl FnMut(&str, &T)) -> Vec<Failure> {
    let mut failures = Vec::new();
    for case in cases {
        let run = panic::catch_unwind(AssertUnwindSafe(|| check(&case.name, &case.input)));
        if let Err(payload) = run {
            failures.push(Failure {
                name: case.name.clone(),
                message: panic_message(payload.as_ref()),
            });
        }
    }
    failures
}

/// Runs `check` on every case of the table `suite` ([`try_cases`]) and panics at the end
/// if any failed, listing each failing case by name with its message. Returns the number of
/// cases run (all passed).
pub fn run_cases<T>(suite: &str, cases: &[Case<T>], check: impl FnMut(&str, &T)) -> usize {
    let mut tables = Tables::default();
    let n = tables.run(suite, cases, check);
    tables.finish();
    n
}

/// Several tables of one test run one after the other: [`Tables::finish`] fails once, naming
/// every failing case of every table, so a failure in the first table does not hide the
/// second.
#[derive(Debug, Default)]
pub struct Tables {
    reports: Vec<String>,
}

impl Tables {
    /// Runs the table `suite` ([`try_cases`]), keeping its failures for [`Tables::finish`];
    /// returns the number of cases run.
    pub fn run<T>(&mut self, suite: &str, cases: &[Case<T>], check: impl FnMut(&str, &T)) -> usize {
        let failures = try_cases(cases, check);
        if !failures.is_empty() {
            self.reports.push(report(suite, cases.len(), &failures));
        }
        cases.len()
    }

    /// Whether every case run so far passed.
    pub fn passed(&self) -> bool {
        self.reports.is_empty()
    }

    /// Panics with the report of every table that had failures; returns if none had.
    pub fn finish(mut self) {
        let reports = std::mem::take(&mut self.reports);
        if !reports.is_empty() {
            panic!("{}", reports.join("\n"));
        }
    }
}

/// Failures are never lost: tables dropped with failures and without [`Tables::finish`]
/// (a test that forgot it) fail the test all the same.
impl Drop for Tables {
    fn drop(&mut self) {
        if !self.reports.is_empty() && !std::thread::panicking() {
            let reports = std::mem::take(&mut self.reports);
            panic!("(tables not finished) {}", reports.join("\n"));
        }
    }
}

/// The report of a table with failures: a count, then one entry per failing case.
pub fn report(suite: &str, total: usize, failures: &[Failure]) -> String {
    let mut text = format!("{suite}: {} of {total} cases failed:", failures.len());
    for f in failures {
        text.push_str(&format!("\n- {}: {}", f.name, f.message));
    }
    text
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_case_is_named_and_the_later_cases_still_run() {
        let cases = [
            Case::new("first passes", 1),
            Case::new("second fails", 2),
            Case::new("third passes", 3),
            Case::new("fourth fails without a message", 4),
        ];
        let mut ran = Vec::new();
        let failures = try_cases(&cases, |name, n| {
            ran.push(name.to_string());
            match n {
                2 => panic!("two is wrong"),
                4 => std::panic::panic_any(4),
                _ => {}
            }
        });
        assert_eq!(ran.len(), 4, "every case ran: {ran:?}");
        assert_eq!(
            failures,
            vec![
                Failure {
                    name: "second fails".into(),
                    message: "two is wrong".into(),
                },
                Failure {
                    name: "fourth fails without a message".into(),
                    message: "(a panic without a message)".into(),
                },
            ]
        );
    }

    #[test]
    fn run_cases_fails_once_listing_every_failing_case() {
        let cases = [
            Case::new("alpha", "a"),
            Case::new("beta", "b"),
            Case::new("gamma", "c"),
        ];
        let mut after_beta = false;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_cases("letters", &cases, |_, s| {
                after_beta |= *s == "c";
                assert_ne!(*s, "a", "alpha refused");
                assert_ne!(*s, "b", "beta refused");
            })
        }));
        assert!(after_beta, "the case after the failures ran");
        let payload = outcome.expect_err("run_cases fails when a case failed");
        let text = panic_message(payload.as_ref());
        assert!(text.starts_with("letters: 2 of 3 cases failed:"), "{text}");
        assert!(
            text.contains("\n- alpha: ") && text.contains("alpha refused"),
            "{text}"
        );
        assert!(
            text.contains("\n- beta: ") && text.contains("beta refused"),
            "{text}"
        );
        assert!(!text.contains("gamma"), "{text}");
    }

    #[test]
    fn a_failure_in_one_table_does_not_hide_the_next() {
        let mut tables = Tables::default();
        tables.run("first table", &[Case::new("broken", ())], |_, _| {
            panic!("first")
        });
        assert!(!tables.passed());
        let mut second_ran = false;
        tables.run("second table", &[Case::new("also broken", ())], |_, _| {
            second_ran = true;
            panic!("second")
        });
        assert!(second_ran);
        let payload = std::panic::catch_unwind(AssertUnwindSafe(|| tables.finish()))
            .expect_err("finish fails");
        let text = panic_message(payload.as_ref());
        assert!(
            text.contains("first table: 1 of 1 cases failed:\n- broken: first"),
            "{text}"
        );
        assert!(
            text.contains("second table: 1 of 1 cases failed:\n- also broken: second"),
            "{text}"
        );
    }

    #[test]
    fn tables_dropped_with_failures_still_fail() {
        let outcome = std::panic::catch_unwind(|| {
            let mut tables = Tables::default();
            tables.run("forgotten", &[Case::new("lost", ())], |_, _| panic!("lost"));
        });
        let payload = outcome.expect_err("dropping unfinished failures fails");
        let text = panic_message(payload.as_ref());
        assert!(
            text.contains("forgotten: 1 of 1 cases failed:\n- lost: lost"),
            "{text}"
        );
    }

    #[test]
    fn a_table_that_passes_counts_its_cases() {
        let cases = [Case::new("x", ()), Case::new("y", ())];
        assert_eq!(run_cases("units", &cases, |_, _| {}), 2);
    }
}
