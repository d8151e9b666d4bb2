//! The signer's identities: the age X25519 identity, how the initial online root key
//! reaches the laptop, and the Ed25519 **signing identity**, with which the signer signs
//! every step it adds to a response (see [`shared::attestation`]).
//!
//! On the very first root rotation the Foundries server hands the courier the factory's
//! initial root key pair (`first_root.sec`). The courier never writes that private key in
//! clear: it encrypts it to this signer's **recipient** (`age1…`) and puts the ciphertext in
//! the request bundle. Only the identity file on the offline machine can decrypt it.
//!
//! * `signer identity init [--force]` creates `<state dir>/identity.txt` (mode 0600, written
//!   atomically, never replaced without `--force`; with `--force` the old file is kept as
//!   `identity.txt.replaced-<unix time>` so that a pending request encrypted to it can still
//!   be opened) and prints the recipient for `courier config set-recipient`;
//! * `signer identity show` prints the recipient and the signing identity with its
//!   fingerprint (`--recipient`: the recipient only, for scripts).
//!
//! The signing identity (`signing-identity.txt`, mode 0600) is created by `identity init`,
//! or by the first command that needs it in a state directory made before it existed. It is
//! never replaced: the other key holders pinned it (`signer cosigner add`), and so may the
//! courier (`courier config add-signer`).
//!
//! The file uses the format of `age-keygen`, so the standard `age -d -i identity.txt` can
//! read what was encrypted to it:
//!
//! ```text
//! # created: 2026-03-01T10:20:30Z
//! # public key: age1…
//! AGE-SECRET-KEY-1…
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use bech32::ToBase32 as _;
use clap::{Args, Subcommand};
use rand_core::CryptoRngCore;
use shared::fsutil::{self, FsError};
use shared::metadata::Timestamp;
use zeroize::Zeroizing;

use shared::attestation::SigningIdentity;

use crate::audit::{self, AuditEvent};
use crate::ctx::Ctx;
use crate::error::SignerError;
use crate::ui::Ui;

/// File name of the identity inside the signer state directory.
pub const IDENTITY_FILE: &str = "identity.txt";

/// The human-readable part of an age secret key (bech32, written in upper case).
const AGE_SECRET_HRP: &str = "age-secret-key-";

/// File name of the signing identity inside the signer state directory.
pub const SIGNING_IDENTITY_FILE: &str = "signing-identity.txt";

/// The prefix of the secret line of a signing identity file.
const SIGNING_SECRET_PREFIX: &str = "OFFLINE-TUF-SIGNING-KEY-1";

/// Largest identity file accepted (a real one is about 200 bytes).
const MAX_IDENTITY_FILE: u64 = 64 * 1024;

/// Largest ciphertext [`decrypt`] accepts (the initial root key is a few KiB at most).
pub const MAX_CIPHERTEXT: usize = 1024 * 1024;

