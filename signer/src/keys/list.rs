//! `signer keys list`: the keys of a keys file — key id, type, what the file name says it
//! is, whether the private key is there — each compared with the reference root and with
//! what this signer remembers of the factory ([`KeyState`]). Active keys are listed first,
//! then keys not applied yet or never applied, then rotated-out keys, newest first. Never
//! prints private key material.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use shared::keys::KeyId;
use shared::tarball::{KeyFileKind, KeysTarball, TarballError};

use super::reference::{KeyState, ReferenceRoot, RootArgs};
use super::tarball_err;
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::{self, PassphraseArgs};
use crate::ui::Ui;

/// Options of `signer keys list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The keys tarball (*.tgz, or *.tgz.age encrypted with a passphrase).
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The root compared with (default: the pinned root).
    #[command(flatten)]
    pub root: RootArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// One key of a tarball, as `keys list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyListing {
    /// The key id (computed from the public key).
    pub keyid: KeyId,
    /// Key type as written (`ED25519`, `RSA`).
    pub keytype: String,
    /// `first-root`, `generated` or `other` (from the file name).
    pub kind: String,
    /// Role from the file name (`root`, `targets`), if any.
    pub role: Option<String>,
    /// The `.pub` entry.
    pub pub_file: String,
    /// The `.sec` entry, if the private key is held.
    pub sec_file: Option<String>,
    /// Roles of the reference root that list this key (`None` without a root).
    pub active_in: Option<Vec<String>>,
    /// `created-at` from the root's `x-key-owners`, if known.
    pub created_at: Option<String>,
    /// What the key is to the factory (active, rotated out, never applied, …).
    pub status: KeyState,
}

impl KeyListing {
    /// What the file name says the key is ("offline root key", "initial Foundries root key
    /// (first-root)", …).
    pub fn what(&self) -> String {
        match (self.kind.as_str(), self.role.as_deref()) {
            ("first-root", _) => "initial Foundries root key (first-root)".to_string(),
            ("generated", Some(role)) => format!("offline {role} key"),
            _ => "key of unknown role (file name not fioctl's)".to_string(),
        }
    }
}

/// Lists the keys of `tarball`, relating them to `reference` (and what this signer
/// remembers of its factory) if given.
pub fn list_keys(
    tarball: &KeysTarball,
    reference: Option<&ReferenceRoot>,
) -> Result<Vec<KeyListing>, TarballError> {
    let mut out = Vec::new();
    for info in tarball.keys()? {
        let (kind, role) = match &info.kind {
            KeyFileKind::FirstRoot => ("first-root", Some("root".to_string())),
            KeyFileKind::Generated { role } => ("generated", Some(role.as_str().to_string())),
            KeyFileKind::Other => ("other", None),
        };
        let status = reference.map_or(KeyState::Unknown, |r| r.state_of(&info.keyid, &info.public));
        let active_in = reference.map(|_| match &status {
            KeyState::Active { roles } => roles.clone(),
            _ => Vec::new(),
        });
        let created_at = reference
            .and_then(|r| r.root.signed.key_owners.as_ref())
            .and_then(|o| o.get(&info.keyid))
            .map(|o| o.created_at.to_string());
        out.push(KeyListing {
            keyid: info.keyid.clone(),
            keytype: info.public.keytype().to_string(),
            kind: kind.to_string(),
            role,
            pub_file: info.pub_file.clone(),
            sec_file: info.sec_file.clone(),
            active_in,
            created_at,
            status,
        });
    }
    // Active keys first, then what a person should look at, then history.
    out.sort_by_key(|k| k.status.rank());
    Ok(out)
}

impl KeyState {
    /// The order of `keys list`: active keys, keys not applied yet, keys never applied,
    /// rotated-out keys (newest first), the rest.
    fn rank(&self) -> (u8, std::cmp::Reverse<u64>) {
        use std::cmp::Reverse;
        match self {
            KeyState::Active { .. } => (0, Reverse(0)),
            KeyState::NotYetApplied { .. } => (1, Reverse(0)),
            KeyState::NeverApplied { .. } => (2, Reverse(0)),
            KeyState::RotatedOut {
                last_applied_version,
            } => (3, Reverse(*last_applied_version)),
            KeyState::NotInRoot | KeyState::Unknown => (4, Reverse(0)),
        }
    }
}

