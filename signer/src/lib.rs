//! The signer library: one module per command group.
