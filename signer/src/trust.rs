//! Trust pinned on the offline machine: `signer trust init ROOT.json`, `signer trust show`,
//! and the check that a bundle's current root chains from the pin.
//!
//! The person pins a root once, after comparing its fingerprint with the one the courier
//! printed (or with a copy obtained another way). From then on every bundle must carry a
//! root chain (`chain/1.root.json … N.root.json`) that leads from the pinned root to the
//! bundle's current root, each step signed by a threshold of the previous root's root keys
//! and of its own. The pin only moves forward, to a root the bundle proves was **applied**
//! (the end of the chain, newer than the pin) — never to a draft this signer just signed,
//! because a draft may still be cancelled on the server. It moves as soon as the signer
//! sees such a bundle — `inspect`, every operation, `keys drill --bundle` — with one line
//! saying so and a `pin-advanced` record in the audit log ([`crate::session::trust`]), so
//! that the `keys` commands, which compare keys files with the pinned root
//! ([`default_pin`]), see the keys the server now uses.
//!
//! A pin file is `trust/<factory>.json` (or `trust/_any.json` for a pin made without
//! `--factory`, used for every factory that has no pin of its own):
//!
//! ```json
//! {"factory": "acme", "fingerprint": "…", "pinned-at": "2026-…Z", "root": {"signatures": […], "signed": {…}}}
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use shared::fsutil;
use shared::metadata::{Role, SignedRoot, Timestamp};
use shared::verify;

use crate::cli::TrustCommand;
use crate::ctx::Ctx;
use crate::error::{Result, SignerError};
use crate::state::StateDir;
use crate::ui::Ui;
use crate::wrong_file::{self, Expected};

/// Largest root file accepted by `trust init`.
pub const MAX_ROOT_FILE: u64 = 4 * 1024 * 1024;

/// File stem of a pin made without `--factory`.
pub const ANY_FACTORY: &str = "_any";

/// A pinned trusted root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    /// The factory this pin is for (`None`: any factory without its own pin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory: Option<String>,
    /// [`root_fingerprint`] of `root`, for display.
    pub fingerprint: String,
    /// When the pin was made or last advanced.
    #[serde(rename = "pinned-at")]
    pub pinned_at: Timestamp,
    /// The trusted root document.
    pub root: SignedRoot,
}

/// The human fingerprint of a root: SHA-256 of the canonical `signed` bytes, in groups of
/// four hex digits (`1a2b 3c4d …`, 16 groups).
pub fn root_fingerprint(root: &SignedRoot) -> Result<String> {
    let digest = Sha256::digest(root.canonical_signed()?);
    Ok(group_hex(&hex::encode(digest)))
}

/// Splits a hex string into space-separated groups of four.
pub fn group_hex(hex: &str) -> String {
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a factory name is safe as a file name.
fn valid_factory(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The pin file of `factory` (or the any-factory pin).
pub fn pin_path(state: &StateDir, factory: Option<&str>) -> Result<PathBuf> {
    let stem = match factory {
        Some(f) if valid_factory(f) && f != ANY_FACTORY => f,
        Some(f) => {
            return Err(SignerError::Usage(format!(
                "factory name {f:?} is not usable as a file name (letters, digits, '-', '_', '.')"
            )))
        }
        None => ANY_FACTORY,
    };
    Ok(state.trust_dir().join(format!("{stem}.json")))
}

/// Reads a pin file.
pub fn read_pin(path: &Path) -> Result<Pin> {
    let bytes = fsutil::read_limited(path, MAX_ROOT_FILE)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        SignerError::refused(format!(
            "the trust pin {} is damaged ({e}); restore it from a backup or pin again",
            path.display()
        ))
    })
}

