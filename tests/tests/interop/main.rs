//! Interoperability with implementations that share no code with ours: an independent
//! verifier of roots and targets (Python, written from the format reference), and the real
//! fioctl client against the simulator and with the signer's keys tarballs.

mod fioctl_conformance;
mod fioctl_support;
mod fioctl_tarballs;
mod independent_verifier;
