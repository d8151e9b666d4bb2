//! Interoperability with implementations that share no code with ours: an independent
//! verifier of roots and targets (Python, written from the format reference).

mod independent_verifier;