/// Errors of the identity functions. None of them ever contains secret material.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No identity file yet.
    #[error("no signer identity at {path}: run `signer identity init` first")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `identity init` without `--force` while an identity exists.
    #[error(
        "{path} already exists (recipient {recipient}); refusing to replace it. Requests \
         encrypted to it could no longer be opened. Use `signer identity show` to print its \
         recipient, or `signer identity init --force` to make a new one (the old file is kept \
         next to it)"
    )]
    Exists {
        /// The identity file.
        path: PathBuf,
        /// Its recipient.
        recipient: String,
    },
    /// The identity file is readable or writable by other users.
    #[error(
        "{path} is accessible by other users (mode {mode:o}); an identity must be private: run \
         `chmod 600 {path}` (and consider the identity compromised if others could read it)"
    )]
    Permissions {
        /// The identity file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file exists but holds no usable identity.
    #[error(
        "{path} is not an age identity file (expected one line starting with \
         `AGE-SECRET-KEY-1`); restore it from a backup or create a new one with \
         `signer identity init --force`"
    )]
    Malformed {
        /// The identity file.
        path: PathBuf,
    },
    /// A recipient string could not be parsed.
    #[error("`{recipient}` is not an age X25519 recipient (expected `age1…`)")]
    BadRecipient {
        /// What was given.
        recipient: String,
    },
    /// The data was encrypted to some other recipient.
    #[error(
        "the encrypted data is not addressed to this signer's identity ({recipient}); on the \
         online machine check `courier config` shows this recipient, then create the request \
         again"
    )]
    NotForThisIdentity {
        /// This signer's recipient.
        recipient: String,
    },
    /// The ciphertext is not a valid age file or is damaged.
    #[error("cannot decrypt: the data is not a valid or complete age file ({reason})")]
    Decrypt {
        /// age's description of the problem (never includes plaintext).
        reason: String,
    },
    /// The ciphertext is larger than [`MAX_CIPHERTEXT`].
    #[error("the encrypted data is {len} bytes, more than the {MAX_CIPHERTEXT} bytes accepted")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// Encryption failed.
    #[error("cannot encrypt: {reason}")]
    Encrypt {
        /// age's description of the problem.
        reason: String,
    },
    /// A new identity could not be made (its encoding failed; never secret material).
    #[error("cannot make a new identity: {reason}")]
    Generate {
        /// What failed.
        reason: String,
    },
    /// Creating the state directory failed.
    #[error("cannot create the signer state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Reading or writing the file failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// `signer identity …`: the age identity that receives the initial online root key.
#[derive(Debug, Clone, Subcommand)]
pub enum IdentityCommand {
    /// Create this signer's age identity and print its recipient (`age1…`).
    ///
    /// Give the recipient to the online machine with `courier config set-recipient age1…`
    /// (type it, or carry it as a small text file). The identity file is private to this
    /// user (mode 0600) and is never replaced unless --force is given.
    Init(InitArgs),
    /// Print the recipient (`age1…`) and the signing identity (`ed25519:…`) with the
    /// fingerprint the other key holders compare when they pin it (`signer cosigner add`).
    Show(ShowArgs),
}

/// Options of `signer identity show`.
#[derive(Debug, Clone, Default, Args)]
pub struct ShowArgs {
    /// Print only the age recipient (for `courier config set-recipient`).
    #[arg(long, conflicts_with = "signing")]
    pub recipient: bool,
    /// Print only the signing identity (for `signer cosigner add` on the other laptops and
    /// `courier config add-signer`).
    #[arg(long, conflicts_with = "json")]
    pub signing: bool,
    /// Print JSON for scripts (`recipient`, `signing-identity`, `fingerprint`).
    #[arg(long, conflicts_with = "recipient")]
    pub json: bool,
}

/// Options of `signer identity init`.
#[derive(Debug, Clone, Default, Args)]
pub struct InitArgs {
    /// Replace an existing identity. The old file is kept as
    /// `identity.txt.replaced-<unix time>`; requests encrypted to it need it to be opened.
    #[arg(long)]
    pub force: bool,
}

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOutcome {
    /// The new recipient (`age1…`).
    pub recipient: String,
    /// The identity file.
    pub path: PathBuf,
    /// With `--force` over an existing identity: its recipient and where the old file was kept.
    pub replaced: Option<(String, PathBuf)>,
}

/// Path of the identity file in `state_dir`.
pub fn identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join(IDENTITY_FILE)
}

/// Creates the state directory (mode 0700 when it is created here).
pub(crate) fn ensure_state_dir(state_dir: &Path) -> Result<(), std::io::Error> {
    if state_dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(state_dir)
}

