//! What this signer remembers of each factory: every root it signed or pinned, and the
//! production and wave targets it endorsed. It is how the signer recognises a **fork**.
//!
//! A root chain that verifies is not enough. The initial (first-root) key was held online,
//! so after the first-time rotation it must be assumed known to an attacker, who can sign a
//! *different* version 2 with it and an attacker key; such a chain verifies from a pin at
//! version 1. The signer that made the genuine version 2 knows its digest: a chain whose
//! root at version N differs from every root this signer signed or pinned at N is refused,
//! naming both digests. Where nothing is recorded (a fresh laptop) that is said, not hidden.
//!
//! Each remembered root keeps the key ids of its roles, so `signer keys list` can tell a key
//! this signer generated and signed into a root that was never applied (the server applied
//! another root at that version) from one not applied yet, or rotated out since.
//!
//! The endorsements (the version and builds of each production tag or wave the offline
//! targets key signed here) let `sign-prod-targets` show which builds are new since the
//! version this laptop last endorsed.
//!
//! `memory/<factory>.json` in the state directory (mode 0600), written atomically:
//!
//! ```json
//! {"factory": "acme",
//!  "roots": [{"document": "ci-root", "version": 2, "sha256": "…", "how": "signed-first-time", "at": "…",
//!             "roles": {"root": ["<keyid>", …], "targets": […], …}}],
//!  "endorsed": {"prod-targets/main": {"version": 12, "builds": ["41", "42"], "sha256": "…", "at": "…"}}}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use shared::fsutil;
use shared::keys::KeyId;
use shared::metadata::{SignedRoot, Timestamp};

use crate::error::{Result, SignerError};

/// Largest memory file accepted.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// How a root came to be remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// This signer signed it as the first-time rotation (with the initial root key).
    SignedFirstTime,
    /// This signer signed it.
    Signed,
    /// It was pinned (`trust init`) or the pin advanced over it (a verified, applied root).
    Pinned,
}

/// One remembered root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RememberedRoot {
    /// `ci-root` or `prod-root`.
    pub document: String,
    /// Its version.
    pub version: u64,
    /// SHA-256 (hex) of its canonical `signed` bytes.
    pub sha256: String,
    /// Signed or pinned.
    pub how: How,
    /// When.
    pub at: Timestamp,
    /// The key ids of each role of that root (`root`, `targets`, …): which keys the root
    /// made active, for `keys list` (a key generated here whose root was never applied).
    /// Empty in records written by earlier versions of the signer until the root is seen
    /// again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Vec<KeyId>>,
}

impl RememberedRoot {
    /// The roles of this root that list `keyid`.
    pub fn roles_of(&self, keyid: &KeyId) -> Vec<&str> {
        self.roles
            .iter()
            .filter(|(_, ids)| ids.contains(keyid))
            .map(|(role, _)| role.as_str())
            .collect()
    }

    /// Whether the root was applied on the server as far as this signer knows: the pin
    /// advanced over it (a root in a verified chain) or it was pinned.
    pub fn applied(&self) -> bool {
        self.how == How::Pinned
    }
}

/// What the offline targets key signed of one production tag or wave, last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endorsement {
    /// `signed.version` of the document.
    pub version: u64,
    /// Its build versions (`custom.version` of its targets).
    pub builds: BTreeSet<String>,
    /// SHA-256 (hex) of its canonical `signed` bytes.
    pub sha256: String,
    /// When.
    pub at: Timestamp,
}

/// The memory of one factory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactoryMemory {
    /// The factory.
    pub factory: String,
    /// Remembered roots, in the order they were recorded.
    #[serde(default)]
    pub roots: Vec<RememberedRoot>,
    /// Last endorsement per document (`prod-targets/<tag>`, `waves/<name>`).
    #[serde(default)]
    pub endorsed: BTreeMap<String, Endorsement>,
}

