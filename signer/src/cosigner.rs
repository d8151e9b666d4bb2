//! `signer cosigner add|list|remove`: the other key holders' signing identities, pinned on
//! this laptop.
//!
//! In a ceremony with several laptops (the targets key holder first, then the root key
//! holder) each step of the response is signed by the signer that made it
//! ([`shared::attestation`]). The next signer believes what an earlier step says it
//! authorized only when that step is signed by an identity pinned here, after its
//! fingerprint was compared out of band (in person or by phone — never over the USB stick,
//! which is what the pin protects against). Steps of unknown identities count as
//! unauthenticated: their changes need the operator's typed confirmation.
//!
//! `cosigners.json` in the state directory (mode 0600):
//!
//! ```json
//! {"cosigners": [{"name": "alice", "identity": "ed25519:…", "pinned-at": "2026-…Z"}]}
//! ```

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use shared::attestation::IdentityKey;
use shared::fsutil;
use shared::metadata::Timestamp;

use crate::audit::{self, AuditEvent};
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::identity;

/// File name of the pinned cosigners in the state directory.
pub const COSIGNERS_FILE: &str = "cosigners.json";

/// Largest cosigners file accepted.
const MAX_FILE: u64 = 1024 * 1024;

/// `signer cosigner …`.
#[derive(Debug, Clone, Subcommand)]
pub enum CosignerCommand {
    /// Pin another key holder's signing identity, after comparing its fingerprint with the
    /// one `signer identity show` prints on their laptop.
    Add(AddArgs),
    /// List the pinned cosigners with their fingerprints.
    List(ListArgs),
    /// Unpin a cosigner (their steps then count as unauthenticated).
    Remove(RemoveArgs),
}

/// Options of `signer cosigner list`.
#[derive(Debug, Clone, Default, Args)]
pub struct ListArgs {
    /// Print JSON for scripts: `name`, `identity`, `fingerprint`, `pinned-at` per cosigner.
    #[arg(long)]
    pub json: bool,
}

/// Options of `signer cosigner add`.
#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// A name for the key holder (letters, digits, `.`, `_`, `-`), shown with their steps.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Their signing identity, `ed25519:` followed by 64 hex digits (`signer identity show
    /// --signing` on their laptop).
    #[arg(value_name = "IDENTITY")]
    pub identity: String,
}

/// Options of `signer cosigner remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// The name the cosigner was pinned under.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// One pinned cosigner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosigner {
    /// The name it was pinned under.
    pub name: String,
    /// Its signing identity.
    pub identity: IdentityKey,
    /// When it was pinned.
    #[serde(rename = "pinned-at")]
    pub pinned_at: Timestamp,
}

/// The pinned cosigners of a state directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosigners {
    /// In the order they were pinned.
    pub cosigners: Vec<Cosigner>,
}

/// Who an authenticated step's identity is, for this signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// This signer itself (an earlier step made on this laptop).
    ThisSigner,
    /// A pinned cosigner, by name.
    Cosigner(String),
    /// Nobody pinned here.
    Unknown,
}

fn path(state: &Path) -> PathBuf {
    state.join(COSIGNERS_FILE)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Cosigners {
    /// Reads the pinned cosigners (none when the file does not exist).
    pub fn load(state: &Path) -> Result<Cosigners> {
        let p = path(state);
        if std::fs::symlink_metadata(&p).is_err() {
            return Ok(Cosigners::default());
        }
        let bytes = fsutil::read_limited(&p, MAX_FILE)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            SignerError::refused(format!(
                "{} is damaged ({e}); restore it from a backup, or remove it and pin the cosigners again",
                p.display()
            ))
        })
    }

    fn save(&self, state: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| SignerError::Other(format!("cannot encode the cosigners: {e}")))?;
        bytes.push(b'\n');
        fsutil::write_atomic(path(state), &bytes, 0o600)?;
        Ok(())
    }

    /// Who `identity` is: this signer, a pinned cosigner, or unknown.
    pub fn who(&self, identity: &IdentityKey, own: Option<&IdentityKey>) -> Known {
        if own == Some(identity) {
            return Known::ThisSigner;
        }
        match self.cosigners.iter().find(|c| &c.identity == identity) {
            Some(c) => Known::Cosigner(c.name.clone()),
            None => Known::Unknown,
        }
    }
}

