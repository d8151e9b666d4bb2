//! `signer keys encrypt` and `signer keys decrypt`: a keys tarball converted between plain
//! (`root.keys.tgz`, what fioctl reads) and encrypted at rest with a passphrase
//! (`root.keys.tgz.age`: age, scrypt — the format [`crate::keystore`] reads and writes).
//!
//! Nothing is lost on the way:
//!
//! 1. the source is opened and checked as a keys tarball (a bundle or a root.json given by
//!    mistake is refused as such), decrypting it first when it is encrypted;
//! 2. the output must not exist (nor leftovers of an interrupted write next to it) and its
//!    name must say what it is (`.age` for encrypted, no `.age` for plain), because the
//!    keystore tells encrypted files by their name;
//! 3. the output is written to a temporary file in its directory, synced and renamed (mode
//!    0600, never over an existing file);
//! 4. it is read back from the medium (page cache dropped) and, decrypted if encrypted —
//!    which proves the passphrase just typed opens it —, must be **byte for byte** the
//!    source's plaintext and open to the same keys; otherwise it is removed again and the
//!    source is untouched;
//! 5. only then, and only with `--remove-source`, is the source removed (and its directory
//!    synced). By default it is kept: removing the plain file after encrypting is the
//!    person's decision (on flash media and SSDs its bytes may stay readable until they
//!    are overwritten, so a plain keys file should only ever be on media kept as safely).
//!
//! Encrypting keeps the source's bytes as they are (a tarball fioctl wrote stays fioctl's
//! file once decrypted again), so `decrypt(encrypt(x))` is `x`. The passphrase comes from
//! `--passphrase-file`, `SIGNER_KEYS_PASSPHRASE` or the terminal (asked twice when
//! encrypting, [`crate::keystore::PassphraseSource`]). The conversion is recorded in the
//! audit log (`keys-file-converted`).

use std::path::{Path, PathBuf};

use clap::Args;
use sha2::{Digest, Sha256};
use shared::fsutil;
use shared::keys::KeyId;
use zeroize::Zeroizing;

use super::files::{
    first_difference, open_back, read_back, refuse_existing, same_keys, write_secret_file,
};
use super::list::list_keys;
use super::{tarball_err, KeysError};
use crate::audit::{self, AuditEvent};
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::{self, KeystoreError, PassphraseArgs, PassphraseSource};

/// Options of `signer keys encrypt` and `signer keys decrypt`.
#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// The keys tarball to convert (encrypt: a plain *.tgz; decrypt: a *.tgz.age).
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The file to write (must not exist). Default: the same name with .age added
    /// (encrypt) or removed (decrypt).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Remove the source once the new file was read back and holds exactly the same keys
    /// (default: keep it).
    #[arg(long)]
    pub remove_source: bool,
    /// The passphrase of the encrypted file.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// The form a conversion produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Encrypted with a passphrase (`*.tgz.age`).
    Encrypted,
    /// Plain (`*.tgz`): the private keys unencrypted.
    Plain,
}

impl Form {
    /// The name of the form in messages and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Encrypted => "encrypted",
            Form::Plain => "plain",
        }
    }
}

/// Why a conversion did not happen (or did not finish). Messages name the files and never
/// contain key material or the passphrase.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    /// Opening, checking or writing failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// The source is already in the requested form.
    #[error("{path} is already {}; nothing was written. {advice}", .form.as_str())]
    AlreadyInForm {
        /// The source.
        path: PathBuf,
        /// Its form.
        form: Form,
        /// What to do instead.
        advice: &'static str,
    },
    /// The output's name does not say its form.
    #[error(
        "{out}: the name of {} keys file must {} in .age (encrypted keys files are told by their \
         name); use --out {suggested}",
        if *.form == Form::Encrypted { "an encrypted" } else { "a plain" },
        if *.form == Form::Encrypted { "end" } else { "not end" }
    )]
    OutName {
        /// The output given.
        out: PathBuf,
        /// The form it would hold.
        form: Form,
        /// A name that works.
        suggested: PathBuf,
    },
    /// The written file does not read back to the source's content.
    #[error(
        "{out} does not read back to the content of {source_file}: {reason}. It was removed; \
         {source_file} is unchanged (the medium may be faulty: try another directory with --out)"
    )]
    Mismatch {
        /// The written file (removed).
        out: PathBuf,
        /// The source.
        source_file: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The output was written and verified, but the source could not be removed.
    #[error(
        "{out} was written and verified, but {source_file} could not be removed ({reason}); \
         remove it by hand"
    )]
    RemoveSource {
        /// The verified output.
        out: PathBuf,
        /// The source.
        source_file: PathBuf,
        /// The operating system's reason.
        reason: std::io::Error,
    },
}

