//! Factory simulator and end-to-end harness.