/// Runs `signer cosigner …`.
pub fn run(ctx: &mut Ctx<'_>, cmd: &CosignerCommand) -> Result<()> {
    let (state, ui, now) = (&ctx.state, &mut *ctx.ui, &ctx.now);
    let dir = state.path();
    match cmd {
        CosignerCommand::Add(a) => {
            if !valid_name(&a.name) {
                return Err(SignerError::Usage(format!(
                    "cosigner name {:?}: use 1-64 letters, digits, '.', '_' or '-'",
                    a.name
                )));
            }
            let key: IdentityKey =
                a.identity
                    .parse()
                    .map_err(|e: shared::attestation::AttestationError| {
                        SignerError::Usage(e.to_string())
                    })?;
            let own = identity::load_signing_identity(dir)?.map(|i| i.public());
            if own == Some(key) {
                return Err(SignerError::Usage(
                    "this is this laptop's own signing identity: pin the other key holders' identities here".into(),
                ));
            }
            let mut all = Cosigners::load(dir)?;
            if let Some(c) = all.cosigners.iter().find(|c| c.name == a.name) {
                return Err(SignerError::Usage(format!(
                    "a cosigner named {} is already pinned ({}, fingerprint {}); remove it first (`signer cosigner remove {}`)",
                    c.name,
                    c.identity,
                    c.identity.fingerprint(),
                    c.name
                )));
            }
            if let Some(c) = all.cosigners.iter().find(|c| c.identity == key) {
                return Err(SignerError::Usage(format!(
                    "this identity is already pinned as {}",
                    c.name
                )));
            }
            ui.line(format!("Cosigner {}: {key}", a.name));
            ui.line(format!("  fingerprint: {}", key.fingerprint()));
            ui.line(format!(
                "Compare it with what `signer identity show` prints on {}'s laptop, in person or by phone. Steps signed by this identity will be believed for what they say they authorized.",
                a.name
            ));
            ui.confirm("Is it the same fingerprint?")?;
            state.ensure()?;
            all.cosigners.push(Cosigner {
                name: a.name.clone(),
                identity: key,
                pinned_at: *now,
            });
            all.save(dir)?;
            audit::record(
                dir,
                now,
                AuditEvent::CosignerPinned {
                    name: a.name.clone(),
                    identity: key.to_string(),
                },
            )?;
            ui.line(format!(
                "Pinned cosigner {} ({}).",
                a.name,
                key.fingerprint()
            ));
        }
        CosignerCommand::List(a) => {
            let all = Cosigners::load(dir)?;
            if a.json {
                let list: Vec<serde_json::Value> = all
                    .cosigners
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "name": c.name,
                            "identity": c.identity.to_string(),
                            "fingerprint": c.identity.fingerprint(),
                            "pinned-at": c.pinned_at.to_string(),
                        })
                    })
                    .collect();
                ui.line(serde_json::to_string_pretty(&list).unwrap_or_default());
                return Ok(());
            }
            if all.cosigners.is_empty() {
                ui.line("No cosigner is pinned. Pin the other key holders with `signer cosigner add NAME IDENTITY`.");
            }
            for c in &all.cosigners {
                ui.line(format!(
                    "{:<16} {}  fingerprint {}  pinned {}",
                    c.name,
                    c.identity,
                    c.identity.fingerprint(),
                    c.pinned_at
                ));
            }
        }
        CosignerCommand::Remove(a) => {
            let mut all = Cosigners::load(dir)?;
            let Some(i) = all.cosigners.iter().position(|c| c.name == a.name) else {
                return Err(SignerError::Usage(format!(
                    "no cosigner named {:?} (see `signer cosigner list`)",
                    a.name
                )));
            };
            let gone = all.cosigners.remove(i);
            all.save(dir)?;
            audit::record(
                dir,
                now,
                AuditEvent::CosignerRemoved {
                    name: gone.name.clone(),
                    identity: gone.identity.to_string(),
                },
            )?;
            ui.line(format!("Removed cosigner {}.", gone.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::testing::run_with;
    use crate::state::StateDir;
    use crate::ui::Ui;
    use shared::attestation::SigningIdentity;

    /// Runs `cmd` in `state` on a terminal (or not) answering `answers`.
    fn cosigner(
        state: &StateDir,
        cmd: &CosignerCommand,
        answers: &str,
        interactive: bool,
    ) -> (Result<()>, String) {
        let (mut ui, out) = Ui::scripted(answers, interactive, false);
        let r = run_with(state.path(), &mut ui, |ctx| run(ctx, cmd));
        (r, out.text())
    }

    fn add(state: &StateDir, name: &str, id: &IdentityKey, answer: &str) -> Result<String> {
        let add = CosignerCommand::Add(AddArgs {
            name: name.into(),
            identity: id.to_string(),
        });
        let (r, out) = cosigner(state, &add, answer, true);
        r.map(|()| out)
    }

    #[test]
    fn pin_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::at(dir.path().join("s"));
        let alice = SigningIdentity::from_seed(&[1; 32]).public();
        // Declined: nothing pinned.
        assert!(matches!(
            add(&state, "alice", &alice, "no\n"),
            Err(SignerError::Declined)
        ));
        assert!(Cosigners::load(state.path()).unwrap().cosigners.is_empty());
        let shown = add(&state, "alice", &alice, "yes\n").unwrap();
        assert!(shown.contains(&alice.fingerprint()));
        let all = Cosigners::load(state.path()).unwrap();
        assert_eq!(all.who(&alice, None), Known::Cosigner("alice".into()));
        let bob = SigningIdentity::from_seed(&[2; 32]).public();
        assert_eq!(all.who(&bob, None), Known::Unknown);
        assert_eq!(all.who(&bob, Some(&bob)), Known::ThisSigner);
        // Same name or same identity twice; bad input.
        assert!(matches!(
            add(&state, "alice", &bob, "yes\n"),
            Err(SignerError::Usage(_))
        ));
        assert!(matches!(
            add(&state, "al2", &alice, "yes\n"),
            Err(SignerError::Usage(_))
        ));
        assert!(matches!(
            add(&state, "a/b", &bob, "yes\n"),
            Err(SignerError::Usage(_))
        ));
        let carol = CosignerCommand::Add(AddArgs {
            name: "carol".into(),
            identity: "ed25519:nothex".into(),
        });
        let (bad, _) = cosigner(&state, &carol, "yes\n", true);
        assert!(matches!(bad, Err(SignerError::Usage(_))));
        let (r, out) = cosigner(
            &state,
            &CosignerCommand::List(ListArgs::default()),
            "",
            false,
        );
        r.unwrap();
        assert!(out.contains("alice"));
        let remove = CosignerCommand::Remove(RemoveArgs {
            name: "alice".into(),
        });
        cosigner(&state, &remove, "", false).0.unwrap();
        assert!(Cosigners::load(state.path()).unwrap().cosigners.is_empty());
        assert_eq!(crate::audit::verify(state.path()).unwrap().records, 2);
    }
}