impl AtRestError {
    /// Whether the command line itself is wrong (exit status 2): a usage error of the keys
    /// file. A source already in the asked form, or an `--out` whose name says the other
    /// form, is refused naming the file and what to give instead, with exit status 1 like
    /// the other refusals of a file given in the wrong place.
    pub fn is_usage(&self) -> bool {
        match self {
            AtRestError::Keys(e) => e.is_usage(),
            _ => false,
        }
    }
}

impl From<KeystoreError> for AtRestError {
    fn from(e: KeystoreError) -> AtRestError {
        AtRestError::Keys(e.into())
    }
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The file written.
    pub out: PathBuf,
    /// Its form.
    pub form: Form,
    /// The keys it holds: key id, and a description (type, what the key is, whether only
    /// its public half is there).
    pub keys: Vec<(KeyId, String)>,
    /// SHA-256 (hex) of the file written.
    pub sha256: String,
    /// Whether the source was removed.
    pub source_removed: bool,
}

/// The default output for converting `src` to `form`.
pub fn default_out(src: &Path, form: Form) -> PathBuf {
    match form {
        Form::Encrypted => keystore::with_suffix(src),
        Form::Plain => keystore::without_suffix(src),
    }
}

/// Converts the keys tarball `src` to `form` in `out` (default [`default_out`]); see the
/// module documentation for the steps.
pub fn convert(
    src: &Path,
    out: Option<&Path>,
    form: Form,
    pass: &PassphraseSource,
    remove_source: bool,
) -> Result<Converted, AtRestError> {
    let encrypted_src = keystore::is_encrypted_path(src);
    match (form, encrypted_src) {
        (Form::Encrypted, true) => {
            return Err(AtRestError::AlreadyInForm {
                path: src.to_path_buf(),
                form: Form::Encrypted,
                advice: "To change its passphrase, `signer keys decrypt` it, then `signer keys encrypt` the result with the new one",
            })
        }
        (Form::Plain, false) => {
            return Err(AtRestError::AlreadyInForm {
                path: src.to_path_buf(),
                form: Form::Plain,
                advice: "fioctl and the signer read it as it is",
            })
        }
        _ => {}
    }
    let out = out.map_or_else(|| default_out(src, form), Path::to_path_buf);
    if keystore::is_encrypted_path(&out) != (form == Form::Encrypted) {
        return Err(AtRestError::OutName {
            suggested: default_out(&keystore::without_suffix(&out), form),
            out,
            form,
        });
    }
    refuse_existing(&out)?;
    keystore::refuse_leftovers(&out)?;

    let raw = Zeroizing::new(keystore::read_raw(src)?);
    let plain = keystore::plaintext(src, &raw, pass)?;
    let tarball = keystore::parse(src, &plain)?;
    let bytes = match form {
        Form::Encrypted => keystore::encrypt(&out, &plain, pass, true)?,
        Form::Plain => Zeroizing::new(plain.to_vec()),
    };
    write_secret_file(&out, &bytes)?;

    let checked = read_back(&out).and_then(|back| {
        let (back_plain, back_tarball) = open_back(&out, &back, pass)?;
        if let Some(reason) = first_difference(&back_plain, &plain) {
            return Err(reason);
        }
        match same_keys(&tarball, &back_tarball, &out) {
            Ok(true) => Ok(()),
            Ok(false) => Err("it opens to different keys".to_string()),
            Err(e) => Err(e.to_string()),
        }
    });
    if let Err(reason) = checked {
        let _ = fsutil::remove_durably(&out);
        return Err(AtRestError::Mismatch {
            out,
            source_file: src.to_path_buf(),
            reason,
        });
    }

    let keys = list_keys(&tarball, None)
        .map_err(tarball_err(src))?
        .into_iter()
        .map(|k| {
            let what = format!(
                "{} {}{}",
                k.keytype,
                k.what(),
                if k.sec_file.is_some() {
                    ""
                } else {
                    ", public key only"
                }
            );
            (k.keyid, what)
        })
        .collect();
    if remove_source {
        fsutil::remove_durably(src).map_err(|reason| AtRestError::RemoveSource {
            out: out.clone(),
            source_file: src.to_path_buf(),
            reason,
        })?;
    }
    Ok(Converted {
        out,
        form,
        keys,
        sha256: hex::encode(Sha256::digest(&bytes[..])),
        source_removed: remove_source,
    })
}

/// Runs `signer keys encrypt`: the keys file converted to its encrypted form.
pub fn run_encrypt(ctx: &mut Ctx<'_>, a: &ConvertArgs) -> Result<Converted, SignerError> {
    run(ctx, a, Form::Encrypted)
}

