//! # shared — the sans-network core of the offline TUF toolkit
//!
//! Everything both halves (the online `courier` and the air-gapped `signer`) agree on lives
//! here, as pure functions over bytes and values:
//!
//! * [`canonical`] — canonical JSON, byte-identical to what fioctl and the Foundries server
//!   sign over;
//! * [`keys`] — ED25519 and RSA-4096 keys in fioctl's key JSON, keyids, signatures;
//! * [`metadata`] — the TUF `root.json`/`targets.json` model as Foundries uses it;
//! * [`verify`] — signatures, thresholds, root chains, expiry, CI/production pairs;
//! * [`transform`] — fioctl's root transforms as pure functions (rotate, add, remove, threshold, finalize, sign);
//! * [`changes`] — what a draft root changes, as data (for review);
//! * [`authority`] — the elementary changes of a draft pair and who authorized each (the signer's decision, pure);
//! * [`filekind`] — what kind of file a path holds (bundle, keys tarball, root.json, …), for "wrong file" messages;
//! * [`fsutil`] — atomic file replacement (temp file, fsync, rename, directory fsync), leftover detection;
//! * [`archive`] — hardened tar/tar.gz reading and deterministic writing;
//! * [`tarball`] — offline keys tarballs in fioctl's layout, key search like `findTufSigners`;
//! * [`bundle`] — transfer bundles (request/response), fingerprints, signer steps, combining;
//! * [`attestation`] — signer identities and the signatures over response steps;
//! * [`transaction`] — the factory's root updates transaction: status, wire form, roots parsed under fioctl's rules, the derived production root;
//! * [`status`] — the missing-signature checklist of a transaction (ceremony aid);
//! * [`expiry`] — the expiry radar: days left, horizons, RFC 5545 reminders (ceremony aid);
//! * [`shamir`] — Shamir secret sharing over GF(2⁸) (split backups of the root key);
//! * `test_support` (cargo feature `test-support`, for tests only) — deterministic keys, a
//!   builder of roots and targets, and a runner of named test cases;
//!
//! The crate never opens a socket. File I/O is limited to the modules that own a file format
//! (keys tarballs, transfer bundles) and is always atomic.

pub mod archive;
pub mod attestation;
pub mod authority;
pub mod bundle;
pub mod canonical;
pub mod changes;
#[cfg(feature = "cli")]
pub mod cli;
pub mod expiry;
pub mod filekind;
pub mod fsutil;
pub mod keys;
pub mod metadata;
pub mod shamir;
pub mod status;
pub mod tarball;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod transaction;
pub mod transform;
pub mod verify;
