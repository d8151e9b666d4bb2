//! End-to-end workflows through the real `courier` and `signer` binaries against the
//! simulator, one module per workflow group (issue 8).

/// A hand-built factory and a signer machine without the simulator, shared with the signer's
/// own binary tests (`signer/tests/cli.rs`).
#[path = "../../../signer/tests/common/factory.rs"]
mod factory;
#[path = "../../../signer/tests/common/machine.rs"]
mod machine;

mod ceremony_aids;
mod cli_reference;
mod demo;
mod e2e_anywhere;
mod e2e_backup;
mod e2e_expert;
mod e2e_refusals;
mod e2e_root;
mod e2e_targets;
mod e2e_waves;
mod expiry_renewal;
mod json_output;
mod keys_at_rest;
mod pin_keeps_up;
mod pkcs11_e2e;
mod pkcs11_signer;
mod signer_habits;