/// Runs `signer keys decrypt`: the keys file converted to its plain form.
pub fn run_decrypt(ctx: &mut Ctx<'_>, a: &ConvertArgs) -> Result<Converted, SignerError> {
    run(ctx, a, Form::Plain)
}

/// Converts to `form`, records the conversion in the audit log and says what was checked
/// and what became of the source.
fn run(ctx: &mut Ctx<'_>, a: &ConvertArgs, form: Form) -> Result<Converted, SignerError> {
    let state_dir = ctx.state.path();
    audit::verify(state_dir)?;
    let done = convert(
        &a.keys,
        a.out.as_deref(),
        form,
        &a.passphrase.source(),
        a.remove_source,
    )?;
    audit::record(
        state_dir,
        &ctx.now,
        AuditEvent::KeysFileConverted {
            source: a.keys.display().to_string(),
            output: done.out.display().to_string(),
            form: form.as_str().to_string(),
            keyids: done.keys.iter().map(|(k, _)| k.clone()).collect(),
            source_removed: done.source_removed,
        },
    )?;
    let ui = &mut *ctx.ui;
    let (src, dst) = (a.keys.display(), done.out.display());
    match form {
        Form::Encrypted => ui.line(format!(
            "Encrypted {src} into {dst} (age, passphrase with scrypt; mode 0600)."
        )),
        Form::Plain => ui.line(format!(
            "Decrypted {src} into {dst} (mode 0600): its private keys are UNENCRYPTED in that file."
        )),
    }
    ui.line(format!(
        "Verified: {dst} was read back from the medium{} and holds exactly the content of {src}, {} key(s):",
        if form == Form::Encrypted {
            ", decrypts with that passphrase"
        } else {
            ""
        },
        done.keys.len()
    ));
    for (keyid, what) in &done.keys {
        ui.line(format!("  {keyid} ({what})"));
    }
    match (form, done.source_removed) {
        (_, true) => ui.line(format!(
            "Removed {src}. On flash media and SSDs its bytes may stay readable until they are overwritten."
        )),
        (Form::Encrypted, false) => ui.line(format!(
            "{src} is kept, UNENCRYPTED: remove it yourself once you no longer need it (or convert with --remove-source)."
        )),
        (Form::Plain, false) => ui.line(format!("{src} is kept.")),
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::fixtures::{pass, tarball_with};
    use shared::metadata::Role;

    fn plain_tarball(dir: &Path) -> PathBuf {
        let t = tarball_with(&[(Role::Root, [1; 32]), (Role::Targets, [2; 32])]);
        let p = dir.join("root.keys.tgz");
        keystore::save_new(&p, &t, &pass("unused")).unwrap();
        p
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip_keeps_the_bytes_and_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let src = plain_tarball(dir.path());
        let original = std::fs::read(&src).unwrap();
        let enc = convert(&src, None, Form::Encrypted, &pass("pw"), false).unwrap();
        assert_eq!(enc.out, dir.path().join("root.keys.tgz.age"));
        assert_eq!(enc.keys.len(), 2);
        assert!(src.exists() && !enc.source_removed);
        assert_eq!(mode(&enc.out), 0o600);
        assert!(std::fs::read(&enc.out)
            .unwrap()
            .starts_with(b"age-encryption.org/"));

        // Decrypting needs the passphrase, and gives back the very bytes.
        let back = dir.path().join("back.keys.tgz");
        let err = convert(&enc.out, Some(&back), Form::Plain, &pass("wrong"), false).unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        assert!(!back.exists());
        let dec = convert(&enc.out, Some(&back), Form::Plain, &pass("pw"), true).unwrap();
        assert!(dec.source_removed && !enc.out.exists());
        assert_eq!(std::fs::read(&back).unwrap(), original);
        assert_eq!(mode(&back), 0o600);
    }

    #[test]
    fn refusals_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = plain_tarball(dir.path());
        let p = pass("pw");
        // Already in the form asked for.
        let err = convert(&src, None, Form::Plain, &p, false).unwrap_err();
        assert!(matches!(err, AtRestError::AlreadyInForm { .. }), "{err}");
        // An output name that does not say its form.
        let err = convert(
            &src,
            Some(&dir.path().join("x.tgz")),
            Form::Encrypted,
            &p,
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--out"), "{err}");
        // Never over an existing file.
        let existing = dir.path().join("root.keys.tgz.age");
        std::fs::write(&existing, b"keep me").unwrap();
        let err = convert(&src, None, Form::Encrypted, &p, true).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
        assert!(src.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary file left");
    }
}
