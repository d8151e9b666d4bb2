//! The courier library: one module per command group.
