//! Hostile input, faults and crashes through the real binaries (issue 10): tampering, server faults, a full disk,
//! secret hygiene and crash injection, the authority of every signed change (issue 17), and files mixed up
//! (issue 19), one module per threat.

/// The courier helpers of the API suite (the fault suite drives the same workflows).
#[path = "../api/courier_support/mod.rs"]
mod courier_support;

mod hostile_authority;
mod hostile_crash;
mod hostile_disk;
mod hostile_faults;
mod hostile_push_anywhere;
mod hostile_secrets;
mod hostile_tamper;
mod hostile_wrong_files;