/// Runs `signer keys list`: prints the listing (or JSON) and returns it. Without a pin or
/// `--root` the keys are listed compared with nothing.
pub fn run(ctx: &mut Ctx<'_>, a: &ListArgs) -> Result<Vec<KeyListing>, SignerError> {
    let pass = a.passphrase.source();
    let tarball = keystore::open(&a.keys, &pass)?;
    let reference = ReferenceRoot::resolve_if_pinned(ctx.state.path(), &a.root)?;
    let listing = list_keys(&tarball, reference.as_ref()).map_err(tarball_err(&a.keys))?;
    if a.json {
        let text = serde_json::to_string_pretty(&listing)
            .map_err(|e| SignerError::Other(format!("cannot encode the listing: {e}")))?;
        ctx.ui.line(text);
    } else {
        print_listing(ctx.ui, &a.keys, reference.as_ref(), &listing);
    }
    Ok(listing)
}

/// The text form of `keys list`.
fn print_listing(
    ui: &mut Ui,
    keys: &Path,
    reference: Option<&ReferenceRoot>,
    listing: &[KeyListing],
) {
    let private = listing.iter().filter(|k| k.sec_file.is_some()).count();
    ui.line(format!(
        "{}: {} key(s), {} with a private key",
        keys.display(),
        listing.len(),
        private
    ));
    match reference {
        Some(r) => ui.line(format!("compared with {}", r.describe())),
        None => ui.line("not compared with any root: no trusted root is pinned here (`signer trust init ROOT.json`, the root.json from `courier show-root`), and no --root ROOT.json was given"),
    }
    for k in listing {
        ui.line("");
        ui.line(k.keyid.to_string());
        ui.line(format!("  {} {}", k.keytype, k.what()));
        ui.line(format!(
            "  private key: {}",
            k.sec_file.as_deref().unwrap_or("NO (public key only)")
        ));
        match &k.status {
            KeyState::Unknown => ui.line("  active: unknown (no root to compare with)"),
            KeyState::Active { roles } => {
                ui.line(format!("  active: yes, role(s) {}", roles.join(", ")))
            }
            KeyState::RotatedOut {
                last_applied_version,
            } => ui.line(format!("  active: no (rotated out: last in the applied root v{last_applied_version})")),
            KeyState::NeverApplied {
                signed_version,
                created,
            } => ui.line(format!("  active: NO, NEVER APPLIED: created {created} by a response that was never applied (this signer signed it into root v{signed_version}; the server applied another root v{signed_version}). It signs nothing for the factory")),
            KeyState::NotYetApplied {
                signed_version,
                created,
            } => ui.line(format!("  active: not yet: created {created} by a response that signed it into root v{signed_version}, not seen applied (compared with v{}); once it is applied, the next request bundle this signer sees advances the pin",
                reference.map_or(0, |r| r.root.signed.version))),
            KeyState::NotInRoot => ui.line("  active: no (not in the root; rotated out or never used)"),
        }
        if let Some(c) = &k.created_at {
            ui.line(format!("  created: {c}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::testing::run_in;
    use crate::keys::fixtures::{pass, tarball_with};
    use shared::keys::PrivateKey;
    use shared::metadata::Role;

    #[test]
    fn without_a_pin_export_refuses_and_list_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("root.keys.tgz");
        keystore::save_new(&keys, &tarball_with(&[(Role::Root, [1; 32])]), &pass("pw")).unwrap();
        let err = ReferenceRoot::resolve(dir.path(), &RootArgs::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("signer trust init") && msg.contains("--root"),
            "{msg}"
        );
        let args = ListArgs {
            keys,
            root: RootArgs::default(),
            json: false,
            passphrase: PassphraseArgs::default(),
        };
        let (listing, text) = run_in(dir.path(), |ctx| run(ctx, &args));
        assert_eq!(listing.unwrap()[0].status, KeyState::Unknown);
        assert!(text.contains("not compared with any root"), "{text}");
        assert!(text.contains("active: unknown"), "{text}");
    }

    #[test]
    fn list_never_shows_private_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("root.keys.tgz");
        let t = tarball_with(&[(Role::Root, [1; 32])]);
        keystore::save_new(&keys, &t, &pass("pw")).unwrap();
        let args = ListArgs {
            keys: keys.clone(),
            root: RootArgs::default(),
            json: false,
            passphrase: PassphraseArgs::default(),
        };
        let (listing, text) = run_in(dir.path(), |ctx| run(ctx, &args));
        listing.unwrap();
        let key = PrivateKey::ed25519_from_seed(&[1; 32]);
        assert!(text.contains(key.keyid().as_str()), "{text}");
        assert!(text.contains("offline root key"), "{text}");
        assert!(!text.contains(&hex::encode([1u8; 32])), "{text}");
    }
}
