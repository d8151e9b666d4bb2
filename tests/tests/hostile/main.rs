//! Hostile input, faults and crashes through the real binaries (issue 10): tampering,
//! secret hygiene and crash injection, one module per threat.

mod hostile_crash;
mod hostile_secrets;
mod hostile_tamper;
