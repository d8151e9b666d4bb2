//! Reading a bundle into what the commands work on, and the checks every command makes
//! before it looks at keys: bundle integrity (done by [`shared::bundle`]), the transaction
//! state, trust (the chain from the pinned root, and no fork from a root this signer
//! signed or pinned: [`crate::memory`]), and the consistency of the current roots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shared::bundle::{BundleKind, Operation, TransferBundle};
use shared::keys::{KeyId, Signature};
use shared::metadata::{Role, SignedRoot, TargetsSummary, Timestamp};
use shared::transaction::{derive_missing_prod_root, ParsedTransaction, TxStatus};
use shared::verify;

use crate::audit::{self, AuditEvent};
use crate::error::{Result, SignerError};
use crate::memory::{FactoryMemory, How};
use crate::state::StateDir;
use crate::trust::{self, Pin, TrustCheck};
use crate::wrong_file::{self, Expected};

/// A bundle read from disk, with its parts parsed.
#[derive(Debug)]
pub struct Loaded {
    /// Where it was read from.
    pub path: PathBuf,
    /// The bundle.
    pub bundle: TransferBundle,
    /// `transaction.json` with its roots parsed under fioctl's rules: the current (applied)
    /// roots, the staged ones, the online key ids (current and staged).
    pub tx: ParsedTransaction,
    /// The root chain, version 1 first.
    pub chain: Vec<SignedRoot>,
    /// Whether there is a draft to work on (a STARTED transaction).
    pub has_draft: bool,
    /// The CI draft: the previous step's upload, else the server's staged root (or the
    /// current root when no transaction is open).
    pub draft_ci: SignedRoot,
    /// The production draft: the previous step's upload, else the server's staged one, else
    /// the one fioctl derives from the CI draft
    /// ([`ParsedTransaction::effective_updated_prod`]); with no transaction open, the
    /// production root in force (derived the same way from the current CI root before the
    /// first rotation).
    pub draft_prod: SignedRoot,
    /// Production targets per tag, summarized (their canonical bytes come from the bundle's
    /// member text: [`TransferBundle::targets_signed`]).
    pub prod_targets: BTreeMap<String, TargetsSummary>,
    /// Wave targets per wave, summarized.
    pub waves: BTreeMap<String, TargetsSummary>,
    /// Production targets signatures collected by earlier steps.
    pub targets_sigs: BTreeMap<String, Vec<Signature>>,
    /// Wave signatures collected by earlier steps.
    pub waves_sigs: BTreeMap<String, Vec<Signature>>,
}

/// The trust established for a bundle.
#[derive(Debug, Clone)]
pub struct Trusted {
    /// The pin file.
    pub pin_path: PathBuf,
    /// The pin as it was before this bundle (see `advanced`).
    pub pin: Pin,
    /// What the chain check found.
    pub check: TrustCheck,
    /// What this signer remembers of the factory (checked: no fork).
    pub memory: FactoryMemory,
    /// The pin moved forward to the bundle's current (applied) root.
    pub advanced: Option<trust::Advance>,
}

fn bundle_err(path: &Path, e: impl std::fmt::Display) -> SignerError {
    SignerError::Bundle(format!("{}: {e}", path.display()))
}

/// Reads and parses a bundle. Integrity (manifest, digests, sizes, layout) is checked by
/// [`TransferBundle::read`]; this adds the parsing of its members.
/// A file of another kind (a keys tarball, a root.json, …) is refused as such
/// ([`crate::wrong_file`]).
pub fn load(path: &Path) -> Result<Loaded> {
    let bundle = TransferBundle::read(path).map_err(|e| {
        if let Err(wrong) = wrong_file::check_file(path, Expected::Bundle) {
            return SignerError::WrongFile(wrong);
        }
        match e {
            // "cannot read FILE: reason" names the file already.
            shared::bundle::BundleError::File(e) => SignerError::Fs(e),
            other => bundle_err(path, other),
        }
    })?;
    from_bundle(path, bundle)
}