/// The pin that applies to `factory`: its own, else the any-factory pin.
pub fn load_pin(state: &StateDir, factory: &str) -> Result<(PathBuf, Pin)> {
    let own = pin_path(state, Some(factory)).ok().filter(|p| p.is_file());
    let path = match own {
        Some(p) => p,
        None => {
            let any = pin_path(state, None)?;
            if !any.is_file() {
                return Err(SignerError::NoPin {
                    factory: factory.to_string(),
                    dir: state.trust_dir(),
                });
            }
            any
        }
    };
    let pin = read_pin(&path)?;
    if let Some(f) = &pin.factory {
        if f != factory {
            return Err(SignerError::refused(format!(
                "the pin {} is for factory {f:?}, the bundle is for {factory:?}",
                path.display()
            )));
        }
    }
    Ok((path, pin))
}

fn write_pin(path: &Path, pin: &Pin, new: bool) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(pin)
        .map_err(|e| SignerError::Other(format!("cannot encode the trust pin: {e}")))?;
    bytes.push(b'\n');
    if new {
        fsutil::write_atomic_new(path, &bytes, 0o600)?;
    } else {
        fsutil::write_atomic(path, &bytes, 0o600)?;
    }
    Ok(())
}

fn describe_root(ui: &mut Ui, root: &SignedRoot, fingerprint: &str) {
    let r = &root.signed;
    ui.line(format!("  version:      {}", r.version));
    ui.line(format!("  expires:      {}", r.expires));
    for role in [Role::Root, Role::Targets] {
        let ids: Vec<String> = r.role_keyids(role).iter().map(|k| k.short()).collect();
        ui.line(format!(
            "  {:<13} {} (threshold {})",
            format!("{role} keys:"),
            ids.join(", "),
            r.threshold(role)
        ));
    }
    ui.line(format!("  fingerprint:  {fingerprint}"));
}

/// Reads a signed root.json given on the command line (`trust init`, `--root`). A file of
/// another kind (a transfer bundle, a keys tarball) is refused as such, and a root that does
/// not parse is refused naming the file.
pub fn read_root_file(path: &Path) -> Result<SignedRoot> {
    let read = fsutil::read_limited(path, MAX_ROOT_FILE)
        .map_err(SignerError::from)
        .and_then(|bytes| {
            SignedRoot::from_json(&bytes).map_err(|e| {
                SignerError::refused(format!("{} is not a usable root.json: {e}", path.display()))
            })
        });
    read.map_err(|e| match wrong_file::check_file(path, Expected::Root) {
        Err(wrong) => wrong.into(),
        Ok(()) => e,
    })
}

/// Runs `signer trust init|show`.
pub fn run(ctx: &mut Ctx<'_>, cmd: &TrustCommand) -> Result<()> {
    match cmd {
        TrustCommand::Init(a) => init(
            &ctx.state,
            ctx.ui,
            &a.root,
            a.factory.as_deref(),
            a.allow_expired,
            &ctx.now,
        )
        .map(|_| ()),
        TrustCommand::Show(a) => show(&ctx.state, ctx.ui, a.json),
    }
}

/// `signer trust init ROOT.json`: shows the root and its fingerprint, asks for
/// confirmation and pins it.
pub fn init(
    state: &StateDir,
    ui: &mut Ui,
    root_file: &Path,
    factory: Option<&str>,
    allow_expired: bool,
    now: &Timestamp,
) -> Result<PathBuf> {
    let path = pin_path(state, factory)?;
    if path.exists() {
        let version = read_pin(&path).map(|p| p.root.signed.version).unwrap_or(0);
        return Err(SignerError::PinExists { path, version });
    }
    let root = read_root_file(root_file)?;
    verify::verify_self_signed(&root, "the root to pin").map_err(|e| {
        SignerError::refused(format!(
            "{}: {e}. Only a complete, signed root.json (as served by the factory) can be pinned",
            root_file.display()
        ))
    })?;
    check_not_expired("the root to pin", &root, now, allow_expired)?;
    let fingerprint = root_fingerprint(&root)?;
    ui.line(format!(
        "Root to pin for {}:",
        factory.map_or("any factory".to_string(), |f| format!("factory {f}"))
    ));
    describe_root(ui, &root, &fingerprint);
    ui.line("Compare the fingerprint with one obtained independently: `courier show-root --fingerprint` on the online machine prints it (so does every request the courier writes).");
    ui.confirm("Pin this root as the trust anchor?")?;
    state.ensure()?;
    let pin = Pin {
        factory: factory.map(str::to_string),
        fingerprint,
        pinned_at: *now,
        root,
    };
    write_pin(&path, &pin, true)?;
    ui.line(format!(
        "Pinned root version {} in {}",
        pin.root.signed.version,
        path.display()
    ));
    Ok(path)
}

