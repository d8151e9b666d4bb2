//! Factory simulator and end-to-end harness.
//!
//! * [`sim`] — `factory-sim`, a local stand-in for the Foundries.io factory API (root-update
//!   transactions, production targets, waves) used by the end-to-end tests, the demo and the
//!   benchmarks;
//! * [`harness`] — the end-to-end harness: machines, USB stick, real binaries, device checks.

pub mod harness;
pub mod sim;