/// A new age X25519 identity made from 32 bytes of `rng` (age's own `generate` would take
/// the operating system's generator): the bytes are encoded as an `AGE-SECRET-KEY-1…` line,
/// exactly as `age-keygen` writes them, and parsed back.
fn new_age_identity(rng: &mut dyn CryptoRngCore) -> Result<age::x25519::Identity, IdentityError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut secret[..]);
    let encoded = Zeroizing::new(
        bech32::encode(AGE_SECRET_HRP, secret.to_base32(), bech32::Variant::Bech32).map_err(
            |e| IdentityError::Generate {
                reason: e.to_string(),
            },
        )?,
    );
    let line = Zeroizing::new(encoded.to_uppercase());
    age::x25519::Identity::from_str(&line).map_err(|e| IdentityError::Generate {
        reason: e.to_string(),
    })
}

/// Creates a new identity in `state_dir` at `now` from `rng` (see the module documentation).
pub fn init(
    state_dir: &Path,
    force: bool,
    now: &Timestamp,
    rng: &mut dyn CryptoRngCore,
) -> Result<InitOutcome, IdentityError> {
    ensure_state_dir(state_dir).map_err(|source| IdentityError::StateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let path = identity_path(state_dir);
    let existing = if std::fs::symlink_metadata(&path).is_ok() {
        // An unreadable or malformed old file is replaced only with --force as well.
        let old = recipient(state_dir).unwrap_or_else(|_| "unreadable".to_string());
        if !force {
            return Err(IdentityError::Exists {
                path,
                recipient: old,
            });
        }
        Some(old)
    } else {
        None
    };

    let identity = new_age_identity(rng)?;
    let recipient = identity.to_public().to_string();
    let secret = identity.to_string();
    let mut content = Zeroizing::new(String::with_capacity(256));
    content.push_str("# created: ");
    content.push_str(&now.to_string());
    content.push_str("\n# public key: ");
    content.push_str(&recipient);
    content.push('\n');
    content.push_str(secret.expose_secret());
    content.push('\n');

    let replaced = match existing {
        None => {
            fsutil::write_atomic_new(&path, content.as_bytes(), 0o600)?;
            None
        }
        Some(old) => {
            let now = now.unix();
            let mut backup = path.with_file_name(format!("{IDENTITY_FILE}.replaced-{now}"));
            let mut n = 1;
            while std::fs::symlink_metadata(&backup).is_ok() {
                backup = path.with_file_name(format!("{IDENTITY_FILE}.replaced-{now}-{n}"));
                n += 1;
            }
            // A second name for the old file first, so that it survives the replacement.
            std::fs::hard_link(&path, &backup)
                .or_else(|_| std::fs::copy(&path, &backup).map(|_| ()))
                .map_err(|source| {
                    IdentityError::Fs(FsError::Read {
                        path: path.clone(),
                        source,
                    })
                })?;
            fsutil::write_atomic(&path, content.as_bytes(), 0o600)?;
            Some((old, backup))
        }
    };
    Ok(InitOutcome {
        recipient,
        path,
        replaced,
    })
}

/// Loads the identity from `state_dir`.
///
/// Refuses a file that other users can access (like `ssh` does with private keys).
pub fn load_identity(state_dir: &Path) -> Result<age::x25519::Identity, IdentityError> {
    let path = identity_path(state_dir);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IdentityError::Missing { path })
        }
        Err(source) => return Err(IdentityError::Fs(FsError::Read { path, source })),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(IdentityError::Permissions { path, mode });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let bytes = Zeroizing::new(fsutil::read_limited(&path, MAX_IDENTITY_FILE)?);
    parse_identity(&bytes).ok_or(IdentityError::Malformed { path })
}

/// Path of the signing identity file in `state_dir`.
pub fn signing_identity_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SIGNING_IDENTITY_FILE)
}