/// Like [`load`] for a bundle already in memory.
pub fn from_bundle(path: &Path, bundle: TransferBundle) -> Result<Loaded> {
    let err = |e: &dyn std::fmt::Display| bundle_err(path, e);
    let tx = bundle.parsed_transaction().map_err(|e| err(&e))?;
    let chain = bundle.chain().map_err(|e| err(&e))?;
    let staged = match (tx.status(), &tx.updated_ci, tx.effective_updated_prod()) {
        (TxStatus::Started, Some(ci), Some(prod)) => Some((ci.clone(), prod)),
        _ => None,
    };
    let has_draft = staged.is_some();
    let (mut draft_ci, mut draft_prod) = staged.unwrap_or_else(|| {
        let prod = tx
            .current_prod
            .clone()
            .unwrap_or_else(|| derive_missing_prod_root(&tx.current_ci));
        (tx.current_ci.clone(), prod)
    });
    let (mut targets_sigs, mut waves_sigs) = (BTreeMap::new(), BTreeMap::new());
    if let Some(up) = bundle.upload() {
        draft_ci = up.ci_root.clone();
        draft_prod = up.prod_root.clone();
        targets_sigs = up.targets_signatures.clone();
        waves_sigs = up.waves_signatures.clone();
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        prod_targets: bundle.prod_targets_summaries().map_err(|e| err(&e))?,
        waves: bundle.waves_summaries().map_err(|e| err(&e))?,
        bundle,
        tx,
        chain,
        has_draft,
        draft_ci,
        draft_prod,
        targets_sigs,
        waves_sigs,
    })
}

impl Loaded {
    /// The staged online targets key id (required by targets operations).
    pub fn online_targets(&self) -> Result<KeyId> {
        self.tx
            .updated_online_keys()
            .get(Role::Targets.as_str())
            .cloned()
            .ok_or_else(|| {
                SignerError::refused(
                    "the transaction names no online targets key (updated.online-keys.targets); \
                     ask for a new request bundle",
                )
            })
    }

    /// The current online targets key id (falls back to the staged one).
    pub fn current_online_targets(&self) -> Option<&KeyId> {
        self.tx
            .current_online_keys()
            .get(Role::Targets.as_str())
            .or_else(|| self.tx.updated_online_keys().get(Role::Targets.as_str()))
    }

    /// Refuses unless a transaction is open (status `STARTED`) with a staged root.
    /// Also refuses a staged production root that is not what fioctl's finalize derives from
    /// the staged CI root (the CI root with the production targets threshold): the signer
    /// would otherwise replace it silently when it changes the roots.
    pub fn require_draft(&self) -> Result<()> {
        if !self.has_draft {
            return Err(SignerError::refused(format!(
                "the transaction status in this bundle is {:?}: there is no staged root to change or sign. \
                 Start a transaction on the online machine (courier) and bring a new request",
                self.tx.status().as_str()
            )));
        }
        if let Err(e) = verify::verify_ci_prod_pair(&self.draft_ci.signed, &self.draft_prod.signed)
        {
            return Err(SignerError::MustNotSign(vec![format!(
                "the staged production root is not the one fioctl's finalize derives from the staged CI root (the CI root with the production targets threshold): {e}. The online side staged a production root of its own; this signer neither signs nor silently replaces it. Cancel the transaction (`courier updates cancel`) and start a new one"
            )]));
        }
        Ok(())
    }

    /// Operations performed by earlier signer steps.
    pub fn performed(&self) -> Vec<&Operation> {
        self.bundle
            .record()
            .map(|r| r.steps.iter().flat_map(|s| s.operations.iter()).collect())
            .unwrap_or_default()
    }

    /// A short description of the bundle for the person.
    pub fn describe(&self) -> String {
        format!(
            "{} bundle {} for factory {}, transaction {}",
            match self.bundle.kind() {
                BundleKind::Request => "request",
                BundleKind::Response => "response",
            },
            self.bundle.fingerprint(),
            self.bundle.factory(),
            if self.bundle.txid().is_empty() {
                "(initiator, no txid)"
            } else {
                self.bundle.txid()
            }
        )
    }

    /// Checks that the current production root (if any) is the CI root's twin and signed by
    /// its own root keys.
    pub fn check_current_prod(&self) -> Result<()> {
        if let Some(p) = &self.tx.current_prod {
            if p.signed.version != self.tx.current_ci.signed.version {
                return Err(SignerError::refused(format!(
                    "the current production root has version {}, the current CI root {}",
                    p.signed.version, self.tx.current_ci.signed.version
                )));
            }
            verify::verify_ci_prod_pair(&self.tx.current_ci.signed, &p.signed)?;
            let msg = p.canonical_signed()?;
            verify::verify_role(
                &p.signed,
                Role::Root,
                &msg,
                &p.signatures,
                "current production root",
            )?;
        }
        Ok(())
    }
}

