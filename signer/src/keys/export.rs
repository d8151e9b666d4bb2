//! `signer keys export-root --keys T --out FILE --i-understand-this-exports-a-private-key`:
//! the active root private key (per the reference root, [`super::reference`]) as a plain
//! fioctl key file (`.sec` JSON), mode 0600, never over an existing file, and only with the
//! explicit flag.

use std::path::{Path, PathBuf};

use clap::Args;
use shared::keys::KeyId;

use super::files::{refuse_existing, write_secret_file};
use super::reference::{active_root_key, ActiveKeyArgs, ActiveRootKey, ReferenceRoot};
use super::KeysError;
use crate::audit::{self, AuditEvent};
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::{self, PassphraseArgs, PassphraseSource};

/// The flag that confirms `export-root`.
pub const EXPORT_FLAG: &str = "--i-understand-this-exports-a-private-key";

/// Options of `signer keys export-root`.
#[derive(Debug, Clone, Args)]
pub struct ExportRootArgs {
    /// The keys tarball and the root that names its active key.
    #[command(flatten)]
    pub key: ActiveKeyArgs,
    /// The key file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Confirms that a private key is to be written unencrypted.
    #[arg(long = "i-understand-this-exports-a-private-key")]
    pub confirmed: bool,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Writes the active root private key of the tarball at `keys` (per `reference`) to `out`
/// (fioctl `.sec` JSON, mode 0600, never over an existing file). `confirmed` is the explicit
/// flag.
pub fn export_root(
    keys: &Path,
    reference: &ReferenceRoot,
    out: &Path,
    confirmed: bool,
    pass: &PassphraseSource,
) -> Result<ActiveRootKey, KeysError> {
    if !confirmed {
        return Err(KeysError::ExportNotConfirmed {
            out: out.to_path_buf(),
        });
    }
    refuse_existing(out)?;
    let tarball = keystore::open(keys, pass)?;
    let active = active_root_key(keys, &tarball, reference)?;
    write_secret_file(out, &active.key.to_json())?;
    Ok(active)
}

/// The frame of the commands that write the active root key out of its tarball
/// (`export-root`, `print`): the audit log verified, the reference root of `key`
/// resolved, `write` run with it and the tarball's path, and the export recorded in the audit log as `form` at
/// `out`. Returns the reference root and the key written.
pub(super) fn export_active(
    ctx: &Ctx<'_>,
    key: &ActiveKeyArgs,
    form: &str,
    out: &Path,
    write: impl FnOnce(&Path, &ReferenceRoot) -> Result<ActiveRootKey, KeysError>,
) -> Result<(ReferenceRoot, ActiveRootKey), SignerError> {
    let state_dir = ctx.state.path();
    audit::verify(state_dir)?;
    let reference = ReferenceRoot::resolve(state_dir, &key.root)?;
    let active = write(&key.keys, &reference)?;
    audit::record(
        state_dir,
        &ctx.now,
        AuditEvent::KeyExported {
            keyid: active.keyid.clone(),
            form: form.to_string(),
            path: out.display().to_string(),
        },
    )?;
    Ok((reference, active))
}

/// Runs `signer keys export-root`: refuses without the flag (a usage error) before anything
/// is read, writes the key file, records the export in the audit log and says what to do
/// with the file. Returns the exported key's id.
pub fn run(ctx: &mut Ctx<'_>, a: &ExportRootArgs) -> Result<KeyId, SignerError> {
    if !a.confirmed {
        return Err(KeysError::ExportNotConfirmed { out: a.out.clone() }.into());
    }
    let (reference, active) =
        export_active(ctx, &a.key, "json-file", &a.out, |keys, reference| {
            export_root(keys, reference, &a.out, a.confirmed, &a.passphrase.source())
        })?;
    ctx.ui.line(format!(
        "Wrote the root private key {} ({}) to {} (mode 0600): the active root key of {}.",
        active.keyid,
        active.key.public_key().keytype(),
        a.out.display(),
        reference.describe()
    ));
    ctx.ui.line(format!(
        "It has the content of {} in the tarball. Anyone who can read this file can sign \
         your factory's TUF root: move it to its safe place now and delete it here.",
        active.sec_file
    ));
    Ok(active.keyid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::fixtures::{pass, reference, rotated};
    use shared::keys::PrivateKey;

    #[test]
    fn export_needs_flag_and_refuses_overwrite() {
        let (f, t) = rotated();
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("root.keys.tgz");
        keystore::save_new(&keys, &t, &pass("pw")).unwrap();
        let v2 = reference(&f.chain[1], true, None);
        let out = dir.path().join("root.sec");
        let err = export_root(&keys, &v2, &out, false, &pass("pw")).unwrap_err();
        assert!(err.to_string().contains(EXPORT_FLAG));
        assert!(!out.exists());
        let k = export_root(&keys, &v2, &out, true, &pass("pw")).unwrap();
        let back = PrivateKey::from_json(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(back.keyid(), &k.keyid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            export_root(&keys, &v2, &out, true, &pass("pw")).unwrap_err(),
            KeysError::OutputExists { .. }
        ));
    }
}