/// Refuses a private file that other users can access.
fn check_private(path: &Path) -> Result<(), IdentityError> {
    let meta = std::fs::metadata(path).map_err(|source| {
        IdentityError::Fs(FsError::Read {
            path: path.to_path_buf(),
            source,
        })
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(IdentityError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// The signing identity of `state_dir`, if one was created.
pub fn load_signing_identity(state_dir: &Path) -> Result<Option<SigningIdentity>, IdentityError> {
    let path = signing_identity_path(state_dir);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    check_private(&path)?;
    let bytes = Zeroizing::new(fsutil::read_limited(&path, MAX_IDENTITY_FILE)?);
    let text =
        std::str::from_utf8(&bytes).map_err(|_| IdentityError::Malformed { path: path.clone() })?;
    let hex_seed = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(SIGNING_SECRET_PREFIX))
        .ok_or_else(|| IdentityError::Malformed { path: path.clone() })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_seed, &mut seed[..])
        .map_err(|_| IdentityError::Malformed { path: path.clone() })?;
    Ok(Some(SigningIdentity::from_seed(&seed)))
}

/// The signing identity of `state_dir`, created at `now` from `rng` (file, audit record)
/// when missing; the flag says whether it was created.
pub fn ensure_signing_identity(
    state_dir: &Path,
    now: &Timestamp,
    rng: &mut dyn CryptoRngCore,
) -> Result<(SigningIdentity, bool), IdentityError> {
    if let Some(id) = load_signing_identity(state_dir)? {
        return Ok((id, false));
    }
    ensure_state_dir(state_dir).map_err(|source| IdentityError::StateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut seed[..]);
    let id = SigningIdentity::from_seed(&seed);
    let public = id.public();
    let mut content = Zeroizing::new(String::with_capacity(320));
    content.push_str(
        "# offline-tuf signer signing identity (Ed25519): signs the steps this signer adds to responses\n# created: ",
    );
    content.push_str(&now.to_string());
    content.push_str("\n# public key: ");
    content.push_str(&public.to_string());
    content.push_str("\n# fingerprint: ");
    content.push_str(&public.fingerprint());
    content.push('\n');
    content.push_str(SIGNING_SECRET_PREFIX);
    content.push_str(&hex::encode(&id.seed()[..]));
    content.push('\n');
    fsutil::write_atomic_new(signing_identity_path(state_dir), content.as_bytes(), 0o600)?;
    audit::record(
        state_dir,
        now,
        AuditEvent::SigningIdentityCreated {
            identity: public.to_string(),
            fingerprint: public.fingerprint(),
        },
    )
    .map_err(|e| IdentityError::Encrypt {
        reason: format!("the audit log refused the new signing identity: {e}"),
    })?;
    Ok((id, true))
}

/// Parses identity file content: the first line starting with `AGE-SECRET-KEY-1`.
fn parse_identity(bytes: &[u8]) -> Option<age::x25519::Identity> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .and_then(|l| age::x25519::Identity::from_str(l).ok())
}

/// The recipient (`age1…`) of the identity in `state_dir`.
pub fn recipient(state_dir: &Path) -> Result<String, IdentityError> {
    Ok(load_identity(state_dir)?.to_public().to_string())
}

/// Decrypts age `ciphertext` (binary or ASCII-armored) addressed to `identity`.
///
/// The plaintext is returned in a zeroizing buffer sized up front (it is never larger than
/// the ciphertext), so no stray copies of it are left behind by reallocation.
pub fn decrypt(
    identity: &age::x25519::Identity,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    if ciphertext.len() > MAX_CIPHERTEXT {
        return Err(IdentityError::TooLarge {
            len: ciphertext.len(),
        });
    }
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(ciphertext))
        .map_err(|e| decrypt_error(identity, e))?;
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| decrypt_error(identity, e))?;
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    reader
        .read_to_end(&mut out)
        .map_err(|e| IdentityError::Decrypt {
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn decrypt_error(identity: &age::x25519::Identity, e: age::DecryptError) -> IdentityError {
    match e {
        age::DecryptError::NoMatchingKeys => IdentityError::NotForThisIdentity {
            recipient: identity.to_public().to_string(),
        },
        other => IdentityError::Decrypt {
            reason: other.to_string(),
        },
    }
}

/// Encrypts `plaintext` to an age X25519 `recipient` (`age1…`), binary format.
///
/// The courier does this for the initial root key; the signer uses it in tests and fixtures.
pub fn encrypt_to(recipient: &str, plaintext: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let r = age::x25519::Recipient::from_str(recipient.trim()).map_err(|_| {
        IdentityError::BadRecipient {
            recipient: recipient.to_string(),
        }
    })?;
    age::encrypt(&r, plaintext).map_err(|e| IdentityError::Encrypt {
        reason: e.to_string(),
    })
}

/// Runs `signer identity …`.
pub fn run(ctx: &mut Ctx<'_>, cmd: &IdentityCommand) -> Result<(), SignerError> {
    let state_dir = ctx.state.path();
    match cmd {
        IdentityCommand::Init(args) => {
            let had_age = std::fs::symlink_metadata(identity_path(state_dir)).is_ok();
            if had_age && !args.force && load_signing_identity(state_dir)?.is_none() {
                // A state directory from before signing identities: add one, keep the rest.
                let (id, _) = ensure_signing_identity(state_dir, &ctx.now, &mut *ctx.rng)?;
                ctx.ui.line(format!(
                    "Kept the age identity {} (recipient {}).",
                    identity_path(state_dir).display(),
                    recipient(state_dir)?
                ));
                print_new_signing_identity(ctx.ui, state_dir, &id);
                return Ok(());
            }
            let outcome = init(state_dir, args.force, &ctx.now, &mut *ctx.rng)?;
            audit::record(
                state_dir,
                &ctx.now,
                AuditEvent::IdentityCreated {
                    recipient: outcome.recipient.clone(),
                    path: outcome.path.display().to_string(),
                },
            )?;
            let ui = &mut *ctx.ui;
            if let Some((old, backup)) = &outcome.replaced {
                ui.line(format!(
                    "Replaced identity {old}; the old file is kept as {}.",
                    backup.display()
                ));
            }
            ui.line(format!(
                "Created the signer identity {} (readable by you only).",
                outcome.path.display()
            ));
            ui.line(format!("Its recipient is:\n\n    {}\n", outcome.recipient));
            ui.line(format!(
                "On the online machine run:\n\n    courier config set-recipient {}\n",
                outcome.recipient
            ));
            ui.line(format!(
                "Back up {} together with your keys tarballs: it is needed to open a \
                 first-time request made for this recipient.",
                outcome.path.display()
            ));
            let (id, created) = ensure_signing_identity(state_dir, &ctx.now, &mut *ctx.rng)?;
            if created {
                ctx.ui.line("");
                print_new_signing_identity(ctx.ui, state_dir, &id);
            }
        }
        IdentityCommand::Show(args) => {
            let ui = &mut *ctx.ui;
            if args.recipient {
                ui.line(recipient(state_dir)?);
                return Ok(());
            }
            let signing = load_signing_identity(state_dir)?.map(|id| id.public());
            if args.json {
                let value = serde_json::json!({
                    "recipient": recipient(state_dir)?,
                    "signing-identity": signing.as_ref().map(|p| p.to_string()),
                    "fingerprint": signing.as_ref().map(|p| p.fingerprint()),
                });
                ui.line(serde_json::to_string_pretty(&value).unwrap_or_default());
                return Ok(());
            }
            if args.signing {
                let public = signing.ok_or_else(|| IdentityError::Missing {
                    path: signing_identity_path(state_dir),
                })?;
                ui.line(public.to_string());
                return Ok(());
            }
            ui.line(format!("age recipient:     {}", recipient(state_dir)?));
            match signing {
                Some(public) => {
                    ui.line(format!("signing identity:  {public}"));
                    ui.line(format!("fingerprint:       {}", public.fingerprint()));
                }
                None => ui.line("signing identity:  none yet (`signer identity init` creates it)"),
            }
        }
    }
    Ok(())
}

/// What a person does with a new signing identity: pin it on the other laptops and the
/// courier, comparing the fingerprint out of band.
fn print_new_signing_identity(ui: &mut Ui, state_dir: &Path, id: &SigningIdentity) {
    let public = id.public();
    ui.line(format!(
        "Created the signing identity {} (readable by you only); it signs every step this signer adds to a response.",
        signing_identity_path(state_dir).display()
    ));
    ui.line(format!(
        "Its public key and fingerprint are:\n\n    {public}\n    fingerprint {}\n",
        public.fingerprint()
    ));
    ui.line(format!(
        "On the other key holders' laptops run `signer cosigner add NAME {public}` and compare the fingerprint they are shown with this one (by phone or in person, not over the USB stick); on the online machine, `courier config add-signer NAME {public}` lets the courier refuse responses whose steps were changed."
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::testing::{run_in, test_time};
    use rand::SeedableRng as _;

    /// A seeded generator (reproducible identities).
    fn rng(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }

    fn mode_of(path: &Path) -> u32 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            0o600
        }
    }

    #[test]
    fn init_creates_private_file_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let outcome = init(&state, false, &test_time(), &mut rng(1)).unwrap();
        assert!(outcome.recipient.starts_with("age1"));
        assert_eq!(outcome.path, identity_path(&state));
        assert_eq!(mode_of(&outcome.path), 0o600);
        assert!(outcome.replaced.is_none());
        assert_eq!(recipient(&state).unwrap(), outcome.recipient);

        let text = std::fs::read_to_string(&outcome.path).unwrap();
        assert!(text.contains(&format!("# public key: {}", outcome.recipient)));

        let id = load_identity(&state).unwrap();
        let ct = encrypt_to(&outcome.recipient, b"first-root.sec bytes").unwrap();
        assert_eq!(&decrypt(&id, &ct).unwrap()[..], b"first-root.sec bytes");
        assert!(fsutil::leftover_temp_files(&outcome.path)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn init_refuses_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rng(1);
        let first = init(dir.path(), false, &test_time(), &mut rng).unwrap();
        let before = std::fs::read(&first.path).unwrap();
        let err = init(dir.path(), false, &test_time(), &mut rng).unwrap_err();
        assert!(matches!(err, IdentityError::Exists { .. }), "{err}");
        assert!(err.to_string().contains(&first.recipient));
        assert!(err.to_string().contains("--force"));
        assert_eq!(std::fs::read(&first.path).unwrap(), before);

        let second = init(dir.path(), true, &test_time(), &mut rng).unwrap();
        assert_ne!(second.recipient, first.recipient);
        let (old, backup) = second.replaced.clone().unwrap();
        assert_eq!(old, first.recipient);
        assert_eq!(std::fs::read(&backup).unwrap(), before);
        assert_eq!(mode_of(&second.path), 0o600);
        assert_eq!(recipient(dir.path()).unwrap(), second.recipient);
    }

    #[test]
    fn missing_and_malformed_and_loose_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let Err(err) = load_identity(dir.path()) else {
            panic!("expected an error")
        };
        assert!(matches!(err, IdentityError::Missing { .. }));
        assert!(err.to_string().contains("signer identity init"));

        fsutil::write_atomic(identity_path(dir.path()), b"# nothing here\n", 0o600).unwrap();
        assert!(matches!(
            load_identity(dir.path()),
            Err(IdentityError::Malformed { .. })
        ));

        #[cfg(unix)]
        {
            init(dir.path(), true, &test_time(), &mut rng(1)).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                identity_path(dir.path()),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
            let Err(err) = load_identity(dir.path()) else {
                panic!("expected an error")
            };
            assert!(matches!(
                err,
                IdentityError::Permissions { mode: 0o644, .. }
            ));
            assert!(err.to_string().contains("chmod 600"));
        }
    }

    #[test]
    fn decrypt_for_other_identity_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), false, &test_time(), &mut rng(1)).unwrap();
        let id = load_identity(dir.path()).unwrap();
        let other = age::x25519::Identity::generate();
        let ct = encrypt_to(&other.to_public().to_string(), b"secret").unwrap();
        let err = decrypt(&id, &ct).unwrap_err();
        assert!(
            matches!(err, IdentityError::NotForThisIdentity { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("secret"));
        let err = decrypt(&id, b"not age at all").unwrap_err();
        assert!(matches!(err, IdentityError::Decrypt { .. }), "{err}");
        assert!(matches!(
            encrypt_to("age1nope", b"x").unwrap_err(),
            IdentityError::BadRecipient { .. }
        ));
    }

    #[test]
    fn armored_ciphertext_is_accepted() {
        let id = age::x25519::Identity::generate();
        let armored = age::encrypt_and_armor(&id.to_public(), b"pem").unwrap();
        assert_eq!(&decrypt(&id, armored.as_bytes()).unwrap()[..], b"pem");
    }

    #[test]
    fn identities_come_from_the_runs_generator() {
        // The same seed makes the same identities; the file says the run's time.
        let made = |seed: u64| {
            let dir = tempfile::tempdir().unwrap();
            let recipient = init(dir.path(), false, &test_time(), &mut rng(seed))
                .unwrap()
                .recipient;
            let signing = ensure_signing_identity(dir.path(), &test_time(), &mut rng(seed))
                .unwrap()
                .0
                .public();
            let text = std::fs::read_to_string(identity_path(dir.path())).unwrap();
            assert!(text.contains("# created: 2026-03-01T10:20:30Z"), "{text}");
            (recipient, signing)
        };
        assert_eq!(made(5), made(5));
        assert_ne!(made(5).0, made(6).0);
        assert_ne!(made(5).1, made(6).1);
    }

    #[test]
    fn run_prints_recipient_and_audits() {
        let dir = tempfile::tempdir().unwrap();
        let (r, text) = run_in(dir.path(), |ctx| {
            run(ctx, &IdentityCommand::Init(InitArgs { force: false }))
        });
        r.unwrap();
        let r = recipient(dir.path()).unwrap();
        assert!(text.contains(&format!("courier config set-recipient {r}")));
        assert!(!text.contains("AGE-SECRET-KEY"));
        let show_recipient = IdentityCommand::Show(ShowArgs {
            recipient: true,
            signing: false,
            json: false,
        });
        let (done, shown) = run_in(dir.path(), |ctx| run(ctx, &show_recipient));
        done.unwrap();
        assert_eq!(shown, format!("{r}\n"));
        // The signing identity was created with it, and is shown with its fingerprint.
        let signing = load_signing_identity(dir.path()).unwrap().unwrap().public();
        assert!(text.contains(&signing.to_string()));
        assert!(text.contains(&signing.fingerprint()));
        assert_eq!(mode_of(&signing_identity_path(dir.path())), 0o600);
        let (done, shown) = run_in(dir.path(), |ctx| {
            run(ctx, &IdentityCommand::Show(ShowArgs::default()))
        });
        done.unwrap();
        assert!(
            shown.contains(&r) && shown.contains(&signing.fingerprint()),
            "{shown}"
        );
        assert!(!shown.contains(SIGNING_SECRET_PREFIX));
        let report = audit::verify(dir.path()).unwrap();
        assert_eq!(report.records, 2);
        // `init` again keeps both; a missing signing identity is added on its own.
        std::fs::remove_file(signing_identity_path(dir.path())).unwrap();
        let (done, _) = run_in(dir.path(), |ctx| {
            run(ctx, &IdentityCommand::Init(InitArgs { force: false }))
        });
        done.unwrap();
        assert_eq!(recipient(dir.path()).unwrap(), r);
        let again = load_signing_identity(dir.path()).unwrap().unwrap().public();
        assert_ne!(again, signing);
        assert!(
            !ensure_signing_identity(dir.path(), &test_time(), &mut rng(1))
                .unwrap()
                .1
        );
    }
}