/// The pin files in the state directory, sorted.
fn pin_files(state: &StateDir) -> Result<Vec<PathBuf>> {
    let dir = state.trust_dir();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(SignerError::io("cannot list", dir, e)),
    };
    files.sort();
    Ok(files)
}

/// The pin the `keys` commands compare a keys file with when no `--root` is given: the pin
/// that applies to `factory` (its own, else the any-factory pin), or without `factory` the
/// only pin on this machine.
pub fn default_pin(state: &StateDir, factory: Option<&str>) -> Result<(PathBuf, Pin)> {
    let no_pin = || SignerError::NoPinForKeys {
        dir: state.trust_dir(),
        factory: factory.map(str::to_string),
    };
    if let Some(f) = factory {
        return load_pin(state, f).map_err(|e| match e {
            SignerError::NoPin { .. } => no_pin(),
            other => other,
        });
    }
    match pin_files(state)?.as_slice() {
        [] => Err(no_pin()),
        [one] => Ok((one.clone(), read_pin(one)?)),
        many => Err(SignerError::Usage(format!(
            "{} roots are pinned on this machine ({}): give --factory NAME to choose one, or --root ROOT.json",
            many.len(),
            many.iter()
                .map(|p| {
                    let stem = p.file_stem().unwrap_or_default().to_string_lossy();
                    if stem == ANY_FACTORY {
                        "any factory".to_string()
                    } else {
                        stem.into_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `signer trust show`: every pin in the state directory.
pub fn show(state: &StateDir, ui: &mut Ui, json: bool) -> Result<()> {
    let dir = state.trust_dir();
    let files = pin_files(state)?;
    if json {
        let mut pins = Vec::new();
        for f in &files {
            let pin = read_pin(f)?;
            let r = &pin.root.signed;
            let role = |role: Role| {
                serde_json::json!({
                    "keyids": r.role_keyids(role),
                    "threshold": r.threshold(role),
                })
            };
            pins.push(serde_json::json!({
                "factory": pin.factory,
                "file": f,
                "pinned-at": pin.pinned_at.to_string(),
                "version": r.version,
                "expires": r.expires.to_string(),
                "root": role(Role::Root),
                "targets": role(Role::Targets),
                "fingerprint": pin.fingerprint,
            }));
        }
        ui.line(serde_json::to_string_pretty(&pins).unwrap_or_default());
        return Ok(());
    }
    if files.is_empty() {
        ui.line(format!(
            "No trusted root is pinned in {}. Pin one with `signer trust init ROOT.json`.",
            dir.display()
        ));
        return Ok(());
    }
    for f in files {
        let pin = read_pin(&f)?;
        ui.line(format!(
            "{} ({}), pinned/advanced at {}:",
            pin.factory.as_deref().unwrap_or("any factory"),
            f.display(),
            pin.pinned_at
        ));
        describe_root(ui, &pin.root, &pin.fingerprint);
    }
    Ok(())
}

/// Fails if `root` expired at or before `now`, unless `allow_expired`.
pub fn check_not_expired(
    what: &str,
    root: &SignedRoot,
    now: &Timestamp,
    allow_expired: bool,
) -> Result<()> {
    if allow_expired || root.signed.expires > *now {
        return Ok(());
    }
    Err(SignerError::Expired {
        what: format!("{what} (version {})", root.signed.version),
        expires: root.signed.expires.to_string(),
    })
}

/// What the trust check established about a bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustCheck {
    /// Version of the pinned root.
    pub pinned_version: u64,
    /// Version of the bundle's current root (the end of the verified chain).
    pub current_version: u64,
    /// Fingerprint of the current root.
    pub current_fingerprint: String,
}

impl TrustCheck {
    /// Whether the bundle proves that a root newer than the pin was applied.
    pub fn advances(&self) -> bool {
        self.current_version > self.pinned_version
    }
}

/// Verifies that `current` (the bundle's current CI root) is the end of `chain`, and that
/// `chain` verifies step by step from `pinned`; refuses expired roots unless
/// `allow_expired`.
pub fn check_chain(
    pinned: &SignedRoot,
    chain: &[SignedRoot],
    current: &SignedRoot,
    now: &Timestamp,
    allow_expired: bool,
) -> Result<TrustCheck> {
    let chain_err = |reason: String| SignerError::Chain {
        pinned: pinned.signed.version,
        reason,
    };
    if chain.is_empty() {
        return Err(chain_err("the bundle carries no root chain".into()));
    }
    for pair in chain.windows(2) {
        if pair[1].signed.version != pair[0].signed.version + 1 {
            return Err(chain_err(format!(
                "the chain jumps from version {} to {}",
                pair[0].signed.version, pair[1].signed.version
            )));
        }
    }
    let end = verify::verify_chain(pinned, chain).map_err(|e| chain_err(e.to_string()))?;
    if end.signed.version < pinned.signed.version {
        return Err(chain_err(format!(
            "the chain ends at version {}, older than the pinned version: a rollback",
            end.signed.version
        )));
    }
    if end.signed != current.signed {
        return Err(chain_err(format!(
            "the transaction's current root (version {}) is not the last root of the chain (version {})",
            current.signed.version, end.signed.version
        )));
    }
    if end.signed.version == pinned.signed.version {
        check_not_expired("the pinned root", pinned, now, allow_expired)?;
    }
    check_not_expired("the current root", current, now, allow_expired)?;
    Ok(TrustCheck {
        pinned_version: pinned.signed.version,
        current_version: end.signed.version,
        current_fingerprint: root_fingerprint(end)?,
    })
}

/// The pin of a factory moved forward to the current root of a bundle whose chain verified
/// from it (that root was applied on the server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Advance {
    /// The bundle's factory.
    pub factory: String,
    /// The pin file.
    pub pin: PathBuf,
    /// The version pinned before.
    pub from: u64,
    /// The version pinned now.
    pub to: u64,
    /// [`root_fingerprint`] of the root pinned now.
    pub fingerprint: String,
}

impl Advance {
    /// The one line that says so.
    pub fn line(&self) -> String {
        format!(
            "The trusted root advanced from v{} to v{}, the root applied on the server (fingerprint {}); recorded in the audit log.",
            self.from, self.to, self.fingerprint
        )
    }
}

/// Advances the pin at `path` to `root` (a root of a verified chain, newer than the pin).
pub fn advance(path: &Path, old: &Pin, root: &SignedRoot, now: &Timestamp) -> Result<()> {
    if root.signed.version <= old.root.signed.version {
        return Ok(());
    }
    let pin = Pin {
        factory: old.factory.clone(),
        fingerprint: root_fingerprint(root)?,
        pinned_at: *now,
        root: root.clone(),
    };
    write_pin(path, &pin, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn fingerprint_is_grouped_sha256() {
        let f = Factory::new();
        let fp = root_fingerprint(&f.chain[0]).unwrap();
        assert_eq!(fp.len(), 64 + 15);
        assert_eq!(fp.split(' ').count(), 16);
        assert_eq!(group_hex("abcdef"), "abcd ef");
    }

    #[test]
    fn init_show_and_refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("state"));
        let f = Factory::new();
        let root_file = tmp.path().join("root.json");
        std::fs::write(&root_file, f.chain[0].to_json().unwrap()).unwrap();
        let now = f.now;

        // No terminal and no --yes: refused, nothing pinned.
        let (mut ui, _) = Ui::scripted("", false, false);
        let e = init(&state, &mut ui, &root_file, Some("acme"), false, &now).unwrap_err();
        assert!(matches!(e, SignerError::NeedsConfirmation));
        assert!(!pin_path(&state, Some("acme")).unwrap().exists());

        let (mut ui, out) = Ui::scripted("yes\n", true, false);
        let p = init(&state, &mut ui, &root_file, Some("acme"), false, &now).unwrap();
        assert!(out.text().contains("fingerprint:"));
        let (_, pin) = load_pin(&state, "acme").unwrap();
        assert_eq!(pin.root, f.chain[0]);
        assert_eq!(p, pin_path(&state, Some("acme")).unwrap());

        // A second init is refused.
        let (mut ui, _) = Ui::scripted("", false, true);
        assert!(matches!(
            init(&state, &mut ui, &root_file, Some("acme"), false, &now),
            Err(SignerError::PinExists { .. })
        ));
        // Another factory has no pin.
        assert!(matches!(
            load_pin(&state, "other"),
            Err(SignerError::NoPin { .. })
        ));
        let (mut ui, out) = Ui::scripted("", false, false);
        show(&state, &mut ui, false).unwrap();
        assert!(out.text().contains("acme"));

        // Expired root: refused unless allowed.
        let later = now.plus_days(5000);
        let (mut ui, _) = Ui::scripted("", false, true);
        assert!(matches!(
            init(&state, &mut ui, &root_file, None, false, &later),
            Err(SignerError::Expired { .. })
        ));
        init(&state, &mut ui, &root_file, None, true, &later).unwrap();
        // The any-factory pin now serves "other".
        assert!(load_pin(&state, "other").is_ok());
    }

    #[test]
    fn unsigned_root_cannot_be_pinned() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path());
        let f = Factory::new();
        let mut r = f.chain[0].clone();
        r.signatures.clear();
        let root_file = tmp.path().join("root.json");
        std::fs::write(&root_file, r.to_json().unwrap()).unwrap();
        let (mut ui, _) = Ui::scripted("", false, true);
        assert!(init(&state, &mut ui, &root_file, None, false, &f.now).is_err());
    }

    #[test]
    fn chain_checks() {
        let mut f = Factory::new();
        f.apply_first_time_rotation();
        let pinned = f.chain[0].clone();
        let cur = f.chain.last().unwrap().clone();
        let ok = check_chain(&pinned, &f.chain, &cur, &f.now, false).unwrap();
        assert!(ok.advances());
        assert_eq!(ok.current_version, 2);

        // A chain that does not start at the pin: a root from another factory.
        let other = Factory::with_seed(77);
        assert!(matches!(
            check_chain(&other.chain[0], &f.chain, &cur, &f.now, false),
            Err(SignerError::Chain { .. })
        ));
        // Current root differing from the chain's end.
        assert!(matches!(
            check_chain(&pinned, &f.chain[..1], &cur, &f.now, false),
            Err(SignerError::Chain { .. })
        ));
        // Expired current root.
        let later = cur.signed.expires.plus_days(1);
        assert!(matches!(
            check_chain(&pinned, &f.chain, &cur, &later, false),
            Err(SignerError::Expired { .. })
        ));
        assert!(check_chain(&pinned, &f.chain, &cur, &later, true).is_ok());
        // Expired pin that is also the current root.
        let first = &f.chain[0];
        let later = first.signed.expires.plus_days(1);
        assert!(matches!(
            check_chain(first, &f.chain[..1], first, &later, false),
            Err(SignerError::Expired { .. })
        ));
    }

    #[test]
    fn advance_only_forward() {
        let tmp = tempfile::tempdir().unwrap();
        let mut f = Factory::new();
        let path = tmp.path().join("p.json");
        let pin = Pin {
            factory: None,
            fingerprint: root_fingerprint(&f.chain[0]).unwrap(),
            pinned_at: f.now,
            root: f.chain[0].clone(),
        };
        write_pin(&path, &pin, true).unwrap();
        f.apply_first_time_rotation();
        advance(&path, &pin, &f.chain[1], &f.now).unwrap();
        let p2 = read_pin(&path).unwrap();
        assert_eq!(p2.root.signed.version, 2);
        // Going back is a no-op.
        advance(&path, &p2, &f.chain[0], &f.now).unwrap();
        assert_eq!(read_pin(&path).unwrap().root.signed.version, 2);
    }
}
