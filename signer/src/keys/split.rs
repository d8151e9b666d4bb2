//! `signer keys split` and `signer keys combine`: the active root key split into printable
//! Shamir shares for safes in different places, and restored from any K of them.
//!
//! The sharing itself is [`shared::shamir`] (GF(2⁸), byte by byte), with the run's random
//! number generator ([`Ctx::rng`]); the sheets are the paper sheets of [`super::sheet`]
//! (numbered hex lines with a check code each, QR codes), rendered through its
//! [`SheetLayout`](super::sheet::SheetLayout) with a share payload instead of a key.
//!
//! # The share payload (`offline-tuf key share v1`)
//!
//! The numbered lines (and the QR texts, `OTK1 SHARE <KEYID> <part>/<parts> <HEX>`) carry
//!
//! ```text
//! byte 0      format version (1)
//! byte 1      share number x (1..=N)
//! byte 2      threshold K
//! byte 3      number of shares N
//! byte 4      key type of the secret (1 = ED25519 seed, 2 = RSA PKCS#1 PEM)
//! bytes 5-12  split set: 8 random bytes, the same on every sheet of one split
//! bytes 13-   the share's bytes, one per byte of the secret (the paper payload of the key)
//! ```
//!
//! so everything `combine` needs is covered by the check codes and needs no retyped
//! header. The printed header (`factory:`, `keyid:`, `share:`, `threshold:`, `split set:`) is
//! for people; `combine` reads `factory:` to refuse sheets of another factory, and the keyid
//! of the rebuilt key must equal the sheets' keyid, which catches any remaining mix-up.

use std::path::{Path, PathBuf};

use clap::Args;
use rand_core::CryptoRngCore;
use shared::keys::{KeyId, KeyType, PrivateKey};
use shared::metadata::{Role, Timestamp};
use shared::shamir::{self, Share};
use zeroize::Zeroizing;

use super::files::{add_restored_key, print_restored, refuse_existing, write_secret_file};
use super::paper::read_sheet_text;
use super::reference::{active_root_key, ReferenceRoot, RootArgs};
use super::sheet;
use super::KeysError;
use crate::audit::{self, AuditEvent};
use crate::cli::OfflineRole;
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::keystore::{self, PassphraseArgs, PassphraseSource};

/// Format line of a share sheet.
pub const SHARE_FORMAT: &str = "offline-tuf key share v1";
/// Version byte of the share payload.
const PAYLOAD_VERSION: u8 = 1;
/// Bytes before the share's own bytes.
const HEADER_LEN: usize = 13;
/// The QR type field of share sheets.
const QR_TYPE: &str = "SHARE";

/// Errors of `keys split` / `keys combine`. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Reading the tarball, a sheet, or writing failed.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// K and N are not usable.
    #[error("--threshold {threshold} of --shares {shares}: {reason}")]
    Parameters {
        /// K.
        threshold: usize,
        /// N.
        shares: usize,
        /// Why.
        reason: String,
    },
    /// One sheet is not a usable share.
    #[error("{sheet}: {problem}")]
    Sheet {
        /// The sheet.
        sheet: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The sheets do not form one split of one key.
    #[error("{0}; nothing was written")]
    Set(String),
    /// Fewer shares than the threshold.
    #[error(
        "{given} share(s) given ({numbers}) but this split needs {threshold} of {shares}; fewer \
         than the threshold reveal nothing about the key; nothing was written"
    )]
    TooFew {
        /// Sheets given.
        given: usize,
        /// Their share numbers.
        numbers: String,
        /// K.
        threshold: usize,
        /// N.
        shares: usize,
    },
}

impl SplitError {
    /// Whether the command line itself is wrong (exit status 2): K and N that cannot make a
    /// split, or a usage error of the keys file or pin.
    pub fn is_usage(&self) -> bool {
        match self {
            SplitError::Parameters { .. } => true,
            SplitError::Keys(e) => e.is_usage(),
            _ => false,
        }
    }
}

