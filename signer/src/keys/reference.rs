//! Which root a keys file is compared with, and which of its keys is *active*: the
//! reference root of `keys list`, `export-root`, `print`, `split` and `drill`.
//!
//! # Which root key is "active"
//!
//! The active root key is the one private key in the tarball whose public key is listed in
//! the `root` role of the factory's current root — fioctl's own key search. That root is the
//! one **pinned** on this machine ([`crate::trust::default_pin`]: the pin of `--factory`, or
//! the only pin), which advances whenever the signer sees a newer applied root in a bundle;
//! `--root ROOT.json` overrides it. The tarball alone cannot tell: fioctl keeps rotated-out
//! keys and writes every entry with the same time stamp (0). Without a pin and without
//! `--root` the commands that need the active key refuse, saying how to pin.
//!
//! A pin can lag: after a rotation is applied, the pin advances only when the signer sees
//! the next bundle. So when the tarball holds a root key that this signer signed into a
//! root **newer** than the pin (its memory, [`crate::memory`]), `export-root`, `print`,
//! `split` and `drill` refuse rather than pick the older key, and say how to advance the pin
//! ([`ReferenceRoot::check_not_lagging`]).
//!
//! Each key is also told apart by what this signer remembers of the factory's roots
//! ([`KeyState`]): active (and in which roles), rotated out (last in an applied root vN),
//! **never applied** (generated here and signed into a root vN by a response, while the root
//! the server applied as vN is another: the response was never pushed or was cancelled), or
//! not applied yet (signed into a root newer than the pin).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use shared::keys::{KeyId, PrivateKey};
use shared::metadata::{Role, SignedRoot};
use shared::tarball::KeysTarball;

use super::{tarball_err, KeysError};
use crate::error::SignerError;
use crate::memory::{self, FactoryMemory};
use crate::state::StateDir;
use crate::trust;

/// Which root a keys file is compared with: the pinned one, or `--root`.
#[derive(Debug, Clone, Default, Args)]
pub struct RootArgs {
    /// Compare with this root.json instead of the root pinned on this machine (e.g. the
    /// factory's current root from `courier show-root`).
    #[arg(long, value_name = "ROOT.json")]
    pub root: Option<PathBuf>,
    /// The factory whose pinned root to use (needed only when roots of several factories are
    /// pinned here).
    #[arg(long, value_name = "NAME", conflicts_with = "root")]
    pub factory: Option<String>,
}

/// The keys tarball whose active root key a command writes out (`export-root`, `print`),
/// and the root that names that key.
#[derive(Debug, Clone, Args)]
pub struct ActiveKeyArgs {
    /// The keys tarball holding the root key.
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The root whose root role names the active key, and its x-key-owners the creation
    /// date (default: the pinned root).
    #[command(flatten)]
    pub root: RootArgs,
}

/// The root a keys file is compared with.
#[derive(Debug, Clone)]
pub struct ReferenceRoot {
    /// Where it came from, for messages: the file given with `--root`, or `the root pinned
    /// in PIN FILE`.
    pub source: String,
    /// The root.
    pub root: SignedRoot,
    /// The pinned root's version when it is the pinned root (what this signer knows as
    /// applied); `None` for `--root`.
    pub pinned: Option<u64>,
    /// What this signer remembers of the root's factory (the roots it signed and saw
    /// applied), when it knows the root.
    pub memory: Option<FactoryMemory>,
}

impl ReferenceRoot {
    /// `--root FILE` when given, else the root pinned on this machine for `--factory` (or
    /// the only pin); with the memory of its factory.
    pub fn resolve(state: &Path, args: &RootArgs) -> Result<ReferenceRoot, KeysError> {
        let (source, root, pinned, factory) = match &args.root {
            Some(path) => (
                path.display().to_string(),
                trust::read_root_file(path)?,
                None,
                None,
            ),
            None => {
                let (path, pin) =
                    trust::default_pin(&StateDir::at(state), args.factory.as_deref())?;
                let version = pin.root.signed.version;
                (
                    format!("the root pinned in {}", path.display()),
                    pin.root,
                    Some(version),
                    pin.factory.or_else(|| args.factory.clone()),
                )
            }
        };
        let memory = match factory {
            Some(f) => Some(FactoryMemory::load(state, &f)?),
            None => memory::of_root(state, &root)?,
        };
        Ok(ReferenceRoot {
            source,
            root,
            pinned,
            memory,
        })
    }

    /// "the root pinned in FILE (v4, expires …)" or "FILE (v4, expires …)", for output.
    pub fn describe(&self) -> String {
        format!(
            "{} (v{}, expires {})",
            self.source, self.root.signed.version, self.root.signed.expires
        )
    }

