//! Interoperability with implementations that share no code with ours: an independent
//! verifier of roots and targets (Python, written from the format reference).

mod fioctl_conformance;
mod fioctl_tarballs;
mod independent_verifier;
