//! One clear line when a person gives the wrong file: a transfer bundle to `trust init`, a
//! keys tarball where a bundle is expected, a bundle or a root.json as `--keys`.
//!
//! The file's kind is told from its first bytes ([`shared::filekind`]); the message names
//! the file, what it is, what was expected and what to give instead. It never quotes the
//! file's content (a keys file holds private keys). Callers ask only when their reader
//! refused the file, or — for keys files — before the tarball reader could take a bundle
//! (a valid tar without keys) for an empty keys file.

use std::path::{Path, PathBuf};

use shared::filekind::{self, FileKind};

/// What the command expected at that place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A transfer bundle (`BUNDLE` arguments).
    Bundle,
    /// A signed root.json (`trust init`, `--root`).
    Root,
    /// A keys tarball, plain or encrypted (`--keys`, `--targets-keys`).
    KeysFile,
}

impl Expected {
    fn describe(self) -> &'static str {
        match self {
            Expected::Bundle => "a transfer bundle",
            Expected::Root => "a root.json",
            Expected::KeysFile => "a keys tarball",
        }
    }
}

/// A file of another kind than the command expected.
#[derive(Debug, thiserror::Error)]
#[error("{path} is {found}, not {expected}: {advice}")]
pub struct WrongFile {
    /// The file.
    pub path: PathBuf,
    /// What it is ([`FileKind::describe`]).
    pub found: String,
    /// What was expected.
    pub expected: &'static str,
    /// What to give instead (and, where it helps, where the given file belongs).
    pub advice: String,
}

/// Where the bundle comes from.
const GIVE_BUNDLE: &str =
    "give as BUNDLE the bundle the courier wrote (`courier … --bundle FILE`) or a response of an earlier signer step";

/// Where the root.json comes from.
const GIVE_ROOT: &str = "give the root.json from `courier show-root` (on the online machine: `courier show-root > /usb/root.json`)";

/// Where keys files go.
const GIVE_KEYS: &str = "give your keys tarball (root.keys.tgz, targets.keys.tgz, or *.tgz.age) with --keys or --targets-keys";

/// What to say about a file of kind `found` where `expected` was wanted: where such a file
/// belongs (if that helps) and what to give; `None` when `found` may be the expected kind
/// (or its reader says best what is wrong).
fn advice(expected: Expected, found: &FileKind) -> Option<(Option<&'static str>, &'static str)> {
    use FileKind as K;
    Some(match (expected, found) {
        (Expected::Bundle, K::TransferBundle | K::Tar | K::Json) => return None,
        (Expected::Bundle, K::KeysTarball | K::Age) => (
            Some("a keys file is given with --keys (or --targets-keys)"),
            GIVE_BUNDLE,
        ),
        (Expected::Bundle, K::Root) => (
            Some("a root.json is pinned with `signer trust init ROOT.json`"),
            GIVE_BUNDLE,
        ),
        (Expected::Bundle, _) => (None, GIVE_BUNDLE),
        (Expected::Root, K::Root | K::Json) => return None,
        (Expected::Root, K::KeysTarball | K::Age | K::PrivateKey) => {
            (Some("a keys file is never a trust anchor"), GIVE_ROOT)
        }
        (Expected::Root, _) => (None, GIVE_ROOT),
        (Expected::KeysFile, K::KeysTarball | K::Tar | K::Age) => return None,
        (Expected::KeysFile, K::TransferBundle) => {
            (Some("a bundle is given as the BUNDLE argument"), GIVE_KEYS)
        }
        (Expected::KeysFile, K::Root | K::Metadata(_)) => (
            Some("a root.json is given to `signer trust init` or with --root"),
            GIVE_KEYS,
        ),
        (Expected::KeysFile, K::PrivateKey) => (
            Some("a single exported key (`signer keys export-root`) is not a keys tarball (check it with `signer keys drill --key-file`)"),
            GIVE_KEYS,
        ),
        (Expected::KeysFile, _) => (None, GIVE_KEYS),
    })
}

/// Refuses `path` (whose content, or its first bytes, is `bytes`) when it is of a kind other
/// than `expected`.
pub fn check(path: &Path, bytes: &[u8], expected: Expected) -> Result<(), WrongFile> {
    refuse(path, filekind::sniff(bytes), expected)
}

/// [`check`] of the file at `path` (its first bytes are read); a file that cannot be read
/// passes (the caller's own error says why).
pub fn check_file(path: &Path, expected: Expected) -> Result<(), WrongFile> {
    refuse(path, filekind::sniff_file(path), expected)
}

fn refuse(path: &Path, found: Option<FileKind>, expected: Expected) -> Result<(), WrongFile> {
    let Some(found) = found else {
        return Ok(());
    };
    match advice(expected, &found) {
        None => Ok(()),
        Some((belongs, give)) => Err(WrongFile {
            path: path.to_path_buf(),
            found: found.describe(),
            expected: expected.describe(),
            advice: match belongs {
                Some(b) => format!("{b}; {give}"),
                None => give.to_string(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mix_up_says_what_to_give() {
        let p = Path::new("/usb/x");
        let bundle = FileKind::TransferBundle;
        let e = refuse(p, Some(bundle.clone()), Expected::Root).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/usb/x is a transfer bundle, not a root.json: give the root.json from `courier show-root` (on the online machine: `courier show-root > /usb/root.json`)"
        );
        let e = refuse(p, Some(FileKind::KeysTarball), Expected::Bundle).unwrap_err();
        assert!(e.to_string().contains("--keys"), "{e}");
        let e = refuse(p, Some(bundle.clone()), Expected::KeysFile).unwrap_err();
        assert!(e.to_string().contains("BUNDLE argument"), "{e}");
        let e = refuse(p, Some(FileKind::Root), Expected::KeysFile).unwrap_err();
        assert!(e.to_string().contains("trust init"), "{e}");
        // The expected kind, or one whose reader says best what is wrong, passes.
        for (kind, expected) in [
            (Some(bundle), Expected::Bundle),
            (Some(FileKind::Root), Expected::Root),
            (Some(FileKind::KeysTarball), Expected::KeysFile),
            (Some(FileKind::Tar), Expected::KeysFile),
            (Some(FileKind::Json), Expected::Root),
            (None, Expected::Bundle),
        ] {
            assert!(refuse(p, kind.clone(), expected).is_ok(), "{kind:?}");
        }
    }
}