    /// [`ReferenceRoot::resolve`], or `None` when nothing is pinned and no `--root` given.
    pub fn resolve_if_pinned(
        state: &Path,
        args: &RootArgs,
    ) -> Result<Option<ReferenceRoot>, KeysError> {
        match ReferenceRoot::resolve(state, args) {
            Ok(r) => Ok(Some(r)),
            Err(KeysError::Pin(e)) if matches!(*e, SignerError::NoPinForKeys { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The state of a key with id `keyid` against this root and this signer's memory.
    pub fn state_of(&self, keyid: &KeyId, public: &shared::keys::PublicKey) -> KeyState {
        let root = &self.root.signed;
        let listed = root.keys.get(keyid).is_some_and(|k| k.same_key(public));
        let roles: Vec<String> = root
            .roles
            .iter()
            .filter(|(_, rk)| listed && rk.keyids.contains(keyid))
            .map(|(name, _)| name.clone())
            .collect();
        if !roles.is_empty() {
            return KeyState::Active { roles };
        }
        let Some(memory) = &self.memory else {
            return KeyState::NotInRoot;
        };
        let ci_roots = || memory.roots.iter().filter(|r| r.document == "ci-root");
        let applied_in = ci_roots()
            .filter(|r| r.applied() && !r.roles_of(keyid).is_empty())
            .map(|r| r.version)
            .max();
        if let Some(version) = applied_in {
            return KeyState::RotatedOut {
                last_applied_version: version,
            };
        }
        let Some(signed) = ci_roots()
            .filter(|r| !r.applied() && !r.roles_of(keyid).is_empty())
            .max_by_key(|r| r.version)
        else {
            return KeyState::NotInRoot;
        };
        let created = signed.at.to_string();
        if signed.version > root.version {
            return KeyState::NotYetApplied {
                signed_version: signed.version,
                created,
            };
        }
        // The root applied at that version is known (with its keys) and does not list it.
        let applied_other =
            ci_roots().any(|r| r.applied() && r.version == signed.version && !r.roles.is_empty());
        if applied_other {
            KeyState::NeverApplied {
                signed_version: signed.version,
                created,
            }
        } else {
            KeyState::NotInRoot
        }
    }

    /// Refuses when the tarball at `path` holds a root key that this signer signed into a
    /// root newer than the pinned one and that the pinned root does not list: the pin may
    /// lag behind an applied rotation ([`KeysError::PinMayLag`]).
    pub fn check_not_lagging(&self, path: &Path, tarball: &KeysTarball) -> Result<(), KeysError> {
        let Some(pinned) = self.pinned else {
            return Ok(());
        };
        let root_keys = self.root.signed.role_keyids(Role::Root);
        for info in tarball.keys().map_err(tarball_err(path))? {
            if info.sec_file.is_none() || root_keys.contains(&info.keyid) {
                continue;
            }
            let newer = self.memory.iter().flat_map(|m| &m.roots).find(|r| {
                r.document == "ci-root"
                    && !r.applied()
                    && r.version > pinned
                    && r.roles_of(&info.keyid).contains(&Role::Root.as_str())
            });
            if let Some(r) = newer {
                return Err(KeysError::PinMayLag {
                    tarball: path.to_path_buf(),
                    pinned,
                    signed: r.version,
                    keyid: info.keyid,
                });
            }
        }
        Ok(())
    }
}

/// What a key of a tarball is to the factory, as `keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "state",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum KeyState {
    /// No root to compare with (nothing pinned, no `--root`).
    Unknown,
    /// Listed in the reference root, in these roles.
    Active {
        /// The roles that list it.
        roles: Vec<String>,
    },
    /// Not in the reference root, but in an applied root this signer saw.
    RotatedOut {
        /// The newest applied root that listed it.
        last_applied_version: u64,
    },
    /// Generated here and signed into root vN by a response of this signer; the server
    /// applied another root as vN (the response was never pushed, or was cancelled).
    NeverApplied {
        /// The version of the root it was signed into.
        signed_version: u64,
        /// When that root was signed here (the key was created in the same run).
        created: String,
    },
    /// Signed into a root newer than the reference root by a response of this signer, not
    /// seen applied yet.
    NotYetApplied {
        /// The version of the root it was signed into.
        signed_version: u64,
        /// When that root was signed here.
        created: String,
    },
    /// Not in the reference root, and nothing else known of it here.
    NotInRoot,
}

/// The active root key of a tarball (see the module documentation for the rule).
#[derive(Debug)]
pub struct ActiveRootKey {
    /// Its keyid.
    pub keyid: KeyId,
    /// The `.sec` entry.
    pub sec_file: String,
    /// The private key.
    pub key: PrivateKey,
    /// `created-at` from the root's `x-key-owners`, if a root was given and lists it.
    pub created_at: Option<String>,
}

/// Finds the active root private key of `tarball` (at `path`, for messages): the one the
/// reference root's root role lists. Refuses when the pinned root may lag behind a root
/// this signer signed ([`KeysError::PinMayLag`]).
pub fn active_root_key(
    path: &Path,
    tarball: &KeysTarball,
    reference: &ReferenceRoot,
) -> Result<ActiveRootKey, KeysError> {
    reference.check_not_lagging(path, tarball)?;
    let root = &reference.root.signed;
    let candidates = root.role_keyids(Role::Root).to_vec();
    let found = match tarball.find_one_signer(root, &candidates) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => {
            return Err(KeysError::NoActiveRootKey {
                tarball: path.to_path_buf(),
                root: reference.source.clone(),
                keyids: candidates,
            })
        }
        Err(e) => return Err(tarball_err(path)(e)),
    };
    let created_at = root
        .key_owners
        .as_ref()
        .and_then(|o| o.get(&found.keyid))
        .map(|o| o.created_at.to_string());
    Ok(ActiveRootKey {
        keyid: found.keyid,
        sec_file: found.sec_file,
        key: found.key,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::fixtures::{reference, rotated, tarball_with};

    #[test]
    fn the_reference_root_names_the_active_root_key() {
        let (f, t) = rotated();
        let p = Path::new("root.keys.tgz");
        let v2 = reference(&f.chain[1], true, None);
        let k = active_root_key(p, &t, &v2).unwrap();
        assert_eq!(&k.keyid, f.root_keys[0].keyid());
        // An older root names the older key: with --root that is what was asked for.
        let v1 = reference(&f.chain[0], false, None);
        assert_eq!(
            &active_root_key(p, &t, &v1).unwrap().keyid,
            f.first_root.keyid()
        );
        // A pin at v1 while this signer signed v2 with the new key may lag: refused.
        let mut m = FactoryMemory::default();
        m.remember("ci-root", &f.chain[1], memory::How::SignedFirstTime, f.now)
            .unwrap();
        let lagging = reference(&f.chain[0], true, Some(m));
        let err = active_root_key(p, &t, &lagging).unwrap_err();
        assert!(
            matches!(
                err,
                KeysError::PinMayLag {
                    signed: 2,
                    pinned: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("signer inspect BUNDLE"), "{err}");
        // A tarball without the key the root lists.
        let other = tarball_with(&[(Role::Root, [9; 32])]);
        let err = active_root_key(p, &other, &v2).unwrap_err();
        assert!(matches!(err, KeysError::NoActiveRootKey { .. }), "{err}");
    }

    #[test]
    fn key_states_from_the_pin_and_the_memory() {
        let (mut f, _) = rotated();
        let (first, k100) = (f.first_root.keyid().clone(), f.root_keys[0].keyid().clone());
        let public = |k: &PrivateKey| k.public_key().clone();
        let mut m = FactoryMemory::default();
        for r in &f.chain {
            m.remember("ci-root", r, memory::How::Pinned, f.now)
                .unwrap();
        }
        // This signer signed a v3 with key 7 that was never applied (v3 was applied with
        // key 8), and a v4 with key 9 that is not applied yet.
        let signed_with = |base: &SignedRoot, version: u64, k: &PrivateKey| {
            let mut r = base.clone();
            r.signed.version = version;
            r.signed
                .keys
                .insert(k.keyid().clone(), k.public_key().clone());
            r.signed.roles.get_mut("root").unwrap().keyids = vec![k.keyid().clone()];
            r
        };
        let (k7, k8, k9) = (
            PrivateKey::ed25519_from_seed(&[7; 32]),
            PrivateKey::ed25519_from_seed(&[8; 32]),
            PrivateKey::ed25519_from_seed(&[9; 32]),
        );
        let v2 = f.chain[1].clone();
        m.remember(
            "ci-root",
            &signed_with(&v2, 3, &k7),
            memory::How::Signed,
            f.now,
        )
        .unwrap();
        let applied_v3 = signed_with(&v2, 3, &k8);
        m.remember("ci-root", &applied_v3, memory::How::Pinned, f.now)
            .unwrap();
        m.remember(
            "ci-root",
            &signed_with(&applied_v3, 4, &k9),
            memory::How::Signed,
            f.now,
        )
        .unwrap();
        f.chain.push(applied_v3.clone());
        let r = reference(&applied_v3, true, Some(m));
        assert_eq!(
            r.state_of(k8.keyid(), &public(&k8)),
            KeyState::Active {
                roles: vec!["root".to_string()]
            }
        );
        assert_eq!(
            r.state_of(&k100, &public(&f.root_keys[0])),
            KeyState::RotatedOut {
                last_applied_version: 2
            }
        );
        assert_eq!(
            r.state_of(&first, &public(&f.first_root)),
            KeyState::RotatedOut {
                last_applied_version: 1
            }
        );
        assert!(matches!(
            r.state_of(k7.keyid(), &public(&k7)),
            KeyState::NeverApplied {
                signed_version: 3,
                ..
            }
        ));
        assert!(matches!(
            r.state_of(k9.keyid(), &public(&k9)),
            KeyState::NotYetApplied {
                signed_version: 4,
                ..
            }
        ));
        let stranger = PrivateKey::ed25519_from_seed(&[42; 32]);
        assert_eq!(
            r.state_of(stranger.keyid(), &public(&stranger)),
            KeyState::NotInRoot
        );
        // Without memory, only the root speaks.
        let bare = reference(&applied_v3, true, None);
        assert_eq!(bare.state_of(k7.keyid(), &public(&k7)), KeyState::NotInRoot);
    }
}
