//! End-to-end workflows through the real `courier` and `signer` binaries against the
//! simulator, one module per workflow group (issue 8).

mod ceremony_aids;
mod e2e_backup;
mod e2e_expert;
mod e2e_pkcs11;
mod e2e_refusals;
mod e2e_root;
mod e2e_targets;
mod e2e_waves;
