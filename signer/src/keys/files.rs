//! The files the `keys` commands write and check, one way everywhere: secret files
//! (sheets, exported keys, converted keys files) written atomically with mode 0600 and
//! never over an existing file; a written file read back **from the medium** (page cache
//! dropped) and compared with what was meant; and a restored key added to a keys tarball.

use std::path::Path;

use shared::fsutil::{self, FsError};
use shared::keys::PrivateKey;
use shared::metadata::Role;
use shared::tarball::KeysTarball;
use zeroize::Zeroizing;

use super::{tarball_err, KeysError};
use crate::keystore::{self, PassphraseSource};
use crate::ui::Ui;

/// Writes `bytes` to `path` atomically with mode 0600, never over an existing file.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<(), KeysError> {
    fsutil::write_atomic_new(path, bytes, 0o600).map_err(|e| match e {
        FsError::AlreadyExists { path } => KeysError::OutputExists { path },
        other => other.into(),
    })
}

/// Refuses an output path that exists already (before any work is done for it).
pub fn refuse_existing(path: &Path) -> Result<(), KeysError> {
    if std::fs::symlink_metadata(path).is_ok() {
        Err(KeysError::OutputExists {
            path: path.to_path_buf(),
        })
    } else {
        Ok(())
    }
}

/// Asks the kernel to drop `path` from the page cache so that the next read comes from the
/// medium (best effort; Linux and other POSIX systems with `posix_fadvise`).
fn drop_from_cache(path: &Path) {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use std::os::unix::io::AsRawFd;
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.sync_all();
            // SAFETY: `f` is an open file descriptor for the duration of the call;
            // posix_fadvise only reads its arguments.
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let _ = path;
}

/// Reads the file `path` back from its medium (dropped from the page cache first); the
/// error is the reason, for a mismatch message.
pub fn read_back(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    drop_from_cache(path);
    fsutil::read_limited(path, shared::tarball::MAX_FILE_SIZE)
        .map(Zeroizing::new)
        .map_err(|e| format!("it cannot be read back ({e})"))
}

/// Opens the bytes `raw` read back from the keys file `path` (decrypting a `*.tgz.age` with
/// `pass`): its plaintext and keys; the error is the reason, for a mismatch message.
pub fn open_back(
    path: &Path,
    raw: &[u8],
    pass: &PassphraseSource,
) -> Result<(Zeroizing<Vec<u8>>, KeysTarball), String> {
    keystore::plaintext(path, raw, pass)
        .and_then(|plain| {
            let tarball = keystore::parse(path, &plain)?;
            Ok((plain, tarball))
        })
        .map_err(|e| format!("it does not open as a keys tarball ({e})"))
}

/// Where `actual` differs from `expected` ("it has N bytes, the original M", "it differs
/// from the original at byte N of M"), or `None` when they are equal.
pub fn first_difference(actual: &[u8], expected: &[u8]) -> Option<String> {
    if actual.len() != expected.len() {
        return Some(format!(
            "it has {} bytes, the original {}",
            actual.len(),
            expected.len()
        ));
    }
    actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .map(|offset| {
            format!(
                "it differs from the original at byte {offset} of {}",
                expected.len()
            )
        })
}

/// Whether two tarballs hold exactly the same entries (`path` names the second, for errors).
pub fn same_keys(a: &KeysTarball, b: &KeysTarball, path: &Path) -> Result<bool, KeysError> {
    let a = a.to_bytes().map_err(tarball_err(path))?;
    let b = b.to_bytes().map_err(tarball_err(path))?;
    Ok(a.as_slice() == b.as_slice())
}

/// Adds a restored private key to the tarball at `keys` (created if missing) for `role`,
/// refusing a key it already holds. Returns the `.sec` entry and whether the tarball was
/// created.
pub fn add_restored_key(
    key: &PrivateKey,
    keys: &Path,
    role: Role,
    pass: &PassphraseSource,
) -> Result<(String, bool), KeysError> {
    let (mut tarball, existed) = keystore::open_or_empty(keys, pass)?;
    if let Some(found) = tarball
        .private_key(key.keyid())
        .map_err(tarball_err(keys))?
    {
        return Err(KeysError::AlreadyHeld {
            tarball: keys.to_path_buf(),
            keyid: found.keyid,
            file: found.sec_file,
        });
    }
    let (keyid, _) = tarball
        .add_private_key(role, key)
        .map_err(tarball_err(keys))?;
    if existed {
        keystore::save(keys, &tarball, pass)?;
    } else {
        keystore::save_new(keys, &tarball, pass)?;
    }
    let sec_file = format!(
        "{}fioctl-{}-{}.sec",
        shared::tarball::KEYS_DIR,
        role.as_str(),
        keyid
    );
    Ok((sec_file, !existed))
}

/// Prints where a restored key went: "Created|Updated TARBALL with ENTRY.".
pub fn print_restored(ui: &mut Ui, created: bool, tarball: &Path, sec_file: &str) {
    let verb = if created { "Created" } else { "Updated" };
    ui.line(format!("{verb} {} with {sec_file}.", tarball.display()));
}
