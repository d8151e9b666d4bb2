//! `signer keys print` and `signer keys restore`: a paper backup of the active root key
//! (numbered hex lines with a check code each, the keyid, key type and dates, QR codes; the
//! layout is [`super::sheet`]) and the key rebuilt from it — every line's check code
//! verified, the rebuilt key's keyid compared with the sheet's — into a keys tarball.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use shared::fsutil;
use shared::keys::KeyId;
use shared::metadata::{Role, Timestamp};
use zeroize::Zeroizing;

use super::export::export_active;
use super::files::{add_restored_key, print_restored, refuse_existing, write_secret_file};
use super::reference::{active_root_key, ActiveKeyArgs, ActiveRootKey, ReferenceRoot};
use super::{sheet, KeysError};
use crate::audit::{self, AuditEvent};
use crate::cli::OfflineRole;
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::{self, PassphraseArgs, PassphraseSource};

/// Largest paper sheet / groups file read.
const MAX_SHEET_FILE: u64 = 4 * 1024 * 1024;

/// Options of `signer keys print`.
#[derive(Debug, Clone, Args)]
pub struct PrintArgs {
    /// The keys tarball and the root that names its active key.
    #[command(flatten)]
    pub key: ActiveKeyArgs,
    /// The sheet to write (a text file for printing; must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Options of `signer keys restore`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["from", "groups_file"])))]
pub struct RestoreArgs {
    /// The paper sheet as written by `keys print` (or retyped, in full).
    #[arg(long, value_name = "SHEET")]
    pub from: Option<PathBuf>,
    /// A file with only the typed lines (`001: xxxx … | cccc`) or the scanned QR texts;
    /// give --keyid if it has no `keyid:` line.
    #[arg(long, value_name = "FILE")]
    pub groups_file: Option<PathBuf>,
    /// The keyid printed on the sheet (required if the file has none; must match if it has).
    #[arg(long, value_name = "KEYID")]
    pub keyid: Option<KeyId>,
    /// The keys tarball to add the key to (created if missing; *.tgz.age is encrypted).
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The role the key is stored for (file name fioctl-<role>-<keyid>).
    #[arg(long, value_enum, ignore_case = true, default_value = "root")]
    pub role: OfflineRole,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Writes a paper sheet, printed at `printed_at`, for the active root key of the tarball at
/// `keys` (per `reference`) to `out`.
pub fn print_sheet(
    keys: &Path,
    reference: &ReferenceRoot,
    out: &Path,
    pass: &PassphraseSource,
    printed_at: &Timestamp,
) -> Result<ActiveRootKey, KeysError> {
    refuse_existing(out)?;
    let tarball = keystore::open(keys, pass)?;
    let active = active_root_key(keys, &tarball, reference)?;
    let info = sheet::SheetInfo {
        role: "root".to_string(),
        created_at: active.created_at.clone(),
        printed_at: printed_at.to_string(),
        source: keys
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let text = sheet::render(&active.key, &info).map_err(|problem| KeysError::Sheet {
        source_file: keys.to_path_buf(),
        problem,
    })?;
    write_secret_file(out, text.as_bytes())?;
    Ok(active)
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The restored key's id.
    pub keyid: KeyId,
    /// Key type as written.
    pub keytype: String,
    /// The `.sec` entry added.
    pub sec_file: String,
    /// Whether the tarball was created.
    pub created_tarball: bool,
    /// Whether the key came from scanned QR texts (not from numbered lines).
    pub from_qr: bool,
}

/// Reads and parses a paper sheet, groups file or scanned QR texts (every line's check code
/// verified; errors name the file and the line).
pub fn read_sheet(source: &Path) -> Result<sheet::ParsedSheet, KeysError> {
    read_sheet_text(source).map(|(_, parsed)| parsed)
}

/// [`read_sheet`], also returning the sheet's text (secret: zeroized on drop).
pub fn read_sheet_text(
    source: &Path,
) -> Result<(Zeroizing<String>, sheet::ParsedSheet), KeysError> {
    let sheet_err = |problem| KeysError::Sheet {
        source_file: source.to_path_buf(),
        problem,
    };
    let bytes = Zeroizing::new(fsutil::read_limited(source, MAX_SHEET_FILE)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| sheet_err(sheet::SheetError::NotText))?;
    let parsed = sheet::parse(text).map_err(sheet_err)?;
    Ok((Zeroizing::new(text.to_string()), parsed))
}

/// Rebuilds the key on the sheet / groups file `source` and adds it to the tarball at
/// `keys` (created if missing) for `role`. `expected` is a keyid given on the command line.
pub fn restore(
    source: &Path,
    expected: Option<&KeyId>,
    keys: &Path,
    role: Role,
    pass: &PassphraseSource,
) -> Result<RestoreReport, KeysError> {
    let parsed = read_sheet(source)?;
    let key = parsed
        .rebuild(expected)
        .map_err(|problem| KeysError::Sheet {
            source_file: source.to_path_buf(),
            problem,
        })?;
    let (sec_file, created_tarball) = add_restored_key(&key, keys, role, pass)?;
    Ok(RestoreReport {
        sec_file,
        keyid: key.keyid().clone(),
        keytype: key.public_key().keytype().to_string(),
        created_tarball,
        from_qr: parsed.from_qr,
    })
}

/// Runs `signer keys print`: writes the sheet, records the export in the audit log and says
/// how to check the printout. Returns the key's id.
pub fn run_print(ctx: &mut Ctx<'_>, a: &PrintArgs) -> Result<KeyId, SignerError> {
    let now = ctx.now;
    let (reference, active) = export_active(ctx, &a.key, "paper", &a.out, |keys, reference| {
        print_sheet(keys, reference, &a.out, &a.passphrase.source(), &now)
    })?;
    ctx.ui.line(format!(
        "Wrote the paper backup of root key {} to {} (mode 0600): the active root key of {}.",
        active.keyid,
        a.out.display(),
        reference.describe()
    ));
    ctx.ui.line(format!(
        "Print it (monospaced font, no scaling), check it with `signer keys restore \
         --from {} --keys /tmp/check.keys.tgz`, then delete the file.",
        a.out.display()
    ));
    Ok(active.keyid)
}

/// Runs `signer keys restore`: rebuilds the key, adds it to the tarball, records the
/// restore in the audit log and says what was checked.
pub fn run_restore(ctx: &mut Ctx<'_>, a: &RestoreArgs) -> Result<RestoreReport, SignerError> {
    let source = a.from.as_ref().or(a.groups_file.as_ref()).ok_or_else(|| {
        SignerError::Usage(
            "give the sheet with --from SHEET or the lines with --groups-file FILE".into(),
        )
    })?;
    let state_dir = ctx.state.path();
    audit::verify(state_dir)?;
    let role = Role::from(a.role);
    let report = restore(
        source,
        a.keyid.as_ref(),
        &a.keys,
        role,
        &a.passphrase.source(),
    )?;
    audit::record(
        state_dir,
        &ctx.now,
        AuditEvent::KeyRestored {
            keyid: report.keyid.clone(),
            role: role.as_str().to_string(),
            tarball: a.keys.display().to_string(),
            source: source.display().to_string(),
        },
    )?;
    let how = if report.from_qr {
        "All QR parts were read"
    } else {
        "Every line's check code matched"
    };
    ctx.ui.line(format!(
        "{how} and the rebuilt {} key has the sheet's keyid {}.",
        report.keytype, report.keyid
    ));
    print_restored(ctx.ui, report.created_tarball, &a.keys, &report.sec_file);
    Ok(report)
}
