//! The simulator's HTTP API and the courier against it (one test binary: each module was a
//! test file of its own; they share the courier helpers and one link).

mod courier_support;

mod courier_basic;
mod courier_exit_codes;
mod courier_push;
mod courier_waves;
mod sim_api;