/// Verifies the bundle against the pinned trust of its factory, and keeps the pin up: when
/// the chain verified from the pin ends at a newer root, that root was applied on the
/// server, so the pin advances to it (recorded in the audit log; [`Trusted::advanced`] says
/// so), and the verified roots are remembered ([`crate::memory`]).
pub fn trust(
    loaded: &Loaded,
    state: &StateDir,
    now: &Timestamp,
    allow_expired: bool,
) -> Result<Trusted> {
    let (pin_path, pin) = trust::load_pin(state, loaded.bundle.factory())?;
    let check = trust::check_chain(
        &pin.root,
        &loaded.chain,
        &loaded.tx.current_ci,
        now,
        allow_expired,
    )?;
    loaded.check_current_prod()?;
    let memory = FactoryMemory::load(state.path(), loaded.bundle.factory())?;
    for root in &loaded.chain {
        memory.check("ci-root", root, state.path())?;
    }
    if let Some(p) = &loaded.tx.current_prod {
        memory.check("prod-root", p, state.path())?;
    }
    let mut trusted = Trusted {
        pin_path,
        pin,
        check,
        memory,
        advanced: None,
    };
    trusted.advance(loaded, state, now)?;
    Ok(trusted)
}

impl Trusted {
    /// Advances the pin when the bundle proves a newer root was applied, and remembers the
    /// verified roots from the pinned one to the current one (and the current production
    /// root).
    fn advance(&mut self, loaded: &Loaded, state: &StateDir, now: &Timestamp) -> Result<()> {
        let from = self.pin.root.signed.version;
        let mut changed = false;
        for root in loaded.chain.iter().filter(|r| r.signed.version >= from) {
            let before = self.memory.roots.len();
            self.memory.remember("ci-root", root, How::Pinned, *now)?;
            changed |= self.memory.roots.len() != before;
        }
        if let Some(p) = &loaded.tx.current_prod {
            let before = self.memory.roots.len();
            self.memory.remember("prod-root", p, How::Pinned, *now)?;
            changed |= self.memory.roots.len() != before;
        }
        if changed {
            self.memory.save(state.path())?;
        }
        if !self.check.advances() {
            return Ok(());
        }
        // A log that does not verify is refused before the pin moves, not after.
        audit::verify(state.path())?;
        let advance = trust::Advance {
            factory: loaded.bundle.factory().to_string(),
            pin: self.pin_path.clone(),
            from,
            to: loaded.tx.current_ci.signed.version,
            fingerprint: self.check.current_fingerprint.clone(),
        };
        trust::advance(&self.pin_path, &self.pin, &loaded.tx.current_ci, now)?;
        audit::record(
            state.path(),
            now,
            AuditEvent::PinAdvanced {
                factory: advance.factory.clone(),
                pin: advance.pin.display().to_string(),
                from_version: advance.from,
                to_version: advance.to,
                sha256: crate::memory::root_digest(&loaded.tx.current_ci)?,
            },
        )?;
        self.advanced = Some(advance);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn request_parts() {
        let mut f = Factory::new();
        f.apply_first_time_rotation();
        f.add_prod_targets("main", 3);
        let b = f.request(vec![Operation::TargetsRotation], None);
        let l = from_bundle(Path::new("r.tufbundle"), b).unwrap();
        assert!(l.has_draft);
        assert_eq!(l.draft_ci.signed.version, 3);
        assert_eq!(l.draft_prod.signed.threshold(Role::Targets), 2);
        assert_eq!(l.online_targets().unwrap(), *f.online_targets.keyid());
        assert_eq!(l.prod_targets.len(), 1);
        l.check_current_prod().unwrap();
        assert!(l.describe().contains("acme"));
    }

    #[test]
    fn first_time_request_derives_prod() {
        let f = Factory::new();
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let sealed = crate::identity::encrypt_to(&recipient, &f.first_root.to_json()).unwrap();
        let b = f.request(vec![Operation::FirstTimeRootRotation], Some(sealed));
        let l = from_bundle(Path::new("r"), b).unwrap();
        assert!(l.tx.current_prod.is_none());
        assert_eq!(l.draft_prod.signed.threshold(Role::Targets), 2);
        assert_eq!(l.draft_ci.signed.threshold(Role::Targets), 1);
    }
}