/// Options of `signer keys split`.
#[derive(Debug, Clone, Args)]
pub struct SplitArgs {
    /// The keys tarball holding the active root key.
    #[arg(long, value_name = "TARBALL")]
    pub keys: PathBuf,
    /// The root whose root role names the active key (default: the root pinned on this
    /// machine for --factory).
    #[arg(long, value_name = "ROOT.json")]
    pub root: Option<PathBuf>,
    /// The factory name, printed on every sheet and checked by `combine --factory`; its
    /// pinned root names the active key unless --root is given.
    #[arg(long, value_name = "NAME")]
    pub factory: String,
    /// How many sheets to write (N, at most 255).
    #[arg(long, value_name = "N")]
    pub shares: usize,
    /// How many sheets restore the key (K, 2 ≤ K ≤ N); fewer reveal nothing.
    #[arg(long, value_name = "K")]
    pub threshold: usize,
    /// The directory for the sheets (created if missing; existing sheets are never
    /// overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Passphrase options for encrypted tarballs.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

/// Options of `signer keys combine`.
#[derive(Debug, Clone, Args)]
pub struct CombineArgs {
    /// The share sheets (as written by `keys split`, or retyped in full), at least the
    /// threshold of them.
    #[arg(value_name = "SHEET", required = true)]
    pub sheets: Vec<PathBuf>,
    /// The keys tarball to add the restored key to (created if missing; *.tgz.age is
    /// encrypted).
    #[arg(long, value_name = "TARBALL")]
    pub out: PathBuf,
    /// Refuse sheets of any other factory.
    #[arg(long, value_name = "NAME")]
    pub factory: Option<String>,
    /// The role the key is stored for (file name fioctl-<role>-<keyid>).
    #[arg(long, value_enum, ignore_case = true, default_value = "root")]
    pub role: OfflineRole,
    /// Passphrase options for an encrypted output tarball.
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

fn keytype_byte(kt: KeyType) -> u8 {
    match kt {
        KeyType::Ed25519 => 1,
        KeyType::Rsa => 2,
    }
}

/// File name of share `x` of `n`.
pub fn sheet_name(factory: &str, x: usize, n: usize) -> String {
    let safe: String = factory
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-root-share-{x}-of-{n}.txt")
}

/// What [`split`] wrote.
#[derive(Debug)]
pub struct SplitReport {
    /// The key that was split.
    pub keyid: KeyId,
    /// The sheets, share 1 first.
    pub sheets: Vec<PathBuf>,
    /// The split set id (hex).
    pub set: String,
}

/// Splits the active root key of the tarball at `a.keys` (per `--root`, else the root pinned
/// in the state directory `state` for `a.factory`) into `a.shares` sheets in `a.out`,
/// printed at `now`; the shares and the split-set id come from `rng`.
pub fn split(
    a: &SplitArgs,
    state: &Path,
    pass: &PassphraseSource,
    now: &Timestamp,
    rng: &mut dyn CryptoRngCore,
) -> Result<SplitReport, SplitError> {
    let params = |reason: String| SplitError::Parameters {
        threshold: a.threshold,
        shares: a.shares,
        reason,
    };
    if a.threshold < 2 || a.threshold > a.shares || a.shares > 255 {
        return Err(params(
            "need 2 ≤ threshold ≤ shares ≤ 255 (a threshold of 1 would make every sheet the whole key)"
                .to_string(),
        ));
    }
    let sheets: Vec<PathBuf> = (1..=a.shares)
        .map(|x| a.out.join(sheet_name(&a.factory, x, a.shares)))
        .collect();
    for s in &sheets {
        refuse_existing(s)?;
    }
    let tarball = keystore::open(&a.keys, pass).map_err(KeysError::from)?;
    let reference = ReferenceRoot::resolve(
        state,
        &RootArgs {
            root: a.root.clone(),
            factory: Some(a.factory.clone()),
        },
    )?;
    let active = active_root_key(&a.keys, &tarball, &reference)?;
    let key = &active.key;
    let secret = sheet::payload(key).map_err(|problem| KeysError::Sheet {
        source_file: a.keys.clone(),
        problem,
    })?;
    let shares = shamir::split(&secret, a.threshold, a.shares, &mut &mut *rng)
        .map_err(|e| params(e.to_string()))?;
    let mut set = [0u8; 8];
    rng.fill_bytes(&mut set);
    let set_hex = hex::encode(set);
    let keytype = key.public_key().keytype().to_string();
    let printed = now.to_string();
    let source = a
        .keys
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(&a.out).map_err(|source| KeysError::Io {
        path: a.out.clone(),
        source,
    })?;
    for (share, path) in shares.iter().zip(&sheets) {
        let mut payload = Zeroizing::new(Vec::with_capacity(HEADER_LEN + share.y.len()));
        payload.extend_from_slice(&[
            PAYLOAD_VERSION,
            share.x,
            a.threshold as u8,
            a.shares as u8,
            keytype_byte(key.key_type()),
        ]);
        payload.extend_from_slice(&set);
        payload.extend_from_slice(&share.y);
        let hex = Zeroizing::new(hex::encode(&payload[..]));
        let (x, k, n) = (share.x, a.threshold, a.shares);
        let text = sheet::render_layout(&sheet::SheetLayout {
            title: format!("OFFLINE TUF ROOT KEY - SHARE {x} OF {n} (ANY {k} RESTORE IT)"),
            warning: vec![
                format!(
                    "SECRET. Any {k} of these {n} sheets rebuild the root key of {}.",
                    a.factory
                ),
                format!("Fewer than {k} reveal nothing about it. Keep each sheet in another safe;"),
                "never photograph or scan it with a networked device.".to_string(),
            ],
            headers: vec![
                ("format", SHARE_FORMAT.to_string()),
                ("factory", a.factory.clone()),
                ("keyid", key.keyid().to_string()),
                ("key type", keytype.clone()),
                ("share", format!("{x} of {n}")),
                ("threshold", k.to_string()),
                ("split set", set_hex.clone()),
                (
                    "created",
                    active
                        .created_at
                        .as_deref()
                        .unwrap_or("unknown")
                        .to_string(),
                ),
                ("printed", printed.clone()),
                ("from", source.clone()),
            ],
            restore: vec![
                format!("To restore, with any {k} sheets (every line and the keyid are verified):"),
                format!(
                    "  signer keys combine SHEET1 … SHEET{k} --factory {} --out root.keys.tgz",
                    a.factory
                ),
            ],
            hex: &hex,
            qr_type: QR_TYPE,
            qr_hex: &hex,
            keyid: key.keyid(),
        })
        .map_err(|problem| KeysError::Sheet {
            source_file: a.keys.clone(),
            problem,
        })?;
        if let Err(e) = write_secret_file(path, text.as_bytes()) {
            // Never leave a partial set behind: a lone sheet is useless and misleading.
            for written in sheets.iter().take_while(|p| *p != path) {
                let _ = std::fs::remove_file(written);
            }
            return Err(e.into());
        }
    }
    Ok(SplitReport {
        keyid: key.keyid().clone(),
        sheets,
        set: set_hex,
    })
}

/// One share sheet read back.
struct ShareSheet {
    path: PathBuf,
    factory: Option<String>,
    keyid: KeyId,
    x: u8,
    threshold: usize,
    shares: usize,
    keytype: KeyType,
    set: String,
    y: Zeroizing<Vec<u8>>,
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| sheet::header_value(l.trim(), name))
}

fn read_share(path: &Path) -> Result<ShareSheet, SplitError> {
    let bad = |problem: String| SplitError::Sheet {
        sheet: path.to_path_buf(),
        problem,
    };
    let (text, parsed) = read_sheet_text(path)?;
    let p = parsed.payload();
    if p.len() <= HEADER_LEN || p[0] != PAYLOAD_VERSION {
        return Err(bad(format!(
            "not a key share sheet ({SHARE_FORMAT}); a whole-key paper sheet is restored with \
             `signer keys restore --from`"
        )));
    }
    let (x, k, n) = (p[1], usize::from(p[2]), usize::from(p[3]));
    if x == 0 || k < 2 || k > n || usize::from(x) > n {
        return Err(bad(format!(
            "share {x} with threshold {k} of {n} is not a valid share"
        )));
    }
    let keytype = match p[4] {
        1 => KeyType::Ed25519,
        2 => KeyType::Rsa,
        other => return Err(bad(format!("unknown key type code {other}"))),
    };
    let keyid = match &parsed.keyid {
        Some(k) => KeyId::parse(k).map_err(|_| bad("the `keyid:` line is not a keyid".into()))?,
        None => {
            return Err(bad(
                "no `keyid:` line (it is printed under the title)".into()
            ))
        }
    };
    // The printed header must agree with the checked payload.
    if let Some(share) = header(&text, "share") {
        if share != format!("{x} of {n}") {
            return Err(bad(format!(
                "the header says share {share}, the lines hold share {x} of {n} (lines of another sheet?)"
            )));
        }
    }
    Ok(ShareSheet {
        path: path.to_path_buf(),
        factory: header(&text, "factory").map(str::to_string),
        keyid,
        x,
        threshold: k,
        shares: n,
        keytype,
        set: hex::encode(&p[5..HEADER_LEN]),
        y: Zeroizing::new(p[HEADER_LEN..].to_vec()),
    })
}

/// Share numbers as `1, 3, 5`.
fn numbers(used: &[u8]) -> String {
    used.iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`combine`] did.
#[derive(Debug)]
pub struct CombineReport {
    /// The restored key.
    pub keyid: KeyId,
    /// The factory on the sheets.
    pub factory: Option<String>,
    /// Share numbers used.
    pub used: Vec<u8>,
    /// K and N of the split.
    pub threshold: usize,
    /// N.
    pub shares: usize,
    /// The `.sec` entry written.
    pub sec_file: String,
    /// Whether the tarball was created.
    pub created_tarball: bool,
}

/// Reads the sheets and rebuilds the key they share (verified against its keyid).
pub fn rebuild(
    sheets: &[PathBuf],
    factory: Option<&str>,
) -> Result<(PrivateKey, CombineReport), SplitError> {
    let read: Vec<ShareSheet> = sheets
        .iter()
        .map(|p| read_share(p))
        .collect::<Result<_, _>>()?;
    let first = &read[0];
    let name = |s: &ShareSheet| s.path.display().to_string();
    for s in &read {
        match (factory, s.factory.as_deref()) {
            (Some(want), Some(got)) if want != got => {
                return Err(SplitError::Set(format!(
                    "{} is a share of factory {got}, not {want}",
                    name(s)
                )))
            }
            (Some(want), None) => {
                return Err(SplitError::Set(format!(
                    "{} has no `factory:` line, so it cannot be checked against {want}",
                    name(s)
                )))
            }
            _ => {}
        }
        // Scanned QR texts carry no `factory:` line; compare the sheets that have one.
        let labelled = read.iter().find(|o| o.factory.is_some());
        if let (Some(o), Some(f)) = (labelled, s.factory.as_deref()) {
            let of = o.factory.as_deref().unwrap_or_default();
            if of != f {
                return Err(SplitError::Set(format!(
                    "{} is of factory {of}, {} of factory {f}: sheets of different factories",
                    name(o),
                    name(s)
                )));
            }
        }
        if s.keyid != first.keyid || s.set != first.set || s.keytype != first.keytype {
            return Err(SplitError::Set(format!(
                "{} (key {}, split set {}) and {} (key {}, split set {}) are not from the same \
                 split: use sheets of one `keys split` run",
                name(first),
                first.keyid.short(),
                first.set,
                name(s),
                s.keyid.short(),
                s.set
            )));
        }
        if (s.threshold, s.shares) != (first.threshold, first.shares) {
            return Err(SplitError::Set(format!(
                "{} says {} of {}, {} says {} of {}: not from the same split",
                name(first),
                first.threshold,
                first.shares,
                name(s),
                s.threshold,
                s.shares
            )));
        }
    }
    for (i, s) in read.iter().enumerate() {
        if let Some(other) = read[..i].iter().find(|o| o.x == s.x) {
            return Err(SplitError::Set(format!(
                "{} and {} are both share {} (give different shares)",
                name(other),
                name(s),
                s.x
            )));
        }
    }
    let mut used: Vec<u8> = read.iter().map(|s| s.x).collect();
    used.sort_unstable();
    if read.len() < first.threshold {
        return Err(SplitError::TooFew {
            given: read.len(),
            numbers: used
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            threshold: first.threshold,
            shares: first.shares,
        });
    }
    let shares: Vec<Share> = read
        .iter()
        .map(|s| Share {
            x: s.x,
            y: s.y.clone(),
        })
        .collect();
    let secret =
        shamir::combine(&shares, first.threshold).map_err(|e| SplitError::Set(e.to_string()))?;
    let keytype = match first.keytype {
        KeyType::Ed25519 => "ED25519",
        KeyType::Rsa => "RSA",
    };
    let key = sheet::ParsedSheet::new(&first.keyid, keytype, secret)
        .rebuild(None)
        .map_err(|e| {
            SplitError::Set(format!(
                "the shares {} do not rebuild key {}: {e}",
                used.iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                first.keyid.short()
            ))
        })?;
    used.truncate(first.threshold);
    let report = CombineReport {
        keyid: key.keyid().clone(),
        factory: read.iter().find_map(|s| s.factory.clone()),
        used,
        threshold: first.threshold,
        shares: first.shares,
        sec_file: String::new(),
        created_tarball: false,
    };
    Ok((key, report))
}

/// Rebuilds the key from the sheets and adds it to the tarball `a.out`.
pub fn combine(a: &CombineArgs, pass: &PassphraseSource) -> Result<CombineReport, SplitError> {
    let (key, mut report) = rebuild(&a.sheets, a.factory.as_deref())?;
    let (sec_file, created) = add_restored_key(&key, &a.out, a.role.into(), pass)?;
    report.sec_file = sec_file;
    report.created_tarball = created;
    Ok(report)
}

/// Runs `signer keys split`: writes the sheets, records the export in the audit log and
/// says what to do with them.
pub fn run_split(ctx: &mut Ctx<'_>, a: &SplitArgs) -> Result<SplitReport, SignerError> {
    let state_dir = ctx.state.path();
    audit::verify(state_dir)?;
    let report = split(
        a,
        state_dir,
        &a.passphrase.source(),
        &ctx.now,
        &mut *ctx.rng,
    )?;
    audit::record(
        state_dir,
        &ctx.now,
        AuditEvent::KeyExported {
            keyid: report.keyid.clone(),
            form: format!(
                "shamir {} of {} (split set {})",
                a.threshold, a.shares, report.set
            ),
            path: a.out.display().to_string(),
        },
    )?;
    ctx.ui.line(format!(
        "Split root key {} of {} into {} shares; any {} restore it, fewer reveal nothing (split set {}):",
        report.keyid, a.factory, a.shares, a.threshold, report.set
    ));
    for s in &report.sheets {
        ctx.ui.line(format!("  {} (mode 0600)", s.display()));
    }
    ctx.ui.line(
        "Print each sheet (monospaced font, no scaling), check a set with `signer keys combine \
         SHEETS… --out /tmp/check.keys.tgz`, put each sheet in a different safe, then delete the files.",
    );
    Ok(report)
}

/// Runs `signer keys combine`: rebuilds the key into the tarball, records the restore in
/// the audit log and says which shares were used.
pub fn run_combine(ctx: &mut Ctx<'_>, a: &CombineArgs) -> Result<CombineReport, SignerError> {
    let state_dir = ctx.state.path();
    audit::verify(state_dir)?;
    let report = combine(a, &a.passphrase.source())?;
    audit::record(
        state_dir,
        &ctx.now,
        AuditEvent::KeyRestored {
            keyid: report.keyid.clone(),
            role: Role::from(a.role).as_str().to_string(),
            tarball: a.out.display().to_string(),
            source: a
                .sheets
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        },
    )?;
    ctx.ui.line(format!(
        "Every line's check code matched; shares {} of a {}-of-{} split{} rebuilt key {}, which has the sheets' keyid.",
        numbers(&report.used),
        report.threshold,
        report.shares,
        report
            .factory
            .as_deref()
            .map(|f| format!(" of {f}"))
            .unwrap_or_default(),
        report.keyid
    ));
    print_restored(ctx.ui, report.created_tarball, &a.out, &report.sec_file);
    Ok(report)
}
