//! What the tests of every crate share (cargo feature `test-support`, off by default): keys
//! made deterministically from a seed, a builder of root and targets documents, and a runner
//! of named test cases.
//!
//! * [`key`] and [`FactoryKeys`] — Ed25519 keys from one seed byte, the same in every run;
//! * [`RootBuilder`] — a `root.json` (CI or production): keys and thresholds per role,
//!   version, expiry, key owners, changelog; unsigned or signed;
//! * [`TargetsBuilder`] — a production or wave `targets.json`, signed by the keys given;
//! * [`cases`] — tables of named cases where a failing case does not hide the others.
//!
//! The unit tests of `shared` use this module directly; the other crates (and `shared`'s own
//! integration tests) turn the feature on in their `[dev-dependencies]`, so no shipped build
//! of the courier or the signer contains it.

pub mod cases;
mod roots;
mod targets;

pub use roots::RootBuilder;
pub use targets::TargetsBuilder;

use crate::keys::PrivateKey;
use crate::metadata::Timestamp;

/// The Ed25519 key whose 32-byte seed is `seed` repeated: the same key in every run.
pub fn key(seed: u8) -> PrivateKey {
    PrivateKey::ed25519_from_seed(&[seed; 32])
}

/// A fixed time of a fixture, from its RFC 3339 text (`2027-01-01T00:00:00Z`).
///
/// # Panics
/// When `text` is not such a time (a mistake in the test itself).
pub fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or_else(|e| panic!("fixture time {text:?}: {e}"))
}

/// The keys of a factory fresh from Foundries: one key per role, from consecutive seeds
/// (`seed` for the root key, then targets, snapshot and timestamp, wrapping past 255).
pub struct FactoryKeys {
    /// The initial root key (held by the server until the first-time rotation).
    pub root: PrivateKey,
    /// The online targets key.
    pub targets: PrivateKey,
    /// The online snapshot key.
    pub snapshot: PrivateKey,
    /// The online timestamp key.
    pub timestamp: PrivateKey,
}

impl FactoryKeys {
    /// The four keys from `seed`, `seed + 1`, `seed + 2` and `seed + 3`.
    pub fn from_seed(seed: u8) -> FactoryKeys {
        FactoryKeys {
            root: key(seed),
            targets: key(seed.wrapping_add(1)),
            snapshot: key(seed.wrapping_add(2)),
            timestamp: key(seed.wrapping_add(3)),
        }
    }

    /// Root version 1 as the factory starts: each role has its own key, threshold 1
    /// (expiry and signatures still to choose).
    pub fn root_v1(&self) -> RootBuilder {
        RootBuilder::new(1)
            .role(crate::metadata::Role::Root, &[&self.root], 1)
            .role(crate::metadata::Role::Targets, &[&self.targets], 1)
            .role(crate::metadata::Role::Snapshot, &[&self.snapshot], 1)
            .role(crate::metadata::Role::Timestamp, &[&self.timestamp], 1)
    }
}