/// SHA-256 (hex) of a root's canonical `signed` bytes, the digest memory keeps.
pub fn root_digest(root: &SignedRoot) -> Result<String> {
    Ok(hex::encode(Sha256::digest(root.canonical_signed()?)))
}

/// The memory file of `factory`.
pub fn path(state: &Path, factory: &str) -> PathBuf {
    state.join("memory").join(format!("{factory}.json"))
}

/// The memory of the factory that remembers `root` (same version and digest), if any: how
/// the `keys` commands find the factory of a pin made without `--factory`.
pub fn of_root(state: &Path, root: &SignedRoot) -> Result<Option<FactoryMemory>> {
    let dir = state.join("memory");
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SignerError::io("cannot list", dir, e)),
    };
    let digest = root_digest(root)?;
    let mut factories: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    factories.sort();
    for factory in factories {
        let m = FactoryMemory::load(state, &factory)?;
        if m.roots.iter().any(|r| {
            r.document == "ci-root" && r.version == root.signed.version && r.sha256 == digest
        }) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

impl FactoryMemory {
    /// Reads the memory of `factory` (empty when none is recorded yet).
    pub fn load(state: &Path, factory: &str) -> Result<FactoryMemory> {
        let p = path(state, factory);
        if std::fs::symlink_metadata(&p).is_err() {
            return Ok(FactoryMemory {
                factory: factory.to_string(),
                ..FactoryMemory::default()
            });
        }
        let bytes = fsutil::read_limited(&p, MAX_FILE)?;
        let m: FactoryMemory = serde_json::from_slice(&bytes).map_err(|e| {
            SignerError::refused(format!(
                "{} is damaged ({e}); restore it from a backup of the state directory (it is how this signer recognises a forked root chain)",
                p.display()
            ))
        })?;
        if m.factory != factory {
            return Err(SignerError::refused(format!(
                "{} is the memory of factory {:?}, not {factory:?}; restore the right file",
                p.display(),
                m.factory
            )));
        }
        Ok(m)
    }

    /// Writes the memory atomically (the directory is created, mode 0700).
    pub fn save(&self, state: &Path) -> Result<()> {
        let p = path(state, &self.factory);
        if let Some(dir) = p.parent() {
            crate::state::create_private_dir(dir)?;
        }
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| SignerError::Other(format!("cannot encode the signer memory: {e}")))?;
        bytes.push(b'\n');
        fsutil::write_atomic(&p, &bytes, 0o600)?;
        Ok(())
    }

    /// Whether nothing is recorded yet.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Remembers `root` as `document` (if not already remembered that way).
    pub fn remember(
        &mut self,
        document: &str,
        root: &SignedRoot,
        how: How,
        at: Timestamp,
    ) -> Result<()> {
        let sha256 = root_digest(root)?;
        let version = root.signed.version;
        let roles: BTreeMap<String, Vec<KeyId>> = root
            .signed
            .roles
            .iter()
            .map(|(name, r)| (name.clone(), r.keyids.clone()))
            .collect();
        match self.roots.iter_mut().find(|r| {
            r.document == document && r.version == version && r.sha256 == sha256 && r.how == how
        }) {
            // A record of an older signer learns the root's keys.
            Some(known) => {
                if known.roles.is_empty() {
                    known.roles = roles;
                }
            }
            None => self.roots.push(RememberedRoot {
                document: document.to_string(),
                version,
                sha256,
                how,
                at,
                roles,
            }),
        }
        Ok(())
    }

    /// The remembered roots of `document` at `version`.
    pub fn at(&self, document: &str, version: u64) -> Vec<&RememberedRoot> {
        self.roots
            .iter()
            .filter(|r| r.document == document && r.version == version)
            .collect()
    }

    /// Refuses `root` (the bundle's `document` at its version) when this signer remembers
    /// other roots at that version and none of them is `root`: a fork.
    pub fn check(&self, document: &str, root: &SignedRoot, state: &Path) -> Result<()> {
        let known = self.at(document, root.signed.version);
        if known.is_empty() {
            return Ok(());
        }
        let digest = root_digest(root)?;
        if known.iter().any(|r| r.sha256 == digest) {
            return Ok(());
        }
        let first_time = known.iter().any(|r| r.how == How::SignedFirstTime);
        let theirs = known
            .iter()
            .map(|r| {
                format!(
                    "{} ({} on {})",
                    r.sha256,
                    match r.how {
                        How::SignedFirstTime => "signed here in the first-time rotation",
                        How::Signed => "signed here",
                        How::Pinned => "pinned here",
                    },
                    r.at
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(SignerError::Fork(format!(
            "FORK: the bundle's {document} v{} (sha256 {digest}) is not the {document} v{} this signer knows: {theirs}. {} Do not sign anything for this factory until the other key holders have compared the root digests; if you are sure the root you signed was cancelled and another key holder's root was applied in its place, remove its record from {} by hand",
            root.signed.version,
            root.signed.version,
            if first_time {
                "The initial root key signed that version and is known to the online side: someone made a second, different root with it."
            } else {
                "Two different roots of one version exist."
            },
            path(state, &self.factory).display()
        )))
    }

    /// The first-time rotation this signer signed for the factory, if any.
    pub fn first_time_rotation(&self) -> Option<&RememberedRoot> {
        self.roots
            .iter()
            .find(|r| r.how == How::SignedFirstTime && r.document == "ci-root")
    }

    /// Records an endorsement of `document` (`prod-targets/<tag>` or `waves/<name>`).
    pub fn endorse(&mut self, document: &str, e: Endorsement) {
        self.endorsed.insert(document.to_string(), e);
    }

    /// One line on what this memory can tell, for `inspect` and `trust show`.
    pub fn describe(&self) -> String {
        if self.roots.is_empty() {
            return format!(
                "this signer remembers no root of factory {} (a fresh laptop): a forked root chain cannot be recognised before the first root it signs or pins",
                self.factory
            );
        }
        let versions: BTreeSet<u64> = self.roots.iter().map(|r| r.version).collect();
        format!(
            "this signer remembers {} root(s) of factory {} (versions {}); a different root at one of these versions is refused as a fork",
            self.roots.len(),
            self.factory,
            versions
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn remembers_and_recognises_a_fork() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Factory::new();
        let mut m = FactoryMemory::load(dir.path(), "acme").unwrap();
        assert!(m.is_empty());
        assert!(m.describe().contains("fresh laptop"));
        m.remember("ci-root", &f.chain[0], How::Pinned, f.now)
            .unwrap();
        f.apply_first_time_rotation();
        let v2 = f.current().clone();
        m.remember("ci-root", &v2, How::SignedFirstTime, f.now)
            .unwrap();
        m.remember("ci-root", &v2, How::SignedFirstTime, f.now)
            .unwrap();
        assert_eq!(m.roots.len(), 2);
        m.save(dir.path()).unwrap();
        let back = FactoryMemory::load(dir.path(), "acme").unwrap();
        assert_eq!(back, m);
        back.check("ci-root", &v2, dir.path()).unwrap();
        // Another v2 (say, signed with the initial key and an attacker key).
        let mut other = v2.clone();
        other.signed.expires = other.signed.expires.plus_days(1);
        let err = back.check("ci-root", &other, dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("FORK") && text.contains("initial root key"),
            "{text}"
        );
        assert!(text.contains(&root_digest(&v2).unwrap()), "{text}");
        // Versions it knows nothing about pass; so does another document.
        let mut v3 = v2.clone();
        v3.signed.version = 3;
        back.check("ci-root", &v3, dir.path()).unwrap();
        back.check("prod-root", &other, dir.path()).unwrap();
        assert!(back.first_time_rotation().is_some());
        // A memory file of another factory is refused.
        std::fs::copy(
            path(dir.path(), "acme"),
            dir.path().join("memory/other.json"),
        )
        .unwrap();
        assert!(FactoryMemory::load(dir.path(), "other").is_err());
    }
}
